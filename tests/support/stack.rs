//! Deploying and removing stacks in the real swarm: externals, the docker CLI
//! half, and waiting until a namespace is really gone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bosun::swarm::settle::{self, Check, Schedule};
use serde_json::Value;

use super::cases::{Case, LOCAL_NETWORKS};
use super::cli;
use super::engine::{Engine, encode};
use super::snapshot::{self, NS_LABEL};

/// How long a namespace may take to disappear.
const GONE_TIMEOUT: Duration = Duration::from_secs(120);
/// The error another user of the engine causes by holding a published port.
const PORT_IN_USE: &str = "is already in use by service";

/// The environment both the CLI and bosun see: `PATH`, `HOME`, `DOCKER_HOST`
/// (if set) and the case's variables. The CLI interpolates with its whole
/// environment, so bosun gets exactly the same map.
pub fn case_env(case: &Case) -> BTreeMap<String, String> {
    let mut env = super::path_and_home();
    if let Ok(h) = std::env::var("DOCKER_HOST") {
        env.insert("DOCKER_HOST".to_string(), h);
    }
    env.extend(case.env.clone());
    env
}

pub fn docker(
    args: &[&str],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    stdin: Option<&[u8]>,
) -> Result<(bool, String), String> {
    let out = cli::feed(
        cli::docker()
            .args(args)
            .current_dir(cwd)
            .env_clear()
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        stdin,
    )
    .map_err(|e| {
        format!("cannot run the docker CLI ({e}); it is the oracle and must be on PATH")
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text.trim().to_string()))
}

/// External objects a case needs, created before and removed after it.
#[derive(Debug, Default)]
pub struct CreatedExternals {
    created: Vec<(&'static str, String)>,
}

fn exists(engine: &Engine, kind: &str, name: &str) -> Result<bool, String> {
    let r = engine.request("GET", &format!("/{kind}/{}", encode(name)), None)?;
    Ok(r.ok())
}

/// Look up an object by exact name (the API's `name` filter matches prefixes).
pub fn find_by_name(engine: &Engine, kind: &str, name: &str) -> Result<Option<String>, String> {
    let filters = serde_json::json!({ "name": [name] }).to_string();
    let list = engine.get(&format!("/{kind}?filters={}", encode(&filters)))?;
    let (id_key, name_ptr) = if kind == "networks" {
        ("Id", "/Name")
    } else {
        ("ID", "/Spec/Name")
    };
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o.pointer(name_ptr).and_then(Value::as_str) == Some(name))
        .and_then(|o| o.get(id_key)?.as_str().map(str::to_string)))
}

pub fn create_externals(engine: &Engine, case: &Case) -> Result<CreatedExternals, String> {
    let env = case_env(case);
    let mut created = CreatedExternals::default();
    for n in case
        .externals
        .networks
        .iter()
        .filter(|n| !LOCAL_NETWORKS.contains(&n.as_str()))
    {
        if !exists(engine, "networks", n)? {
            // A network removed a moment ago (by the case before, which
            // shared it) can answer 404 by name while swarm still holds the
            // name: "already exists" then means "wait", not "someone else's".
            let schedule = Schedule::new(GONE_TIMEOUT, Duration::from_millis(200));
            settle::until_blocking(format!("swarm to free the name {n}"), schedule, || {
                let args = ["network", "create", "-d", "overlay", "--attachable", n];
                let out = match docker(&args, &case.workdir, &env, None) {
                    Ok((true, _)) => return Check::Done(Ok(())),
                    Ok((false, out)) => out,
                    Err(e) => return Check::Done(Err(e)),
                };
                match find_by_name(engine, "networks", n) {
                    Ok(None) if out.contains("already exists") => Check::Pending(last_line(&out)),
                    Ok(_) => Check::Done(Err(format!("creating external network {n}: {out}"))),
                    Err(e) => Check::Done(Err(e)),
                }
            })
            .map_err(|t| t.to_string())??;
            created.created.push(("network", n.clone()));
        }
    }
    for (kind, names) in [
        ("secret", &case.externals.secrets),
        ("config", &case.externals.configs),
    ] {
        for n in names {
            if find_by_name(engine, &format!("{kind}s"), n)?.is_none() {
                let (ok, out) = docker(&[kind, "create", n, "-"], &case.workdir, &env, Some(b"x"))?;
                if !ok {
                    return Err(format!("creating external {kind} {n}: {out}"));
                }
                created.created.push((kind, n.clone()));
            }
        }
    }
    Ok(created)
}

pub fn remove_externals(engine: &Engine, ext: &CreatedExternals) -> Result<(), String> {
    for (kind, name) in ext.created.iter().rev() {
        let path = format!("/{kind}s/{}", encode(name));
        retry(
            || engine.delete(&path),
            &format!("removing external {kind} {name}"),
        )?;
        // Gone by name and from the list: swarm removes networks
        // asynchronously, and the list keeps the name a little longer.
        wait_until(&format!("external {kind} {name} to disappear"), || {
            Ok(!engine.request("GET", &path, None)?.ok()
                && find_by_name(engine, &format!("{kind}s"), name)?.is_none())
        })?;
    }
    Ok(())
}

/// Repeat `f` until it succeeds (a removal refused while tasks shut down),
/// at most [`GONE_TIMEOUT`], through [`settle`].
fn retry(mut f: impl FnMut() -> Result<(), String>, what: &str) -> Result<(), String> {
    let schedule = Schedule::new(GONE_TIMEOUT, Duration::from_millis(500));
    settle::until_blocking(what, schedule, || match f() {
        Ok(()) => Check::Done(()),
        Err(e) => Check::Pending(e),
    })
    .map_err(|t| t.to_string())
}

/// Wait until `f` says done (an error ends the wait at once), at most
/// [`GONE_TIMEOUT`]: through bosun's own [`settle`] mechanism.
pub fn wait_until(what: &str, mut f: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
    let schedule = Schedule::new(GONE_TIMEOUT, Duration::from_millis(250));
    settle::until_blocking(what, schedule, || match f() {
        Ok(true) => Check::Done(Ok(())),
        Ok(false) => Check::Pending("not yet".into()),
        Err(e) => Check::Done(Err(e)),
    })
    .map_err(|t| t.to_string())?
}

/// Names of the networks carrying the namespace label.
pub fn namespace_networks(engine: &Engine, ns: &str) -> Result<BTreeSet<String>, String> {
    Ok(engine
        .list_labelled("networks", &format!("{NS_LABEL}={ns}"))?
        .iter()
        .filter_map(|n| n.get("Name")?.as_str().map(str::to_string))
        .collect())
}

/// Wait until nothing of `ns` is left: no labelled object, no container of
/// its tasks (a removed service's tasks leave the API before their
/// containers are gone, and until then the node keeps a local copy of
/// their overlay networks: the next case would find an external network
/// "existing" that swarm no longer has), and each of `networks` unknown by
/// name (swarm removes networks asynchronously).
pub fn wait_gone(engine: &Engine, ns: &str, networks: &BTreeSet<String>) -> Result<(), String> {
    let label = format!("{NS_LABEL}={ns}");
    let schedule = Schedule::new(GONE_TIMEOUT, Duration::from_millis(250));
    settle::until_blocking(format!("stack {ns} to be removed"), schedule, || {
        let mut left = Vec::new();
        for kind in ["services", "containers", "networks", "configs", "secrets"] {
            match engine.list_labelled(kind, &label) {
                Ok(l) if l.is_empty() => {}
                Ok(l) => left.push(format!("{} {kind}", l.len())),
                Err(e) => return Check::Done(Err(e)),
            }
        }
        for n in networks {
            match exists(engine, "networks", n) {
                Ok(false) => {}
                Ok(true) => left.push(format!("network {n}")),
                Err(e) => return Check::Done(Err(e)),
            }
        }
        if left.is_empty() {
            Check::Done(Ok(()))
        } else {
            Check::Pending(left.join(", "))
        }
    })
    .map_err(|t| t.to_string())?
}

/// Volumes the daemon created for tasks of this stack (best effort).
pub fn remove_volumes(engine: &Engine, ns: &str) {
    let Ok(vols) = engine.list_labelled("volumes", &format!("{NS_LABEL}={ns}")) else {
        return;
    };
    for v in vols {
        if let Some(name) = v.get("Name").and_then(Value::as_str) {
            let _ = retry(
                || engine.delete(&format!("/volumes/{}", encode(name))),
                "volume",
            );
        }
    }
}

/// (a)–(c): `docker stack deploy`, capture, `docker stack rm`, wait until gone.
pub fn docker_half(engine: &Engine, case: &Case) -> Result<Value, String> {
    let env = case_env(case);
    let mut args = vec!["stack", "deploy", "--resolve-image", "never"];
    let files: Vec<String> = case.files.iter().map(|f| f.display().to_string()).collect();
    for f in &files {
        args.extend(["-c", f.as_str()]);
    }
    args.push(&case.namespace);
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        let (ok, out) = docker(&args, &case.workdir, &env, None)?;
        if ok {
            break snapshot::capture_settled(engine, &case.namespace, &case.ipam_requested)
                .map_err(|e| format!("harness: {e}"));
        }
        if !transient(&out) || attempt >= 4 {
            break Err(format!("docker stack deploy failed: {}", last_line(&out)));
        }
        docker_rm(engine, case, &env)?;
        std::thread::sleep(Duration::from_secs(if out.contains(PORT_IN_USE) {
            10
        } else {
            2
        }));
    };
    docker_rm(engine, case, &env)?;
    result
}

fn docker_rm(engine: &Engine, case: &Case, env: &BTreeMap<String, String>) -> Result<(), String> {
    let nets = namespace_networks(engine, &case.namespace).map_err(|e| format!("harness: {e}"))?;
    // `stack rm` fails while a removed service's tasks still hold a network: repeat it.
    let mut last = String::new();
    let done = wait_until(&format!("docker stack rm {}", case.namespace), || {
        let (ok, out) = docker(&["stack", "rm", &case.namespace], &case.workdir, env, None)?;
        last = out;
        Ok(ok || last.contains("Nothing found in stack"))
    });
    done.map_err(|e| format!("harness: {e}: {}", last_line(&last)))?;
    wait_gone(engine, &case.namespace, &nets).map_err(|e| format!("harness: {e}"))
}

/// Daemon races that a retry resolves: another user's published port, and a
/// network of the same name still being removed (docs/architecture.md, "Swarm traps": asynchronous removals).
pub fn transient(err: &str) -> bool {
    err.contains(PORT_IN_USE) || (err.contains("network ") && err.contains(" not found"))
}

pub fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Clean-up by name with the docker CLI: `docker KIND rm NAME` until
/// `docker KIND inspect NAME` finds nothing, through [`settle`] (a network
/// or config is refused "in use" while a removed service's tasks shut
/// down). Returns the time-out's message instead of panicking, since
/// clean-up runs in `Drop`.
pub fn docker_rm_until_gone(kind: &str, name: &str) -> Result<(), String> {
    let run = |verb: &str| {
        cli::docker()
            .args([kind, verb, name])
            .stdin(Stdio::null())
            .output()
    };
    let schedule = Schedule::new(GONE_TIMEOUT, Duration::from_millis(500));
    settle::until_blocking(format!("{kind} {name} to be removed"), schedule, || {
        let rm = match run("rm") {
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => return Check::Done(Err(format!("docker {kind} rm {name}: {e}"))),
        };
        match run("inspect") {
            Ok(out) if !out.status.success() => Check::Done(Ok(())),
            Ok(_) => Check::Pending(rm),
            Err(e) => Check::Done(Err(format!("docker {kind} inspect {name}: {e}"))),
        }
    })
    .map_err(|t| t.to_string())?
}

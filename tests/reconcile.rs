//! `plan` and `reconcile --once` against the real single-node swarm.
//!
//! Others use the same daemon at the same time: every object here is named
//! with a per-test prefix (`rc<test><pid>`), CLI runs use `--no-prune`
//! (pruning would remove other tests' bosun objects), and prune and
//! cleanup go through the library with a snapshot narrowed to the test's
//! prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bosun::apply::{self, Report};
use bosun::compose::{LABEL_MANAGED_BY, LABEL_OWNER};
use bosun::plan::{self, DesiredState, Plan};
use bosun::swarm::{self, Client, Snapshot};

use crate::support::cases::{self, Case};
use crate::support::engine::Engine;
use crate::support::stack::{self, docker_rm_until_gone};

use super::support::cli::{self, docker_retried as docker, docker_stdin};
use super::support::{BUSYBOX_IMAGE as IMAGE, busybox_image};

fn prefix(test: &str) -> String {
    format!("rc{test}{}", std::process::id())
}

/// Run the real binary; `(exit code, stdout, stderr)`.
fn bosun(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = cli::bosun()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run bosun");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn desired(dir: &Path, env: &BTreeMap<String, String>) -> Result<DesiredState, String> {
    desired_allowing(dir, env, &[])
}

/// [`desired`] with reads allowed below `allowed` too (`--allow-path`).
fn desired_allowing(
    dir: &Path,
    env: &BTreeMap<String, String>,
    allowed: &[&Path],
) -> Result<DesiredState, String> {
    let confine = bosun::source::Confinement::new(dir).allow(allowed.iter().copied());
    let m = bosun::manifest::load_confined(dir, &std::env::vars().collect(), &confine)
        .map_err(|d| d.to_string())?;
    DesiredState::build(&m, env).map_err(|e| e.to_string())
}

/// The snapshot without the bosun objects of others: a managed object is
/// kept only when its name or its owner's name (plus `_`) starts with
/// `prefix`
/// (unmanaged ones stay: externals, and conflicts the plan must see).
fn narrowed(mut snap: Snapshot, prefix: &str) -> Snapshot {
    let mine = |meta: &swarm::Meta| {
        let managed = meta
            .labels
            .get(LABEL_MANAGED_BY)
            .is_some_and(|v| v == "bosun");
        let owner = meta
            .labels
            .get(LABEL_OWNER)
            .and_then(|o| o.split_once('/'))
            .map_or(String::new(), |(_, name)| format!("{name}_"));
        !managed || meta.name.starts_with(prefix) || owner.starts_with(prefix)
    };
    snap.services.retain(|o| mine(&o.meta));
    snap.configs.retain(|o| mine(&o.meta));
    snap.secrets.retain(|o| mine(&o.meta));
    snap.networks.retain(|n| mine(&n.meta));
    // Node labels are global: library passes here leave nodes alone.
    snap.nodes.clear();
    snap
}

/// CLI runs plan node labels too (removing the labels bosun set when no
/// `NodeLabels` asks for them): tests running the binary hold this for
/// reading, the node-label drift check for writing.
static NODES: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn nodes_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    NODES
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One pass through the library, pruning only within `prefix`.
async fn pass(
    client: &Client,
    state: &DesiredState,
    prefix: &str,
    wait: bool,
) -> (Plan, Result<Report, apply::Error>) {
    let snap = narrowed(swarm::observe(client).await.expect("observe"), prefix);
    let p = plan::plan(state, &snap, &plan::Options::default().prune(true));
    let res = apply::apply(
        client,
        &p,
        state,
        &snap,
        &apply::Options::default().wait(wait),
    )
    .await;
    (p, res)
}

async fn plan_now(client: &Client, state: &DesiredState, prefix: &str) -> Plan {
    let snap = narrowed(swarm::observe(client).await.expect("observe"), prefix);
    plan::plan(state, &snap, &plan::Options::default().prune(true))
}

/// Remove every bosun object named `prefix…` (prune against nothing).
async fn cleanup(client: &Client, prefix: &str) {
    let (_, res) = pass(client, &DesiredState::default(), prefix, false).await;
    if let Err(e) = res {
        eprintln!("cleanup of {prefix}: {e}");
    }
}

fn cleanup_blocking(prefix: &str) {
    runtime().block_on(async {
        let client = Client::connect().await.expect("connect");
        cleanup(&client, prefix).await;
    });
}

fn stack_manifest(name: &str, wait: &str, compose: &str) -> String {
    format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {name}}}\nspec:\n  wait: {wait}\n  compose:\n{}",
        compose
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<Vec<_>>()
            .concat()
    )
}

// ---------------------------------------------------------------------------
// Idempotence over the corpus.

fn corpus_case(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    engine: &Engine,
    case: &Case,
) -> Result<bool, String> {
    let env = stack::case_env(case);
    let files: Vec<String> = case
        .files
        .iter()
        .map(|f| format!("\"{}\"", f.display()))
        .collect();
    let manifest = format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {}}}\nspec:\n  wait: {{enabled: false}}\n  composeFiles: [{}]\n  env: {}\n",
        case.namespace,
        files.join(", "),
        serde_json::to_string(&case.env).map_err(|e| e.to_string())?
    );
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("stack.yaml"), manifest).map_err(|e| e.to_string())?;
    // Files docker accepts but bosun rejects are the conformance test's
    // business; they are counted.
    // The manifest names the case's compose files where they are, outside
    // its own folder, as an operator would with --allow-path.
    let mut allowed: Vec<&Path> = case.files.iter().filter_map(|f| f.parent()).collect();
    allowed.push(&case.workdir);
    // The corpus case's scratch tree: its files name `../support` files.
    allowed.extend(case.scratch.as_ref().map(tempfile::TempDir::path));
    let state = match desired_allowing(dir.path(), &env, &allowed) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "{}: not reconcilable: {}",
                case.name,
                e.lines().next().unwrap_or_default()
            );
            return Ok(false);
        }
    };
    let ext = stack::create_externals(engine, case)?;
    let prefix = format!("{}_", case.namespace);
    let result = rt.block_on(async {
        let mut last = String::new();
        for _ in 0..8 {
            let (planned, res) = pass(client, &state, &prefix, false).await;
            // A global name (explicit `name:`, external) held by someone
            // else's test is a conflict the plan reports: wait for it.
            let res = res.map_err(|e| e.to_string()).and_then(|_| {
                if planned.errors.is_empty() {
                    Ok(())
                } else {
                    Err(planned.render_text(false))
                }
            });
            match res {
                Ok(()) => {
                    last.clear();
                    break;
                }
                // Another user of the daemon holds a port or an address.
                Err(e) => {
                    last = e;
                    cleanup(client, &prefix).await;
                    // Other users' published ports (the conformance test)
                    // go away within a minute.
                    let port = last.contains("is already in use by service")
                        || last.contains("not managed by this bosun");
                    tokio::time::sleep(Duration::from_secs(if port { 8 } else { 3 })).await;
                }
            }
        }
        if !last.is_empty() {
            return Err(format!("{}: reconcile failed: {last}", case.name));
        }
        let again = plan_now(client, &state, &prefix).await;
        if !again.is_empty() {
            return Err(format!(
                "{}: not empty after reconcile:\n{}",
                case.name,
                again.render_text(false)
            ));
        }
        let before = client.requests();
        let (_, res) = pass(client, &state, &prefix, false).await;
        let writes = client.requests().since(&before).writes();
        res.map_err(|e| format!("{}: second pass: {e}", case.name))?;
        if writes != 0 {
            return Err(format!("{}: second pass made {writes} writes", case.name));
        }
        Ok(true)
    });
    rt.block_on(cleanup(client, &prefix));
    // Its containers too: until they are gone the node keeps the external
    // networks' local copies, which the next case would take for existing.
    stack::wait_gone(engine, &case.namespace, &std::collections::BTreeSet::new())?;
    stack::remove_externals(engine, &ext)?;
    result
}

#[test]
fn every_corpus_file_reconciles_then_plans_empty_then_writes_nothing() {
    let engine = Engine::from_env().expect("engine");
    // Takes turns with the conformance test (global names, fixed ports).
    let _lock = super::support::corpus_lock();
    // BOSUN_RC_FILTER=<part of a file name> runs only matching files.
    let only = std::env::var("BOSUN_RC_FILTER").ok();
    let cases: Vec<Case> = cases::discover(&prefix("i"), Some("corpus/"))
        .expect("cases")
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|f| c.name.contains(f.as_str())))
        .collect();
    assert!(
        only.is_some() || cases.len() >= 38,
        "{} corpus cases",
        cases.len()
    );
    let queue = Mutex::new(cases);
    let held: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let results: Mutex<Vec<Result<bool, String>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                // A client lives on the runtime that made it (pooled
                // connections): one runtime and client per worker.
                let rt = runtime();
                let client = rt.block_on(Client::connect()).expect("connect");
                loop {
                    let case = {
                        let mut q = queue.lock().expect("queue");
                        if q.is_empty() {
                            break;
                        }
                        let mut h = held.lock().expect("held");
                        match q.iter().position(|c| c.keys.is_disjoint(&h)) {
                            Some(i) => {
                                let c = q.remove(i);
                                h.extend(c.keys.iter().cloned());
                                Some(c)
                            }
                            None => None,
                        }
                    };
                    let Some(case) = case else {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    };
                    let r = corpus_case(&rt, &client, &engine, &case);
                    held.lock()
                        .expect("held")
                        .retain(|k| !case.keys.contains(k));
                    results.lock().expect("results").push(r);
                }
            });
        }
    });
    let results = results.into_inner().expect("results");
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let done = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert!(
        failures.is_empty(),
        "{}",
        failures
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    assert!(
        only.is_some() || done >= 38,
        "only {done} corpus files reconciled"
    );
}

// ---------------------------------------------------------------------------
// The CLI contract: drift is shown and reverted.

#[test]
fn drift_is_planned_with_its_field_and_reverted_by_reconcile() {
    let p = prefix("d");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("s.yaml"),
        format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: Network\nmetadata: {{name: {p}net}}\nspec: {{attachable: true}}\n---\n{}",
            stack_manifest(
                &p,
                "{enabled: false}",
                "services:\n  web:\n    image: nginx:1\n    environment: {A: \"1\"}\n    deploy: {replicas: 0}\nnetworks: {}\n"
            )
        ),
    )
    .expect("write");
    let d = dir.path().to_str().expect("utf-8");
    let run = |args: &[&str]| bosun(args, &[]);
    let guard = Cleanup(p.clone());
    let shared = nodes_shared();
    let (code, out, err) = run(&["reconcile", "--once", "--no-prune", d]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, _) = run(&["plan", "--no-prune", d]);
    assert_eq!(code, 0, "{out}");
    let svc = format!("{p}_web");

    for (change, field) in [
        (vec!["--replicas", "7"], "Mode.Replicated.Replicas"),
        (vec!["--env-add", "B=2"], "TaskTemplate.ContainerSpec.Env"),
        (
            vec!["--image", "nginx:2"],
            "TaskTemplate.ContainerSpec.Image",
        ),
    ] {
        let mut args = vec!["service", "update", "-d", "-q"];
        args.extend(change.iter().copied());
        args.push(&svc);
        docker(&args);
        let (code, out, err) = run(&["plan", "--no-prune", d]);
        assert_eq!(code, 1, "{change:?}: {out}\n{err}");
        assert!(out.contains(field), "{change:?} should name {field}: {out}");
        let (code, out, err) = run(&["reconcile", "--once", "--no-prune", d]);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("converged"), "{out}");
        let (code, out, _) = run(&["plan", "--no-prune", d]);
        assert_eq!(code, 0, "{change:?} reverted: {out}");
    }

    // A node label bosun set is removed by hand (no other CLI run here
    // meanwhile: they would remove it too).
    drop(shared);
    let exclusive = NODES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let node = docker(&["info", "--format", "{{.Swarm.NodeID}}"]);
    let host = docker(&[
        "node",
        "inspect",
        &node,
        "--format",
        "{{.Description.Hostname}}",
    ]);
    let key = format!("{p}rack");
    std::fs::write(
        dir.path().join("n.yaml"),
        format!("apiVersion: bosun.dev/v1alpha1\nkind: NodeLabels\nmetadata: {{name: {p}}}\nspec:\n  rules:\n    - selector: {{hostname: {host}}}\n      labels: {{{key}: a}}\n"),
    )
    .expect("write");
    let (code, out, err) = run(&["reconcile", "--once", "--no-prune", d]);
    assert_eq!(code, 0, "{out}\n{err}");
    docker(&["node", "update", "--label-rm", &key, &node]);
    let (code, out, _) = run(&["plan", "--no-prune", d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&key), "{out}");
    let (code, out, err) = run(&["reconcile", "--once", "--no-prune", d]);
    assert_eq!(code, 0, "{out}\n{err}");
    let labels = docker(&[
        "node",
        "inspect",
        &node,
        "--format",
        "{{json .Spec.Labels}}",
    ]);
    assert!(labels.contains(&key), "{labels}");
    // Take the rule away again: bosun removes only its own label.
    std::fs::remove_file(dir.path().join("n.yaml")).expect("rm");
    std::fs::write(
        dir.path().join("n.yaml"),
        format!("apiVersion: bosun.dev/v1alpha1\nkind: NodeLabels\nmetadata: {{name: {p}}}\nspec:\n  rules:\n    - selector: {{hostname: {host}}}\n      labels: {{}}\n"),
    )
    .expect("write");
    let (code, out, err) = run(&["reconcile", "--once", "--no-prune", d]);
    assert_eq!(code, 0, "{out}\n{err}");
    drop(exclusive);
    let _shared = nodes_shared();

    // The managed network is deleted by hand.
    docker(&["network", "rm", &format!("{p}net")]);
    let (code, out, _) = run(&["plan", "--no-prune", d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("+ network {p}net")), "{out}");
    let (code, out, err) = run(&["reconcile", "--once", "--no-prune", d]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, _) = run(&["plan", "--no-prune", d]);
    assert_eq!(code, 0, "{out}");
    drop(guard);
}

/// Removes the test's objects even when an assertion fails.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        cleanup_blocking(&self.0);
    }
}

#[test]
fn reconcile_without_once_is_an_error_and_invalid_manifests_exit_2() {
    let (code, _, err) = bosun(&["reconcile", "."], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--once") && err.contains("bosun run"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: x}\nspec: {bogus: 1}\n",
    )
    .expect("write");
    let d = dir.path().to_str().expect("utf-8");
    for args in [vec!["plan", d], vec!["reconcile", "--once", d]] {
        let (code, _, err) = bosun(&args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("bogus"), "{err}");
    }
    let (code, _, err) = bosun(&["plan", d], &[("DOCKER_HOST", "unix:///nonexistent.sock")]);
    assert_eq!(code, 2, "{err}");
}

// ---------------------------------------------------------------------------
// Configs, prune, waits, economy, secrets (library and CLI).

#[test]
fn a_config_change_rolls_the_service_in_one_update_and_removes_the_old_version() {
    let p = prefix("c");
    let _guard = Cleanup(p.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let compose = "services:\n  web:\n    image: nginx:1\n    configs: [conf]\n    deploy: {replicas: 0}\nconfigs:\n  conf: {file: conf.txt}\n";
    std::fs::write(
        dir.path().join("s.yaml"),
        stack_manifest(&p, "{enabled: false}", compose),
    )
    .expect("write");
    std::fs::write(dir.path().join("conf.txt"), "one").expect("write");
    runtime().block_on(async {
        let client = Client::connect().await.expect("connect");
        let state = desired(dir.path(), &BTreeMap::new()).expect("valid");
        let (_, res) = pass(&client, &state, &p, false).await;
        res.expect("first deploy");
        let old = state.stacks[0].objects.configs[0].name.clone();

        std::fs::write(dir.path().join("conf.txt"), "two").expect("write");
        let state = desired(dir.path(), &BTreeMap::new()).expect("valid");
        let new = state.stacks[0].objects.configs[0].name.clone();
        assert_ne!(old, new);
        let before = client.requests();
        let (p2, res) = pass(&client, &state, &p, false).await;
        let report = res.expect("second deploy");
        let d = client.requests().since(&before);
        let kinds: Vec<&str> = p2.actions.iter().map(plan::Action::kind_name).collect();
        assert_eq!(kinds, ["CreateConfig", "UpdateService", "RemoveConfig"]);
        assert_eq!(d.count("POST", "/services/{id}/update"), 1, "{d:?}");
        assert_eq!(report.writes, 3);
        let snap = swarm::observe(&client).await.expect("observe");
        assert!(
            snap.configs.iter().all(|c| c.meta.name != old),
            "old config gone"
        );
        let svc = snap.service(&format!("{p}_web")).expect("service");
        assert_eq!(
            svc.spec
                .pointer("/TaskTemplate/ContainerSpec/Configs/0/ConfigName")
                .and_then(serde_json::Value::as_str),
            Some(new.as_str())
        );
        assert!(plan_now(&client, &state, &p).await.is_empty());
    });
}

#[test]
fn prune_removes_exactly_what_bosun_owns_and_no_longer_wants() {
    let p = prefix("p");
    let _guard = Cleanup(p.clone());
    let unmanaged = format!("{p}_web2");
    let guard_unmanaged = UnmanagedCleanup(unmanaged.clone());
    docker(&[
        "service",
        "create",
        "-d",
        "-q",
        "--replicas",
        "0",
        "--name",
        &unmanaged,
        "nginx:1",
    ]);
    docker(&["network", "create", "-d", "overlay", &format!("{p}_net2")]);
    docker_stdin(&["config", "create", &format!("{p}_conf2"), "-"], b"x");
    docker_stdin(&["secret", "create", &format!("{p}_pw2"), "-"], b"x");
    let versions = || {
        [
            docker(&[
                "service",
                "inspect",
                &unmanaged,
                "--format",
                "{{.Version.Index}}",
            ]),
            docker(&[
                "config",
                "inspect",
                &format!("{p}_conf2"),
                "--format",
                "{{.Version.Index}}",
            ]),
            docker(&[
                "secret",
                "inspect",
                &format!("{p}_pw2"),
                "--format",
                "{{.Version.Index}}",
            ]),
            docker(&[
                "network",
                "inspect",
                &format!("{p}_net2"),
                "--format",
                "{{.Id}}",
            ]),
        ]
    };
    let before = versions();

    let dir = tempfile::tempdir().expect("tempdir");
    let two = "services:\n  web: {image: nginx:1, deploy: {replicas: 0}}\n  api: {image: nginx:1, deploy: {replicas: 0}}\n";
    std::fs::write(
        dir.path().join("a.yaml"),
        stack_manifest(&p, "{enabled: false}", two),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("b.yaml"),
        stack_manifest(
            &format!("{p}b"),
            "{enabled: false}",
            "services:\n  x: {image: nginx:1, deploy: {replicas: 0}}\n",
        ),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("n.yaml"),
        format!("apiVersion: bosun.dev/v1alpha1\nkind: Network\nmetadata: {{name: {p}_mnet}}\nspec: {{}}\n"),
    )
    .expect("write");
    runtime().block_on(async {
        let client = Client::connect().await.expect("connect");
        let state = desired(dir.path(), &BTreeMap::new()).expect("valid");
        pass(&client, &state, &p, false).await.1.expect("deploy");

        // A service leaves the compose file, a Stack and a Network manifest go.
        std::fs::write(
            dir.path().join("a.yaml"),
            stack_manifest(
                &p,
                "{enabled: false}",
                "services:\n  web: {image: nginx:1, deploy: {replicas: 0}}\n",
            ),
        )
        .expect("write");
        std::fs::remove_file(dir.path().join("b.yaml")).expect("rm");
        std::fs::remove_file(dir.path().join("n.yaml")).expect("rm");
        let state = desired(dir.path(), &BTreeMap::new()).expect("valid");
        let (p2, res) = pass(&client, &state, &p, false).await;
        res.expect("prune");
        let mut removed: Vec<String> = p2
            .actions
            .iter()
            .map(|a| format!("{} {}", a.kind_name(), a.name()))
            .collect();
        removed.sort();
        let mut want = vec![
            format!("RemoveNetwork {p}_mnet"),
            format!("RemoveNetwork {p}b_default"),
            format!("RemoveService {p}_api"),
            format!("RemoveService {p}b_x"),
        ];
        want.sort();
        assert_eq!(removed, want);
        assert!(plan_now(&client, &state, &p).await.is_empty());
    });
    assert_eq!(versions(), before, "unmanaged objects untouched");
    drop(guard_unmanaged);
}

struct UnmanagedCleanup(String);

impl Drop for UnmanagedCleanup {
    fn drop(&mut self) {
        let p = self.0.trim_end_matches("_web2");
        for (kind, name) in [
            ("service", self.0.clone()),
            ("config", format!("{p}_conf2")),
            ("secret", format!("{p}_pw2")),
            ("network", format!("{p}_net2")),
        ] {
            if let Err(e) = docker_rm_until_gone(kind, &name) {
                eprintln!("clean-up: {e}");
            }
        }
    }
}

#[test]
fn wait_converges_on_a_healthy_service_and_fails_on_a_rollback() {
    busybox_image();
    let _shared = nodes_shared();
    let p = prefix("w");
    let _guard = Cleanup(p.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let compose = |check: &str| {
        format!(
            "services:\n  web:\n    image: {IMAGE}\n    command: [sleep, \"3600\"]\n    stop_grace_period: 1s\n    healthcheck: {{test: [CMD, {check}], interval: 1s, timeout: 1s, retries: 1, start_period: 0s}}\n    deploy:\n      update_config: {{failure_action: rollback, monitor: 3s}}\n      rollback_config: {{monitor: 1s}}\n"
        )
    };
    let write = |check: &str| {
        std::fs::write(
            dir.path().join("s.yaml"),
            stack_manifest(&p, "{enabled: true, timeout: 60s}", &compose(check)),
        )
        .expect("write");
    };
    let d = dir.path().to_str().expect("utf-8");
    write("\"true\"");
    let (code, out, err) = bosun(&["reconcile", "--once", "--no-prune", d], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    write("\"false\"");
    let (code, out, err) = bosun(&["reconcile", "--once", "--no-prune", d], &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains(&format!("{p}_web")) && err.contains("rollback"),
        "{err}"
    );
}

#[test]
fn a_noop_pass_costs_the_same_for_10_and_200_services_and_one_change_one_write() {
    let p = prefix("e");
    let _guard = Cleanup(p.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let services = |n: usize, image_of_0: &str| {
        let mut s = String::from("services:\n");
        for i in 0..n {
            let image = if i == 0 { image_of_0 } else { "nginx:1" };
            let _ = writeln!(s, "  s{i}: {{image: \"{image}\", deploy: {{replicas: 0}}}}");
        }
        s
    };
    runtime().block_on(async {
        let client = Client::connect().await.expect("connect");
        let mut costs = Vec::new();
        for n in [10, 200] {
            std::fs::write(
                dir.path().join("s.yaml"),
                stack_manifest(&p, "{enabled: false}", &services(n, "nginx:1")),
            )
            .expect("write");
            let state = desired(dir.path(), &BTreeMap::new()).expect("valid");
            pass(&client, &state, &p, false).await.1.expect("deploy");
            let before = client.requests();
            let (pl, res) = pass(&client, &state, &p, false).await;
            res.expect("no-op");
            assert!(pl.is_empty(), "{}", pl.render_text(false));
            costs.push(client.requests().since(&before));
        }
        assert_eq!(costs[0].total(), costs[1].total(), "{costs:?}");
        assert_eq!(costs[1].writes(), 0);
        // Nothing to do, nothing to verify: one snapshot, one call per kind.
        for endpoint in [
            "/info",
            "/nodes",
            "/networks",
            "/services",
            "/configs",
            "/secrets",
            "/tasks",
        ] {
            assert_eq!(costs[1].count("GET", endpoint), 1, "{endpoint}: {costs:?}");
        }
        assert_eq!(costs[1].total(), 7, "{costs:?}");

        std::fs::write(
            dir.path().join("s.yaml"),
            stack_manifest(&p, "{enabled: false}", &services(200, "nginx:2")),
        )
        .expect("write");
        let state = desired(dir.path(), &BTreeMap::new()).expect("valid");
        let before = client.requests();
        pass(&client, &state, &p, false)
            .await
            .1
            .expect("one change");
        let d = client.requests().since(&before);
        assert_eq!(d.writes(), 1, "{d:?}");
    });
}

#[test]
fn secret_values_never_appear_in_any_output() {
    let p = prefix("s");
    let _guard = Cleanup(p.clone());
    let _shared = nodes_shared();
    let token = format!(
        "tok{}x{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ 0x5eed_cafe
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pw.txt"), &token).expect("write");
    std::fs::write(
        dir.path().join("s.yaml"),
        stack_manifest(
            &p,
            "{enabled: false}",
            "services:\n  web: {image: nginx:1, secrets: [pw], deploy: {replicas: 0}}\nsecrets:\n  pw: {file: pw.txt}\n",
        ),
    )
    .expect("write");
    let d = dir.path().to_str().expect("utf-8");
    let env = [("RUST_LOG", "debug")];
    for args in [
        vec!["plan", "--no-prune", d],
        vec!["plan", "--no-prune", "--output", "json", d],
        vec!["reconcile", "--once", "--no-prune", d],
        vec!["plan", "--no-prune", d],
    ] {
        let (code, out, err) = bosun(&args, &env);
        assert!(code == 0 || code == 1, "{args:?}: {out}\n{err}");
        assert!(
            !out.contains(&token) && !err.contains(&token),
            "{args:?} leaked the secret"
        );
    }
}

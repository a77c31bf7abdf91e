//! (d)–(e): deploy a case from bosun's conversion (`compose::load` →
//! `compose::convert` → `compose::bosunify`) through the Engine API, capture
//! it, and remove it again.
//!
//! Bodies are posted as the exact JSON `serde_json::to_value` gives for the
//! converter's request types — no typed client in between that could drop or
//! rename fields. The only thing filled in here is what the converter leaves
//! to the applier: `SecretID`/`ConfigID` of each reference and the config ID
//! of a `CredentialSpec.Config`, looked up from the objects just created or
//! (for externals) by exact name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use bosun::compose::{self, LoadOptions};
use bosun::swarm::settle::{self, Check, Schedule};
use serde_json::{Value, json};

use super::cases::Case;
use super::engine::{Engine, encode};
use super::snapshot;
use super::stack::{self, find_by_name, transient, wait_until};

/// What bosun's half created, for removal.
#[derive(Default)]
struct Created {
    services: Vec<String>,
    configs: Vec<String>,
    secrets: Vec<String>,
    networks: Vec<(String, String)>,
}

pub fn bosun_half(engine: &Engine, case: &Case) -> Result<Value, String> {
    let env = stack::case_env(case);
    let opts = LoadOptions {
        working_dir: case.workdir.clone(),
        home_dir: env.get("HOME").map(PathBuf::from),
        env,
    };
    let project = compose::load(&case.files, &opts)
        .map_err(|e| format!("bosun rejects it (load): {}", first_line(&e.to_string())))?;
    let objs = compose::convert(&project, &case.namespace)
        .map_err(|e| format!("bosun rejects it (convert): {}", first_line(&e.to_string())))?;
    let objs = compose::bosunify(objs, &format!("Stack/{}", case.namespace));

    let mut created = Created::default();
    let result = create_all(engine, &objs, &mut created).and_then(|()| {
        snapshot::capture_settled(engine, &case.namespace, &case.ipam_requested)
            .map_err(|e| format!("harness: {e}"))
    });
    remove_all(engine, &case.namespace, &created)
        .map_err(|e| format!("harness: removing bosun's objects: {e}"))?;
    result
}

/// Create every body at `/<kind>s/create`; their IDs by name.
fn create_named(
    engine: &Engine,
    kind: &str,
    bodies: impl Iterator<Item = Value>,
) -> Result<BTreeMap<String, String>, String> {
    let mut ids = BTreeMap::new();
    for body in bodies {
        let name = name_of(&body);
        let id = id_of(
            &post(engine, &format!("/{kind}s/create"), &body)
                .map_err(|e| format!("bosun deploy failed: {kind} {name}: {e}"))?,
        )?;
        ids.insert(name, id);
    }
    Ok(ids)
}

/// The `Name` of a request body, empty when it has none.
fn name_of(body: &Value) -> String {
    body.get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

fn to_json<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).expect("request types serialize")
}

fn id_of(v: &Value) -> Result<String, String> {
    v.get("ID")
        .or_else(|| v.get("Id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("no ID in {v}"))
}

/// POST, repeated through [`settle`] while the daemon's answer is a race
/// that resolves by itself: another test's published port, or a network of
/// the same name (from the docker half) still on its way out.
fn post(engine: &Engine, path: &str, body: &Value) -> Result<Value, String> {
    let schedule = Schedule::new(Duration::from_secs(120), Duration::from_secs(1));
    settle::until_blocking(
        format!("POST {path} to be accepted"),
        schedule,
        || match engine.post(path, body) {
            Err(e)
                if transient(&e)
                    || (path == "/networks/create" && e.contains("already exists")) =>
            {
                Check::Pending(e)
            }
            other => Check::Done(other),
        },
    )
    .map_err(|t| t.to_string())?
}

fn create_all(
    engine: &Engine,
    objs: &compose::StackObjects,
    created: &mut Created,
) -> Result<(), String> {
    let fail = |what: &str, e: String| format!("bosun deploy failed: {what}: {e}");
    for n in &objs.networks {
        let body = to_json(n);
        let name = name_of(&body);
        let id = id_of(
            &post(engine, "/networks/create", &body)
                .map_err(|e| fail(&format!("network {name}"), e))?,
        )?;
        created.networks.push((id.clone(), name));
        wait_until("a new network to be visible", || {
            Ok(engine
                .request("GET", &format!("/networks/{id}"), None)?
                .ok())
        })?;
    }
    let config_ids = create_named(engine, "config", objs.configs.iter().map(to_json))?;
    created.configs.extend(config_ids.values().cloned());
    let secret_ids = create_named(engine, "secret", objs.secrets.iter().map(to_json))?;
    created.secrets.extend(secret_ids.values().cloned());
    for svc in &objs.services {
        let mut body = to_json(svc);
        let name = name_of(&body);
        if let Some(cs) = body.pointer_mut("/TaskTemplate/ContainerSpec") {
            fill_ids(
                engine,
                cs,
                "Secrets",
                "SecretID",
                "SecretName",
                "secrets",
                &secret_ids,
            )
            .map_err(|e| fail(&format!("service {name}"), e))?;
            fill_ids(
                engine,
                cs,
                "Configs",
                "ConfigID",
                "ConfigName",
                "configs",
                &config_ids,
            )
            .map_err(|e| fail(&format!("service {name}"), e))?;
            if let Some(c) = cs.pointer_mut("/Privileges/CredentialSpec/Config")
                && let Some(cfg) = c.as_str().filter(|s| !s.is_empty()).map(str::to_string)
            {
                *c = json!(
                    lookup(engine, "configs", &cfg, &config_ids)
                        .map_err(|e| fail(&format!("service {name}"), e))?
                );
            }
        }
        let id = id_of(
            &post(engine, "/services/create", &body)
                .map_err(|e| fail(&format!("service {name}"), e))?,
        )?;
        created.services.push(id);
    }
    Ok(())
}

fn lookup(
    engine: &Engine,
    kind: &str,
    name: &str,
    created: &BTreeMap<String, String>,
) -> Result<String, String> {
    if let Some(id) = created.get(name) {
        return Ok(id.clone());
    }
    find_by_name(engine, kind, name)?.ok_or_else(|| format!("{kind} {name} not found"))
}

fn fill_ids(
    engine: &Engine,
    cs: &mut Value,
    list: &str,
    id_key: &str,
    name_key: &str,
    kind: &str,
    created: &BTreeMap<String, String>,
) -> Result<(), String> {
    let Some(Value::Array(refs)) = cs.get_mut(list) else {
        return Ok(());
    };
    for r in refs {
        let name = r
            .get(name_key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        r[id_key] = json!(lookup(engine, kind, &name, created)?);
    }
    Ok(())
}

fn remove_all(engine: &Engine, ns: &str, created: &Created) -> Result<(), String> {
    for id in &created.services {
        engine.delete(&format!("/services/{id}"))?;
    }
    for id in &created.services {
        wait_until(&format!("service {id} to be removed"), || {
            Ok(!engine
                .request("GET", &format!("/services/{id}"), None)?
                .ok())
        })?;
    }
    // Removal fails while tasks of the removed services still hold the object.
    let paths = created
        .secrets
        .iter()
        .map(|id| format!("/secrets/{id}"))
        .chain(created.configs.iter().map(|id| format!("/configs/{id}")))
        .chain(
            created
                .networks
                .iter()
                .map(|(id, _)| format!("/networks/{id}")),
        );
    for path in paths {
        let mut last = String::new();
        wait_until(&format!("DELETE {path}"), || match engine.delete(&path) {
            Ok(()) => Ok(true),
            Err(e) => {
                last = e;
                Ok(false)
            }
        })
        .map_err(|e| format!("{e}: {last}"))?;
    }
    let names: BTreeSet<String> = created.networks.iter().map(|(_, n)| n.clone()).collect();
    stack::wait_gone(engine, ns, &names)?;
    for (id, name) in &created.networks {
        wait_until(&format!("network {name} to disappear"), || {
            Ok(!engine
                .request("GET", &format!("/networks/{}", encode(id)), None)?
                .ok())
        })?;
    }
    Ok(())
}

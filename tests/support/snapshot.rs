//! Capture what a stack really is in the swarm, normalise away the documented
//! differences between `docker stack deploy` and bosun, and diff two captures.
//!
//! Removed or mapped, and nothing else:
//! * bosun's own labels: `dev.bosun.managed-by`, `dev.bosun.owner`, and its
//!   spec-hash label (any `dev.bosun.*hash*` key), wherever `Labels` appear;
//! * bosun's content-hashed config/secret names `<name>-<hash8>` (only on
//!   objects labelled `dev.bosun.managed-by=bosun`) → `<name>`, in the objects and
//!   in every service reference to them;
//! * IDs, versions and timestamps the daemon assigns: services are compared by
//!   `.Spec`, network/config/secret IDs in service specs are mapped back to names;
//! * subnets the daemon allocates to networks whose compose definition
//!   requests no IPAM config, and every overlay network's VXLAN id.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use bosun::swarm::settle::{self, Check, Schedule};
use serde_json::{Map, Value, json};

use super::engine::Engine;

pub const NS_LABEL: &str = "com.docker.stack.namespace";

fn is_bosun_label(key: &str) -> bool {
    key == "dev.bosun.managed-by"
        || key == "dev.bosun.owner"
        || (key.starts_with("dev.bosun.") && key.contains("hash"))
}

fn bosun_managed(obj: &Value) -> bool {
    let labels = obj.pointer("/Spec/Labels").or_else(|| obj.get("Labels"));
    labels
        .and_then(|l| l.get("dev.bosun.managed-by"))
        .and_then(Value::as_str)
        == Some("bosun")
}

/// `<name>-<8 hex>` → `<name>`.
fn strip_hash(name: &str) -> Option<&str> {
    let (base, hash) = name.rsplit_once('-')?;
    (hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(base)
}

/// Remove bosun's labels from every `Labels` map in the tree.
fn strip_bosun_labels(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if k == "Labels"
                    && let Value::Object(labels) = child
                {
                    labels.retain(|lk, _| !is_bosun_label(lk));
                }
                strip_bosun_labels(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_bosun_labels),
        _ => {}
    }
}

fn id_map(objs: &[Value], id_key: &str, name_ptr: &str) -> BTreeMap<String, String> {
    objs.iter()
        .filter_map(|o| {
            Some((
                o.get(id_key)?.as_str()?.to_string(),
                o.pointer(name_ptr)?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Capture a namespace once the daemon has finished allocating its networks
/// (right after creation a swarm network may still lack its driver and
/// subnet): two identical captures in a row, with every network's driver set.
pub fn capture_settled(
    engine: &Engine,
    ns: &str,
    ipam_requested: &BTreeSet<String>,
) -> Result<Value, String> {
    let mut last: Option<Value> = None;
    // Two captures 300 ms apart must agree: no quick first checks.
    let schedule = Schedule::every(Duration::from_millis(300), Duration::from_secs(60));
    settle::until_blocking(format!("stack {ns} to be allocated"), schedule, || {
        let next = match capture(engine, ns, ipam_requested) {
            Ok(next) => next,
            Err(e) => return Check::Done(Err(e)),
        };
        let allocated = next["networks"].as_object().is_none_or(|m| {
            m.values().all(|n| {
                n.get("Driver")
                    .and_then(Value::as_str)
                    .is_some_and(|d| !d.is_empty())
            })
        });
        if allocated && last.as_ref() == Some(&next) {
            return Check::Done(Ok(next));
        }
        last = Some(next);
        Check::Pending(
            if allocated {
                "still changing"
            } else {
                "a network without its driver"
            }
            .to_string(),
        )
    })
    .map_err(|t| t.to_string())?
}

/// Capture every service, network, config and secret of namespace `ns`.
///
/// `ipam_requested` names the networks whose compose definition sets
/// `ipam.config`; other networks' `IPAM.Config` is daemon-allocated.
pub fn capture(
    engine: &Engine,
    ns: &str,
    ipam_requested: &BTreeSet<String>,
) -> Result<Value, String> {
    let label = format!("{NS_LABEL}={ns}");
    let net_names = id_map(&engine.list("networks")?, "Id", "/Name");
    let all_configs = engine.list("configs")?;
    let all_secrets = engine.list("secrets")?;
    // hashed name → docker name, for bosun-managed configs/secrets
    let mut renamed = BTreeMap::new();
    for o in all_configs.iter().chain(&all_secrets) {
        if bosun_managed(o)
            && let Some(name) = o.pointer("/Spec/Name").and_then(Value::as_str)
            && let Some(base) = strip_hash(name)
        {
            renamed.insert(name.to_string(), base.to_string());
        }
    }
    let rename = |n: &str| renamed.get(n).cloned().unwrap_or_else(|| n.to_string());
    let config_names: BTreeMap<String, String> = id_map(&all_configs, "ID", "/Spec/Name")
        .into_iter()
        .map(|(id, n)| (id, rename(&n)))
        .collect();
    let secret_names: BTreeMap<String, String> = id_map(&all_secrets, "ID", "/Spec/Name")
        .into_iter()
        .map(|(id, n)| (id, rename(&n)))
        .collect();

    let mut out = Map::new();
    for kind in ["configs", "secrets"] {
        let mut objs = Map::new();
        for o in engine.list_labelled(kind, &label)? {
            let mut spec = o.get("Spec").cloned().unwrap_or(Value::Null);
            let name = spec
                .get("Name")
                .and_then(Value::as_str)
                .map(&rename)
                .unwrap_or_default();
            spec["Name"] = json!(name);
            strip_bosun_labels(&mut spec);
            objs.insert(name, spec);
        }
        out.insert(kind.into(), Value::Object(objs));
    }

    let mut nets = Map::new();
    for mut n in engine.list_labelled("networks", &label)? {
        let name = n
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Value::Object(m) = &mut n {
            for k in ["Id", "Created", "Containers", "Peers", "Services", "Status"] {
                m.remove(k);
            }
        }
        // The VXLAN id is allocated by the daemon for every overlay network.
        if let Some(v) = n.pointer_mut("/Options/com.docker.network.driver.overlay.vxlanid_list") {
            *v = json!("<daemon-allocated>");
        }
        if !ipam_requested.contains(&name)
            && let Some(cfg) = n.pointer_mut("/IPAM/Config")
        {
            *cfg = json!("<daemon-allocated>");
        }
        strip_bosun_labels(&mut n);
        nets.insert(name, n);
    }
    out.insert("networks".into(), Value::Object(nets));

    let mut services = Map::new();
    for s in engine.list_labelled("services", &label)? {
        let mut spec = s.get("Spec").cloned().unwrap_or(Value::Null);
        let name = spec
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        strip_bosun_labels(&mut spec);
        map_network_targets(&mut spec, &net_names);
        if let Some(cs) = spec.pointer_mut("/TaskTemplate/ContainerSpec") {
            map_refs(
                cs,
                "Secrets",
                "SecretID",
                "SecretName",
                &secret_names,
                &rename,
            );
            map_refs(
                cs,
                "Configs",
                "ConfigID",
                "ConfigName",
                &config_names,
                &rename,
            );
            if let Some(c) = cs.pointer_mut("/Privileges/CredentialSpec/Config")
                && let Some(id) = c.as_str()
            {
                *c = json!(format!(
                    "<config {}>",
                    config_names.get(id).map_or(id, String::as_str)
                ));
            }
        }
        services.insert(name, spec);
    }
    out.insert("services".into(), Value::Object(services));
    Ok(Value::Object(out))
}

fn map_network_targets(v: &mut Value, names: &BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if k == "Networks"
                    && let Value::Array(list) = child
                {
                    for n in list {
                        if let Some(t) = n.get_mut("Target")
                            && let Some(name) = t.as_str().and_then(|id| names.get(id))
                        {
                            *t = json!(name);
                        }
                    }
                    continue;
                }
                map_network_targets(child, names);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| map_network_targets(c, names)),
        _ => {}
    }
}

fn map_refs(
    cs: &mut Value,
    list: &str,
    id_key: &str,
    name_key: &str,
    names: &BTreeMap<String, String>,
    rename: &dyn Fn(&str) -> String,
) {
    let Some(Value::Array(refs)) = cs.get_mut(list) else {
        return;
    };
    for r in refs {
        if let Some(id) = r.get(id_key).and_then(Value::as_str).map(str::to_string) {
            let shown = names
                .get(&id)
                .map_or_else(|| format!("<unknown id {id}>"), |n| format!("<id of {n}>"));
            r[id_key] = json!(shown);
        }
        if let Some(n) = r.get(name_key).and_then(Value::as_str).map(str::to_string) {
            r[name_key] = json!(rename(&n));
        }
    }
}

/// One difference: field path, docker's value, bosun's value.
#[derive(Debug, Clone)]
pub struct Diff {
    pub path: String,
    pub docker: String,
    pub bosun: String,
}

const ABSENT: &str = "<absent>";

fn show(v: Option<&Value>) -> String {
    v.map_or_else(
        || ABSENT.to_string(),
        |v| serde_json::to_string(v).unwrap_or_default(),
    )
}

/// Every difference between two captures, in a stable order.
pub fn diff(docker: &Value, bosun: &Value) -> Vec<Diff> {
    let mut out = Vec::new();
    walk(String::new(), Some(docker), Some(bosun), &mut out);
    out
}

fn walk(path: String, docker: Option<&Value>, bosun: Option<&Value>, out: &mut Vec<Diff>) {
    match (docker, bosun) {
        (Some(Value::Object(left)), Some(Value::Object(right))) => {
            let keys: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(child, left.get(key), right.get(key), out);
            }
        }
        (Some(Value::Array(left)), Some(Value::Array(right))) => {
            for i in 0..left.len().max(right.len()) {
                walk(format!("{path}[{i}]"), left.get(i), right.get(i), out);
            }
        }
        (left, right) if left == right => {}
        (left, right) => out.push(Diff {
            path,
            docker: show(left),
            bosun: show(right),
        }),
    }
}

/// A readable dump of all differences (for the report file).
pub fn render(diffs: &[Diff]) -> String {
    let mut s = String::new();
    for d in diffs {
        let _ = writeln!(s, "{}\n  docker={}\n  bosun ={}", d.path, d.docker, d.bosun);
    }
    s
}

#[test]
fn diff_should_name_the_path_of_each_differing_leaf() {
    let docker = json!({"services": {"s": {"Env": ["A=1", "B=2"], "Labels": {"x": "1"}}}});
    let bosun = json!({"services": {"s": {"Env": ["A=1"], "Labels": {"x": "2", "y": "3"}}}});
    let paths: Vec<String> = diff(&docker, &bosun).into_iter().map(|d| d.path).collect();
    assert_eq!(
        paths,
        [
            "services.s.Env[1]",
            "services.s.Labels.x",
            "services.s.Labels.y"
        ]
    );
}

#[test]
fn strip_hash_should_only_remove_an_eight_digit_hex_suffix() {
    assert_eq!(strip_hash("ns_conf-0123abcd"), Some("ns_conf"));
    assert_eq!(strip_hash("ns_my-conf"), None);
    assert_eq!(strip_hash("ns_conf-0123abcg"), None);
}

#[test]
fn bosun_labels_should_be_removed_everywhere_and_nothing_else() {
    let mut v = json!({"Labels": {"dev.bosun.owner": "Stack/x", "dev.bosun.spec-hash": "1", "dev.bosun.other": "kept", "a": "b"},
        "TaskTemplate": {"ContainerSpec": {"Labels": {"dev.bosun.managed-by": "bosun"}}}});
    strip_bosun_labels(&mut v);
    assert_eq!(
        v,
        json!({"Labels": {"dev.bosun.other": "kept", "a": "b"}, "TaskTemplate": {"ContainerSpec": {"Labels": {}}}})
    );
}

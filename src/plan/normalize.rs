//! One canonical form for a spec as bosun sends it and as the daemon
//! returns it, so that comparing the two shows real differences only.
//!
//! # Daemon defaults (dockerd 20.10, API 1.41)
//!
//! Derived from every request/inspect pair of the oracle corpus
//! (`corpus/oracle/<stem>/requests/*-services-*.json` vs
//! `inspect/<service>.json`, 134 services) and checked against the local
//! daemon for the cases the corpus lacks (a `RestartPolicy` without
//! `Condition`, `Parallelism: 0`, no `EndpointSpec` at all):
//!
//! | field | filled with, when absent (or zero) |
//! |---|---|
//! | `Mode.Replicated.Replicas` | `1` |
//! | `UpdateConfig`, `RollbackConfig` (whole) | `{Parallelism: 1, FailureAction: pause, Monitor: 5s, MaxFailureRatio: 0, Order: stop-first}` |
//! | `…Config.FailureAction` / `.Monitor` / `.Order` | `pause` / `5s` / `stop-first` (`Parallelism` is kept, `0` included) |
//! | `TaskTemplate.RestartPolicy` (whole) | `{Condition: any, Delay: 5s, MaxAttempts: 0}` |
//! | `RestartPolicy.Condition` / `.Delay` | `any` / `5s` |
//! | `TaskTemplate.Runtime` | `container` |
//! | `ContainerSpec.StopGracePeriod` | `10s` |
//! | `ContainerSpec.Isolation` | `default` |
//! | `ContainerSpec.DNSConfig`, `TaskTemplate.Placement`, `Resources`, `Labels` | `{}` |
//! | `EndpointSpec` / `.Mode` | `{Mode: vip}` / `vip` |
//! | `EndpointSpec.Ports[].Protocol` / `.PublishMode` | `tcp` / `ingress` |
//! | `TaskTemplate.Networks[].Target` | the network's ID instead of its name |
//!
//! On top of filling those, [`service`] maps network and config IDs back to
//! names, drops `SecretID`/`ConfigID` (the names identify the objects),
//! sorts network attachments by target, drops `ForceUpdate` (handled apart:
//! it only ever goes up), and finally removes every `null`, `false`, `0`,
//! `""`, `{}` and `[]` object member (Go's zero values, which the CLI omits
//! or sends depending on `omitempty`), except the mode markers `Global: {}`
//! and `GlobalJob: {}`, `Replicated` and `Replicas` (`0` is a choice), which
//! carry meaning. Fields Go sends as pointers (`Replicas`, `Delay`,
//! `StopGracePeriod`) are filled only when absent: an explicit `0` is kept.

use serde_json::{Map, Value, json};

use super::Names;

const SECOND: i64 = 1_000_000_000;

/// The canonical form of a service spec (desired body or observed `Spec`).
#[must_use]
pub fn service(spec: &Value, names: &Names) -> Value {
    service_owned(spec.clone(), names)
}

/// [`service`] of a spec the caller no longer needs (no copy).
#[must_use]
pub fn service_owned(mut v: Value, names: &Names) -> Value {
    let Some(root) = v.as_object_mut() else {
        return v;
    };
    if let Some(Value::Object(mode)) = root.get_mut("Mode")
        && let Some(Value::Object(rep)) = mode.get_mut("Replicated")
    {
        fill_absent(rep, "Replicas", json!(1));
    }
    for key in ["UpdateConfig", "RollbackConfig"] {
        match root.get_mut(key) {
            Some(Value::Object(cfg)) => {
                fill(cfg, "FailureAction", json!("pause"));
                fill(cfg, "Monitor", json!(5 * SECOND));
                fill(cfg, "Order", json!("stop-first"));
            }
            _ => {
                root.insert(
                    key.to_string(),
                    json!({"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * SECOND,
                           "MaxFailureRatio": 0, "Order": "stop-first"}),
                );
            }
        }
    }
    match root.get_mut("EndpointSpec") {
        Some(Value::Object(ep)) => {
            fill(ep, "Mode", json!("vip"));
            if let Some(Value::Array(ports)) = ep.get_mut("Ports") {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    fill(p, "Protocol", json!("tcp"));
                    fill(p, "PublishMode", json!("ingress"));
                }
            }
        }
        _ => {
            root.insert("EndpointSpec".into(), json!({"Mode": "vip"}));
        }
    }
    let task = root
        .entry("TaskTemplate")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(task) = task {
        task.remove("ForceUpdate");
        fill(task, "Runtime", json!("container"));
        match task.get_mut("RestartPolicy") {
            Some(Value::Object(rp)) => {
                fill(rp, "Condition", json!("any"));
                fill_absent(rp, "Delay", json!(5 * SECOND));
            }
            _ => {
                task.insert(
                    "RestartPolicy".into(),
                    json!({"Condition": "any", "Delay": 5 * SECOND, "MaxAttempts": 0}),
                );
            }
        }
        if let Some(Value::Array(nets)) = task.get_mut("Networks") {
            for n in nets.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::String(t)) = n.get_mut("Target")
                    && let Some(name) = names.networks.get(t.as_str())
                {
                    t.clone_from(name);
                }
                if let Some(Value::Array(aliases)) = n.get_mut("Aliases") {
                    aliases.sort_by_key(ToString::to_string);
                }
            }
            nets.sort_by_key(|n| n.get("Target").map(ToString::to_string));
        }
        if let Some(Value::Object(cs)) = task.get_mut("ContainerSpec") {
            fill_absent(cs, "StopGracePeriod", json!(10 * SECOND));
            fill(cs, "Isolation", json!("default"));
            for (list, id) in [("Secrets", "SecretID"), ("Configs", "ConfigID")] {
                if let Some(Value::Array(refs)) = cs.get_mut(list) {
                    for r in refs.iter_mut().filter_map(Value::as_object_mut) {
                        r.remove(id);
                    }
                }
            }
            if let Some(Value::String(cfg)) = cs
                .get_mut("Privileges")
                .and_then(|p| p.pointer_mut("/CredentialSpec/Config"))
                && let Some(name) = names.configs.get(cfg.as_str())
            {
                cfg.clone_from(name);
            }
        }
    }
    prune_zero(&mut v);
    v
}

/// The canonical form of a network, from a create body (desired) or a
/// `GET /networks` entry (observed): only what a create sets. Of
/// `IPAM.Config`, only the entries and fields the desired side asks for
/// (`desired_ipam`: the desired body's `IPAM.Config`): without subnets the
/// daemon picks one, without a gateway it picks the first address, and
/// neither is drift.
#[must_use]
pub fn network(v: &Value, desired_ipam: Option<&Value>) -> Value {
    let get = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let mut options = get("Options");
    if let Some(o) = options.as_object_mut() {
        // Set by the overlay driver on create.
        o.remove("com.docker.network.driver.overlay.vxlanid_list");
    }
    let ipam = v.get("IPAM").cloned().unwrap_or(Value::Null);
    let ipam_driver = match ipam.get("Driver").and_then(Value::as_str) {
        None | Some("") => "default".to_string(),
        Some(d) => d.to_string(),
    };
    let config = match (desired_ipam.and_then(Value::as_array), ipam.get("Config")) {
        (Some(want), Some(Value::Array(have))) => Value::Array(
            have.iter()
                .enumerate()
                .map(|(i, entry)| match (want.get(i), entry) {
                    (Some(Value::Object(w)), Value::Object(e)) => Value::Object(
                        e.iter()
                            .filter(|(k, _)| w.get(k.as_str()).is_some_and(|x| !is_zero(x)))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                    (_, e) => e.clone(),
                })
                .collect(),
        ),
        _ => Value::Null,
    };
    let mut out = json!({
        "Driver": match v.get("Driver").and_then(Value::as_str) {
            None | Some("") => "overlay",
            Some(d) => d,
        },
        "Attachable": get("Attachable"),
        "Internal": get("Internal"),
        "Ingress": get("Ingress"),
        "EnableIPv6": get("EnableIPv6"),
        "Options": options,
        "IPAM": {
            "Driver": ipam_driver,
            "Options": ipam.get("Options").cloned().unwrap_or(Value::Null),
            "Config": config,
        },
        "Labels": get("Labels"),
    });
    prune_zero(&mut out);
    out
}

fn fill(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(is_zero) {
        obj.insert(key.to_string(), value);
    }
}

/// Fill a field Go sends as a pointer (absent: default; an explicit `0`
/// is kept by the daemon).
fn fill_absent(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

/// Members that mean something even when zero: the service mode markers
/// and the replica count (`0` is a real choice).
const KEEP: [&str; 5] = [
    "Global",
    "GlobalJob",
    "Replicated",
    "ReplicatedJob",
    "Replicas",
];

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Remove zero-valued object members, depth first (an object emptied by
/// the pruning goes too), except [`KEEP`].
fn prune_zero(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (_, child) in map.iter_mut() {
                prune_zero(child);
            }
            map.retain(|k, child| KEEP.contains(&k.as_str()) || !is_zero(child));
        }
        Value::Array(items) => {
            for item in items {
                prune_zero(item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_request_and_the_daemons_answer_normalize_alike() {
        let request = json!({
            "Name": "s", "Labels": {}, "EndpointSpec": {},
            "Mode": {"Replicated": {}},
            "TaskTemplate": {"ContainerSpec": {"Image": "x", "Privileges": {"CredentialSpec": null, "NoNewPrivileges": false}}, "ForceUpdate": 0, "Resources": {},
                "Networks": [{"Target": "app_default", "Aliases": ["web"]}]},
            "UpdateConfig": {"Parallelism": 1, "FailureAction": "rollback", "MaxFailureRatio": 0, "Order": ""}
        });
        let inspect = json!({
            "Name": "s", "Labels": {},
            "EndpointSpec": {"Mode": "vip"},
            "Mode": {"Replicated": {"Replicas": 1}},
            "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000_i64, "MaxFailureRatio": 0, "Order": "stop-first"},
            "TaskTemplate": {"ContainerSpec": {"Image": "x", "DNSConfig": {}, "Isolation": "default", "StopGracePeriod": 10_000_000_000_i64,
                "Privileges": {"CredentialSpec": null, "NoNewPrivileges": false, "SELinuxContext": null}},
                "ForceUpdate": 0, "Resources": {}, "Placement": {}, "Runtime": "container",
                "RestartPolicy": {"Condition": "any", "Delay": 5_000_000_000_i64, "MaxAttempts": 0},
                "Networks": [{"Target": "id1", "Aliases": ["web"]}]},
            "UpdateConfig": {"Parallelism": 1, "FailureAction": "rollback", "Monitor": 5_000_000_000_i64, "MaxFailureRatio": 0, "Order": "stop-first"}
        });
        let mut names = Names::default();
        names.networks.insert("id1".into(), "app_default".into());
        assert_eq!(service(&request, &names), service(&inspect, &names));
    }

    #[test]
    fn global_mode_survives_pruning() {
        let v = service(&json!({"Mode": {"Global": {}}}), &Names::default());
        assert_eq!(v["Mode"], json!({"Global": {}}));
    }

    #[test]
    fn zero_replicas_differ_from_the_default_one() {
        let a = service(
            &json!({"Mode": {"Replicated": {"Replicas": 0}}}),
            &Names::default(),
        );
        let b = service(&json!({"Mode": {"Replicated": {}}}), &Names::default());
        assert_ne!(a, b);
    }

    #[test]
    fn networks_ignore_the_vxlan_id_and_an_allocated_subnet() {
        let desired = json!({"Name": "n", "Driver": "overlay", "Scope": "swarm", "Attachable": true,
            "IPAM": null, "Options": {"encrypted": ""}, "Labels": {"a": "b"}});
        let observed = json!({"Name": "n", "Id": "x", "Driver": "overlay", "Scope": "swarm", "Attachable": true,
            "Internal": false, "Ingress": false, "EnableIPv6": false, "ConfigFrom": {"Network": ""},
            "IPAM": {"Driver": "default", "Options": null, "Config": [{"Subnet": "10.0.9.0/24", "Gateway": "10.0.9.1"}]},
            "Options": {"encrypted": "", "com.docker.network.driver.overlay.vxlanid_list": "4097"},
            "Labels": {"a": "b"}});
        assert_eq!(network(&desired, None), network(&observed, None));
        let desired = json!({"Name": "n", "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.0.9.0/24"}]}});
        let want = desired.pointer("/IPAM/Config");
        let observed = json!({"Name": "n", "Driver": "overlay",
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.0.9.0/24", "Gateway": "10.0.9.1"}]}});
        assert_eq!(network(&desired, want), network(&observed, want));
        let moved = json!({"Name": "n", "Driver": "overlay",
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.0.8.0/24", "Gateway": "10.0.8.1"}]}});
        assert_ne!(network(&desired, want), network(&moved, want));
    }
}

//! What a folder of manifests says must exist in the swarm, checked field
//! by field against what the Engine API returns.
//!
//! Two sources, on purpose:
//! - the manifests themselves (`Network`, `NodeLabels`, `PlacementPolicy`),
//!   read with the manifest loader and compared here without the plan's
//!   code: driver, `encrypted`, attachable, internal, ingress, options,
//!   subnets and gateways, node labels and availability, the policies'
//!   constraints, preferences and `maxReplicasPerNode` on every service
//!   they select;
//! - the stacks' compose files, converted by bosun (`DesiredState::build`,
//!   the converter the conformance suite holds to `docker stack deploy`),
//!   for every service: mode and replicas, constraints, preferences, max
//!   replicas, image, networks, configs, secrets, endpoint mode and ports,
//!   labels; and for the stacks' own networks, configs and secrets.
//!
//! The comparison is not the plan's diff: it reads the daemon's answer with
//! its own eyes (IDs mapped back to names, order-insensitive sets).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bosun::manifest::{self, Availability, Role, glob_match};
use bosun::plan::DesiredState;
use bosun::swarm::{Client, Kind};
use serde_json::{Value, json};

use super::{MANAGED_BY, labels_of, list, name_of};

/// What the swarm holds, by name, as the API lists it.
struct Observed {
    services: BTreeMap<String, Value>,
    networks: BTreeMap<String, Value>,
    network_names: BTreeMap<String, String>,
    configs: BTreeMap<String, Value>,
    secrets: BTreeMap<String, Value>,
    nodes: Vec<Value>,
}

async fn observe(api: &Client) -> Observed {
    let by_name = |items: Vec<Value>| -> BTreeMap<String, Value> {
        items.into_iter().map(|v| (name_of(&v), v)).collect()
    };
    let networks = list(api, Kind::Network).await;
    let network_names = networks
        .iter()
        .map(|n| {
            (
                n.get("Id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                name_of(n),
            )
        })
        .collect();
    Observed {
        services: by_name(list(api, Kind::Service).await),
        networks: by_name(networks),
        network_names,
        configs: by_name(list(api, Kind::Config).await),
        secrets: by_name(list(api, Kind::Secret).await),
        nodes: list(api, Kind::Node).await,
    }
}

/// Accumulates mismatches, each naming the object and field.
#[derive(Default)]
pub struct Report {
    pub problems: Vec<String>,
    /// How many facts were checked (so a test can tell it checked something).
    pub checked: usize,
}

impl Report {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, want: &T, have: &T) {
        self.checked += 1;
        if want != have {
            self.problems
                .push(format!("{what}: want {want:?}, swarm has {have:?}"));
        }
    }
    fn fail(&mut self, msg: String) {
        self.checked += 1;
        self.problems.push(msg);
    }
}

fn ptr<'a>(v: &'a Value, p: &str) -> &'a Value {
    v.pointer(p).unwrap_or(&Value::Null)
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn array(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// `want` ⊆ `have`, per key.
fn check_labels(
    r: &mut Report,
    what: &str,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) {
    for (k, v) in want {
        r.eq(&format!("{what} label {k}"), &Some(v), &have.get(k));
    }
}

/// Check everything `dir` specifies against the swarm behind `api`.
/// `env` is the process environment bosun ran with (lowest-precedence
/// interpolation variables).
pub async fn check(dir: &Path, api: &Client, env: &BTreeMap<String, String>) -> Report {
    let desired =
        manifest::load_with(dir, env).unwrap_or_else(|d| panic!("{}: {d}", dir.display()));
    let state = DesiredState::build(&desired, env).unwrap_or_else(|e| panic!("{e:#}"));
    let obs = observe(api).await;
    let mut r = Report::default();
    for net in &desired.networks {
        check_network_manifest(&mut r, net, &obs);
    }
    for stack in &state.stacks {
        for net in &stack.objects.networks {
            check_stack_network(&mut r, &serde_json::to_value(net).expect("json"), &obs);
        }
        for c in &stack.objects.configs {
            let want = serde_json::to_value(c).expect("json");
            check_config_or_secret(&mut r, "config", &want, &obs.configs, true);
        }
        for s in &stack.objects.secrets {
            let want = serde_json::to_value(s).expect("json");
            check_config_or_secret(&mut r, "secret", &want, &obs.secrets, false);
        }
        for svc in &stack.objects.services {
            let want = serde_json::to_value(svc).expect("json");
            check_service(&mut r, &want, &obs);
        }
    }
    check_node_labels(&mut r, &desired, &obs);
    check_policies(&mut r, &desired, &state, &obs);
    r
}

fn check_network_manifest(r: &mut Report, net: &manifest::Network, obs: &Observed) {
    let name = net.name();
    let Some(have) = obs.networks.get(name) else {
        r.fail(format!("network {name} (Network manifest) does not exist"));
        return;
    };
    let spec = &net.spec;
    let what = format!("network {name}");
    let driver = if spec.driver.is_empty() {
        "overlay"
    } else {
        &spec.driver
    };
    r.eq(
        &format!("{what} Driver"),
        &json!(driver),
        ptr(have, "/Driver"),
    );
    r.eq(
        &format!("{what} Scope"),
        &json!("swarm"),
        ptr(have, "/Scope"),
    );
    let opts = str_map(ptr(have, "/Options"));
    r.eq(
        &format!("{what} encrypted option"),
        &spec.encrypted,
        &opts.contains_key("encrypted"),
    );
    for (k, v) in &spec.options {
        r.eq(&format!("{what} option {k}"), &Some(v), &opts.get(k));
    }
    let flag = |p: &str| ptr(have, p).as_bool().unwrap_or(false);
    r.eq(
        &format!("{what} Attachable"),
        &spec.attachable,
        &flag("/Attachable"),
    );
    r.eq(
        &format!("{what} Internal"),
        &spec.internal,
        &flag("/Internal"),
    );
    r.eq(&format!("{what} Ingress"), &spec.ingress, &flag("/Ingress"));
    if let Some(ipam) = &spec.ipam {
        let want: BTreeSet<(String, String)> = ipam
            .config
            .iter()
            .map(|c| (c.subnet.clone(), c.gateway.clone().unwrap_or_default()))
            .collect();
        let have_cfg: BTreeSet<(String, String)> = array(ptr(have, "/IPAM/Config"))
            .iter()
            .map(|c| {
                (
                    ptr(c, "/Subnet").as_str().unwrap_or_default().to_string(),
                    ptr(c, "/Gateway").as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        r.eq(&format!("{what} IPAM subnets/gateways"), &want, &have_cfg);
    }
    let mut want_labels = net.metadata.labels.clone();
    want_labels.insert(MANAGED_BY.into(), "bosun".into());
    check_labels(r, &what, &want_labels, &labels_of(have));
}

fn check_stack_network(r: &mut Report, want: &Value, obs: &Observed) {
    let name = ptr(want, "/Name").as_str().unwrap_or_default();
    let Some(have) = obs.networks.get(name) else {
        r.fail(format!("stack network {name} does not exist"));
        return;
    };
    let what = format!("network {name}");
    r.eq(
        &format!("{what} Driver"),
        ptr(want, "/Driver"),
        ptr(have, "/Driver"),
    );
    let b = |v: &Value, p: &str| ptr(v, p).as_bool().unwrap_or(false);
    for f in ["/Attachable", "/Internal"] {
        r.eq(&format!("{what} {f}"), &b(want, f), &b(have, f));
    }
    let have_opts = str_map(ptr(have, "/Options"));
    for (k, v) in str_map(ptr(want, "/Options")) {
        r.eq(&format!("{what} option {k}"), &Some(&v), &have_opts.get(&k));
    }
    check_labels(r, &what, &str_map(ptr(want, "/Labels")), &labels_of(have));
}

fn check_config_or_secret(
    r: &mut Report,
    kind: &str,
    want: &Value,
    have: &BTreeMap<String, Value>,
    data_readable: bool,
) {
    let name = ptr(want, "/Name").as_str().unwrap_or_default();
    let Some(obj) = have.get(name) else {
        r.fail(format!("{kind} {name} does not exist"));
        return;
    };
    let what = format!("{kind} {name}");
    check_labels(r, &what, &str_map(ptr(want, "/Labels")), &labels_of(obj));
    if data_readable {
        r.eq(
            &format!("{what} Data"),
            ptr(want, "/Data"),
            ptr(obj, "/Spec/Data"),
        );
    }
}

/// Published ports as (target, published, protocol, mode), daemon defaults
/// filled.
fn ports(v: &Value) -> BTreeSet<(u64, u64, String, String)> {
    array(ptr(v, "/Ports"))
        .iter()
        .map(|p| {
            let s = |f: &str, d: &str| p.get(f).and_then(Value::as_str).unwrap_or(d).to_string();
            (
                ptr(p, "/TargetPort").as_u64().unwrap_or(0),
                ptr(p, "/PublishedPort").as_u64().unwrap_or(0),
                s("Protocol", "tcp"),
                s("PublishMode", "ingress"),
            )
        })
        .collect()
}

fn check_service(r: &mut Report, want: &Value, obs: &Observed) {
    let name = ptr(want, "/Name").as_str().unwrap_or_default();
    let Some(svc) = obs.services.get(name) else {
        r.fail(format!("service {name} does not exist"));
        return;
    };
    let have = ptr(svc, "/Spec");
    let what = format!("service {name}");
    check_labels(r, &what, &str_map(ptr(want, "/Labels")), &labels_of(svc));

    // Mode: replicated with N replicas, or global.
    let mode = |v: &Value| -> String {
        if v.pointer("/Mode/Global").is_some() {
            "global".into()
        } else {
            format!(
                "replicated/{}",
                ptr(v, "/Mode/Replicated/Replicas").as_u64().unwrap_or(1)
            )
        }
    };
    r.eq(&format!("{what} mode"), &mode(want), &mode(have));

    let placement = "/TaskTemplate/Placement";
    r.eq(
        &format!("{what} constraints"),
        &strings(ptr(want, &format!("{placement}/Constraints"))),
        &strings(ptr(have, &format!("{placement}/Constraints"))),
    );
    let prefs = |v: &Value| -> Vec<Value> { array(ptr(v, &format!("{placement}/Preferences"))) };
    r.eq(&format!("{what} preferences"), &prefs(want), &prefs(have));
    let max = |v: &Value| {
        ptr(v, &format!("{placement}/MaxReplicas"))
            .as_u64()
            .unwrap_or(0)
    };
    r.eq(
        &format!("{what} max replicas per node"),
        &max(want),
        &max(have),
    );

    let image = |v: &Value| {
        ptr(v, "/TaskTemplate/ContainerSpec/Image")
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (want_image, have_image) = (image(want), image(have));
    // resolveImage may pin a digest (`image@sha256:…`) onto the reference.
    if have_image != want_image && !have_image.starts_with(&format!("{want_image}@")) {
        r.fail(format!(
            "{what} image: want {want_image:?}, swarm has {have_image:?}"
        ));
    } else {
        r.checked += 1;
    }

    let nets = |v: &Value| -> BTreeSet<String> {
        array(ptr(v, "/TaskTemplate/Networks"))
            .iter()
            .filter_map(|n| n.get("Target").and_then(Value::as_str))
            .map(|t| {
                obs.network_names
                    .get(t)
                    .cloned()
                    .unwrap_or_else(|| t.to_string())
            })
            .collect()
    };
    r.eq(&format!("{what} networks"), &nets(want), &nets(have));
    for net in nets(have) {
        if !obs.networks.contains_key(&net) {
            r.fail(format!("{what} is attached to missing network {net}"));
        }
    }

    for (field, name_field, objects) in [
        ("Configs", "ConfigName", &obs.configs),
        ("Secrets", "SecretName", &obs.secrets),
    ] {
        let refs = |v: &Value| -> BTreeSet<(String, String)> {
            array(ptr(v, &format!("/TaskTemplate/ContainerSpec/{field}")))
                .iter()
                .map(|c| {
                    (
                        ptr(c, &format!("/{name_field}"))
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        ptr(c, "/File/Name")
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        };
        let have_refs = refs(have);
        r.eq(&format!("{what} {field}"), &refs(want), &have_refs);
        for (obj, _) in have_refs {
            if !objects.contains_key(&obj) {
                r.fail(format!("{what} references missing {field} {obj}"));
            }
        }
    }

    let endpoint_mode = |v: &Value| {
        ptr(v, "/EndpointSpec/Mode")
            .as_str()
            .unwrap_or("vip")
            .to_string()
    };
    r.eq(
        &format!("{what} endpoint mode"),
        &endpoint_mode(want),
        &endpoint_mode(have),
    );
    r.eq(
        &format!("{what} ports"),
        &ports(ptr(want, "/EndpointSpec")),
        &ports(ptr(have, "/EndpointSpec")),
    );
}

fn node_role(node: &Value) -> Role {
    if ptr(node, "/Spec/Role").as_str() == Some("manager") {
        Role::Manager
    } else {
        Role::Worker
    }
}

/// Labels and availability every `NodeLabels` rule wants, merged over the
/// rules that select each node (manifests by name, rules in file order).
fn check_node_labels(r: &mut Report, desired: &manifest::Desired, obs: &Observed) {
    let mut manifests: Vec<&manifest::NodeLabels> = desired.node_labels.iter().collect();
    manifests.sort_by(|a, b| a.name().cmp(b.name()));
    for node in &obs.nodes {
        let hostname = ptr(node, "/Description/Hostname")
            .as_str()
            .unwrap_or_default();
        let id = ptr(node, "/ID").as_str().unwrap_or_default();
        let have = str_map(ptr(node, "/Spec/Labels"));
        let mut want = BTreeMap::new();
        let mut availability = None;
        for nl in &manifests {
            for rule in &nl.spec.rules {
                if rule.selector.matches(hostname, id, node_role(node), &have) {
                    want.extend(rule.labels.clone());
                    availability = rule.availability.or(availability);
                }
            }
        }
        let what = format!("node {hostname}");
        check_labels(r, &what, &want, &have);
        if let Some(a) = availability {
            let a = match a {
                Availability::Active => "active",
                Availability::Pause => "pause",
                Availability::Drain => "drain",
            };
            r.eq(
                &format!("{what} availability"),
                &json!(a),
                ptr(node, "/Spec/Availability"),
            );
        }
    }
}

/// Every service a `PlacementPolicy` selects carries its constraints, its
/// preferences and its `maxReplicasPerNode` (the latter two for replicated
/// services only: swarm ignores them for global ones).
fn check_policies(
    r: &mut Report,
    desired: &manifest::Desired,
    state: &DesiredState,
    obs: &Observed,
) {
    for policy in &desired.placement_policies {
        let sel = &policy.spec.selector;
        let mut selected = 0;
        for stack in &state.stacks {
            if !(sel.stacks.is_empty() || sel.stacks.contains(&stack.name)) {
                continue;
            }
            for svc in &stack.objects.services {
                let name = &svc.name;
                if !(sel.services.is_empty() || sel.services.iter().any(|g| glob_match(g, name))) {
                    continue;
                }
                let Some(have) = obs.services.get(name) else {
                    continue; // reported by check_service
                };
                let labels = labels_of(have);
                if !sel.labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    continue;
                }
                selected += 1;
                let what = format!("service {name} (PlacementPolicy/{})", policy.name());
                let spec = ptr(have, "/Spec");
                let constraints = strings(ptr(spec, "/TaskTemplate/Placement/Constraints"));
                for c in &policy.spec.constraints {
                    r.eq(
                        &format!("{what} constraint {c:?}"),
                        &true,
                        &constraints.contains(c),
                    );
                }
                if spec.pointer("/Mode/Global").is_some() {
                    continue;
                }
                let prefs: Vec<String> = array(ptr(spec, "/TaskTemplate/Placement/Preferences"))
                    .iter()
                    .filter_map(|p| {
                        p.pointer("/Spread/SpreadDescriptor")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect();
                for p in &policy.spec.preferences {
                    r.eq(
                        &format!("{what} spread {}", p.spread),
                        &true,
                        &prefs.contains(&p.spread),
                    );
                }
                if let Some(max) = policy.spec.max_replicas_per_node {
                    r.eq(
                        &format!("{what} max replicas per node"),
                        &max,
                        &ptr(spec, "/TaskTemplate/Placement/MaxReplicas")
                            .as_u64()
                            .unwrap_or(0),
                    );
                }
            }
        }
        if selected == 0 {
            r.fail(format!(
                "PlacementPolicy/{} selects no service in the swarm",
                policy.name()
            ));
        }
    }
}

/// Names of everything `dir` makes bosun own, per kind: the `Network`
/// manifests, and each stack's networks, configs, secrets and services.
pub fn names(dir: &Path, env: &BTreeMap<String, String>) -> BTreeMap<Kind, BTreeSet<String>> {
    names_on(dir, env, None)
}

/// [`names`], with the keepalived services and secrets of the folder's VIP
/// policies for the nodes of `swarm`.
pub fn names_on(
    dir: &Path,
    env: &BTreeMap<String, String>,
    swarm: Option<&bosun::swarm::Snapshot>,
) -> BTreeMap<Kind, BTreeSet<String>> {
    let desired =
        manifest::load_with(dir, env).unwrap_or_else(|d| panic!("{}: {d}", dir.display()));
    let state = DesiredState::build(&desired, env).unwrap_or_else(|e| panic!("{e:#}"));
    let state = match swarm {
        Some(snapshot) => bosun::plan::vip::with_vips(&state, snapshot).into_owned(),
        None => state,
    };
    let mut out: BTreeMap<Kind, BTreeSet<String>> = BTreeMap::new();
    for kind in [Kind::Service, Kind::Config, Kind::Secret, Kind::Network] {
        out.insert(kind, BTreeSet::new());
    }
    let mut add = |kind: Kind, name: &str| {
        out.entry(kind).or_default().insert(name.to_string());
    };
    for net in &desired.networks {
        add(Kind::Network, net.name());
    }
    for stack in &state.stacks {
        let o = &stack.objects;
        o.networks.iter().for_each(|n| add(Kind::Network, &n.name));
        o.configs.iter().for_each(|c| add(Kind::Config, &c.name));
        o.secrets.iter().for_each(|s| add(Kind::Secret, &s.name));
        o.services.iter().for_each(|s| add(Kind::Service, &s.name));
    }
    out
}

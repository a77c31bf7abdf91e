//! Plans against hand-built snapshots.
//!
//! Most tests start from one folder of manifests ([`FILES`]), plan against
//! an empty swarm, store what that plan creates the way dockerd does
//! ([`daemon_store`]: defaults filled, names turned into IDs), and then
//! edit that swarm the way a person with the docker CLI would.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};

use super::*;
use crate::manifest::{self, ObjectRef};
use crate::swarm::Snapshot;

const H: &str = "apiVersion: bosun.dev/v1alpha1\n";
const SECRET: &str = "s3cr3t-value";

/// The folder most tests use.
fn files() -> Vec<(&'static str, String)> {
    vec![
        (
            "networks.yaml",
            format!(
                "{H}kind: Network\nmetadata: {{name: traefik-public, labels: {{team: edge}}}}\n\
                 spec: {{attachable: true, encrypted: true, options: {{com.docker.network.driver.mtu: \"1200\"}}, \
                 ipam: {{config: [{{subnet: 10.11.0.0/16}}]}}}}\n"
            ),
        ),
        (
            "app.yaml",
            format!(
                "{H}kind: Stack\nmetadata: {{name: app}}\nspec:\n  compose:\n    services:\n      web:\n        image: nginx:1.25\n        environment: {{A: \"1\", B: \"2\"}}\n        deploy: {{replicas: 2, labels: {{tier: front}}}}\n        networks: [traefik-public, db_backend, default]\n        configs: [{{source: site, target: /etc/site.conf}}]\n        secrets: [token]\n        healthcheck: {{test: [CMD, \"true\"], interval: 10s}}\n        ports: [\"8080:80\"]\n      agent:\n        image: agent:1\n        deploy: {{mode: global}}\n    networks:\n      traefik-public: {{external: true}}\n      db_backend: {{external: true}}\n    configs:\n      site: {{file: ./site.conf}}\n    secrets:\n      token: {{file: ./token.txt}}\n"
            ),
        ),
        ("site.conf", "server {}\n".to_string()),
        ("token.txt", SECRET.to_string()),
        (
            "db.yaml",
            format!(
                "{H}kind: Stack\nmetadata: {{name: zdb}}\nspec:\n  compose:\n    services:\n      pg:\n        image: postgres:16\n        networks: [backend]\n    networks:\n      backend: {{name: db_backend}}\n"
            ),
        ),
        (
            "after.yaml",
            format!(
                "{H}kind: Stack\nmetadata: {{name: aaa}}\nspec:\n  dependsOn: [Stack/app]\n  compose:\n    services:\n      job:\n        image: busybox:1\n"
            ),
        ),
        (
            "old.yaml",
            format!(
                "{H}kind: Stack\nmetadata: {{name: old}}\nspec:\n  suspend: true\n  compose:\n    services:\n      x:\n        image: old:1\n"
            ),
        ),
        (
            "placement.yaml",
            format!(
                "{H}kind: PlacementPolicy\nmetadata: {{name: spread}}\nspec:\n  selector: {{services: [\"app_*\"]}}\n  preferences: [{{spread: node.labels.rack}}]\n  constraints: [\"node.role == worker\"]\n  maxReplicasPerNode: 1\n"
            ),
        ),
        (
            "nodes.yaml",
            format!(
                "{H}kind: NodeLabels\nmetadata: {{name: racks}}\nspec:\n  rules:\n    - selector: {{hostname: worker1}}\n      labels: {{rack: a}}\n    - selector: {{role: manager}}\n      labels: {{rack: m, lb: \"true\"}}\n"
            ),
        ),
    ]
}

fn build_from(files: &[(&str, String)]) -> DesiredState {
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    DesiredState::of_files(&files)
}

fn desired() -> DesiredState {
    build_from(&files())
}

fn nodes() -> Vec<Value> {
    vec![
        json!({"ID": "n-manager1", "Version": {"Index": 5},
               "Spec": {"Role": "manager", "Availability": "active", "Labels": {}},
               "Description": {"Hostname": "manager1"}, "Status": {"State": "ready"}}),
        json!({"ID": "n-worker1", "Version": {"Index": 6},
               "Spec": {"Role": "worker", "Availability": "active", "Labels": {"owner": "ops"}},
               "Description": {"Hostname": "worker1"}, "Status": {"State": "ready"}}),
    ]
}

fn fill(obj: &mut serde_json::Map<String, Value>, key: &str, v: Value) {
    if obj
        .get(key)
        .is_none_or(|x| x.is_null() || *x == json!("") || *x == json!(0))
    {
        obj.insert(key.into(), v);
    }
}

/// What dockerd 20.10 stores for a service create body (see the corpus
/// and the module docs of `normalize`), written independently of it.
fn daemon_store(body: &Value, net_ids: &BTreeMap<String, String>) -> Value {
    let mut v = body.clone();
    let root = v.as_object_mut().expect("object");
    if let Some(rep) = root.get_mut("Mode").and_then(|m| m.get_mut("Replicated"))
        && rep.get("Replicas").is_none()
    {
        rep["Replicas"] = json!(1);
    }
    for key in ["UpdateConfig", "RollbackConfig"] {
        let cfg = root.entry(key).or_insert_with(|| json!({"Parallelism": 1}));
        let cfg = cfg.as_object_mut().expect("object");
        fill(cfg, "FailureAction", json!("pause"));
        fill(cfg, "Monitor", json!(5_000_000_000_i64));
        fill(cfg, "MaxFailureRatio", json!(0));
        fill(cfg, "Order", json!("stop-first"));
    }
    if let Some(ep) = root.get_mut("EndpointSpec").and_then(Value::as_object_mut) {
        fill(ep, "Mode", json!("vip"));
        if let Some(ports) = ep.get_mut("Ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                fill(p, "Protocol", json!("tcp"));
                fill(p, "PublishMode", json!("ingress"));
            }
        }
    }
    let task = root
        .get_mut("TaskTemplate")
        .and_then(Value::as_object_mut)
        .expect("task");
    fill(task, "Runtime", json!("container"));
    task.entry("Placement").or_insert_with(|| json!({}));
    task.entry("Resources").or_insert_with(|| json!({}));
    let rp = task.entry("RestartPolicy").or_insert_with(|| json!({}));
    let rp = rp.as_object_mut().expect("object");
    fill(rp, "Condition", json!("any"));
    if rp.get("Delay").is_none() {
        rp.insert("Delay".into(), json!(5_000_000_000_i64));
    }
    rp.entry("MaxAttempts").or_insert(json!(0));
    if let Some(nets) = task.get_mut("Networks").and_then(Value::as_array_mut) {
        for n in nets {
            let name = n["Target"].as_str().unwrap_or_default().to_string();
            n["Target"] = json!(net_ids.get(&name).cloned().unwrap_or(name));
        }
    }
    let cs = task
        .get_mut("ContainerSpec")
        .and_then(Value::as_object_mut)
        .expect("cs");
    if cs.get("StopGracePeriod").is_none() {
        cs.insert("StopGracePeriod".into(), json!(10_000_000_000_i64));
    }
    cs.entry("DNSConfig").or_insert_with(|| json!({}));
    fill(cs, "Isolation", json!("default"));
    for (list, id, name) in [
        ("Secrets", "SecretID", "SecretName"),
        ("Configs", "ConfigID", "ConfigName"),
    ] {
        if let Some(refs) = cs.get_mut(list).and_then(Value::as_array_mut) {
            for r in refs {
                let n = r[name].as_str().unwrap_or_default().to_string();
                r[id] = json!(format!("id-{n}"));
            }
        }
    }
    v
}

/// The swarm after a perfect apply of `plan` onto `base` (creates only).
fn store(base: &Snapshot, p: &Plan) -> Snapshot {
    let mut nets: Vec<Value> = base.networks.iter().map(|n| n.raw.clone()).collect();
    let mut net_ids: BTreeMap<String, String> = base
        .networks
        .iter()
        .map(|n| (n.meta.name.clone(), n.meta.id.clone()))
        .collect();
    let obj = |o: &swarm::Object| json!({"ID": o.meta.id, "Version": {"Index": o.meta.version}, "Spec": o.spec});
    let mut configs: Vec<Value> = base.configs.iter().map(obj).collect();
    let mut secrets: Vec<Value> = base.secrets.iter().map(obj).collect();
    let mut services: Vec<Value> = base.services.iter().map(obj).collect();
    let node_list: Vec<Value> = base
        .nodes
        .iter()
        .map(|n| {
            let spec = p
                .actions
                .iter()
                .find_map(|a| match a {
                    Action::UpdateNode { id, spec, .. } if *id == n.meta.id => Some(spec.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| n.spec.clone());
            json!({"ID": n.meta.id, "Version": {"Index": n.meta.version + 1}, "Spec": spec,
                   "Description": {"Hostname": n.hostname}, "Status": {"State": n.state}})
        })
        .collect();
    for a in &p.actions {
        match a {
            Action::CreateNetwork { name, body, .. } => {
                let id = format!("id-{name}");
                net_ids.insert(name.clone(), id.clone());
                let mut options = body.options.clone().unwrap_or_default();
                options.insert(
                    "com.docker.network.driver.overlay.vxlanid_list".into(),
                    "4097".into(),
                );
                let config = body
                    .ipam
                    .as_ref()
                    .and_then(|i| i.config.clone())
                    .map_or_else(
                        || vec![json!({"Subnet": "10.0.5.0/24", "Gateway": "10.0.5.1"})],
                        |c| {
                            c.iter()
                                .map(|c| json!({"Subnet": c.subnet, "Gateway": "10.11.0.1"}))
                                .collect::<Vec<_>>()
                        },
                    );
                nets.push(
                    json!({"Name": name, "Id": id, "Scope": "swarm", "Driver": body.driver,
                    "EnableIPv6": false, "Internal": body.internal, "Attachable": body.attachable,
                    "Ingress": body.ingress, "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
                    "IPAM": {"Driver": "default", "Options": null, "Config": config},
                    "Options": options, "Labels": body.labels}),
                );
            }
            Action::CreateConfig { name, body, .. } => configs
                .push(json!({"ID": format!("id-{name}"), "Version": {"Index": 2}, "Spec": body})),
            Action::CreateSecret { name, body, .. } => {
                let mut spec = serde_json::to_value(body).expect("json");
                spec.as_object_mut().expect("object").remove("Data");
                secrets.push(
                    json!({"ID": format!("id-{name}"), "Version": {"Index": 3}, "Spec": spec}),
                );
            }
            _ => {}
        }
    }
    for a in &p.actions {
        if let Action::CreateService { name, body, .. } = a {
            let spec = daemon_store(&serde_json::to_value(body).expect("json"), &net_ids);
            services
                .push(json!({"ID": format!("id-{name}"), "Version": {"Index": 10}, "Spec": spec}));
        }
    }
    let node_list = if node_list.is_empty() {
        nodes()
    } else {
        node_list
    };
    Snapshot::from_json(
        &json!({}),
        &node_list,
        &nets,
        &services,
        &configs,
        &secrets,
        &[],
    )
}

fn empty_swarm() -> Snapshot {
    Snapshot::from_json(&json!({}), &nodes(), &[], &[], &[], &[], &[])
}

/// The swarm after bosun applied `d` to an empty swarm.
fn converged(d: &DesiredState) -> Snapshot {
    let base = empty_swarm();
    store(&base, &plan(d, &base, &Options::default()))
}

fn kinds(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .map(|a| format!("{} {}", a.kind_name(), a.name()))
        .collect()
}

fn service_mut<'a>(snap: &'a mut Snapshot, name: &str) -> &'a mut swarm::Object {
    snap.services
        .iter_mut()
        .find(|s| s.meta.name == name)
        .expect("service")
}

fn only_update(p: &Plan) -> (&str, &[Change]) {
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    match p.actions.as_slice() {
        [Action::UpdateService { name, changes, .. }] => (name, changes),
        other => panic!("expected one UpdateService, got {other:#?}"),
    }
}

// --- ordering --------------------------------------------------------------

#[test]
fn an_empty_swarm_gets_networks_then_configs_then_nodes_then_services_in_stack_order() {
    let d = desired();
    let p = plan(&d, &empty_swarm(), &Options::default());
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let hash = |prefix: &str, list: &[String]| {
        list.iter()
            .find(|n| n.starts_with(prefix))
            .cloned()
            .expect("hashed name")
    };
    let config = hash(
        "app_site-",
        &d.stacks
            .iter()
            .flat_map(|s| s.objects.configs.iter().map(|c| c.name.clone()))
            .collect::<Vec<_>>(),
    );
    let secret = hash(
        "app_token-",
        &d.stacks
            .iter()
            .flat_map(|s| s.objects.secrets.iter().map(|c| c.name.clone()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        kinds(&p),
        [
            "CreateNetwork traefik-public".to_string(),
            "CreateNetwork db_backend".into(),
            "CreateNetwork app_default".into(),
            "CreateNetwork aaa_default".into(),
            format!("CreateConfig {config}"),
            format!("CreateSecret {secret}"),
            "UpdateNode manager1".into(),
            "UpdateNode worker1".into(),
            // zdb creates db_backend, which app uses as external: zdb first;
            // aaa depends on app.
            "CreateService zdb_pg".into(),
            "CreateService app_agent".into(),
            "CreateService app_web".into(),
            "CreateService aaa_job".into(),
        ]
    );
}

#[test]
fn a_stack_using_a_network_manifest_as_external_comes_after_it() {
    let d = desired();
    let p = plan(&d, &empty_swarm(), &Options::default());
    let pos = |needle: &str| kinds(&p).iter().position(|k| k == needle).expect(needle);
    assert!(pos("CreateNetwork traefik-public") < pos("CreateService app_web"));
}

// --- convergence -------------------------------------------------------------

#[test]
fn a_swarm_equal_to_the_manifests_gives_an_empty_plan() {
    let d = desired();
    let snap = converged(&d);
    let p = plan(&d, &snap, &Options::default().prune(true));
    assert!(p.is_empty(), "{}", p.render_text(false));
    assert_eq!(
        p.render_text(false),
        "No changes. The swarm matches the manifests.\n"
    );
}

#[test]
fn the_health_check_is_compared_under_the_daemons_field_name() {
    let d = desired();
    let mut snap = converged(&d);
    let web = service_mut(&mut snap, "app_web");
    assert!(
        web.spec
            .pointer("/TaskTemplate/ContainerSpec/Healthcheck/Test")
            .is_some()
    );
    web.spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Interval"] =
        json!(30_000_000_000_i64);
    let p = plan(&d, &snap, &Options::default());
    let (_, changes) = only_update(&p);
    assert_eq!(
        changes[0].path,
        "TaskTemplate.ContainerSpec.Healthcheck.Interval"
    );
}

// --- drift -------------------------------------------------------------------

#[test]
fn a_manual_replica_change_is_drift() {
    let d = desired();
    let mut snap = converged(&d);
    service_mut(&mut snap, "app_web").spec["Mode"]["Replicated"]["Replicas"] = json!(7);
    let p = plan(&d, &snap, &Options::default());
    let (name, changes) = only_update(&p);
    assert_eq!(name, "app_web");
    assert_eq!(
        changes,
        [Change {
            path: "Mode.Replicated.Replicas".into(),
            old: Some(json!(7)),
            new: Some(json!(2)),
        }]
    );
    let text = p.render_text(false);
    assert!(
        text.contains("~ service app_web (Stack/app)\n    ~ Mode.Replicated.Replicas: 7 → 2\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 0 to create, 1 to update, 0 to remove.\n"),
        "{text}"
    );
}

#[test]
fn an_added_env_var_is_drift() {
    let d = desired();
    let mut snap = converged(&d);
    let web = service_mut(&mut snap, "app_web");
    web.spec["TaskTemplate"]["ContainerSpec"]["Env"]
        .as_array_mut()
        .expect("env")
        .push(json!("X=1"));
    let p = plan(&d, &snap, &Options::default());
    let (_, changes) = only_update(&p);
    assert_eq!(changes[0].path, "TaskTemplate.ContainerSpec.Env[2]");
    assert_eq!(changes[0].old, Some(json!("X=1")));
    assert_eq!(changes[0].new, None);
}

#[test]
fn a_changed_image_is_drift_and_the_update_carries_the_version_and_full_spec() {
    let d = desired();
    let mut snap = converged(&d);
    let web = service_mut(&mut snap, "app_web");
    web.spec["TaskTemplate"]["ContainerSpec"]["Image"] = json!("other:2");
    web.meta.version = 42;
    let p = plan(&d, &snap, &Options::default());
    let (_, changes) = only_update(&p);
    assert_eq!(changes[0].path, "TaskTemplate.ContainerSpec.Image");
    let Action::UpdateService {
        version, spec, id, ..
    } = &p.actions[0]
    else {
        unreachable!()
    };
    assert_eq!((*version, id.as_str()), (42, "id-app_web"));
    assert_eq!(
        spec.task_template
            .container_spec
            .as_ref()
            .map(|c| c.image.as_str()),
        Some("nginx:1.25")
    );
    // Networks by name, for apply to resolve.
    assert!(
        spec.task_template
            .networks
            .iter()
            .any(|n| n.target == "traefik-public")
    );
}

#[test]
fn force_update_never_goes_down() {
    let d = desired();
    let mut snap = converged(&d);
    let web = service_mut(&mut snap, "app_web");
    web.spec["TaskTemplate"]["ForceUpdate"] = json!(3);
    assert!(plan(&d, &snap, &Options::default()).is_empty());
    service_mut(&mut snap, "app_web").spec["TaskTemplate"]["ContainerSpec"]["Image"] = json!("x:1");
    let p = plan(&d, &snap, &Options::default());
    let Action::UpdateService { spec, .. } = &p.actions[0] else {
        panic!("{p:#?}")
    };
    assert_eq!(spec.task_template.force_update, 3);
}

#[test]
fn a_removed_node_label_is_put_back_and_foreign_labels_stay() {
    let d = desired();
    let mut snap = converged(&d);
    let worker = snap
        .nodes
        .iter_mut()
        .find(|n| n.hostname == "worker1")
        .expect("worker1");
    assert_eq!(
        worker.meta.labels.get("owner").map(String::as_str),
        Some("ops")
    );
    worker.meta.labels.remove("rack");
    let p = plan(&d, &snap, &Options::default());
    let [
        Action::UpdateNode {
            name,
            spec,
            changes,
            version,
            ..
        },
    ] = p.actions.as_slice()
    else {
        panic!("{p:#?}")
    };
    assert_eq!(name, "worker1");
    assert_eq!(*version, 7);
    assert_eq!(
        spec["Labels"],
        json!({"owner": "ops", "rack": "a", "dev.bosun.node-labels": "rack"})
    );
    assert_eq!(spec["Role"], json!("worker"));
    assert_eq!(changes[0].path, "Labels.rack");
}

#[test]
fn node_labels_bosun_no_longer_wants_are_removed_and_only_those() {
    let node = json!({"ID": "n1", "Version": {"Index": 9},
        "Spec": {"Role": "worker", "Availability": "active",
                 "Labels": {"rack": "a", "zone": "x", "manual": "1", "dev.bosun.node-labels": "rack,zone"}},
        "Description": {"Hostname": "worker1"}, "Status": {"State": "ready"}});
    let snap = Snapshot::from_json(&json!({}), &[node], &[], &[], &[], &[], &[]);
    let rules = vec![NodeRule {
        owner: ObjectRef::new(manifest::Kind::NodeLabels, "racks"),
        selector: manifest::NodeSelector {
            hostname: Some("worker*".into()),
            ..Default::default()
        },
        labels: BTreeMap::from([("rack".to_string(), "b".to_string())]),
        availability: Some(manifest::Availability::Drain),
    }];
    let d = DesiredState {
        node_rules: rules,
        ..DesiredState::default()
    };
    let p = plan(&d, &snap, &Options::default());
    let [Action::UpdateNode { spec, .. }] = p.actions.as_slice() else {
        panic!("{p:#?}")
    };
    assert_eq!(
        spec["Labels"],
        json!({"rack": "b", "manual": "1", "dev.bosun.node-labels": "rack"})
    );
    assert_eq!(spec["Availability"], json!("drain"));
    // Without any rule, bosun takes back exactly what it set.
    let p = plan(&DesiredState::default(), &snap, &Options::default());
    let [Action::UpdateNode { spec, .. }] = p.actions.as_slice() else {
        panic!("{p:#?}")
    };
    assert_eq!(spec["Labels"], json!({"manual": "1"}));
}

#[test]
fn a_deleted_network_is_created_again() {
    let d = desired();
    let mut snap = converged(&d);
    snap.networks.retain(|n| n.meta.name != "traefik-public");
    let p = plan(&d, &snap, &Options::default());
    // The service still points at the old network's ID: it is re-attached.
    assert_eq!(
        kinds(&p),
        ["CreateNetwork traefik-public", "UpdateService app_web"]
    );
    assert!(
        p.actions[1]
            .changes()
            .iter()
            .any(|c| c.path.starts_with("TaskTemplate.Networks"))
    );
}

#[test]
fn a_changed_network_in_use_is_an_error_and_unused_it_is_recreated() {
    let d = desired();
    let mut snap = converged(&d);
    let net = snap
        .networks
        .iter_mut()
        .find(|n| n.meta.name == "traefik-public")
        .expect("net");
    net.raw["Attachable"] = json!(false);
    let p = plan(&d, &snap, &Options::default());
    assert!(p.actions.is_empty(), "{p:#?}");
    assert_eq!(p.errors.len(), 1);
    assert!(p.errors[0].message.contains("app_web"), "{}", p.errors[0]);
    assert!(
        p.errors[0].message.contains("Attachable"),
        "{}",
        p.errors[0]
    );
    // Unused: remove and create, with the reason.
    snap.services.retain(|s| s.meta.name != "app_web");
    let p = plan(&d, &snap, &Options::default());
    assert_eq!(
        kinds(&p)[..2],
        [
            "RemoveNetwork traefik-public",
            "CreateNetwork traefik-public"
        ]
    );
    assert_eq!(p.actions[1].changes()[0].path, "Attachable");
}

fn dockers_ingress() -> Value {
    json!({"Id": "id-docker-ingress", "Name": "ingress", "Scope": "swarm", "Driver": "overlay",
           "Ingress": true, "Labels": {},
           "IPAM": {"Config": [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]}})
}

#[test]
fn an_ingress_manifest_named_ingress_replaces_dockers_own_unless_ports_are_published() {
    let d = build_from(&[(
        "net.yaml",
        format!(
            "{H}kind: Network\nmetadata: {{name: ingress}}\n\
             spec: {{driver: overlay, ingress: true, ipam: {{config: [{{subnet: 10.11.0.0/16}}]}}}}\n"
        ),
    )]);
    let snap = Snapshot::from_json(
        &json!({}),
        &nodes(),
        &[dockers_ingress()],
        &[],
        &[],
        &[],
        &[],
    );
    let p = plan(&d, &snap, &Options::default());
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(
        kinds(&p),
        ["RemoveNetwork ingress", "CreateNetwork ingress"]
    );
    assert!(
        matches!(&p.actions[0], Action::RemoveNetwork { id, .. } if id == "id-docker-ingress"),
        "{:?}",
        p.actions[0]
    );
    // The replacement is bosun's: the next plan against it is empty.
    let after = store(
        &Snapshot::from_json(&json!({}), &nodes(), &[], &[], &[], &[], &[]),
        &p,
    );
    assert!(plan(&d, &after, &Options::default()).is_empty());

    // An unmanaged service publishing in ingress mode blocks the replacement.
    let publisher = json!({"ID": "p", "Version": {"Index": 1}, "Spec": {"Name": "edge",
        "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 80}]}}});
    let snap = Snapshot::from_json(
        &json!({}),
        &nodes(),
        &[dockers_ingress()],
        &[publisher],
        &[],
        &[],
        &[],
    );
    let p = plan(&d, &snap, &Options::default());
    assert!(p.actions.is_empty(), "{:?}", kinds(&p));
    assert_eq!(p.errors.len(), 1);
    assert!(
        p.errors[0]
            .message
            .contains("cannot replace the ingress network `ingress`")
            && p.errors[0].message.contains("edge"),
        "{}",
        p.errors[0]
    );
}

// --- bodies --------------------------------------------------------------

#[test]
fn network_manifests_become_create_bodies_with_bosun_labels() {
    let d = desired();
    let n = &d.networks[0];
    let body = serde_json::to_value(&n.body).expect("json");
    assert_eq!(body["Name"], "traefik-public");
    assert_eq!(body["Driver"], "overlay");
    assert_eq!(body["Scope"], "swarm");
    assert_eq!(body["Attachable"], true);
    assert_eq!(
        body["Options"],
        json!({"com.docker.network.driver.mtu": "1200", "encrypted": ""})
    );
    assert_eq!(body["IPAM"]["Config"], json!([{"Subnet": "10.11.0.0/16"}]));
    assert_eq!(body["Labels"]["team"], "edge");
    assert_eq!(body["Labels"]["dev.bosun.managed-by"], "bosun");
    assert_eq!(body["Labels"]["dev.bosun.owner"], "Network/traefik-public");
    assert_eq!(
        body["Labels"]["dev.bosun.spec-hash"].as_str().map(str::len),
        Some(16)
    );
}

#[test]
fn placement_policies_add_constraints_preferences_and_max_replicas() {
    let d = desired();
    let app = d.stack("app").expect("app");
    let svc = |n: &str| {
        app.objects
            .services
            .iter()
            .find(|s| s.name == n)
            .expect("service")
    };
    let web = svc("app_web")
        .task_template
        .placement
        .clone()
        .expect("placement");
    assert_eq!(web.constraints, ["node.role == worker"]);
    assert_eq!(web.preferences.len(), 1);
    assert_eq!(web.max_replicas, 1);
    // Global: constraints only, swarm ignores preferences there.
    let agent = svc("app_agent")
        .task_template
        .placement
        .clone()
        .expect("placement");
    assert_eq!(agent.constraints, ["node.role == worker"]);
    assert!(agent.preferences.is_empty());
    assert_eq!(agent.max_replicas, 0);
    // Other stacks are not selected.
    let pg = &d.stack("zdb").expect("zdb").objects.services[0];
    assert!(
        pg.task_template
            .placement
            .as_ref()
            .is_none_or(|p| p.constraints.is_empty() && p.preferences.is_empty())
    );
}

/// Swarm spreads over preferences as a tree, the first one at the top:
/// the compose file's own preferences and constraints stay first, and
/// policies append theirs in policy-name order, skipping ones already there.
#[test]
fn placement_policies_append_after_the_compose_file_in_name_order() {
    let files = vec![
        (
            "app.yaml",
            format!(
                "{H}kind: Stack\nmetadata: {{name: app}}\nspec:\n  compose:\n    services:\n      web:\n        image: nginx:1.25\n        deploy:\n          placement:\n            constraints: [\"node.labels.ssd == true\"]\n            preferences: [{{spread: node.labels.zone}}]\n"
            ),
        ),
        (
            "b.yaml",
            format!(
                "{H}kind: PlacementPolicy\nmetadata: {{name: b-rack}}\nspec:\n  selector: {{stacks: [app]}}\n  preferences: [{{spread: node.labels.rack}}, {{spread: node.labels.zone}}]\n  constraints: [\"node.role == worker\"]\n"
            ),
        ),
        (
            "a.yaml",
            format!(
                "{H}kind: PlacementPolicy\nmetadata: {{name: a-hv}}\nspec:\n  selector: {{stacks: [app]}}\n  preferences: [{{spread: node.labels.hypervisor}}]\n  constraints: [\"node.labels.ssd == true\", \"node.platform.os == linux\"]\n"
            ),
        ),
    ];
    let d = build_from(&files);
    let placement = d.stack("app").expect("app").objects.services[0]
        .task_template
        .placement
        .clone()
        .expect("placement");
    let spreads: Vec<&str> = placement
        .preferences
        .iter()
        .map(|p| {
            p.spread
                .as_ref()
                .expect("spread")
                .spread_descriptor
                .as_str()
        })
        .collect();
    assert_eq!(
        spreads,
        [
            "node.labels.zone",
            "node.labels.hypervisor",
            "node.labels.rack"
        ]
    );
    assert_eq!(
        placement.constraints,
        [
            "node.labels.ssd == true",
            "node.platform.os == linux",
            "node.role == worker"
        ]
    );
}

// --- ownership -------------------------------------------------------------

fn managed_service(name: &str, owner: &str) -> Value {
    json!({"ID": format!("id-{name}"), "Version": {"Index": 1},
           "Spec": {"Name": name, "Labels": {"dev.bosun.managed-by": "bosun", "dev.bosun.owner": owner},
                    "TaskTemplate": {"ContainerSpec": {"Image": "x"}}, "Mode": {"Replicated": {"Replicas": 1}}}})
}

#[test]
fn prune_removes_only_what_bosun_owns_services_then_configs_then_networks() {
    let d = desired();
    let mut snap = converged(&d);
    let gone = Snapshot::from_json(
        &json!({}),
        &[],
        &[
            json!({"Id": "n-gone", "Name": "gone_default", "Scope": "swarm", "Driver": "overlay",
                   "Labels": {"dev.bosun.managed-by": "bosun", "dev.bosun.owner": "Stack/gone"}}),
            json!({"Id": "n-look", "Name": "gone_lookalike", "Scope": "swarm", "Driver": "overlay",
                   "Labels": {"com.docker.stack.namespace": "gone"}}),
            json!({"Id": "n-oldnet", "Name": "oldnet", "Scope": "swarm", "Driver": "overlay",
                   "Labels": {"dev.bosun.managed-by": "bosun", "dev.bosun.owner": "Network/oldnet"}}),
        ],
        &[
            managed_service("gone_web", "Stack/gone"),
            managed_service("app_removed", "Stack/app"),
            json!({"ID": "id-hand", "Version": {"Index": 1},
                   "Spec": {"Name": "gone_hand", "Labels": {"com.docker.stack.namespace": "gone"},
                            "TaskTemplate": {"ContainerSpec": {"Image": "x"}}}}),
            managed_service("vip_x", "VipPolicy/x"),
        ],
        &[json!({"ID": "c-gone", "Version": {"Index": 1},
                 "Spec": {"Name": "gone_conf-0123abcd", "Labels": {"dev.bosun.managed-by": "bosun", "dev.bosun.owner": "Stack/gone"}}})],
        &[
            json!({"ID": "s-hand", "Version": {"Index": 1}, "Spec": {"Name": "gone_token-0123abcd", "Labels": {}}}),
        ],
        &[],
    );
    snap.networks.extend(gone.networks);
    snap.services.extend(gone.services);
    snap.configs.extend(gone.configs);
    snap.secrets.extend(gone.secrets);

    assert!(
        plan(&d, &snap, &Options::default()).is_empty(),
        "no prune: nothing removed"
    );
    let p = plan(&d, &snap, &Options::default().prune(true));
    assert_eq!(
        kinds(&p),
        [
            "RemoveService gone_web",
            "RemoveService vip_x",
            "RemoveService app_removed",
            "RemoveConfig gone_conf-0123abcd",
            "RemoveNetwork gone_default",
            "RemoveNetwork oldnet",
        ]
    );
    assert_eq!(p.actions[0].reason(), Some("Stack/gone was deleted"));
    // A deleted VipPolicy's keepalived goes too (with prune).
    assert_eq!(p.actions[1].reason(), Some("VipPolicy/x was deleted"));
    assert_eq!(
        p.actions[2].reason(),
        Some("no longer in the compose files of Stack/app")
    );
}

#[test]
fn a_stack_with_prune_false_keeps_services_that_left_its_compose() {
    let mut f = files();
    f[1].1 = f[1]
        .1
        .replace("spec:\n  compose:", "spec:\n  prune: false\n  compose:");
    let d = build_from(&f);
    let mut snap = converged(&d);
    snap.services
        .push(swarm::Object::from_json(&managed_service(
            "app_removed",
            "Stack/app",
        )));
    assert!(plan(&d, &snap, &Options::default().prune(true)).is_empty());
}

#[test]
fn a_name_taken_by_an_unmanaged_object_is_a_conflict_and_nothing_is_planned_for_it() {
    let d = desired();
    let snap = Snapshot::from_json(
        &json!({}),
        &nodes(),
        &[
            json!({"Id": "x", "Name": "traefik-public", "Scope": "swarm", "Driver": "overlay", "Labels": {}}),
        ],
        &[
            json!({"ID": "y", "Version": {"Index": 1}, "Spec": {"Name": "app_web", "Labels": {"com.docker.stack.namespace": "app"}}}),
        ],
        &[],
        &[],
        &[],
    );
    let p = plan(&d, &snap, &Options::default().prune(true));
    assert!(
        !kinds(&p)
            .iter()
            .any(|k| k.ends_with(" traefik-public") || k.ends_with(" app_web")),
        "{:?}",
        kinds(&p)
    );
    let names: Vec<_> = p.errors.iter().map(|e| (e.kind, e.name.as_str())).collect();
    assert_eq!(
        names,
        [
            (Kind::Network, "traefik-public"),
            (Kind::Service, "app_web")
        ]
    );
    assert!(p.errors[0].message.contains("not managed by this bosun"));
    assert!(!p.is_empty());
    assert!(p.render_text(false).contains("error: network traefik-public (Network/traefik-public): a network named `traefik-public` already exists and is not managed by this bosun"));
}

#[test]
fn a_missing_external_network_is_an_error() {
    let mut f = files();
    f.retain(|(n, _)| *n != "networks.yaml");
    let d = build_from(&f);
    let p = plan(&d, &empty_swarm(), &Options::default());
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert_eq!(p.errors[0].name, "traefik-public");
    assert!(p.errors[0].message.contains("external"));
}

// --- configs and secrets --------------------------------------------------------

#[test]
fn a_config_content_change_creates_the_new_version_rolls_the_service_and_removes_the_old() {
    let d = desired();
    let snap = converged(&d);
    let mut f = files();
    f[2].1 = "server { listen 81; }\n".into();
    let d2 = build_from(&f);
    let p = plan(&d2, &snap, &Options::default());
    let k = kinds(&p);
    let old = d.stack("app").expect("app").objects.configs[0].name.clone();
    let new = d2.stack("app").expect("app").objects.configs[0]
        .name
        .clone();
    assert_ne!(old, new);
    assert_eq!(
        k,
        [
            format!("CreateConfig {new}"),
            "UpdateService app_web".into(),
            format!("RemoveConfig {old}"),
        ]
    );
    let change = &p.actions[1].changes();
    assert!(
        change.iter().any(
            |c| c.path == "TaskTemplate.ContainerSpec.Configs[0].ConfigName"
                && c.old == Some(json!(old))
                && c.new == Some(json!(new))
        ),
        "{change:?}"
    );
    assert_eq!(
        p.actions[2].reason(),
        Some(format!("superseded by `{new}`").as_str())
    );
}

#[test]
fn a_superseded_config_still_used_by_another_service_is_kept_with_a_warning() {
    let d = desired();
    let mut snap = converged(&d);
    let old = d.stack("app").expect("app").objects.configs[0].name.clone();
    let mut other = managed_service("other_svc", "Stack/old");
    other["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"] =
        json!([{"ConfigID": format!("id-{old}"), "ConfigName": old}]);
    snap.services.push(swarm::Object::from_json(&other));
    let mut f = files();
    f[2].1 = "changed\n".into();
    let p = plan(&build_from(&f), &snap, &Options::default().prune(true));
    assert!(
        !kinds(&p).iter().any(|k| k.starts_with("RemoveConfig")),
        "{:?}",
        kinds(&p)
    );
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].message.contains("still uses it"));
}

#[test]
fn secret_data_never_appears_in_text_or_json() {
    let d = desired();
    let p = plan(&d, &empty_swarm(), &Options::default());
    let Some(Action::CreateSecret { body, .. }) = p
        .actions
        .iter()
        .find(|a| matches!(a, Action::CreateSecret { .. }))
    else {
        panic!("no secret")
    };
    assert_eq!(body.data, SECRET.as_bytes(), "apply still gets the data");
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    for out in [
        p.render_text(false),
        p.render_text(true),
        p.to_json().to_string(),
        serde_json::to_string(&p).expect("json"),
    ] {
        assert!(!out.contains(SECRET) && !out.contains(&b64), "{out}");
    }
    let json = p.to_json();
    let secret = json["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["action"] == "CreateSecret"))
        .expect("secret action");
    assert_eq!(secret["body"]["Data"], "(secret data)");
}

// --- suspend ---------------------------------------------------------------

#[test]
fn a_suspended_stack_is_neither_updated_nor_pruned() {
    let d = desired();
    assert!(d.stack("old").is_none());
    assert_eq!(d.stack_manifests.get("old"), Some(&true));
    let mut snap = converged(&d);
    let mut old = managed_service("old_x", "Stack/old");
    old["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = json!("drifted:9");
    snap.services.push(swarm::Object::from_json(&old));
    snap.services
        .push(swarm::Object::from_json(&managed_service(
            "old_y",
            "Stack/old",
        )));
    assert!(plan(&d, &snap, &Options::default().prune(true)).is_empty());
}

// --- render --------------------------------------------------------------

#[test]
fn the_text_has_one_line_per_object_colour_only_when_asked_and_a_summary() {
    let d = desired();
    let p = plan(&d, &empty_swarm(), &Options::default());
    let text = p.render_text(false);
    assert!(
        text.starts_with("+ network traefik-public (Network/traefik-public)\n"),
        "{text}"
    );
    assert!(text.contains("~ node worker1 (NodeLabels/racks)\n    + Labels[\"dev.bosun.node-labels\"]: \"rack\"\n    + Labels.rack: \"a\"\n"), "{text}");
    assert!(!text.contains('\x1b'));
    assert!(
        text.ends_with("Plan: 10 to create, 2 to update, 0 to remove.\n"),
        "{text}"
    );
    let colored = p.render_text(true);
    assert!(
        colored.contains("\x1b[32m+ network traefik-public"),
        "{colored}"
    );
    let json = p.to_json();
    assert_eq!(
        json["summary"],
        json!({"create": 10, "update": 2, "remove": 0})
    );
    assert_eq!(json["actions"][0]["action"], "CreateNetwork");
    assert_eq!(json["actions"][0]["owner"], "Network/traefik-public");
}

#[test]
fn every_example_folder_plans_without_errors_and_converges() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("examples")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    for dir in dirs {
        let m = manifest::load(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let d = DesiredState::build(&m, &BTreeMap::new())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let base = empty_swarm();
        let first = plan(&d, &base, &Options::default().prune(true));
        // External objects the examples expect to exist are the only errors.
        for e in &first.errors {
            assert!(e.message.contains("external"), "{}: {e}", dir.display());
        }
        let snap = store(&base, &first);
        let again = plan(&d, &snap, &Options::default().prune(true));
        assert!(
            again.actions.is_empty(),
            "{}:\n{}",
            dir.display(),
            again.render_text(false)
        );
    }
}

// --- scopes ----------------------------------------------------------------

fn scoped_service(name: &str, owner: &str, scope: Option<&str>) -> Value {
    let mut v = managed_service(name, owner);
    if let Some(scope) = scope {
        v["Spec"]["Labels"]["dev.bosun.scope"] = json!(scope);
    }
    v
}

#[test]
fn a_scoped_bosun_labels_what_it_creates_and_converges_on_it() {
    let d = desired().with_scope(Some("team-a"));
    let p = plan(&d, &empty_swarm(), &Options::default().prune(true));
    assert!(!p.actions.is_empty());
    let json = p.to_json().to_string();
    assert!(json.contains("\"dev.bosun.scope\":\"team-a\""), "{json}");
    // What it created is its own: the next plan is empty.
    assert!(plan(&d, &converged(&d), &Options::default().prune(true)).is_empty());
}

#[test]
fn bosun_never_prunes_or_updates_objects_of_another_scope() {
    for (mine, theirs) in [
        (Some("team-a"), None),
        (None, Some("team-b")),
        (Some("team-a"), Some("team-b")),
    ] {
        let d = desired().with_scope(mine);
        let mut snap = converged(&d);
        snap.services.push(swarm::Object::from_json(&scoped_service(
            "gone_web",
            "Stack/gone",
            theirs,
        )));
        let p = plan(&d, &snap, &Options::default().prune(true));
        assert!(p.is_empty(), "{mine:?} pruned {theirs:?}: {:?}", kinds(&p));
        // The same object of its own scope is pruned.
        let mut own = converged(&d);
        own.services.push(swarm::Object::from_json(&scoped_service(
            "gone_web",
            "Stack/gone",
            mine,
        )));
        assert_eq!(
            kinds(&plan(&d, &own, &Options::default().prune(true))),
            ["RemoveService gone_web"]
        );
    }
}

#[test]
fn a_desired_name_held_by_another_scope_is_a_conflict() {
    let d = desired().with_scope(Some("team-a"));
    let mut snap = converged(&d);
    let name = d.stacks[0].objects.services[0].name.clone();
    let taken = service_mut(&mut snap, &name);
    taken
        .meta
        .labels
        .insert("dev.bosun.scope".into(), "team-b".into());
    let p = plan(&d, &snap, &Options::default().prune(true));
    assert!(
        p.errors
            .iter()
            .any(|e| e.name == name && e.message.contains("another `dev.bosun.scope`")),
        "{:?}",
        p.errors
    );
    assert!(
        !p.actions.iter().any(|a| a.name() == name),
        "{:?}",
        kinds(&p)
    );
}

#[test]
fn build_reuses_the_conversion_validation_made_only_for_the_same_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("app.yaml"),
        format!(
            "{H}kind: Stack\nmetadata: {{name: app}}\nspec:\n  compose:\n    services:\n      web:\n        image: \"nginx:${{TAG:-1}}\"\n"
        ),
    )
    .expect("write");
    let image = |state: &DesiredState| {
        state.stacks[0].objects.services[0]
            .task_template
            .container_spec
            .as_ref()
            .map(|c| c.image.clone())
            .unwrap_or_default()
    };
    let env = |tag: &str| BTreeMap::from([("TAG".to_string(), tag.to_string())]);
    let d = manifest::load_with(dir.path(), &env("1.25")).expect("valid");
    assert!(
        d.converted.contains_key("app"),
        "validation kept its conversion"
    );

    let reused = DesiredState::build(&d, &env("1.25")).expect("builds");
    let mut fresh = d.clone();
    fresh.converted.clear();
    let converted = DesiredState::build(&fresh, &env("1.25")).expect("builds");
    assert_eq!(reused, converted, "the kept conversion is the conversion");
    assert_eq!(image(&reused), "nginx:1.25");

    // Other variables: converted again, with them.
    let other = DesiredState::build(&d, &env("2")).expect("builds");
    assert_eq!(image(&other), "nginx:2");
}

// --- rollouts: deferred and held actions ------------------------------------

const CHAIN: &str = "apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: a}
spec:
  compose: {services: {s: {image: a:1}}}
---
apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: b}
spec:
  dependsOn: [Stack/a]
  compose: {services: {s: {image: b:1}}}
---
apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: c}
spec:
  dependsOn: [Stack/b]
  compose: {services: {s: {image: c:1}}}
---
apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: solo}
spec:
  compose: {services: {s: {image: solo:1}}}
";

fn deferred(p: &Plan) -> Vec<(String, String)> {
    p.deferred
        .iter()
        .map(|d| (d.action.name().to_string(), d.reason.clone()))
        .collect()
}

const WAIT_A: &str = "waiting for Stack/a to converge (a_s: 0/1 tasks running)";
const WAIT_B: &str = "waiting for Stack/b to converge";

#[test]
fn stacks_after_a_converging_stack_are_deferred_and_independent_ones_are_not() {
    let d = build_from(&[("s.yaml", CHAIN.to_string())]);
    let mut holds = Holds::default();
    holds
        .waiting
        .insert("a".into(), "a_s: 0/1 tasks running".into());
    let p = plan(&d, &empty_swarm(), &Options::default().holds(holds));
    assert_eq!(
        deferred(&p),
        [
            // Everything of b, its default network too, in plan order.
            ("b_default".to_string(), WAIT_A.to_string()),
            // b has work left: c waits for it in turn.
            ("c_default".to_string(), WAIT_B.to_string()),
            ("b_s".to_string(), WAIT_A.to_string()),
            ("c_s".to_string(), WAIT_B.to_string()),
        ]
    );
    // The converging stack itself and the independent one go on; the
    // default networks of b and c wait with their services.
    let now: Vec<&str> = p.actions.iter().map(Action::name).collect();
    assert!(now.contains(&"a_s") && now.contains(&"solo_s"), "{now:?}");
    assert!(
        !now.iter()
            .any(|n| n.starts_with("b_") || n.starts_with("c_")),
        "{now:?}"
    );
    assert!(!p.is_empty() && !p.is_done());
    let text = p.render_text(false);
    assert!(
        text.contains("+ service b_s (Stack/b) [deferred: waiting for Stack/a to converge")
            && text.contains("deferred until the stacks they wait for converge"),
        "{text}"
    );
    let json = p.to_json();
    assert_eq!(json["deferred"][2]["action"]["name"], "b_s", "{json}");
    assert_eq!(json["deferred"][2]["reason"], WAIT_A);
}

#[test]
fn a_stack_after_one_with_nothing_left_to_do_is_not_deferred() {
    let d = build_from(&[("s.yaml", CHAIN.to_string())]);
    let mut swarm = converged(&d);
    // c's service was changed by hand; b is converged and waits for no one.
    service_mut(&mut swarm, "c_s").spec["TaskTemplate"]["ContainerSpec"]["Image"] = json!("c:2");
    let mut holds = Holds::default();
    holds.waiting.insert("a".into(), String::new());
    let p = plan(&d, &swarm, &Options::default().holds(holds));
    assert!(p.deferred.is_empty(), "{:?}", deferred(&p));
    assert_eq!(only_update(&p).0, "c_s");
}

#[test]
fn a_held_stack_keeps_its_service_updates_back_but_not_its_creates() {
    let d = build_from(&[("s.yaml", CHAIN.to_string())]);
    let mut swarm = converged(&d);
    // Swarm rolled a_s back to an older image; b_s was removed by hand.
    service_mut(&mut swarm, "a_s").spec["TaskTemplate"]["ContainerSpec"]["Image"] = json!("a:0");
    swarm.services.retain(|s| s.meta.name != "solo_s");
    let mut holds = Holds::default();
    holds.held.insert("a".into(), "its rollout failed".into());
    holds
        .held
        .insert("solo".into(), "its rollout failed".into());
    let p = plan(&d, &swarm, &Options::default().holds(holds));
    assert_eq!(
        deferred(&p),
        [("a_s".to_string(), "its rollout failed".to_string())]
    );
    assert_eq!(kinds(&p), ["CreateService solo_s"]);
}

// --- VipPolicy pre-flight against the live nodes -----------------------------

#[test]
fn vip_policies_are_checked_against_the_live_nodes() {
    let vip = |name: &str, selector: &str, extra: &str| {
        format!(
            "{H}kind: VipPolicy\nmetadata: {{name: {name}}}\nspec:\n  address: 10.0.0.{}/24\n  interface: eth0\n  virtualRouterId: {}\n  nodes: {{selector: {selector}}}\n{extra}",
            240 + name.len(),
            10 + name.len()
        )
    };
    let d = build_from(&[
        ("one.yaml", vip("one", "{role: manager}", "")),
        ("none.yaml", vip("none", "{labels: {vip: \"yes\"}}", "")),
        (
            "weights.yaml",
            vip(
                "weights",
                "{hostname: \"*\"}",
                "  checks: [{name: docker, type: docker, weight: 20}]\n",
            )
            .replace(
                "  nodes: {selector: {hostname: \"*\"}}",
                "  nodes: {selector: {hostname: \"*\"}, priorities: {manager1: 200, worker1: 100}}",
            ),
        ),
    ]);
    let mut snap = empty_swarm();
    snap.nodes[0].addr = "10.0.0.2".into();
    snap.nodes[1].addr = "192.168.9.3".into();
    let p = plan(&d, &snap, &Options::default());
    let text: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
    let has = |want: &str| text.iter().any(|w| w.contains(want));
    assert!(
        has("node manager1 (VipPolicy/one): is the only node selected"),
        "{text:#?}"
    );
    assert!(has("node - (VipPolicy/none): selects no node"), "{text:#?}");
    assert!(
        has(
            "node manager1 (VipPolicy/weights): spec.checks[0].weight: when `docker` fails on manager1 (priority 220 while healthy) its priority is 200, not below worker1's 120"
        ),
        "{text:#?}"
    );
    assert!(
        has(
            "node worker1 (VipPolicy/weights): its swarm address 192.168.9.3 is outside 10.0.0.247/24"
        ),
        "{text:#?}"
    );
    assert!(
        !has("node manager1 (VipPolicy/weights): its swarm address"),
        "{text:#?}"
    );
}

// --- VipPolicy deployed as keepalived services ----------------------------

fn vip_files(priorities: &str, checks: &str) -> Vec<(&'static str, String)> {
    vec![
        ("pw", "pw123\n".to_string()),
        (
            "vip.yaml",
            format!(
                "{H}kind: VipPolicy\nmetadata: {{name: front}}\nspec:\n  address: 10.0.0.200/24\n  interface: eth0\n  virtualRouterId: 61\n  auth: {{passwordFile: pw}}\n  nodes: {{selector: {{role: manager}}, priorities: {{{priorities}}}}}\n{checks}"
            ),
        ),
    ]
}

/// Three managers with swarm addresses.
fn three_managers() -> Snapshot {
    let nodes: Vec<Value> = (1..=3)
        .map(|i| {
            json!({"ID": format!("n-m{i}"), "Version": {"Index": 5},
                   "Spec": {"Role": "manager", "Availability": "active", "Labels": {}},
                   "Description": {"Hostname": format!("m{i}")},
                   "Status": {"State": "ready", "Addr": format!("10.0.0.{}", 10 + i)}})
        })
        .collect();
    Snapshot::from_json(&json!({}), &nodes, &[], &[], &[], &[], &[])
}

/// `store` keeps the nodes' addresses.
fn vip_store(base: &Snapshot, p: &Plan) -> Snapshot {
    let mut s = store(base, p);
    s.nodes.clone_from(&base.nodes);
    s
}

#[test]
fn a_vip_policy_is_a_hashed_secret_and_a_pinned_keepalived_service_per_node() {
    let d = build_from(&vip_files("m1: 200, m2: 100, m3: 50", ""));
    let base = three_managers();
    let p = plan(&d, &base, &Options::default());
    let k = kinds(&p);
    assert_eq!(k.len(), 6, "{k:#?}");
    for (i, host) in ["m1", "m2", "m3"].iter().enumerate() {
        assert!(
            k[i].starts_with(&format!("CreateSecret vip-front_{host}-")),
            "{k:#?}"
        );
        assert_eq!(k[3 + i], format!("CreateService vip-front_{host}"));
    }
    let Action::CreateService { body, owner, .. } = &p.actions[3] else {
        panic!("{k:?}")
    };
    assert_eq!(owner.to_string(), "VipPolicy/front");
    let spec = serde_json::to_value(body).expect("json");
    assert_eq!(
        spec["TaskTemplate"]["Placement"]["Constraints"],
        json!(["node.id==n-m1"])
    );
    assert_eq!(
        spec["TaskTemplate"]["Networks"],
        json!([{"Target": "host"}])
    );
    let cs = &spec["TaskTemplate"]["ContainerSpec"];
    assert_eq!(
        cs["CapabilityAdd"],
        json!(["CAP_NET_ADMIN", "CAP_NET_BROADCAST", "CAP_NET_RAW"])
    );
    assert!(
        cs.get("Mounts").is_none(),
        "no docker check, no socket: {cs}"
    );
    assert_eq!(cs["Image"], "bosun/keepalived:2.2");
    assert_eq!(cs["StopGracePeriod"], json!(10_000_000_000_i64));
    assert_eq!(
        cs["Secrets"][0]["File"]["Name"],
        "/etc/keepalived/keepalived.conf"
    );
    assert_eq!(spec["Labels"]["dev.bosun.vip.priority"], "200");
    // The rendered file (with the password) is the secret's data only.
    let Action::CreateSecret { body, .. } = &p.actions[0] else {
        panic!("{k:?}")
    };
    let conf = String::from_utf8(body.data.clone()).expect("utf-8");
    assert!(
        conf.contains("priority 200") && conf.contains("auth_pass pw123"),
        "{conf}"
    );
    assert!(conf.contains("unicast_src_ip 10.0.0.11"), "{conf}");
    let shown = format!("{}{}{d:?}", p.render_text(false), p.to_json());
    assert!(!shown.contains("pw123"), "the password shows: {shown}");
    // What the daemon stores plans to nothing.
    let after = vip_store(&base, &p);
    let again = plan(&d, &after, &Options::default());
    assert!(again.is_empty(), "{}", again.render_text(false));
}

#[test]
fn a_priority_edit_changes_only_that_nodes_secret_and_service() {
    let before = build_from(&vip_files("m1: 200, m2: 100, m3: 50", ""));
    let live = vip_store(
        &three_managers(),
        &plan(&before, &three_managers(), &Options::default()),
    );
    let d = build_from(&vip_files("m1: 200, m2: 100, m3: 60", ""));
    let p = plan(&d, &live, &Options::default());
    let k = kinds(&p);
    assert_eq!(k.len(), 3, "{k:#?}");
    assert!(k[0].starts_with("CreateSecret vip-front_m3-"), "{k:#?}");
    assert_eq!(k[1], "UpdateService vip-front_m3");
    assert!(k[2].starts_with("RemoveSecret vip-front_m3-"), "{k:#?}");
    assert!(
        p.actions[2]
            .reason()
            .is_some_and(|r| r.starts_with("superseded by")),
        "{:?}",
        p.actions[2]
    );
}

#[test]
fn a_node_the_policy_no_longer_selects_loses_its_keepalived_and_a_deleted_policy_only_with_prune() {
    let d = build_from(&vip_files("m1: 200, m2: 100, m3: 50", ""));
    let base = three_managers();
    let mut live = vip_store(&base, &plan(&d, &base, &Options::default()));
    // m3 becomes a worker: not selected any more; m1 and m2 get new peers.
    live.nodes[2].role = "worker".into();
    let p = plan(&d, &live, &Options::default());
    let k = kinds(&p);
    assert!(
        k.contains(&"RemoveService vip-front_m3".to_string()),
        "{k:#?}"
    );
    let removed = p
        .actions
        .iter()
        .find(|a| a.name() == "vip-front_m3")
        .and_then(Action::reason);
    assert_eq!(removed, Some("VipPolicy/front no longer selects this node"));
    assert!(
        k.contains(&"UpdateService vip-front_m1".to_string()),
        "{k:#?}"
    );
    // A policy that selects nothing keeps what runs, with its warning.
    live.nodes.iter_mut().for_each(|n| n.role = "worker".into());
    let p = plan(&d, &live, &Options::default().prune(true));
    assert!(kinds(&p).is_empty(), "{:#?}", kinds(&p));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.message.contains("selects no node"))
    );
    // The policy deleted: removed only with prune.
    let none = build_from(&[(
        "n.yaml",
        format!("{H}kind: Network\nmetadata: {{name: other}}\nspec: {{}}\n"),
    )]);
    let live = vip_store(&base, &plan(&d, &base, &Options::default()));
    let removals = |p: &Plan| {
        kinds(p)
            .into_iter()
            .filter(|k| k.starts_with("Remove"))
            .count()
    };
    assert_eq!(removals(&plan(&none, &live, &Options::default())), 0);
    let p = plan(&none, &live, &Options::default().prune(true));
    assert_eq!(removals(&p), 6, "{:#?}", kinds(&p));
}

#[test]
fn a_docker_check_mounts_the_nodes_socket_read_only() {
    let d = build_from(&vip_files(
        "m1: 200",
        "  checks: [{name: dockerd, type: docker, weight: -150}]\n",
    ));
    let p = plan(&d, &three_managers(), &Options::default());
    let Some(Action::CreateService { body, .. }) = p
        .actions
        .iter()
        .find(|a| matches!(a, Action::CreateService { .. }))
    else {
        panic!("{:#?}", kinds(&p))
    };
    let cs = serde_json::to_value(body).expect("json")["TaskTemplate"]["ContainerSpec"].clone();
    assert_eq!(
        cs["Mounts"],
        json!([{"Type": "bind", "Source": "/var/run/docker.sock",
                "Target": "/var/run/docker.sock", "ReadOnly": true}])
    );
}

#[test]
fn a_vip_policy_selecting_a_label_the_same_folder_sets_is_planned_in_the_same_pass() {
    let mut files = vip_files("m1: 11, m2: 10", "");
    files[1].1 = files[1].1.replace(
        "selector: {role: manager}",
        "selector: {labels: {lb: \"true\"}}",
    );
    files.push((
        "nodes.yaml",
        format!(
            "{H}kind: NodeLabels\nmetadata: {{name: lbs}}\nspec:\n  rules:\n    - selector: {{hostname: m1}}\n      labels: {{lb: \"true\"}}\n    - selector: {{hostname: m2}}\n      labels: {{lb: \"true\"}}\n"
        ),
    ));
    let d = build_from(&files);
    let p = plan(&d, &three_managers(), &Options::default());
    let services: Vec<String> = kinds(&p)
        .into_iter()
        .filter(|k| k.starts_with("CreateService"))
        .collect();
    assert_eq!(
        services,
        ["CreateService vip-front_m1", "CreateService vip-front_m2"]
    );
    assert!(
        !p.warnings
            .iter()
            .any(|w| w.message.contains("selects no node")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn drift_on_a_keepalived_service_is_reverted_like_on_any_other() {
    let d = build_from(&vip_files("m1: 200, m2: 100, m3: 50", ""));
    let base = three_managers();
    let mut live = vip_store(&base, &plan(&d, &base, &Options::default()));
    service_mut(&mut live, "vip-front_m2").spec["TaskTemplate"]["ContainerSpec"]["Image"] =
        json!("keepalived:hand-made");
    let p = plan(&d, &live, &Options::default());
    let (name, changes) = only_update(&p);
    assert_eq!(name, "vip-front_m2");
    assert_eq!(changes[0].path, "TaskTemplate.ContainerSpec.Image");
}

//! The plan's drift check against ground truth.
//!
//! * The default table of `plan::normalize` is complete for the oracle
//!   corpus: for every service the docker CLI created, the request body and
//!   the `.Spec` the daemon stored normalize to the same value (network IDs
//!   mapped back to names, as the plan does with a snapshot).
//! * Every example folder plans cleanly against an empty swarm, and against
//!   a swarm that stores exactly what that plan creates (as the daemon
//!   would), plans to nothing.

use std::path::{Path, PathBuf};

use bosun::plan::{self, Names};
use serde_json::Value;

use super::support;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/oracle")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The network IDs of an inspected spec, mapped to the names the request
/// used (the daemon keeps the attachment order).
fn network_names(request: &Value, inspect: &Value) -> Names {
    let targets = |v: &Value| -> Vec<String> {
        v.pointer("/TaskTemplate/Networks")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.get("Target").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut names = Names::default();
    for (id, name) in targets(inspect).into_iter().zip(targets(request)) {
        names.networks.insert(id, name);
    }
    names
}

#[test]
fn daemon_defaults_normalize_away_for_every_corpus_service() {
    let dir = corpus_dir();
    let stems = support::subdirs(&dir);
    let mut compared = 0;
    let mut failures = Vec::new();
    for stem in &stems {
        let Ok(entries) = std::fs::read_dir(stem.join("requests")) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for req in files {
            let file = req.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            let Some((_, name)) = file.split_once("-services-") else {
                continue;
            };
            let name = name.trim_end_matches(".json");
            let inspect_path = stem.join("inspect").join(format!("{name}.json"));
            if !inspect_path.exists() {
                continue;
            }
            let request = read_json(&req);
            let inspect = read_json(&inspect_path);
            let names = network_names(&request, &inspect);
            let a = plan::normalize::service(&request, &names);
            let b = plan::normalize::service(&inspect, &names);
            let changes = plan::diff(&a, &b);
            if !changes.is_empty() {
                failures.push(format!("{}/{name}: {changes:?}", stem.display()));
            }
            compared += 1;
        }
    }
    assert!(
        compared >= 130,
        "expected the whole corpus, compared {compared}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn normalisation_still_sees_a_real_change_in_every_corpus_service() {
    // The canonical form must not be so lossy that it hides edits.
    let dir = corpus_dir();
    let mut seen = 0;
    for stem in std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(Result::ok)
    {
        let Ok(entries) = std::fs::read_dir(stem.path().join("inspect")) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let inspect = read_json(&e.path());
            let names = Names::default();
            let base = plan::normalize::service(&inspect, &names);
            let mut edited = inspect.clone();
            if let Some(img) = edited.pointer_mut("/TaskTemplate/ContainerSpec/Image") {
                *img = Value::String("other:1".into());
            }
            assert_ne!(
                base,
                plan::normalize::service(&edited, &names),
                "{}",
                e.path().display()
            );
            seen += 1;
        }
    }
    assert!(seen > 0);
}

/// One HTTP/1.0 request to the local daemon; `None` when there is none.
fn docker(method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
    use std::io::{Read, Write};
    let mut sock = std::os::unix::net::UnixStream::connect("/var/run/docker.sock").ok()?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} /v1.41{path} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    sock.read_to_string(&mut out).ok()?;
    let (head, rest) = out.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(rest).unwrap_or(Value::Null)))
}

/// A service and network bosun would create, created on the local daemon
/// (when there is one with an active swarm), read back and planned again:
/// nothing to do. Fails without a daemon: CI always has one.
#[test]
fn what_the_real_daemon_stores_for_a_desired_service_plans_to_nothing() {
    let Some((200, info)) = docker("GET", "/info", None) else {
        panic!("no Docker daemon at /var/run/docker.sock: run scripts/setup-docker.sh");
    };
    assert_eq!(
        info.pointer("/Swarm/ControlAvailable"),
        Some(&Value::Bool(true)),
        "this node is not a swarm manager: run `docker swarm init`"
    );
    let stack = format!("bosunplan{}", std::process::id());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("s.yaml"),
        format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {stack}}}\nspec:\n  compose:\n    services:\n      web:\n        image: busybox:latest\n        command: [sleep, \"3600\"]\n        environment: {{A: \"1\"}}\n        healthcheck: {{test: [CMD, \"true\"], interval: 10s}}\n        deploy:\n          replicas: 0\n          update_config: {{parallelism: 2, order: start-first}}\n          restart_policy: {{condition: on-failure, max_attempts: 3}}\n        ports: [\"18080:80\"]\n"
        ),
    )
    .expect("write");
    let m = bosun::manifest::load(dir.path()).expect("valid");
    let d = plan::DesiredState::build(&m, &std::collections::BTreeMap::new()).expect("build");
    let empty = bosun::swarm::Snapshot::default();
    let first = plan::plan(&d, &empty, &plan::Options::default());
    let mut created = Vec::new();
    for a in &first.actions {
        match a {
            plan::Action::CreateNetwork { body, .. } => {
                let body = serde_json::to_value(body).expect("json");
                if let Some((201, v)) = docker("POST", "/networks/create", Some(&body)) {
                    created.push(format!(
                        "/networks/{}",
                        v["Id"].as_str().unwrap_or_default()
                    ));
                }
            }
            plan::Action::CreateService { body, .. } => {
                let body = serde_json::to_value(body).expect("json");
                if let Some((201, v)) = docker("POST", "/services/create", Some(&body)) {
                    created.insert(
                        0,
                        format!("/services/{}", v["ID"].as_str().unwrap_or_default()),
                    );
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let list = |path: &str| match docker("GET", path, None) {
        Some((200, Value::Array(items))) => items,
        _ => Vec::new(),
    };
    let services: Vec<Value> = list("/services")
        .into_iter()
        .filter(|s| {
            s.pointer("/Spec/Name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with(&stack))
        })
        .collect();
    let snap =
        bosun::swarm::Snapshot::from_json(&info, &[], &list("/networks"), &services, &[], &[], &[]);
    let again = plan::plan(&d, &snap, &plan::Options::default());
    for path in &created {
        let _ = docker("DELETE", path, None);
    }
    assert_eq!(created.len(), 2, "created {created:?}");
    assert!(again.is_empty(), "{}", again.render_text(false));
}

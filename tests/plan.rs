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
    let mut stems: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus/oracle exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    stems.sort();
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

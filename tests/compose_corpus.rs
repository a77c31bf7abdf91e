//! Conformance against the oracle: for every corpus file `docker stack
//! deploy` accepted, the request bodies bosun's converter produces must equal
//! the JSON the docker CLI sent (`corpus/oracle/<stem>/requests/*.json`),
//! field by field. Services, networks, configs and secrets are compared as
//! sets by name (docker creates them in Go map order); `SecretID`/`ConfigID`
//! values are ignored (the daemon assigns them).
//!
//! The oracle ran each file from `/tmp/oracle/run/<stem>/stack` with
//! `support/<stem>/` copied to `/tmp/oracle/run/<stem>/`; we rebuild that tree
//! in a temp dir and map its prefix back before comparing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bosun::compose::{self, LoadOptions};
use serde_json::Value;

use super::support::{self, cases};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// The corpus folder and the environment the oracle deployed it with;
/// fails when the corpus is missing.
fn corpus() -> (PathBuf, BTreeMap<String, String>) {
    let corpus = corpus_dir();
    assert!(
        corpus.join("SOURCES.md").exists(),
        "the corpus is missing at {} (scripts/test.sh skips the corpus tests without it)",
        corpus.display()
    );
    let env = prepare_env(&corpus);
    (corpus, env)
}

fn prepare_env(corpus: &Path) -> BTreeMap<String, String> {
    let mut env = cases::prepare_env(&corpus.join("prepare.env")).expect("prepare.env");
    env.insert("HOME".into(), "/root".into());
    env.insert(
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    );
    env
}

/// The first path where `a` and `b` differ, if any.
#[allow(clippy::many_single_char_names)]
fn first_diff(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_diff(p, q, &format!("{path}.{k}")),
                (Some(_), None) => Some(format!("{path}.{k} (only in bosun)")),
                (None, _) => Some(format!("{path}.{k} (only in docker)")),
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path} (length {} vs {})", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| first_diff(p, q, &format!("{path}[{i}]")))
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(format!("{path} (bosun {a} vs docker {b})")),
    }
}

fn blank_ids(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "SecretID" || k == "ConfigID" {
                    *x = Value::String(String::new());
                } else {
                    blank_ids(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(blank_ids),
        _ => {}
    }
}

/// Expected bodies by kind and name.
fn oracle_requests(dir: &Path) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("requests")) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let mut parts = stem.splitn(3, '-');
        let (_, Some(kind), Some(obj)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(e.path()).expect("read")).expect("json");
        blank_ids(&mut v);
        out.insert((kind.to_string(), obj.to_string()), v);
    }
    out
}

enum Outcome {
    Converted(BTreeMap<(String, String), Value>),
    Failed(String),
}

fn run(corpus: &Path, stem: &str, namespace: &str, env: &BTreeMap<String, String>) -> Outcome {
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = scratch.path().join(stem);
    let files = corpus.join("support").join(stem);
    if files.is_dir() {
        support::copy_tree(&files, &root).expect("copy support files");
    }
    let stack = root.join("stack");
    std::fs::create_dir_all(&stack).expect("mkdir stack");
    let file = format!("{stem}.yml");
    let text = std::fs::read_to_string(corpus.join(&file)).expect("read compose file");
    let opts = LoadOptions::new(&stack).env(env.clone()).home_dir("/root");
    let project = match compose::load_str(&file, &text, &opts) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let objs = match compose::convert(&project, namespace) {
        Ok(o) => o,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let prefix = root.display().to_string();
    let oracle_prefix = format!("/tmp/oracle/run/{stem}");
    let mut out = BTreeMap::new();
    let mut add = |kind: &str, name: &str, v: Value| {
        let text = serde_json::to_string(&v)
            .expect("json")
            .replace(&prefix, &oracle_prefix);
        let mut v: Value = serde_json::from_str(&text).expect("json");
        blank_ids(&mut v);
        out.insert((kind.to_string(), name.to_string()), v);
    };
    for n in &objs.networks {
        add("networks", &n.name, serde_json::to_value(n).expect("json"));
    }
    for c in &objs.configs {
        add("configs", &c.name, serde_json::to_value(c).expect("json"));
    }
    for s in &objs.secrets {
        add("secrets", &s.name, serde_json::to_value(s).expect("json"));
    }
    for s in &objs.services {
        add("services", &s.name, serde_json::to_value(s).expect("json"));
    }
    Outcome::Converted(out)
}

#[test]
fn corpus_conversion_matches_docker_stack_deploy() {
    let (corpus, env) = corpus();
    let mut stems: Vec<String> = std::fs::read_dir(&corpus)
        .expect("corpus dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|f| {
            std::path::Path::new(f)
                .extension()
                .is_some_and(|e| e == "yml")
        })
        .collect();
    // The oracle numbered files in sorted *file name* order (`-global.yml` < `.yml`).
    stems.sort();
    let stems: Vec<String> = stems
        .iter()
        .map(|f| f.trim_end_matches(".yml").to_string())
        .collect();
    assert_eq!(stems.len(), 40, "the corpus has 40 files");
    let mut failures = Vec::new();
    let mut passed = 0;
    for (i, stem) in stems.iter().enumerate() {
        let namespace = format!("corp{}", i + 1);
        let outcome = run(&corpus, stem, &namespace, &env);
        let line = match stem.as_str() {
            "kong__compose-docker-compose" => match &outcome {
                Outcome::Failed(e) if e.contains("Additional property profiles is not allowed") => {
                    format!(
                        "PASS (rejected like docker: {})",
                        e.lines().next().unwrap_or_default()
                    )
                }
                Outcome::Failed(e) => format!("FAIL rejected for another reason: {e}"),
                Outcome::Converted(_) => "FAIL accepted a file docker rejects (profiles)".into(),
            },
            // docker fails client-side on secret4/config4 (only `name:`, so the
            // "file" is the stack directory): "read …/stack: is a directory".
            "docker-cli__full-example" => match &outcome {
                Outcome::Failed(e)
                    if e.contains("is a directory")
                        && (e.contains("secret4") || e.contains("config4")) =>
                {
                    "PASS (rejected like docker: read …/stack: is a directory)".to_string()
                }
                Outcome::Failed(e) => format!("FAIL rejected for another reason: {e}"),
                Outcome::Converted(_) => "FAIL accepted a file docker rejects".into(),
            },
            _ => match outcome {
                Outcome::Failed(e) => format!("FAIL load/convert error: {e}"),
                Outcome::Converted(ours) => {
                    let expected = oracle_requests(&corpus.join("oracle").join(stem));
                    let mut diff = None;
                    for (key, want) in &expected {
                        match ours.get(key) {
                            None => {
                                diff = Some(format!("{}/{} missing from bosun", key.0, key.1));
                                break;
                            }
                            Some(got) => {
                                if let Some(d) =
                                    first_diff(got, want, &format!("{}/{}", key.0, key.1))
                                {
                                    diff = Some(d);
                                    break;
                                }
                            }
                        }
                    }
                    if diff.is_none() {
                        diff = ours
                            .keys()
                            .find(|k| !expected.contains_key(*k))
                            .map(|k| format!("{}/{} not created by docker", k.0, k.1));
                    }
                    match diff {
                        None => "PASS".to_string(),
                        Some(d) => format!("FAIL {d}"),
                    }
                }
            },
        };
        println!("{namespace} {stem}: {line}");
        if line.starts_with("PASS") {
            passed += 1;
        } else {
            failures.push(format!("{stem}: {line}"));
        }
    }
    println!("{passed}/40 corpus files match docker");
    assert!(
        failures.is_empty(),
        "{} corpus files differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A small deterministic generator (no external crates).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

/// Mutate a compose text: drop, duplicate or re-indent a line, truncate,
/// or splice in characters that stress every stage ($, {, :, quotes, tabs).
fn mutate(text: &str, rng: &mut Lcg) -> String {
    const SPLICES: &[&str] = &[
        "$",
        "${",
        "}",
        ":",
        "- ",
        "\t",
        "'",
        "\"",
        "&a",
        "*a",
        "<<: *a",
        "0400",
        "~",
        "[",
        "{",
        "\u{e9}",
        "-1",
        "99999999999999999999",
        ":-",
        "?",
        "\n  x-y: 1\n",
        "null",
        ".5",
    ];
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let i = rng.next(lines.len());
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_string()).collect();
    match rng.next(6) {
        0 => {
            out.remove(i);
        }
        1 => out.insert(i, lines[i].to_string()),
        2 => out[i] = format!("  {}", lines[i]),
        3 => out.truncate(i),
        _ => {
            let line = &lines[i];
            let cut = line
                .char_indices()
                .map(|(p, _)| p)
                .nth(rng.next(line.chars().count() + 1))
                .unwrap_or(line.len());
            out[i] = format!(
                "{}{}{}",
                &line[..cut],
                SPLICES[rng.next(SPLICES.len())],
                &line[cut..]
            );
        }
    }
    out.join("\n")
}

#[test]
fn mutated_corpus_files_never_panic() {
    let (corpus, env) = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = LoadOptions::new(dir.path()).env(env).home_dir("/root");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    let mut rng = Lcg(0x5eed);
    let mut runs = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for _ in 0..40 {
            let mut mutated = text.clone();
            for _ in 0..=rng.next(3) {
                mutated = mutate(&mutated, &mut rng);
            }
            let result = std::panic::catch_unwind(|| {
                if let Ok(p) = compose::load_str("mutated.yml", &mutated, &opts) {
                    let _ = compose::convert(&p, "st");
                }
            });
            assert!(
                result.is_ok(),
                "panic on a mutation of {}:\n{mutated}",
                f.display()
            );
            runs += 1;
        }
    }
    println!("{runs} mutated files loaded without a panic");
}

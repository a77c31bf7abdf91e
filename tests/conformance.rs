//! Conformance: bosun's compose conversion against `docker stack deploy`.
//!
//! For every file of `tests/compose/` and of the shared corpus, the stack is
//! deployed twice into the real swarm — once by the docker CLI (the oracle),
//! once from bosun's conversion through the Engine API — captured, removed,
//! and the two captures are compared field by field after removing only the
//! documented differences (see `support::snapshot`). Files docker rejects must
//! be rejected by bosun too.
//!
//! Needs a reachable dockerd that is a swarm manager and the docker CLI on
//! PATH; fails (never skips) without them. Knobs:
//! `BOSUN_CONFORMANCE_FILTER=substr` runs only matching cases,
//! `BOSUN_CONFORMANCE_JOBS=n` sets parallelism (default 3),
//! `BOSUN_CONFORMANCE_SELFTEST=1` replaces bosun's half by a second docker
//! deploy (checks the harness itself: everything must pass).
//! The full report and per-case diffs go to `target/conformance/`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use serde_json::Value;

use crate::support::cases::{self, Case};
use crate::support::engine::Engine;
use crate::support::snapshot;
use crate::support::stack;

/// Outcome of one case.
struct Verdict {
    name: String,
    pass: bool,
    line: String,
    detail: String,
}

fn check_swarm(engine: &Engine) {
    let info = engine.get("/info").unwrap_or_else(|e| {
        panic!("conformance: no Docker daemon reachable ({e}). Start dockerd and run `docker swarm init` before the tests.")
    });
    let state = info
        .pointer("/Swarm/LocalNodeState")
        .and_then(Value::as_str)
        .unwrap_or("");
    let manager = info
        .pointer("/Swarm/ControlAvailable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    assert!(
        state == "active" && manager,
        "conformance: the Docker daemon is not a swarm manager (LocalNodeState={state:?}, ControlAvailable={manager}). Run `docker swarm init` first."
    );
}

type Half = fn(&Engine, &Case) -> Result<Value, String>;

fn run_case(engine: &Engine, case: &Case, second: Half) -> Verdict {
    let started = Instant::now();
    let verdict = |pass: bool, line: String, detail: String| Verdict {
        name: case.name.clone(),
        pass,
        line: format!("{} ({:.1}s)", line, started.elapsed().as_secs_f64()),
        detail,
    };
    let externals = match stack::create_externals(engine, case) {
        Ok(x) => x,
        Err(e) => {
            return verdict(
                false,
                format!("FAIL {}: harness: {e}", case.name),
                String::new(),
            );
        }
    };
    let docker = stack::docker_half(engine, case);
    let bosun = second(engine, case);
    stack::remove_volumes(engine, &case.namespace);
    if let Err(e) = stack::remove_externals(engine, &externals) {
        return verdict(
            false,
            format!("FAIL {}: harness: {e}", case.name),
            String::new(),
        );
    }
    let name = &case.name;
    match (docker, bosun) {
        (Err(d), Err(b)) if d.starts_with("harness") || b.starts_with("harness") => {
            verdict(false, format!("FAIL {name}: {d} / {b}"), String::new())
        }
        (Err(d), Err(b)) if case.expect_reject || name.starts_with("corpus/") => verdict(
            true,
            format!("PASS {name} (rejected by both)"),
            format!("docker: {d}\nbosun: {b}\n"),
        ),
        (Err(d), Err(b)) => verdict(
            false,
            format!("FAIL {name}: docker rejects it (move it to tests/compose/invalid/): {d}"),
            format!("bosun: {b}\n"),
        ),
        (Err(d), Ok(_)) => verdict(
            false,
            format!("FAIL {name}: docker rejects it ({d}) but bosun deployed it"),
            String::new(),
        ),
        (Ok(_), Err(b)) => verdict(false, format!("FAIL {name}: {b}"), String::new()),
        (Ok(_), Ok(_)) if case.expect_reject => verdict(
            false,
            format!("FAIL {name}: expected a rejection, but docker and bosun both deployed it"),
            String::new(),
        ),
        (Ok(d), Ok(b)) => {
            let diffs = snapshot::diff(&d, &b);
            let detail = format!(
                "{}\n--- docker capture\n{}\n",
                snapshot::render(&diffs),
                serde_json::to_string_pretty(&d).unwrap_or_default()
            );
            match diffs.first() {
                None => verdict(true, format!("PASS {name}"), detail),
                Some(first) => verdict(
                    false,
                    format!(
                        "FAIL {name}: {}: docker={} bosun={}{}",
                        first.path,
                        first.docker,
                        first.bosun,
                        if diffs.len() > 1 {
                            format!(" (+{} more)", diffs.len() - 1)
                        } else {
                            String::new()
                        }
                    ),
                    detail,
                ),
            }
        }
    }
}

/// Run cases on `jobs` threads; cases sharing a global resource key never overlap.
fn run_all(engine: &Engine, cases: Vec<Case>, jobs: usize, second: Half) -> Vec<Verdict> {
    struct Queue {
        pending: Vec<Arc<Case>>,
        held: BTreeSet<String>,
    }
    let total = cases.len();
    let queue = Arc::new((
        Mutex::new(Queue {
            pending: cases.into_iter().map(Arc::new).collect(),
            held: BTreeSet::new(),
        }),
        Condvar::new(),
    ));
    let results = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            let queue = Arc::clone(&queue);
            let results = Arc::clone(&results);
            s.spawn(move || {
                loop {
                    let (lock, cv) = &*queue;
                    let case = {
                        let mut q = lock.lock().expect("queue lock");
                        loop {
                            if q.pending.is_empty() {
                                break None;
                            }
                            if let Some(i) =
                                q.pending.iter().position(|c| c.keys.is_disjoint(&q.held))
                            {
                                let c = q.pending.remove(i);
                                q.held.extend(c.keys.iter().cloned());
                                break Some(c);
                            }
                            q = cv.wait(q).expect("queue lock");
                        }
                    };
                    let Some(case) = case else { return };
                    let v = run_case(engine, &case, second);
                    {
                        let mut q = lock.lock().expect("queue lock");
                        for k in &case.keys {
                            q.held.remove(k);
                        }
                        cv.notify_all();
                    }
                    let mut r = results.lock().expect("results lock");
                    r.push(v);
                    println!(
                        "[{}/{total}] {}",
                        r.len(),
                        r.last().map_or("", |v| v.line.as_str())
                    );
                }
            });
        }
    });
    let mut v = Arc::try_unwrap(results)
        .ok()
        .expect("threads joined")
        .into_inner()
        .expect("results lock");
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

#[test]
fn every_compose_file_deploys_like_docker_stack_deploy() {
    let engine = Engine::from_env().unwrap_or_else(|e| panic!("conformance: {e}"));
    check_swarm(&engine);
    // One corpus run per machine at a time (global names, fixed ports).
    let _lock = super::support::corpus_lock();

    let filter = std::env::var("BOSUN_CONFORMANCE_FILTER").ok();
    let jobs = std::env::var("BOSUN_CONFORMANCE_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(3);
    let selftest = std::env::var("BOSUN_CONFORMANCE_SELFTEST").is_ok_and(|v| v == "1");
    let prefix = format!("cf{}", std::process::id());
    let cases =
        cases::discover(&prefix, filter.as_deref()).unwrap_or_else(|e| panic!("conformance: {e}"));
    assert!(
        !cases.is_empty(),
        "conformance: no case matches filter {filter:?}"
    );
    let second: Half = if selftest {
        stack::docker_half
    } else {
        crate::support::bosun::bosun_half
    };

    let started = Instant::now();
    let verdicts = run_all(&engine, cases, jobs, second);
    let out_dir = cases::manifest_dir().join("target/conformance");
    let _ = std::fs::remove_dir_all(&out_dir);
    let _ = std::fs::create_dir_all(&out_dir);
    let mut report = String::new();
    for v in &verdicts {
        let _ = writeln!(report, "{}", v.line);
        let file = out_dir.join(format!("{}.txt", v.name.replace('/', "__")));
        let _ = std::fs::write(file, format!("{}\n\n{}", v.line, v.detail));
    }
    let failed = verdicts.iter().filter(|v| !v.pass).count();
    let _ = writeln!(
        report,
        "conformance: {} passed, {failed} failed, {:.0}s{}",
        verdicts.len() - failed,
        started.elapsed().as_secs_f64(),
        if selftest {
            " (SELFTEST: docker vs docker)"
        } else {
            ""
        }
    );
    let _ = std::fs::write(out_dir.join("report.txt"), &report);
    println!("{report}");
    assert!(
        failed == 0,
        "conformance failures (details in {}):\n{report}",
        out_dir.display()
    );
}

//! The long-running controller, `bosun run` (the release binary), against a
//! real swarm.
//!
//! `cargo bench --bench run` (root: it brings up its own 1-node sandbox
//! `benchrun`, so nothing else disturbs the daemon, and removes it at the
//! end, also on panic) measures:
//!
//! - **file save → converged**: `bosun run --dir D` over a Stack of
//!   `LATENCY_SERVICES` services; one service's environment value is changed
//!   in the compose file, saved the way editors do (a temporary file renamed
//!   over the original) and in place (truncate and write); the time from
//!   the save until the swarm's service spec shows the new value, polling
//!   `GET /services/<name>` every `POLL`;
//! - **drift → reverted**: the same instance; a service is changed by hand
//!   through the API (an added environment variable, `docker service update
//!   --env-add` at the API level, with the version index read just before);
//!   the time from that update until the spec equals the one bosun wrote
//!   again; and once with the hand edit made right after a pass, while the
//!   pass's own events still arrive (is it reverted within 10 s?);
//! - **rollouts**: `bosun run --dir` over a stack `stuck` whose image cannot
//!   be pulled (its rollout waits up to the default 5 minutes) and a stack
//!   `other` of one running service: a hand-made change of `other` while
//!   `stuck` is stuck, until reverted; and `stuck`'s file fixed (a runnable
//!   image), until its spec shows the fix and until a task of the fixed spec
//!   runs;
//! - **webhook → converged**: `bosun run --git file://…bare.git --interval
//!   1h --webhook-secret-file F`; a commit changing a service is pushed, then
//!   a GitHub-signed `POST /hooks/git` is sent; the time from the request
//!   until the swarm shows the change;
//! - **idle CPU and memory**: `bosun run --dir` managing `IDLE_SERVICES`
//!   services, once converged: `utime + stime` from `/proc/<pid>/stat` and
//!   `VmRSS` / `VmHWM` from `/proc/<pid>/status` over an idle window of
//!   `BOSUN_BENCH_IDLE_SECS` (default 300 s). bosun's defaults are kept:
//!   the lease is renewed every 5 s and the resync (every 5 min) falls into
//!   a 300 s window once.
//!
//! Each latency is the median and the maximum of `ROUNDS` rounds. Between
//! rounds the bench waits until bosun's pass has finished and no other
//! pass followed for `SETTLE`, and records how many passes each round took
//! (one is expected: more would mean a pass per event of a burst, or an
//! echo of bosun's own write taken for drift).
//!
//! Services have `replicas: 0` but in the rollouts part: the figures are the
//! controller's (notice, load, observe, plan, update), not container
//! start-up.
//!
//! `cargo bench --bench run -- latency` runs the three latency parts (or one
//! of them: `file`, `drift`, `webhook`), `-- rollouts` the rollouts part,
//! `-- idle` the idle part; no argument runs everything. Only `cargo bench` runs it (cargo passes
//! `--bench`): `cargo test --benches` and `-- --list` do nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::Value;
use sha2::Sha256;

use bosun::sandbox;

mod common;

#[path = "../tests/support/local_http.rs"]
mod local_http;
use bosun::swarm::{Api as _, Client, Filters, Kind};

const SANDBOX: &str = "benchrun";
/// Rounds of each latency measurement (median and max reported).
const ROUNDS: usize = 10;
/// Services of the stack the latency parts change.
const LATENCY_SERVICES: usize = 5;
/// Services bosun manages in the idle part.
const IDLE_SERVICES: usize = 100;
/// The idle window unless `BOSUN_BENCH_IDLE_SECS` says otherwise.
const IDLE_SECS: u64 = 300;
/// How often the bench reads the service it waits for.
const POLL: Duration = Duration::from_millis(5);
/// The longest a single round may take before the bench gives up.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long no pass may follow a round's pass for the round to be over
/// (bosun has no settle window since it tells its echoes by content), plus
/// a margin: a hand-made change inside it would wait for the resync.
const SETTLE: Duration = Duration::from_millis(2500);
const STACK: &str = "lat";
const IDLE_STACK: &str = "idle";
const SECRET: &str = "bench-webhook-secret";

// --- manifests -------------------------------------------------------------

/// A compose file of `values.len()` services `svcN`, each with its
/// environment value `ROUND=values[N]`.
fn compose(values: &[u64]) -> String {
    let mut s = String::from("services:\n");
    for (i, v) in values.iter().enumerate() {
        let _ = write!(
            s,
            "  svc{i:03}:\n    image: {image}\n    command: [sleep, \"3600\"]\n\
             \x20   environment:\n      INDEX: \"{i}\"\n      ROUND: \"{v}\"\n\
             \x20   deploy:\n      replicas: 0\n      labels:\n        bench.index: \"{i}\"\n",
            image = sandbox::image::IMAGE,
        );
    }
    s
}

/// The Stack manifest over `docker-compose.yml` (bosun's defaults, but no
/// registry to resolve images from).
fn manifest(stack: &str) -> String {
    format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {stack}}}\n\
         spec: {{composeFiles: [docker-compose.yml], resolveImage: never}}\n"
    )
}

fn service(stack: &str, i: usize) -> String {
    format!("{stack}_svc{i:03}")
}

/// How the compose file is saved.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Save {
    /// Write a temporary file next to it and rename it over (most editors,
    /// `sed -i`, config management).
    Rename,
    /// Truncate and write the file itself (`echo >`, some editors).
    InPlace,
}

fn save(file: &Path, text: &str, how: Save) {
    match how {
        Save::Rename => {
            let tmp = file.with_extension("yml.tmp");
            std::fs::write(&tmp, text).expect("write temporary file");
            std::fs::rename(&tmp, file).expect("rename over");
        }
        Save::InPlace => std::fs::write(file, text).expect("write in place"),
    }
}

// --- the bosun process -----------------------------------------------------

/// A running `bosun run`; stopped with SIGTERM (killed if need be) on drop.
struct Bosun {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Bosun {
    fn start(host: &str, scratch: &Path, name: &str, args: &[&str]) -> Bosun {
        let port = local_http::free_port();
        let log = scratch.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_bosun"))
            .arg("run")
            .args(args)
            .args(["--listen", &listen, "--instance-id", name])
            .env("DOCKER_HOST", host)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start bosun run");
        let b = Bosun { child, port, log };
        b.wait_until("/healthz", Duration::from_secs(20), |b| {
            b.get("/healthz").is_some_and(|(s, _)| s == 200)
        });
        b
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        local_http::get(self.port, path)
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
        let mut headers = headers.to_vec();
        headers.push(("Content-Type", "application/json"));
        local_http::post(self.port, path, &headers, body)
    }

    /// The sum of every series of a counter (`bosun_passes_total`).
    fn counter(&self, name: &str) -> u64 {
        let (_, body) = self.get("/metrics").unwrap_or_default();
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    fn passes(&self) -> u64 {
        self.counter("bosun_passes_total")
    }

    /// How long the last pass took, by bosun's own clock (`/status`).
    fn last_pass(&self) -> Duration {
        let ms = self
            .get("/status")
            .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok())
            .and_then(|s| s.pointer("/lastPass/durationMs")?.as_u64())
            .unwrap_or(0);
        Duration::from_millis(ms)
    }

    fn wait_until(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Bosun) -> bool) {
        let start = Instant::now();
        while !f(self) {
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; bosun's log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until a pass after `before` passes has finished and no other
    /// followed within the settle window; the number of passes since, and
    /// how long the last of them took.
    fn settled(&self, before: u64) -> Round {
        self.wait_until("the pass to finish", ROUND_TIMEOUT, |b| b.passes() > before);
        loop {
            let n = self.passes();
            std::thread::sleep(SETTLE);
            if self.passes() == n {
                return Round {
                    passes: n - before,
                    pass: self.last_pass(),
                };
            }
        }
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bosun did not stop on SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bosun {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.stop();
        }
    }
}

/// What bosun did in one round.
struct Round {
    passes: u64,
    /// The duration of its (last) pass.
    pass: Duration,
}

// --- the swarm side --------------------------------------------------------

async fn inspect(api: &Client, name: &str) -> Value {
    api.inspect(Kind::Service, name)
        .await
        .unwrap_or_else(|e| panic!("inspect {name}: {e}"))
}

fn env_of(service: &Value) -> Vec<String> {
    service
        .pointer("/Spec/TaskTemplate/ContainerSpec/Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Poll the service until `done` holds; the time from `start`.
async fn until(
    api: &Client,
    name: &str,
    start: Instant,
    bosun: &Bosun,
    mut done: impl FnMut(&Value) -> bool,
) -> Duration {
    loop {
        if let Ok(svc) = api.inspect(Kind::Service, name).await
            && done(&svc)
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < ROUND_TIMEOUT,
            "{name} did not change within {ROUND_TIMEOUT:?}; bosun's log:\n{}",
            bosun.log_tail()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until every `services` of `stack` exist.
async fn deployed(api: &Client, stack: &str, services: usize, bosun: &Bosun) {
    let filters = Filters::none().with("label", &format!("com.docker.stack.namespace={stack}"));
    let start = Instant::now();
    while api
        .list(Kind::Service, &filters)
        .await
        .map_or(0, |l| l.len())
        < services
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "stack {stack} not deployed; bosun's log:\n{}",
            bosun.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Remove every service and network bosun created and wait until they are
/// gone, so that the next part starts on an idle daemon.
async fn clear(api: &Client) {
    let ours = Filters::none().with("label", "dev.bosun.managed-by=bosun");
    for s in api.list(Kind::Service, &ours).await.expect("list services") {
        if let Some(id) = s.get("ID").and_then(Value::as_str) {
            let _ = api.remove(Kind::Service, id).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let services = api.list(Kind::Service, &ours).await.expect("list");
        let networks = api.list(Kind::Network, &ours).await.expect("list");
        if services.is_empty() && networks.is_empty() {
            return;
        }
        for n in &networks {
            if let Some(id) = n.get("Id").and_then(Value::as_str) {
                let _ = api.remove(Kind::Network, id).await;
            }
        }
        assert!(Instant::now() < deadline, "bosun's objects not removed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// --- figures ---------------------------------------------------------------

struct Row {
    scenario: String,
    figure: String,
    target: String,
    met: String,
}

impl Row {
    fn new(scenario: impl Into<String>, figure: impl Into<String>) -> Row {
        Row {
            scenario: scenario.into(),
            figure: figure.into(),
            target: "—".into(),
            met: "—".into(),
        }
    }

    fn target(mut self, target: &str, met: bool) -> Row {
        self.target = target.into();
        self.met = if met { "met" } else { "NOT met" }.into();
        self
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median and max of the rounds' latencies, the median pass duration and
/// the most passes one round took.
fn latency_row(scenario: &str, v: Vec<Duration>, rounds: &[Round]) -> Row {
    let passes: Vec<u64> = rounds.iter().map(|r| r.passes).collect();
    let most = passes.iter().copied().max().unwrap_or(0);
    let pass = median(rounds.iter().map(|r| r.pass).collect());
    eprintln!("{scenario}: {v:?}, passes per round {passes:?}");
    let (min, max) = (
        v.iter().min().copied().unwrap_or_default(),
        v.iter().max().copied().unwrap_or_default(),
    );
    let n = v.len();
    Row::new(
        format!("{scenario} ({n} rounds)"),
        format!(
            "median {}, max {} (min {}); bosun's last pass of the round (median) {}; at most {most} pass{} per round",
            ms(median(v)),
            ms(max),
            ms(min),
            ms(pass),
            if most == 1 { "" } else { "es" }
        ),
    )
}

// --- the parts -------------------------------------------------------------

/// Which parts run.
#[derive(Clone, Copy)]
struct Parts {
    file: bool,
    drift: bool,
    webhook: bool,
    rollouts: bool,
    idle: bool,
}

/// File saves and hand-made drift, on one `bosun run --dir`.
async fn dir_latency(host: &str, api: &Client, scratch: &Path, parts: Parts) -> Vec<Row> {
    let dir = scratch.join("latency");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("docker-compose.yml");
    let mut values = vec![0; LATENCY_SERVICES];
    std::fs::write(&file, compose(&values)).expect("write compose");
    std::fs::write(dir.join("stack.yaml"), manifest(STACK)).expect("write manifest");
    let b = Bosun::start(
        host,
        scratch,
        "latency",
        &["--dir", dir.to_str().expect("utf-8")],
    );
    deployed(api, STACK, LATENCY_SERVICES, &b).await;
    b.settled(0);
    let mut rows = Vec::new();
    let mut counter = 0;

    let saves: &[(Save, &str)] = if parts.file {
        &[
            (Save::Rename, "file save → converged, rename over"),
            (Save::InPlace, "file save → converged, in place"),
        ]
    } else {
        &[]
    };
    for &(how, scenario) in saves {
        let (mut took, mut rounds) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let i = round % LATENCY_SERVICES;
            counter += 1;
            values[i] = counter;
            let text = compose(&values);
            let want = format!("ROUND={counter}");
            let before = b.passes();
            let start = Instant::now();
            save(&file, &text, how);
            let name = service(STACK, i);
            took.push(until(api, &name, start, &b, |s| env_of(s).contains(&want)).await);
            rounds.push(b.settled(before));
        }
        rows.push(latency_row(scenario, took, &rounds));
    }

    if parts.drift {
        let (mut took, mut rounds) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let name = service(STACK, round % LATENCY_SERVICES);
            let before = b.passes();
            let desired = hand_edit(api, &name, &round.to_string()).await;
            // The change is in the store once the update returned.
            let start = Instant::now();
            took.push(until(api, &name, start, &b, |s| s.get("Spec") == Some(&desired)).await);
            rounds.push(b.settled(before));
        }
        rows.push(latency_row(
            "drift (hand-made `--env-add`) → reverted",
            took,
            &rounds,
        ));
        rows.push(drift_after_a_pass(api, &b, &file, &mut values, &mut counter).await);
    }
    drop(b);
    clear(api).await;
    rows
}

/// Add `DRIFT=<tag>` to a service's environment by hand (what `docker
/// service update --env-add` sends), with the version index just read;
/// returns the spec before the change.
async fn hand_edit(api: &Client, name: &str, tag: &str) -> Value {
    let svc = inspect(api, name).await;
    let desired = svc.get("Spec").cloned().expect("Spec");
    let id = svc.get("ID").and_then(Value::as_str).expect("ID");
    let version = svc
        .pointer("/Version/Index")
        .and_then(Value::as_u64)
        .expect("Version.Index");
    let mut spec = desired.clone();
    spec.pointer_mut("/TaskTemplate/ContainerSpec/Env")
        .and_then(Value::as_array_mut)
        .expect("Env")
        .push(format!("DRIFT={tag}").into());
    api.update(Kind::Service, id, version, &spec)
        .await
        .expect("hand-made update");
    desired
}

/// A hand-made change right after a pass, while the pass's own events
/// still arrive: is it reverted within `PROBE`?
async fn drift_after_a_pass(
    api: &Client,
    b: &Bosun,
    file: &Path,
    values: &mut [u64],
    counter: &mut u64,
) -> Row {
    const PROBE: Duration = Duration::from_secs(10);
    let name = service(STACK, 0);
    *counter += 1;
    values[0] = *counter;
    let before = b.passes();
    save(file, &compose(values), Save::Rename);
    b.wait_until("the pass to finish", ROUND_TIMEOUT, |b| b.passes() > before);
    let desired = hand_edit(api, &name, "probe").await;
    let start = Instant::now();
    let mut reverted = None;
    while start.elapsed() < PROBE {
        if inspect(api, &name).await.get("Spec") == Some(&desired) {
            reverted = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    // Leave the stack as wanted: a new revision's pass reverts it.
    *counter += 1;
    values[0] = *counter;
    let before = b.passes();
    save(file, &compose(values), Save::Rename);
    b.settled(before);
    assert!(
        !env_of(&inspect(api, &name).await)
            .iter()
            .any(|e| e.starts_with("DRIFT=")),
        "the probe's drift outlived a pass"
    );
    eprintln!("drift right after a pass: reverted {reverted:?}");
    Row::new(
        "drift made right after a pass (its own events still arriving) → reverted",
        match reverted {
            Some(d) => format!("reverted after {}", ms(d)),
            None => format!("not reverted within {} s", PROBE.as_secs()),
        },
    )
}

/// A stack of one service `app` running `image`, `wait` at its default.
fn rollout_stack(stack: &str, image: &str, round: usize) -> String {
    format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {stack}}}\n\
         spec:\n  resolveImage: never\n  compose:\n    services:\n      app:\n\
         \x20       image: {image}\n        command: [sleep, \"3600\"]\n\
         \x20       environment: {{ROUND: \"{round}\"}}\n"
    )
}

/// An image no node can pull: its registry is a closed port on loopback.
fn unpullable(round: usize) -> String {
    format!("127.0.0.1:9/bench-missing:{round}")
}

/// The `/status` rollout state of `Stack/<stack>` (`progressing`, …).
fn rollout_state(b: &Bosun, stack: &str) -> String {
    let want = format!("Stack/{stack}");
    b.get("/status")
        .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
        .and_then(|s| {
            s["rollouts"]
                .as_array()?
                .iter()
                .find(|r| r["stack"] == want.as_str())
                .and_then(|r| r["state"].as_str().map(str::to_string))
        })
        .unwrap_or_default()
}

/// Whether a task of the service's current spec runs.
async fn runs_current_spec(api: &Client, id: &str) -> bool {
    let filters = Filters::none()
        .with("service", id)
        .with("desired-state", "running")
        .with("_up-to-date", "true");
    api.list(Kind::Task, &filters).await.is_ok_and(|tasks| {
        tasks
            .iter()
            .any(|t| t.pointer("/Status/State").and_then(Value::as_str) == Some("running"))
    })
}

/// While a rollout is stuck: drift on another stack, and the fix of the
/// stuck one.
async fn rollout_latency(host: &str, api: &Client, scratch: &Path) -> Vec<Row> {
    let dir = scratch.join("rollouts");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let image = sandbox::image::IMAGE;
    let stuck_file = dir.join("stuck.yaml");
    std::fs::write(&stuck_file, rollout_stack("stuck", &unpullable(0), 0)).expect("write");
    std::fs::write(dir.join("other.yaml"), rollout_stack("other", image, 0)).expect("write");
    let b = Bosun::start(
        host,
        scratch,
        "rollouts",
        &["--dir", dir.to_str().expect("utf-8")],
    );
    b.wait_until("stuck to be progressing", ROUND_TIMEOUT, |b| {
        rollout_state(b, "stuck") == "progressing"
    });
    b.wait_until("other to converge", ROUND_TIMEOUT, |b| {
        rollout_state(b, "other") == "ready"
    });
    b.settled(0);
    let mut rows = Vec::new();

    let (mut took, mut rounds) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let before = b.passes();
        let desired = hand_edit(api, "other_app", &round.to_string()).await;
        let start = Instant::now();
        took.push(
            until(api, "other_app", start, &b, |s| {
                s.get("Spec") == Some(&desired)
            })
            .await,
        );
        rounds.push(b.settled(before));
        assert_eq!(rollout_state(&b, "stuck"), "progressing");
    }
    rows.push(latency_row(
        "drift while another stack's rollout is stuck → reverted",
        took,
        &rounds,
    ));

    let (mut spec, mut running, mut rounds) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        // Stuck again, on a new unpullable revision.
        std::fs::write(
            &stuck_file,
            rollout_stack("stuck", &unpullable(round), round),
        )
        .expect("write");
        let bad = unpullable(round);
        until(api, "stuck_app", Instant::now(), &b, |s| {
            s.pointer("/Spec/TaskTemplate/ContainerSpec/Image") == Some(&Value::from(bad.as_str()))
        })
        .await;
        b.wait_until("stuck to be progressing", ROUND_TIMEOUT, |b| {
            rollout_state(b, "stuck") == "progressing"
        });
        b.settled(b.passes().saturating_sub(1));
        // The fix.
        let before = b.passes();
        let start = Instant::now();
        save(
            &stuck_file,
            &rollout_stack("stuck", image, round),
            Save::Rename,
        );
        spec.push(
            until(api, "stuck_app", start, &b, |s| {
                s.pointer("/Spec/TaskTemplate/ContainerSpec/Image") == Some(&Value::from(image))
            })
            .await,
        );
        let id = inspect(api, "stuck_app").await["ID"]
            .as_str()
            .expect("ID")
            .to_string();
        while !runs_current_spec(api, &id).await {
            assert!(
                start.elapsed() < ROUND_TIMEOUT,
                "the fixed stack did not run; bosun's log:\n{}",
                b.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
        running.push(start.elapsed());
        rounds.push(b.settled(before));
    }
    rows.push(latency_row(
        "fix saved while its rollout is stuck → spec updated",
        spec,
        &rounds,
    ));
    rows.push(latency_row(
        "fix saved while its rollout is stuck → a task of the fix runs",
        running,
        &rounds,
    ));
    drop(b);
    clear(api).await;
    rows
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@bosun.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn commit_and_push(work: &Path, values: &[u64], message: &str) {
    std::fs::write(work.join("docker-compose.yml"), compose(values)).expect("write");
    git(work, &["add", "-A"]);
    git(work, &["commit", "-qm", message]);
    git(work, &["push", "-q", "origin", "main"]);
}

/// The GitHub signature header of `body`, computed here rather than by
/// bosun's own helper.
fn github_signature(body: &[u8], secret: &[u8]) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    let mut out = String::from("sha256=");
    for b in mac.finalize().into_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

async fn webhook_latency(host: &str, api: &Client, scratch: &Path) -> Vec<Row> {
    let root = scratch.join("git");
    let bare = root.join("remote.git");
    let work = root.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(
        &root,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            bare.to_str().expect("utf-8"),
        ],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    git(
        &work,
        &["remote", "add", "origin", bare.to_str().expect("utf-8")],
    );
    std::fs::write(work.join("stack.yaml"), manifest(STACK)).expect("write");
    let mut values = vec![0; LATENCY_SERVICES];
    commit_and_push(&work, &values, "initial");
    let secret = root.join("webhook-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("write secret");
    let url = format!("file://{}", bare.display());
    let checkout = root.join("checkout");
    let b = Bosun::start(
        host,
        scratch,
        "webhook",
        &[
            "--git",
            &url,
            "--ref",
            "main",
            "--interval",
            "1h",
            "--checkout-dir",
            checkout.to_str().expect("utf-8"),
            "--webhook-secret-file",
            secret.to_str().expect("utf-8"),
        ],
    );
    deployed(api, STACK, LATENCY_SERVICES, &b).await;
    b.settled(0);
    let (mut took, mut rounds) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let i = round % LATENCY_SERVICES;
        values[i] = round as u64 + 1;
        commit_and_push(&work, &values, &format!("round {round}"));
        let want = format!("ROUND={}", values[i]);
        let body = format!(
            r#"{{"ref":"refs/heads/main","repository":{{"full_name":"bench/cluster"}},"head_commit":{{"message":"round {round}"}}}}"#
        );
        let signature = github_signature(body.as_bytes(), SECRET.as_bytes());
        let before = b.passes();
        let start = Instant::now();
        let (code, reply) = b
            .post(
                "/hooks/git",
                &[
                    ("X-GitHub-Event", "push"),
                    ("X-Hub-Signature-256", &signature),
                ],
                &body,
            )
            .expect("POST /hooks/git");
        assert_eq!(code, 202, "webhook refused: {reply}");
        let name = service(STACK, i);
        took.push(until(api, &name, start, &b, |s| env_of(s).contains(&want)).await);
        rounds.push(b.settled(before));
    }
    drop(b);
    clear(api).await;
    vec![latency_row(
        "webhook (signed `POST /hooks/git`) → converged",
        took,
        &rounds,
    )]
}

/// `/proc/<pid>/stat` fields 14 and 15: user and system time, in ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    utime + stime
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn mib(kib: u64) -> String {
    let kib = f64::from(u32::try_from(kib).unwrap_or(u32::MAX));
    format!("{:.1} MiB", kib / 1024.0)
}

async fn idle(host: &str, api: &Client, scratch: &Path, window: Duration) -> Vec<Row> {
    let dir = scratch.join("idle");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("docker-compose.yml"),
        compose(&vec![0; IDLE_SERVICES]),
    )
    .expect("write compose");
    std::fs::write(dir.join("stack.yaml"), manifest(IDLE_STACK)).expect("write manifest");
    let b = Bosun::start(
        host,
        scratch,
        "idle",
        &["--dir", dir.to_str().expect("utf-8")],
    );
    deployed(api, IDLE_STACK, IDLE_SERVICES, &b).await;
    b.settled(0);
    let pid = b.pid();
    let tck = clock_ticks();
    let passes = b.passes();
    let requests = b.counter("bosun_api_requests_total");
    let rss_start = status_kib(pid, "VmRSS");
    let ticks = cpu_ticks(pid);
    let start = Instant::now();
    let mut rss_peak = rss_start;
    eprintln!(
        "idle: {IDLE_SERVICES} services converged; sampling for {}s",
        window.as_secs()
    );
    while start.elapsed() < window {
        let left = window.saturating_sub(start.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        rss_peak = rss_peak.max(status_kib(pid, "VmRSS"));
    }
    let elapsed = start.elapsed();
    let cpu_ticks_used = cpu_ticks(pid) - ticks;
    let rss_end = status_kib(pid, "VmRSS");
    let hwm = status_kib(pid, "VmHWM");
    let passes = b.passes() - passes;
    let requests = b.counter("bosun_api_requests_total") - requests;
    let cpu = Duration::from_millis(cpu_ticks_used * 1000 / tck);
    let percent = cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0;
    let mib_limit = 50 * 1024;
    eprintln!(
        "idle: {cpu:?} CPU in {elapsed:?}, RSS {rss_start}→{rss_end} KiB (peak {rss_peak}, HWM {hwm}), \
         {passes} passes, {requests} API requests"
    );
    drop(b);
    clear(api).await;
    let secs = elapsed.as_secs();
    vec![
        Row::new(
            format!("idle CPU, {IDLE_SERVICES} services, {secs} s window"),
            format!(
                "{percent:.3} % of one core ({} ms CPU); {passes} pass{} in the window (resync every 5 min), \
                 {requests} API requests (lease renewals every 5 s, the pass)",
                cpu.as_millis(),
                if passes == 1 { "" } else { "es" }
            ),
        )
        .target("< 1 % of a core", percent < 1.0),
        Row::new(
            format!("idle RSS, {IDLE_SERVICES} services, {secs} s window"),
            format!(
                "end {}, peak in window {}; VmHWM since start {}",
                mib(rss_end),
                mib(rss_peak),
                mib(hwm)
            ),
        )
        .target("< 50 MiB", rss_peak.max(hwm) < mib_limit),
    ]
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--list") {
        // `cargo test --benches`, `cargo bench -- --list`: nothing to run
        // or list; only `cargo bench` (which passes `--bench`) measures.
        return;
    }
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = words.is_empty();
    let has = |w: &str| words.contains(&w);
    let parts = Parts {
        file: all || has("latency") || has("file"),
        drift: all || has("latency") || has("drift"),
        webhook: all || has("latency") || has("webhook"),
        rollouts: all || has("rollouts"),
        idle: all || has("idle"),
    };
    let window = Duration::from_secs(
        std::env::var("BOSUN_BENCH_IDLE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(IDLE_SECS),
    );
    let command = std::iter::once("cargo bench --bench run".to_string())
        .chain((!words.is_empty()).then(|| format!("-- {}", words.join(" "))))
        .collect::<Vec<_>>()
        .join(" ");
    let started = shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let load_before = shell("uptime", &[]);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _teardown = common::guard(&rt, SANDBOX);
    let scratch = tempfile::tempdir().expect("tempdir");
    let rows = rt.block_on(async {
        let sandbox = common::up(SANDBOX).await;
        let host = sandbox.docker_host("manager1").expect("host");
        let api = Client::connect_host(&host).await.expect("connect");
        let mut rows = Vec::new();
        if parts.file || parts.drift {
            rows.extend(dir_latency(&host, &api, scratch.path(), parts).await);
        }
        if parts.webhook {
            rows.extend(webhook_latency(&host, &api, scratch.path()).await);
        }
        if parts.rollouts {
            rows.extend(rollout_latency(&host, &api, scratch.path()).await);
        }
        if parts.idle {
            rows.extend(idle(&host, &api, scratch.path(), window).await);
        }
        rows
    });
    let load_after = shell("uptime", &[]);
    println!("`{command}` (started {started})");
    println!();
    println!("- load before: {load_before}");
    println!("- load after:  {load_after}");
    println!();
    println!("| scenario | figure | target | met? |");
    println!("|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} |",
            r.scenario, r.figure, r.target, r.met
        );
    }
}

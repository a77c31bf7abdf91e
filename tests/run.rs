//! `bosun run` (the real binary) against the real single-node swarm.
//!
//! Others use the same daemon at the same time: every object is named with a
//! per-test prefix (`rn<test><pid>`), every instance runs with that prefix as
//! its (hidden) `--name-prefix` so that prune and events stay inside it, and
//! with its own lease name.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bosun::swarm::settle::{self, Check, Schedule};
use serde_json::Value;

use super::support::mount::Mount;
use super::support::stack::docker_rm_until_gone;
use super::support::{BUSYBOX_IMAGE as IMAGE, busybox_image, cli, local_http};

fn prefix(test: &str) -> String {
    format!("rn{test}{}", std::process::id())
}

/// A running `bosun run`; killed on drop.
struct Bosun {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Bosun {
    fn start(p: &str, log_dir: &Path, name: &str, args: &[&str]) -> Bosun {
        let port = local_http::free_port();
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let listen = format!("127.0.0.1:{port}");
        let lease = format!("{p}-lease");
        let child = cli::bosun()
            .arg("run")
            .args(args)
            .args([
                "--listen",
                &listen,
                "--lease-name",
                &lease,
                "--name-prefix",
                p,
            ])
            .args(["--instance-id", name])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start bosun run");
        let b = Bosun { child, port, log };
        wait_for(
            &format!("{name} to serve /healthz"),
            Duration::from_secs(20),
            || b.get("/healthz").is_some_and(|(s, _)| s == 200),
        );
        b
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        local_http::get(self.port, path)
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
        local_http::post(self.port, path, headers, body)
    }

    fn status(&self) -> Value {
        self.get("/status")
            .and_then(|(_, b)| serde_json::from_str(&b).ok())
            .unwrap_or(Value::Null)
    }

    fn metric(&self, name_and_labels: &str) -> f64 {
        let (_, body) = self.get("/metrics").unwrap_or_default();
        body.lines()
            .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// SIGTERM, then wait for the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig}");
    }
}

impl Drop for Bosun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a reaction may take in these tests: a bound, not a latency
/// target (those are in `benches/`, BENCHMARKS.md). It is far below the
/// 10 m resync and poll intervals the tests set, so only the trigger under
/// test can explain the change it waits for, and far above what a loaded
/// CI machine needs.
const REACT: Duration = Duration::from_secs(60);

/// Wait until `f` holds, at most `timeout`; how long it took.
fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    let schedule = Schedule::new(timeout, Duration::from_millis(200));
    settle::until_blocking(what, schedule, || {
        Check::from_bool(f(), || "not yet".to_string())
    })
    .unwrap_or_else(|t| panic!("{t}"));
    start.elapsed()
}

fn docker(args: &[&str]) -> Option<String> {
    cli::docker_stdout(args).ok()
}

fn replicas(service: &str) -> Option<u64> {
    docker(&[
        "service",
        "inspect",
        service,
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
    ])?
    .parse()
    .ok()
}

/// Remove every service, network and config named `prefix…`.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Services first: their tasks hold the networks and configs.
        for kind in ["service", "config", "network"] {
            let Some(names) = docker(&[kind, "ls", "--format", "{{.Name}}"]) else {
                continue;
            };
            for n in names.lines().filter(|n| n.starts_with(&self.0)) {
                if let Err(e) = docker_rm_until_gone(kind, n) {
                    eprintln!("clean-up: {e}");
                }
            }
        }
    }
}

/// What a test that runs bosun on a folder needs: its object name prefix,
/// the manifest and log folders, and the clean-up of everything named with
/// the prefix. A [`Bosun`] started from it is declared after it, so it
/// stops before the clean-up runs.
struct Scratch {
    p: String,
    dir: tempfile::TempDir,
    logs: tempfile::TempDir,
    _cleanup: Cleanup,
}

impl Scratch {
    /// Prefix from `test`; the test image imported.
    fn new(test: &str) -> Scratch {
        busybox_image();
        let p = prefix(test);
        Scratch {
            _cleanup: Cleanup(p.clone()),
            p,
            dir: tempfile::tempdir().expect("tempdir"),
            logs: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.dir.path().join(file), text).expect("write");
    }

    /// `bosun run --dir` on the folder as instance `name`, resync 10 m:
    /// passes come from the folder, events and rollouts.
    fn run(&self, name: &str, extra: &[&str]) -> Bosun {
        let mut args = vec![
            "--dir",
            self.dir.path().to_str().expect("utf-8"),
            "--resync",
            "10m",
        ];
        args.extend_from_slice(extra);
        Bosun::start(&self.p, self.logs.path(), name, &args)
    }
}

fn stack(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {name}}}\nspec:\n  wait: {{enabled: false}}\n  compose:\n    services:\n      app:\n        image: {IMAGE}\n        command: [sleep, '3600']\n        deploy: {{replicas: {replicas}}}\n"
    )
}

/// Every sample line of the Prometheus text format: `name{labels} value`.
fn assert_prometheus_text(body: &str) {
    let mut samples = 0;
    for line in body.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "comment line: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name value");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "value of {line}"
        );
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name in {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "labels in {line}"
            );
        }
        samples += 1;
    }
    assert!(samples > 0, "no samples");
}

// ---------------------------------------------------------------------------

/// `bosun run` (resync 10 m: passes come from the folder and from events)
/// on a folder with the one-replica stack `<p>web`, converged. Fields drop
/// in order: bosun stops before its objects are removed.
struct OneStack {
    b: Bosun,
    svc: String,
    web: String,
    s: Scratch,
}

impl OneStack {
    /// Prefix and instance name from `test`.
    fn run(test: &str) -> OneStack {
        let s = Scratch::new(test);
        let web = format!("{}web", s.p);
        s.write("web.yaml", &stack(&web, 1));
        let b = s.run(test, &[]);
        let svc = format!("{web}_app");
        wait_for("the first pass", REACT, || replicas(&svc) == Some(1));
        // The service exists once its create returned; the pass is counted
        // after its verification, a moment later.
        wait_for("the first pass counted", REACT, || {
            b.metric("bosun_passes_total{result=\"success\"}") >= 1.0
        });
        OneStack { b, svc, web, s }
    }
}

#[test]
fn run_converges_folder_changes_adds_prunes_and_counts_passes() {
    let one = OneStack::run("a");
    let (p, dir, web, svc, b) = (&one.s.p, &one.s.dir, &one.web, &one.svc, &one.b);
    let passes_before = b.metric("bosun_passes_total{result=\"success\"}");
    assert!(passes_before >= 1.0);

    std::fs::write(dir.path().join("web.yaml"), stack(web, 3)).expect("write");
    let took = wait_for("3 replicas", REACT, || replicas(svc) == Some(3));
    eprintln!("replica change converged in {took:?}");

    let api = format!("{p}api");
    std::fs::write(dir.path().join("api.yaml"), stack(&api, 1)).expect("write");
    wait_for("the added stack", REACT, || {
        replicas(&format!("{api}_app")) == Some(1)
    });
    std::fs::remove_file(dir.path().join("api.yaml")).expect("rm");
    wait_for("the deleted stack pruned", REACT, || {
        replicas(&format!("{api}_app")).is_none()
    });

    // (f) /metrics is Prometheus text and counts passes.
    let (code, body) = b.get("/metrics").expect("/metrics");
    assert_eq!(code, 200);
    assert_prometheus_text(&body);
    // A count, not a latency: a pass that pruned a network may take a few
    // seconds to verify while swarm removes it asynchronously.
    wait_for("three more passes counted", REACT, || {
        b.metric("bosun_passes_total{result=\"success\"}") >= passes_before + 3.0
    });
    let status = b.status();
    assert_eq!(status["ready"], true);
    assert_eq!(status["lease"]["held"], true);
}

/// A hand edit made right after a pass (its own events still arriving) is
/// told from bosun's echoes by what the service holds, not by when it came.
#[test]
fn run_reverts_a_hand_made_change_through_docker_events() {
    let one = OneStack::run("c");
    let (svc, b, dir, web) = (&one.svc, &one.b, &one.s.dir, &one.web);
    std::fs::write(dir.path().join("web.yaml"), stack(web, 2)).expect("write");
    wait_for("the pass of the change", REACT, || replicas(svc) == Some(2));
    docker(&["service", "update", "-d", "--replicas", "7", svc]).expect("hand edit");
    // `-d` returns once the spec says 7: the change is made.
    let took = wait_for("the hand edit reverted", REACT, || replicas(svc) == Some(2));
    eprintln!("reverted in {took:?}");
    wait_for("the drift counted", REACT, || {
        b.metric("bosun_drift_corrections_total{kind=\"service\"}") >= 1.0
    });
    assert!(b.log().contains("trigger=event"), "{}", b.log());
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
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

fn push(work: &Path, file: &str, text: &str, message: &str) {
    std::fs::write(work.join(file), text).expect("write");
    git(work, &["add", "-A"]);
    git(work, &["commit", "-qm", message]);
    git(work, &["push", "-q", "origin", "main"]);
}

#[test]
fn run_follows_a_git_remote_by_poll_and_webhook_and_keeps_the_last_valid_revision() {
    busybox_image();
    let p = prefix("b");
    let _c = Cleanup(p.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let bare = tmp.path().join("remote.git");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(
        tmp.path(),
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
    let web = format!("{p}web");
    let svc = format!("{web}_app");
    push(&work, "web.yaml", &stack(&web, 1), "one");
    let url = format!("file://{}", bare.display());

    // Poll every 2 s.
    let checkout = tmp.path().join("checkout");
    let mut a = Bosun::start(
        &p,
        tmp.path(),
        "b1",
        &[
            "--git",
            &url,
            "--interval",
            "2s",
            "--checkout-dir",
            checkout.to_str().expect("utf-8"),
            "--resync",
            "10m",
        ],
    );
    wait_for("the first pass", REACT, || replicas(&svc) == Some(1));
    push(&work, "web.yaml", &stack(&web, 2), "two");
    let took = wait_for("the pushed change", REACT, || replicas(&svc) == Some(2));
    eprintln!("poll converged in {took:?}");

    // An invalid revision: reported with file and line, nothing applied.
    push(
        &work,
        "web.yaml",
        &stack(&web, 5).replace("  wait:", "  bogusField: 1\n  wait:"),
        "invalid",
    );
    wait_for("the invalid revision reported", REACT, || {
        a.status()["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("web.yaml:"))
    });
    let status = a.status();
    assert_eq!(status["lastPass"]["result"], "invalid", "{status}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(replicas(&svc), Some(2), "the previous revision stays");
    push(&work, "web.yaml", &stack(&web, 3), "fixed");
    wait_for("the fixing commit", REACT, || replicas(&svc) == Some(3));
    wait_for("the error cleared", REACT, || {
        a.status()["lastError"].is_null()
    });
    assert_eq!(a.stop().code(), Some(0));
    drop(a);

    // Webhooks at a long interval.
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "s3cret\n").expect("write");
    let b = Bosun::start(
        &p,
        tmp.path(),
        "b2",
        &[
            "--git",
            &url,
            "--interval",
            "10m",
            "--checkout-dir",
            tmp.path().join("checkout2").to_str().expect("utf-8"),
            "--webhook-secret-file",
            secret.to_str().expect("utf-8"),
            "--resync",
            "10m",
        ],
    );
    wait_for("the first pass", REACT, || b.status()["ready"] == true);
    push(&work, "web.yaml", &stack(&web, 4), "four");
    let body = r#"{"ref":"refs/heads/main"}"#;
    let wrong = bosun::source::webhook::sign(body.as_bytes(), b"not the secret");
    let (code, _) = b
        .post("/hooks/git", &[("X-Hub-Signature-256", &wrong)], body)
        .expect("post");
    assert_eq!(code, 401);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(replicas(&svc), Some(3), "a wrong signature changes nothing");
    let sig = bosun::source::webhook::sign(body.as_bytes(), b"s3cret");
    let (code, _) = b
        .post("/hooks/git", &[("X-Hub-Signature-256", &sig)], body)
        .expect("post");
    assert_eq!(code, 202);
    // The poll is 10 m away: only the webhook can converge it in time.
    let took = wait_for("the webhook's pass", REACT, || replicas(&svc) == Some(4));
    eprintln!("webhook converged in {took:?}");
}

#[test]
fn run_lets_only_the_lease_holder_apply_and_hands_over_when_it_dies() {
    let scratch = Scratch::new("d");
    let web = format!("{}web", scratch.p);
    let svc = format!("{web}_app");
    scratch.write("web.yaml", &stack(&web, 1));
    let args = ["--lease-duration", "6s"];
    let one = scratch.run("one", &args);
    wait_for("the first pass", REACT, || replicas(&svc) == Some(1));
    let two = scratch.run("two", &args);
    wait_for("both report the lease", REACT, || {
        two.status()["lease"]["holder"] == "one" && one.status()["lease"]["held"] == true
    });
    assert_eq!(two.status()["lease"]["held"], false);
    // Only the holder writes services.
    let writes = |b: &Bosun| -> f64 {
        let (_, body) = b.get("/metrics").unwrap_or_default();
        body.lines()
            .filter(|l| {
                l.starts_with("bosun_api_requests_total")
                    && l.contains("method=\"POST\"")
                    && l.contains("/services")
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    scratch.write("web.yaml", &stack(&web, 2));
    wait_for("2 replicas", REACT, || replicas(&svc) == Some(2));
    std::thread::sleep(Duration::from_secs(1));
    assert!(writes(&one) >= 1.0);
    assert!(writes(&two) == 0.0, "the non-holder wrote:\n{}", two.log());

    one.signal("KILL");
    let start = Instant::now();
    wait_for("two takes the lease over", REACT, || {
        two.status()["lease"]["held"] == true
    });
    eprintln!("takeover after {:?}", start.elapsed());
    scratch.write("web.yaml", &stack(&web, 3));
    wait_for("two converges a change", REACT, || {
        replicas(&svc) == Some(3)
    });
    drop(one);
}

/// A `bosun run` whose pass is applying: it prunes a stack whose task
/// ignores SIGTERM (busybox `sleep` as PID 1) for `grace`, and the removal
/// waits for that task to be gone (it holds the stack's network). Fields drop
/// in order: bosun stops before its objects are removed.
struct SlowPass {
    b: Bosun,
    p: String,
    _s: Scratch,
}

impl SlowPass {
    fn start(test: &str, grace: &str) -> SlowPass {
        let s = Scratch::new(test);
        let p = s.p.clone();
        let web = format!("{p}web");
        s.write(
            "web.yaml",
            &format!(
                "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {web}}}\nspec:\n  wait: {{enabled: false}}\n  compose:\n    services:\n      app:\n        image: {IMAGE}\n        command: [sleep, '3600']\n        stop_grace_period: {grace}\n"
            ),
        );
        // A folder left empty is refused (nothing is pruned): another stack
        // stays.
        s.write("keep.yaml", &stack(&format!("{p}keep"), 0));
        let b = s.run("e", &[]);
        let svc = format!("{web}_app");
        wait_for("the task running", REACT, || running(&svc) == "1/1");
        std::fs::remove_file(s.dir.path().join("web.yaml")).expect("rm");
        // The service is gone, its task is not: the pass waits for it.
        wait_for("the pass to be pruning", REACT, || replicas(&svc).is_none());
        SlowPass { b, p, _s: s }
    }
}

/// `running/desired` tasks of a service (`1/1`), as `docker service ls`
/// shows them; empty when there is no such service.
fn running(service: &str) -> String {
    docker(&[
        "service",
        "ls",
        "--filter",
        &format!("name={service}"),
        "--format",
        "{{.Replicas}}",
    ])
    .unwrap_or_default()
    .trim()
    .to_string()
}

/// A label of the lease config.
fn lease_label(p: &str, label: &str) -> String {
    docker(&[
        "config",
        "inspect",
        &format!("{p}-lease"),
        "--format",
        &format!("{{{{index .Spec.Labels \"{label}\"}}}}"),
    ])
    .expect("lease config")
}

/// The holder label of the lease config (empty once released).
fn lease_holder(p: &str) -> String {
    lease_label(p, "dev.bosun.lease.holder")
}

#[test]
fn run_finishes_the_running_pass_on_sigterm_and_releases_the_lease() {
    // The pass waits up to 15 s for the pruned task to die.
    let SlowPass {
        ref mut b, ref p, ..
    } = SlowPass::start("e", "15s");
    let status = b.stop();
    assert_eq!(status.code(), Some(0), "{}", b.log());
    let log = b.log();
    let signal_at = log.find("signal received").expect("signal logged");
    let finished_at = log.rfind("pass finished").expect("pass finished");
    assert!(
        finished_at > signal_at,
        "the pass finished after the signal:\n{log}"
    );
    assert!(log[finished_at..].contains("result=success") || log.contains("result=success"));
    assert_eq!(lease_holder(p), "", "the lease is released");
}

/// After the first signal the lease is still renewed while the running
/// pass goes on (it must not expire under a pass that still applies); a
/// second signal cancels that pass through the same shutdown path: no
/// "pass finished", exit code 130, and the lease is released rather than
/// left to expire.
#[test]
fn run_cancels_the_running_pass_on_a_second_signal_and_still_releases_the_lease() {
    // The pruned task takes 25 s to die and the pass waits for it: the
    // signals come long before.
    let SlowPass {
        ref mut b, ref p, ..
    } = SlowPass::start("x", "25s");
    b.signal("TERM");
    wait_for("the first signal to be taken", REACT, || {
        b.log().contains("signal received")
    });
    // Renewed every 5 s (the default 15 s lease): the expiry moves on
    // while the pass still runs after the signal.
    let expires = lease_label(p, "dev.bosun.lease.expires");
    wait_for("a lease renewal after the first signal", REACT, || {
        lease_label(p, "dev.bosun.lease.expires") != expires
    });
    let status = b.stop();
    let log = b.log();
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(
        log.contains("second signal: the running pass is cancelled"),
        "{log}"
    );
    let signal_at = log.find("signal received").expect("signal logged");
    assert!(
        !log[signal_at..].contains("pass finished"),
        "the pass was cancelled:\n{log}"
    );
    assert_eq!(lease_holder(p), "", "the lease is released");
}

/// Issue 9: the git checkout folder stops being writable (a read-only
/// mount, root included). The poll's fetch fails; `/status` names the
/// folder in `source.error`, the pass goes on enforcing the last good
/// revision (a hand edit is still reverted by it, the pushed commit is not
/// applied), and once the folder is writable again the new commit lands
/// and the error clears.
#[test]
fn run_keeps_enforcing_the_last_good_revision_while_its_checkout_cannot_be_written() {
    busybox_image();
    let p = prefix("g");
    let _c = Cleanup(p.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let bare = tmp.path().join("remote.git");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    let bare_s = bare.to_str().expect("utf-8");
    git(tmp.path(), &["init", "-q", "--bare", "-b", "main", bare_s]);
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["remote", "add", "origin", bare_s]);
    let web = format!("{p}web");
    let svc = format!("{web}_app");
    push(&work, "web.yaml", &stack(&web, 1), "one");
    let url = format!("file://{}", bare.display());
    let checkout = tmp.path().join("checkout");
    let checkout_s = checkout.to_str().expect("utf-8");
    let b = Bosun::start(
        &p,
        tmp.path(),
        "g1",
        &[
            "--git",
            &url,
            "--interval",
            "1s",
            "--checkout-dir",
            checkout_s,
            "--resync",
            "10m",
        ],
    );
    wait_for("the first pass", REACT, || replicas(&svc) == Some(1));
    // Recorded once the pass has verified its work, a moment after the
    // service exists.
    wait_for("the first pass recorded", REACT, || {
        b.status()["source"]["revision"].is_string()
    });
    let first = b.status()["source"]["revision"].clone();

    let ro = Mount::read_only(&checkout);
    push(&work, "web.yaml", &stack(&web, 2), "two");
    wait_for("the fetch error in /status", REACT, || {
        b.status()["source"]["error"]
            .as_str()
            .is_some_and(|e| e.contains(checkout_s))
    });
    docker(&["service", "update", "-d", "--replicas", "4", &svc]).expect("hand edit");
    wait_for(
        "the hand edit reverted to the last good revision",
        REACT,
        || replicas(&svc) == Some(1),
    );
    // The polls keep failing and keep enforcing: passes succeed on the
    // old revision, never the pushed one.
    let passes = b.metric("bosun_passes_total{result=\"success\"}");
    wait_for("passes on the last good revision", REACT, || {
        b.metric("bosun_passes_total{result=\"success\"}") >= passes + 2.0
    });
    let status = b.status();
    assert_eq!(status["lastPass"]["revision"], first, "{status}");
    assert_eq!(status["lastPass"]["result"], "success", "{status}");
    assert!(status["source"]["error"].is_string(), "{status}");
    assert_eq!(replicas(&svc), Some(1));

    drop(ro);
    wait_for("the pushed commit once writable", REACT, || {
        replicas(&svc) == Some(2)
    });
    wait_for("the source error cleared", REACT, || {
        b.status()["source"]["error"].is_null()
    });
}

// --- rollouts beside the loop (issue 11) ------------------------------------

/// An image no node can pull: its registry is a closed port on loopback, so
/// the pull fails at once and nothing leaves the machine.
fn unpullable(p: &str) -> String {
    format!("127.0.0.1:9/{p}missing:1")
}

/// A stack of one service `name` running `image` (`sleep 3600`), with the
/// given `wait` and `dependsOn`.
fn stack_of(name: &str, service: &str, image: &str, wait: &str, after: &[&str]) -> String {
    let after = if after.is_empty() {
        String::new()
    } else {
        format!(
            "  dependsOn: [{}]\n",
            after
                .iter()
                .map(|a| format!("Stack/{a}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {name}}}\nspec:\n{after}  wait: {wait}\n  compose:\n    services:\n      {service}:\n        image: {image}\n        command: [sleep, '3600']\n"
    )
}

/// The `/status` rollout of `Stack/<stack>`, `Null` when there is none.
fn rollout(b: &Bosun, stack: &str) -> Value {
    let want = format!("Stack/{stack}");
    b.status()["rollouts"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["stack"] == want.as_str()).cloned())
        .unwrap_or(Value::Null)
}

/// The `/status` object named `name`, `Null` when there is none.
fn object(b: &Bosun, name: &str) -> Value {
    b.status()["objects"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

fn image_of(service: &str) -> String {
    docker(&[
        "service",
        "inspect",
        service,
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    ])
    .unwrap_or_default()
    .trim()
    .to_string()
}

/// Issue 11's scenario: `sb` cannot pull its image (its rollout waits up to
/// the default 5 minutes). Meanwhile `sa` keeps being reconciled (a hand
/// scale is reverted), no pass waits for `sb`, and fixing `sb`'s file
/// supersedes the stuck rollout and converges at once.
#[test]
fn run_keeps_reconciling_while_a_rollout_is_stuck_and_a_fix_supersedes_it() {
    let scratch = Scratch::new("s");
    let p = &scratch.p;
    let (sa, sb) = (format!("{p}sa"), format!("{p}sb"));
    let (good, bad) = (format!("{sa}_good"), format!("{sb}_bad"));
    let default_wait = "{enabled: true}";
    let write = |file: &str, text: String| scratch.write(file, &text);
    write("sa.yaml", stack_of(&sa, "good", IMAGE, default_wait, &[]));
    write(
        "sb.yaml",
        stack_of(&sb, "bad", &unpullable(p), default_wait, &[]),
    );
    let b = scratch.run("s", &[]);
    wait_for("sa converged", REACT, || running(&good) == "1/1");
    wait_for(
        "sb progressing with its task error in /status",
        REACT,
        || {
            let r = rollout(&b, &sb);
            r["state"] == "progressing"
                && r["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("0/1 tasks running; last task error"))
        },
    );
    wait_for("sb's service Progressing in /status", REACT, || {
        object(&b, &bad)["condition"] == "Progressing"
    });

    // Drift on the other stack, while sb is stuck.
    docker(&["service", "update", "-d", "--replicas", "3", &good]).expect("hand edit");
    let reverted = wait_for("the hand scale of sa reverted", REACT, || {
        replicas(&good) == Some(1)
    });

    // Drift on the stuck stack itself is reverted too, and joins its
    // rollout (same revision: not superseded).
    docker(&["service", "update", "-d", "--replicas", "2", &bad]).expect("hand edit");
    wait_for("the hand scale of sb reverted", REACT, || {
        replicas(&bad) == Some(1)
    });
    assert_eq!(rollout(&b, &sb)["state"], "progressing", "{}", b.status());
    assert_eq!(
        b.metric("bosun_rollout_duration_seconds_count{outcome=\"superseded\"}") as u64,
        0,
        "a reverted drift joins the rollout:\n{}",
        b.log()
    );

    // The fix: sb's image corrected in the file.
    write("sb.yaml", stack_of(&sb, "bad", IMAGE, default_wait, &[]));
    let fixed = wait_for("sb converged on the fixed image", REACT, || {
        image_of(&bad) == IMAGE && running(&bad) == "1/1"
    });
    wait_for("sb's rollout ready in /status", REACT, || {
        rollout(&b, &sb)["state"] == "ready"
    });
    assert!(
        b.metric("bosun_rollout_duration_seconds_count{outcome=\"superseded\"}") >= 1.0,
        "the stuck rollout ended as superseded:\n{}",
        b.log()
    );
    assert_eq!(
        b.metric("bosun_rollout_duration_seconds_count{outcome=\"failed\"}") as u64,
        0,
        "superseded, not failed:\n{}",
        b.log()
    );
    // No pass waited for the rollout: every one took well under the
    // 5 minutes it would have.
    // One scrape: a pass finishing between two would change the count.
    let (_, scrape) = b.get("/metrics").expect("/metrics");
    let sample = |name: &str| -> u64 {
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let passes = sample("bosun_pass_duration_seconds_count");
    let quick = sample("bosun_pass_duration_seconds_bucket{le=\"30.0\"}");
    assert!(
        passes >= 3 && quick == passes,
        "{passes} passes, {quick} under 30 s"
    );
    eprintln!(
        "drift while a rollout is stuck reverted in {reverted:?}; fix converged in {fixed:?}"
    );
}

/// `dependsOn` with rollouts beside the loop: a dependent is deferred (with
/// its reason in `/status`, the logs and `bosun plan`) while its dependency
/// rolls out and is deployed by the pass its convergence triggers; a
/// dependent of a failed rollout stays deferred and says why, and the
/// failure is reported once.
#[test]
fn run_defers_dependents_until_their_dependency_converges_and_while_it_failed() {
    let scratch = Scratch::new("f");
    let p = &scratch.p;
    let [first, second, broken, behind] = ["a", "b", "c", "d"].map(|s| format!("{p}{s}"));
    // a turns healthy only when the test says so.
    let a_manifest = format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {first}}}\nspec:\n  wait: {{enabled: true, timeout: 10m}}\n  compose:\n    services:\n      app:\n        image: {IMAGE}\n        command: [sleep, '3600']\n        healthcheck: {{test: [CMD, test, -f, /tmp/ok], interval: 1s, retries: 3000}}\n"
    );
    let files = [
        ("a.yaml", a_manifest),
        (
            "b.yaml",
            stack_of(&second, "app", IMAGE, "{enabled: false}", &[&first]),
        ),
        (
            "c.yaml",
            stack_of(
                &broken,
                "app",
                &unpullable(p),
                "{enabled: true, timeout: 5s}",
                &[],
            ),
        ),
        (
            "d.yaml",
            stack_of(&behind, "app", IMAGE, "{enabled: false}", &[&broken]),
        ),
    ];
    for (f, text) in &files {
        scratch.write(f, text);
    }
    let bosun = scratch.run("f", &[]);
    let (a_app, b_app, d_app) = (
        format!("{first}_app"),
        format!("{second}_app"),
        format!("{behind}_app"),
    );
    let waiting_for_a = format!("waiting for Stack/{first} to converge");
    wait_for("b deferred in /status", REACT, || {
        let obj = object(&bosun, &b_app);
        obj["condition"] == "Deferred"
            && obj["message"]
                .as_str()
                .is_some_and(|m| m.contains(&waiting_for_a))
    });
    assert_eq!(
        replicas(&b_app),
        None,
        "b is not deployed while a rolls out"
    );
    assert!(bosun.log().contains(&waiting_for_a), "{}", bosun.log());
    // `bosun plan` says the same.
    let out = cli::bosun()
        .args(["plan", "--no-prune"])
        .arg(scratch.dir.path())
        .output()
        .expect("bosun plan");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "+ service {b_app} (Stack/{second}) [deferred: {waiting_for_a}"
        )) && text.contains(&format!(
            "rollout progressing of Stack/{first}: {a_app}: 0/1 tasks running"
        )),
        "{text}"
    );

    // c fails (5 s timeout); d stays deferred and says why.
    wait_for("c's rollout failed", REACT, || {
        rollout(&bosun, &broken)["state"] == "failed"
    });
    wait_for("d deferred behind the failed rollout", REACT, || {
        object(&bosun, &d_app)["message"].as_str().is_some_and(|m| {
            m.contains(&format!(
                "waiting for Stack/{broken} to converge (its rollout failed"
            ))
        })
    });

    // a turns healthy: its convergence triggers the pass that deploys b.
    // Its task may still be preparing: wait for the container to run.
    let label = format!("label=com.docker.swarm.service.name={a_app}");
    let mut container = String::new();
    wait_for("a's container running", REACT, || {
        container = docker(&["ps", "-q", "--filter", &label])
            .and_then(|out| out.lines().next().map(str::to_string))
            .unwrap_or_default();
        !container.is_empty()
    });
    docker(&["exec", &container, "touch", "/tmp/ok"]).expect("make a healthy");
    let took = wait_for("b deployed once a converged", REACT, || {
        running(&b_app) == "1/1"
    });
    eprintln!("dependent deployed {took:?} after its dependency turned healthy");
    assert!(bosun.log().contains("trigger=rollout"), "{}", bosun.log());
    assert_eq!(replicas(&d_app), None, "d still waits for the failed c");
    // One failure, one log line: later passes do not fail c again.
    let failures = bosun
        .log()
        .lines()
        .filter(|l| l.contains("rollout failed") && l.contains(&format!("stack={broken}")))
        .count();
    assert_eq!(failures, 1, "{}", bosun.log());
    assert_eq!(
        bosun.metric("bosun_rollout_duration_seconds_count{outcome=\"failed\"}") as u64,
        1
    );
}

/// SIGTERM while a rollout is stuck: no pass waits for it, so bosun stops
/// within seconds, not after the rollout's 10 minute timeout.
#[test]
fn run_stops_within_seconds_on_sigterm_while_a_rollout_is_stuck() {
    let scratch = Scratch::new("t");
    let p = &scratch.p;
    let web = format!("{p}web");
    scratch.write(
        "web.yaml",
        &stack_of(
            &web,
            "app",
            &unpullable(p),
            "{enabled: true, timeout: 10m}",
            &[],
        ),
    );
    let mut b = scratch.run("t", &[]);
    wait_for("the rollout progressing", REACT, || {
        rollout(&b, &web)["state"] == "progressing"
    });
    let start = Instant::now();
    let status = b.stop();
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0), "{}", b.log());
    assert!(took < Duration::from_secs(30), "stopped after {took:?}");
    assert_eq!(lease_holder(p), "", "the lease is released");
    eprintln!("stopped {took:?} after SIGTERM");
}

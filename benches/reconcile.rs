//! bosun against `docker stack deploy`, side by side on one fresh swarm.
//!
//! `cargo bench --bench reconcile` (root: it brings up its own 1-node
//! sandbox `bench`, so nothing else disturbs the daemon, and removes it at
//! the end, also on panic) measures:
//!
//! - cold apply of 10/50/100 new services from one compose file:
//!   `bosun reconcile --once --no-wait` vs `docker stack deploy
//!   --resolve-image never`, wall time (median of `ROUNDS`) and ratio;
//! - a no-op pass over 100 and 500 deployed services: `bosun plan` (the
//!   process, and the pass in-process: load + convert + observe + plan, with
//!   its request count) vs `docker stack deploy` of the unchanged file;
//! - bosun's peak RSS (`/usr/bin/time -f %M`).
//!
//! Services have `replicas: 0`: the figures are the control plane's
//! (reading, converting, API calls), not container start-up, which is the
//! same work for both tools and would only add noise on a small machine.
//!
//! Targets: bosun at most half of `docker stack deploy`'s time on the cold
//! apply of 100 services; a no-op pass under 100 ms at 500 services.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bosun::controller::pass::{self, PassOptions};
use bosun::controller::status::PassResult;
use bosun::plan::{self, DesiredState};
use bosun::sandbox::Sandbox;

mod common;
use bosun::swarm::{self, Api as _, Client, Filters, Kind};

const SANDBOX: &str = "bench";
/// Rounds of each cold apply (median reported).
const ROUNDS: usize = 7;
/// Runs of each no-op measurement (median reported).
const NOOP_RUNS: usize = 5;

fn compose(services: usize) -> String {
    let mut s = String::from("version: \"3.8\"\nservices:\n");
    for i in 0..services {
        let _ = write!(
            s,
            "  svc{i:03}:\n    image: bosun/busybox:latest\n    command: [sleep, \"3600\"]\n\
             \x20   environment:\n      INDEX: \"{i}\"\n      MODE: bench\n    networks: [net]\n\
             \x20   deploy:\n      replicas: 0\n      labels:\n        bench.index: \"{i}\"\n\
             \x20     update_config: {{parallelism: 1, order: start-first}}\n\
             \x20     restart_policy: {{condition: on-failure}}\n"
        );
    }
    s.push_str("networks:\n  net:\n    driver: overlay\n");
    s
}

/// A folder with one Stack manifest `stack` over a compose file of
/// `services` services. Returns the folder and the compose file.
fn folder(root: &Path, stack: &str, services: usize) -> (PathBuf, PathBuf) {
    let dir = root.join(stack);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("docker-compose.yml");
    std::fs::write(&file, compose(services)).expect("write compose");
    std::fs::write(
        dir.join("stack.yaml"),
        format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {stack}}}\n\
             spec: {{composeFiles: [docker-compose.yml], prune: true, resolveImage: never}}\n"
        ),
    )
    .expect("write manifest");
    (dir, file)
}

/// Wall time, peak RSS (KiB) and exit code of a command run under
/// `/usr/bin/time`.
struct Run {
    wall: Duration,
    rss_kib: u64,
    code: Option<i32>,
}

fn timed(host: &str, program: &str, args: &[&str], scratch: &Path) -> Run {
    let rss_file = scratch.join("rss");
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(program)
        .args(args)
        .env("DOCKER_HOST", host)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run /usr/bin/time");
    let wall = start.elapsed();
    let rss_kib = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0);
    let code = out.status.code();
    if !matches!(code, Some(0 | 1)) {
        eprintln!(
            "{program} {} exited {code:?}:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Run {
        wall,
        rss_kib,
        code,
    }
}

fn bosun(host: &str, args: &[&str], scratch: &Path) -> Run {
    timed(host, env!("CARGO_BIN_EXE_bosun"), args, scratch)
}

fn docker_deploy(host: &str, file: &Path, stack: &str, scratch: &Path) -> Run {
    let file = file.to_str().expect("utf-8");
    timed(
        host,
        "docker",
        &[
            "stack",
            "deploy",
            "--detach=true",
            "--resolve-image",
            "never",
            "-c",
            file,
            stack,
        ],
        scratch,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Remove stacks with the docker CLI and wait until their services and
/// networks are gone, so the next measurement starts on an idle daemon.
async fn remove_stacks(host: &str, api: &Client, stacks: &[&str]) {
    let mut args = vec!["stack", "rm"];
    args.extend_from_slice(stacks);
    let out = Command::new("docker")
        .args(&args)
        .env("DOCKER_HOST", host)
        .output()
        .expect("docker stack rm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    for stack in stacks {
        let filters = Filters::none().with("label", &format!("com.docker.stack.namespace={stack}"));
        loop {
            let services = api.list(Kind::Service, &filters).await.expect("list");
            let networks = api.list(Kind::Network, &filters).await.expect("list");
            if services.is_empty() && networks.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "stack {stack} not removed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One in-process no-op pass.
struct Pass {
    /// connect + load + convert + observe + plan.
    total: Duration,
    /// Of which `swarm::observe` (the daemon listing every kind).
    observe: Duration,
    requests: u64,
    empty: bool,
}

async fn pass(dir: &Path, host: &str) -> Pass {
    let env = BTreeMap::new();
    let start = Instant::now();
    let client = Client::connect_host(host).await.expect("connect");
    let before = client.requests();
    let t = Instant::now();
    let desired = bosun::manifest::load_with(dir, &env).expect("valid");
    let load = t.elapsed();
    let t = Instant::now();
    let state = DesiredState::build(&desired, &env).expect("builds");
    let build = t.elapsed();
    let observe_start = Instant::now();
    let snapshot = swarm::observe(&client).await.expect("observe");
    let observe = observe_start.elapsed();
    let t = Instant::now();
    let plan = plan::plan(&state, &snapshot, &plan::Options::default().prune(true));
    eprintln!(
        "pass breakdown: load {load:?} build {build:?} observe {observe:?} plan {:?}",
        t.elapsed()
    );
    Pass {
        total: start.elapsed(),
        observe,
        requests: client.requests().since(&before).total(),
        empty: plan.is_empty(),
    }
}

/// One no-op pass as `bosun run` makes it on a resync or a Docker event:
/// hash the folder (its revision), find that revision loaded already (the
/// controller loads once per revision), observe, plan, apply nothing.
/// Returns the wall time and the requests sent.
async fn controller_pass(dir: &Path, client: &Client, state: &DesiredState) -> (Duration, u64) {
    let before = client.requests();
    let start = Instant::now();
    let revision = bosun::source::dir::revision(dir).expect("revision");
    std::hint::black_box(revision);
    let out = pass::enforce(client, state, &PassOptions::default().prune(true)).await;
    let took = start.elapsed();
    assert_eq!(out.result, PassResult::Success, "{:?}", out.error);
    assert_eq!(out.changes, 0, "the controller pass was not a no-op");
    (took, client.requests().since(&before).total())
}

struct Row {
    scenario: String,
    bosun: String,
    docker: String,
    ratio: String,
    note: String,
}

/// Which parts to run: `cargo bench --bench reconcile -- cold` or `-- noop`
/// runs only that part; no argument runs both.
#[derive(Clone, Copy)]
struct Parts {
    cold: bool,
    noop: bool,
}

async fn bench(sandbox: &Sandbox, scratch: &Path, parts: Parts) -> Vec<Row> {
    let host = sandbox.docker_host("manager1").expect("host");
    let api = Client::connect_host(&host).await.expect("connect");
    let mut rows = Vec::new();
    let mut peak_rss = 0;
    let mut c4 = Vec::new();
    let mut d100 = Duration::ZERO;

    let cold: &[usize] = if parts.cold { &[10, 50, 100] } else { &[] };
    for &n in cold {
        let (mut b, mut d) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let bs = format!("b{n}x{round}");
            let ds = format!("d{n}x{round}");
            let (dir, file) = folder(scratch, &bs, n);
            let dir_s = dir.to_str().expect("utf-8");
            // Alternate who goes first, so neither always meets a daemon
            // still busy with the other's work.
            let (rb, rd) = if round % 2 == 0 {
                let rb = bosun(&host, &["reconcile", "--once", "--no-wait", dir_s], scratch);
                let rd = docker_deploy(&host, &file, &ds, scratch);
                (rb, rd)
            } else {
                let rd = docker_deploy(&host, &file, &ds, scratch);
                let rb = bosun(&host, &["reconcile", "--once", "--no-wait", dir_s], scratch);
                (rb, rd)
            };
            assert_eq!(rb.code, Some(0), "bosun reconcile of {n} services failed");
            assert_eq!(
                rd.code,
                Some(0),
                "docker stack deploy of {n} services failed"
            );
            peak_rss = peak_rss.max(rb.rss_kib);
            b.push(rb.wall);
            d.push(rd.wall);
            remove_stacks(&host, &api, &[&bs, &ds]).await;
            if n == 100 {
                let cs = format!("c{n}x{round}");
                let (dir, _) = folder(scratch, &cs, n);
                let dir_s = dir.to_str().expect("utf-8");
                let args = [
                    "reconcile",
                    "--once",
                    "--no-wait",
                    "--concurrency",
                    "4",
                    dir_s,
                ];
                let rc = bosun(&host, &args, scratch);
                assert_eq!(rc.code, Some(0), "bosun reconcile --concurrency 4 failed");
                peak_rss = peak_rss.max(rc.rss_kib);
                c4.push(rc.wall);
                remove_stacks(&host, &api, &[&cs]).await;
            }
        }
        let (b, d) = (median(b), median(d));
        let ratio = b.as_secs_f64() / d.as_secs_f64();
        rows.push(Row {
            scenario: format!("cold apply, {n} services (median of {ROUNDS})"),
            bosun: ms(b),
            docker: ms(d),
            ratio: format!("{ratio:.2}"),
            note: if n == 100 {
                format!(
                    "target ≤ 0.50: {}",
                    if ratio <= 0.5 { "met" } else { "NOT met" }
                )
            } else {
                String::new()
            },
        });
        eprintln!("cold apply {n}: bosun {b:?}, docker {d:?}");
        if n == 100 {
            d100 = d;
        }
    }
    if !c4.is_empty() {
        let c4 = median(c4);
        let ratio = c4.as_secs_f64() / d100.as_secs_f64();
        rows.push(Row {
            scenario: format!(
                "cold apply, 100 services, `--concurrency 4` (the old default) (median of {ROUNDS})"
            ),
            bosun: ms(c4),
            docker: ms(d100),
            ratio: format!("{ratio:.2}"),
            note: format!(
                "target ≤ 0.50: {}",
                if ratio <= 0.5 { "met" } else { "NOT met" }
            ),
        });
    }

    let noop: &[usize] = if parts.noop { &[100, 500] } else { &[] };
    for &n in noop {
        let bs = format!("noop{n}");
        let ds = format!("dnoop{n}");
        let (dir, file) = folder(scratch, &bs, n);
        let dir_s = dir.to_str().expect("utf-8");
        let r = bosun(&host, &["reconcile", "--once", "--no-wait", dir_s], scratch);
        assert_eq!(r.code, Some(0), "bosun reconcile of {n} services failed");
        peak_rss = peak_rss.max(r.rss_kib);
        let r = docker_deploy(&host, &file, &ds, scratch);
        assert_eq!(
            r.code,
            Some(0),
            "docker stack deploy of {n} services failed"
        );

        let (mut cli, mut lib, mut obs, mut dock, mut ctl) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut requests = 0;
        let mut ctl_requests = 0;
        let mut plan_rss = 0;
        // The controller's client and loaded revision live as long as it runs.
        let loaded = pass::load(&dir, &BTreeMap::new(), None).expect("valid");
        let client = Client::connect_host(&host).await.expect("connect");
        for _ in 0..NOOP_RUNS {
            let r = bosun(&host, &["plan", dir_s], scratch);
            assert_eq!(
                r.code,
                Some(0),
                "plan of the deployed {n} services is not empty"
            );
            plan_rss = plan_rss.max(r.rss_kib);
            cli.push(r.wall);
            let p = pass(&dir, &host).await;
            assert!(p.empty, "in-process plan of {n} services is not empty");
            lib.push(p.total);
            obs.push(p.observe);
            requests = p.requests;
            let (took, sent) = controller_pass(&dir, &client, &loaded.state).await;
            ctl.push(took);
            ctl_requests = sent;
            let r = docker_deploy(&host, &file, &ds, scratch);
            assert_eq!(r.code, Some(0), "docker stack deploy (unchanged) failed");
            dock.push(r.wall);
        }
        peak_rss = peak_rss.max(plan_rss);
        let (cli, lib, obs, dock, ctl) = (
            median(cli),
            median(lib),
            median(obs),
            median(dock),
            median(ctl),
        );
        let target = |d: Duration| {
            if n == 500 {
                format!(
                    "; target < 100 ms: {}",
                    if d < Duration::from_millis(100) {
                        "met"
                    } else {
                        "NOT met"
                    }
                )
            } else {
                String::new()
            }
        };
        rows.push(Row {
            scenario: format!("no-op `bosun plan` process, {n} services (median of {NOOP_RUNS})"),
            bosun: ms(cli),
            docker: ms(dock),
            ratio: format!("{:.2}", cli.as_secs_f64() / dock.as_secs_f64()),
            note: format!("peak RSS {} MiB{}", plan_rss / 1024, target(cli)),
        });
        rows.push(Row {
            scenario: format!(
                "no-op pass in-process, cold (connect+load+convert+observe+plan), {n} services"
            ),
            bosun: format!("{:.1} ms", lib.as_secs_f64() * 1e3),
            docker: ms(dock),
            ratio: format!("{:.2}", lib.as_secs_f64() / dock.as_secs_f64()),
            note: format!(
                "{requests} requests, of which observe {}{}",
                ms(obs),
                target(lib)
            ),
        });
        rows.push(Row {
            scenario: format!(
                "no-op pass of `bosun run` (revision hash+observe+plan), {n} services"
            ),
            bosun: format!("{:.1} ms", ctl.as_secs_f64() * 1e3),
            docker: ms(dock),
            ratio: format!("{:.2}", ctl.as_secs_f64() / dock.as_secs_f64()),
            note: format!("{ctl_requests} requests{}", target(ctl)),
        });
        eprintln!(
            "no-op {n}: plan {cli:?}, pass {lib:?} ({requests} requests), run pass {ctl:?} \
             ({ctl_requests} requests), docker {dock:?}"
        );
        remove_stacks(&host, &api, &[&bs, &ds]).await;
    }
    rows.push(Row {
        scenario: "peak RSS of any bosun run above".into(),
        bosun: format!("{} MiB", peak_rss.div_ceil(1024)),
        docker: String::new(),
        ratio: String::new(),
        note: "`/usr/bin/time -f %M`".into(),
    });
    rows
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") || std::env::args().any(|a| a == "--list") {
        // `cargo test --benches`, `cargo bench -- --list`: nothing to run
        // or list; only `cargo bench` (which passes `--bench`) measures.
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let parts = Parts {
        cold: args.is_empty() || args.iter().any(|a| a == "cold"),
        noop: args.is_empty() || args.iter().any(|a| a == "noop"),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _teardown = common::guard(&rt, SANDBOX);
    let scratch = tempfile::tempdir().expect("tempdir");
    let rows = rt.block_on(async {
        let sandbox = common::up(SANDBOX).await;
        bench(&sandbox, scratch.path(), parts).await
    });
    println!("| scenario | bosun | docker stack deploy | bosun/docker | note |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.scenario, r.bosun, r.docker, r.ratio, r.note
        );
    }
}

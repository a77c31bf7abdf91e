//! End-to-end proofs on real daemons (issue 4): the `bosun` binary against a
//! sandbox swarm (one dockerd per node, see `bosun::sandbox`).
//!
//! - every folder under `examples/` converges on a 3-manager + 2-worker
//!   swarm, exactly as its manifests and compose files say, and `plan` is
//!   then empty;
//! - a stack on a network of a `Network` manifest deploys on the first pass,
//!   20 times in a row (no "network not found");
//! - a reconcile whose manager dies mid-apply converges on the rerun,
//!   without duplicates, orphans or unlabelled objects;
//! - so does a reconcile whose own process is killed with SIGKILL.
//!
//! Each test has its own sandbox, removed even when the test panics. The
//! tests take turns (one lock): they measure timing-sensitive things on a
//! small machine, and three swarms at once would only slow each other down.
//! They need root, dockerd, ip, nsenter, unshare and iptables, and fail
//! (never skip) without them.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bosun::swarm::Kind;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::support::e2e::{
    self, NAMESPACE, Swarm, adapt_example, bosun, bosun_ok, child_env, describe, expect,
    list_labelled, managed, name_of, prune_all, spawn_bosun, unmanaged, wait_for,
};

/// One e2e test at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Upper bound for one `bosun` run in these tests.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The example folders, the one that replaces the ingress network last: the
/// swarm has no ingress network after its objects are pruned.
fn examples() -> Vec<PathBuf> {
    let mut dirs = crate::support::subdirs(&examples_dir());
    let replaces_ingress = |dir: &Path| {
        bosun::manifest::load(dir).is_ok_and(|d| d.networks.iter().any(|n| n.spec.ingress))
    };
    dirs.sort_by_key(|d| (replaces_ingress(d), d.clone()));
    dirs
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_converges_in_a_three_manager_two_worker_sandbox() {
    let _turn = SERIAL.lock().await;
    let swarm = Swarm::up("e2e-examples", 3, 2).await;
    let host = swarm.host("manager1");
    let api = swarm.client("manager1").await;
    let env = child_env(&host);
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("empty");
    e2e::empty_desired(&empty);
    let (managers, workers) = (swarm.sandbox.managers(), swarm.sandbox.workers());

    let mut failures = String::new();
    let mut timings = Vec::new();
    for example in examples() {
        let name = example.file_name().unwrap().to_string_lossy().into_owned();
        let started = Instant::now();
        let dir = tmp.path().join(&name);
        let map = adapt_example(&example, &dir, &managers, &workers);
        let dir_s = path_str(&dir);

        let args = ["reconcile", "--once", "--no-wait", dir_s];
        let out = bosun(&host, &args, RUN_TIMEOUT).await;
        if out.status.code() == Some(0) {
            let report = expect::check(&dir, &api, &env).await;
            assert!(report.checked > 0, "{name}: nothing was checked");
            for p in &report.problems {
                let _ = writeln!(failures, "{name}: {p}");
            }
            let nodes = bosun::swarm::observe(&api).await.expect("observe");
            let want = expect::names_on(&dir, &env, Some(&nodes));
            let have = managed(&api).await;
            if want != have {
                let _ = writeln!(
                    failures,
                    "{name}: bosun's objects differ from the folder's:\n  want {want:?}\n  have {have:?}"
                );
            }
            for obj in unmanaged(&api).await {
                let _ = writeln!(failures, "{name}: unmanaged {obj} in the swarm");
            }
            let plan_args = ["plan", dir_s];
            let plan = bosun(&host, &plan_args, RUN_TIMEOUT).await;
            if plan.status.code() != Some(0) {
                let _ = writeln!(
                    failures,
                    "{name}: plan after reconcile is not empty:\n{}",
                    describe(&plan_args, &plan)
                );
            }
            // Idempotence: a second reconcile converges without one write.
            let again = bosun(&host, &args, RUN_TIMEOUT).await;
            let stdout = String::from_utf8_lossy(&again.stdout);
            if again.status.code() != Some(0) || !stdout.contains("; 0 writes in ") {
                let _ = writeln!(
                    failures,
                    "{name}: a second reconcile wrote to the swarm:\n{}",
                    describe(&args, &again)
                );
            }
            eprintln!(
                "{name}: converged, {} facts checked, hostnames {map:?}",
                report.checked
            );
        } else {
            let _ = writeln!(failures, "{name}: {}", describe(&args, &out));
        }

        // Prune everything (bosun's own prune), so the next example starts
        // from a swarm without objects of this one.
        prune_all(&host, &api, &empty, RUN_TIMEOUT).await;
        timings.push((name, started.elapsed()));
    }
    for (name, t) in &timings {
        eprintln!("{name}: {t:.1?}");
    }
    assert!(failures.is_empty(), "{failures}");
}

/// A Network manifest and a stack that uses it as external, with no
/// `dependsOn`: the plan must order the network first by itself.
fn ordering_round(dir: &Path, round: usize) {
    std::fs::create_dir_all(dir.join("app")).expect("mkdir");
    std::fs::write(
        dir.join("network.yaml"),
        format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: Network\nmetadata: {{name: ord-net-{round}}}\n\
             spec: {{driver: overlay, attachable: true}}\n"
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("stack.yaml"),
        format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: ord-{round}}}\n\
             spec: {{composeFiles: [app/docker-compose.yml], prune: true}}\n"
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("app/docker-compose.yml"),
        format!(
            "services:\n  web:\n    image: bosun/busybox:latest\n    command: [sleep, \"3600\"]\n\
             \x20   networks: [ord-net-{round}]\n    deploy: {{replicas: 1, endpoint_mode: dnsrr}}\n\
             networks:\n  ord-net-{round}: {{external: true}}\n"
        ),
    )
    .expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_on_a_network_manifest_deploys_on_the_first_pass_twenty_times_in_a_row() {
    let _turn = SERIAL.lock().await;
    let swarm = Swarm::up("e2e-order", 3, 1).await;
    // A follower, not the leader (manager1 initialised the swarm): its
    // writes are forwarded to the leader and its view of a new network may
    // lag, which is where "network not found" races live.
    let host = swarm.host("manager2");
    let api = swarm.client("manager2").await;
    let env = child_env(&host);
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("empty");
    e2e::empty_desired(&empty);
    let started = Instant::now();
    for round in 0..20 {
        // A fresh state each round: the previous round's objects pruned by
        // bosun and gone from the API, new names for this round's.
        if round > 0 {
            prune_all(&host, &api, &empty, RUN_TIMEOUT).await;
        }
        let dir = tmp.path().join(format!("round{round}"));
        ordering_round(&dir, round);
        let args = ["reconcile", "--once", "--no-wait", path_str(&dir)];
        let out = bosun_ok(&host, &args, 0, RUN_TIMEOUT).await;
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !output.to_lowercase().contains("not found"),
            "round {round}: {}",
            describe(&args, &out)
        );
        let report = expect::check(&dir, &api, &env).await;
        assert!(
            report.problems.is_empty(),
            "round {round}: {:#?}",
            report.problems
        );
        let have = managed(&api).await;
        assert_eq!(
            have,
            expect::names(&dir, &env),
            "round {round}: bosun's objects"
        );
    }
    let last = tmp.path().join("round19");
    bosun_ok(&host, &["plan", path_str(&last)], 0, RUN_TIMEOUT).await;
    eprintln!("20 rounds in {:.1?}", started.elapsed());
}

/// A stack of `n` services sharing a Network manifest's network, a stack
/// network, a config and a secret.
fn fault_folder(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("app")).expect("mkdir");
    std::fs::write(
        dir.join("manifests.yaml"),
        "apiVersion: bosun.dev/v1alpha1\nkind: Network\nmetadata: {name: fault-net}\n\
         spec: {driver: overlay, attachable: true}\n---\n\
         apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: fault}\n\
         spec: {composeFiles: [app/docker-compose.yml], prune: true}\n",
    )
    .expect("write");
    std::fs::write(dir.join("app/app.conf"), "listen 80\n").expect("write");
    std::fs::write(dir.join("app/token"), "not-a-real-token\n").expect("write");
    let mut compose = String::from("services:\n");
    for i in 0..n {
        let _ = write!(
            compose,
            "  svc{i:02}:\n    image: bosun/busybox:latest\n    command: [sleep, \"3600\"]\n\
             \x20   networks: [fault-net, back]\n    configs: [app_conf]\n    secrets: [token]\n\
             \x20   deploy: {{replicas: 1, endpoint_mode: dnsrr}}\n"
        );
    }
    compose.push_str(
        "networks:\n  fault-net: {external: true}\n  back: {driver: overlay}\n\
         configs:\n  app_conf: {file: ./app.conf}\nsecrets:\n  token: {file: ./token}\n",
    );
    std::fs::write(dir.join("app/docker-compose.yml"), compose).expect("write");
}

/// `reconcile --once` of `dir` two actions at a time, slow enough to be
/// interrupted part way.
fn slow_reconcile(host: &str, dir: &str) -> tokio::process::Child {
    let args = [
        "reconcile",
        "--once",
        "--no-wait",
        "--concurrency",
        "2",
        dir,
    ];
    spawn_bosun(host, &args)
}

/// After an interrupted reconcile of [`fault_folder`]: a rerun exits 0 and
/// leaves exactly the folder's objects — `services` services, no duplicate,
/// no orphan, nothing unlabelled — and `plan` is then empty.
async fn rerun_converges_exactly(
    host: &str,
    api: &bosun::swarm::Client,
    dir: &Path,
    services: usize,
) {
    let dir_s = path_str(dir);
    bosun_ok(
        host,
        &["reconcile", "--once", "--no-wait", dir_s],
        0,
        RUN_TIMEOUT,
    )
    .await;
    let listed = list_labelled(api, Kind::Service, &format!("{NAMESPACE}=fault")).await;
    let names: Vec<String> = listed.iter().map(name_of).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(names.len(), services, "services: {names:?}");
    assert_eq!(unique.len(), services, "duplicate names: {names:?}");
    let env = child_env(host);
    assert_eq!(
        expect::names(dir, &env),
        managed(api).await,
        "bosun's objects after the rerun (an orphan would be extra)"
    );
    let report = expect::check(dir, api, &env).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    let stray = unmanaged(api).await;
    assert!(
        stray.is_empty(),
        "objects without bosun's labels: {stray:?}"
    );
    bosun_ok(host, &["plan", dir_s], 0, RUN_TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_whose_manager_dies_mid_apply_converges_on_the_rerun_without_duplicates() {
    const SERVICES: usize = 30;
    const GIVE_UP: Duration = Duration::from_secs(30);
    let _turn = SERIAL.lock().await;
    let swarm = Swarm::up("e2e-fault", 3, 0).await;
    let host = swarm.host("manager1");
    let observer = swarm.client("manager2").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fault");
    fault_folder(&dir, SERVICES);
    let dir_s = path_str(&dir);

    let started = Instant::now();
    let mut child = slow_reconcile(&host, dir_s);
    let stack_label = format!("{NAMESPACE}=fault");
    let seen = wait_for(
        "the first service creates on another manager",
        Duration::from_secs(60),
        || async {
            let n = list_labelled(&observer, Kind::Service, &stack_label)
                .await
                .len();
            (n >= 3).then_some(n)
        },
    )
    .await;
    swarm.sandbox.kill("manager1").await.expect("kill manager1");
    let killed_at = started.elapsed();
    assert!(
        seen < SERVICES,
        "the whole plan was applied before the kill ({seen} services): nothing was interrupted"
    );
    // Against a dead socket the pass stops after the running actions'
    // retries (regression: every pending action used to retry on its own,
    // 123 s for 24 pending creates).
    let status = tokio::time::timeout(GIVE_UP, child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the interrupted reconcile was still running {GIVE_UP:?} after its manager died \
                 ({seen} services seen at the kill, {killed_at:.1?})"
            )
        })
        .expect("wait for bosun");
    eprintln!(
        "killed manager1 after {killed_at:.1?} with {seen} services seen; first run exited {status}"
    );
    assert!(
        !status.success(),
        "a reconcile that lost its manager must not report convergence"
    );

    swarm
        .sandbox
        .start("manager1")
        .await
        .expect("start manager1");
    swarm
        .sandbox
        .wait_ready(Duration::from_secs(120))
        .await
        .expect("swarm ready again");
    let api = swarm.client("manager1").await;
    rerun_converges_exactly(&host, &api, &dir, SERVICES).await;
    eprintln!("fault test done in {:.1?}", started.elapsed());
}

/// Issue 9: `bosun` itself killed with SIGKILL in the middle of `reconcile
/// --once` on a stack of 50 services (no chance to clean up or finish a
/// request): the rerun converges with exactly the folder's objects, no
/// duplicate, nothing orphaned, nothing unlabelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bosun_killed_by_sigkill_mid_reconcile_converges_on_the_rerun_without_duplicates_or_orphans()
 {
    const SERVICES: usize = 50;
    let _turn = SERIAL.lock().await;
    let swarm = Swarm::up("e2e-sigkill", 1, 0).await;
    let host = swarm.host("manager1");
    let api = swarm.client("manager1").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fault");
    fault_folder(&dir, SERVICES);
    let dir_s = path_str(&dir);
    let stack_label = format!("{NAMESPACE}=fault");

    let mut child = slow_reconcile(&host, dir_s);
    let seen = wait_for(
        "bosun to create its first services",
        Duration::from_secs(60),
        || async {
            let n = list_labelled(&api, Kind::Service, &stack_label).await.len();
            (n >= 5).then_some(n)
        },
    )
    .await;
    // tokio's kill is SIGKILL on Unix.
    child.start_kill().expect("SIGKILL bosun");
    let status = child.wait().await.expect("wait for bosun");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "bosun was killed: {status}"
    );
    let at_kill = list_labelled(&api, Kind::Service, &stack_label).await.len();
    eprintln!("SIGKILL after {seen} services seen; {at_kill} exist after the kill");
    assert!(
        at_kill < SERVICES,
        "the whole plan was applied before the kill ({at_kill} services): nothing was interrupted"
    );

    rerun_converges_exactly(&host, &api, &dir, SERVICES).await;
}

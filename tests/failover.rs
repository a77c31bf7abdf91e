//! A `VipPolicy` deployed by `bosun reconcile --once` on the multi-node
//! sandbox, with real keepalived (Debian's package, imported as the image
//! `images/keepalived/Dockerfile` describes): the address lands on the
//! highest priority, answers ping from the host, moves within keepalived's
//! bound when its holder dies or loses its link, comes back with preempt and
//! stays away with nopreempt; a policy change rolls one node at a time, the
//! holder last; the password shows nowhere.
//!
//! Traffic goes only to the sandbox's own subnet (the VIP is an unused
//! address of it).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cli;
use crate::support::e2e::{self, Swarm};
use crate::support::rootfs::{self, Rootfs};

/// The policy's default image, which the test imports into every node.
const IMAGE: &str = "bosun/keepalived:2.2";
/// In the password file; must appear in no output.
const PASSWORD: &str = "s3cr3tPw";
/// One `reconcile --once` (a roll waits for each node in turn).
const RECONCILE: Duration = Duration::from_secs(240);
/// Generous bound for things that are not failover itself (a node's
/// daemon restarting, its task starting again).
const SLOW: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// keepalived, bosun (the checker) and a busybox shell, configured like
/// `images/keepalived/Dockerfile`, imported into every node.
fn build_image(swarm: &Swarm) {
    let busybox = std::fs::read(bosun::sandbox::image::BUSYBOX).expect("busybox-static");
    let fs = Rootfs::new()
        .binary(Path::new("/usr/sbin/keepalived"), "usr/sbin/keepalived")
        .binary(Path::new(cli::BOSUN), "usr/local/bin/bosun")
        .file("bin/sh", 0o755, busybox)
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
        )
        .file("etc/group", 0o644, b"root:x:0:\n".to_vec())
        .dir("etc/keepalived", 0o755)
        .dir("run", 0o755)
        .dir("var/run", 0o755);
    let dockerfile = std::fs::read_to_string(repo().join("images/keepalived/Dockerfile"))
        .expect("images/keepalived/Dockerfile");
    let changes = rootfs::dockerfile_changes(
        &dockerfile,
        &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    );
    let entrypoint = format!(
        "ENTRYPOINT {}",
        serde_json::to_string(&bosun::plan::vip::COMMAND).expect("json")
    );
    assert!(
        changes.iter().any(|c| c.replace(", ", ",") == entrypoint),
        "the Dockerfile starts keepalived as the services do ({entrypoint}); its changes: {changes:?}"
    );
    let tar = fs.tar();
    for node in swarm.sandbox.nodes() {
        rootfs::import(&swarm.host(&node), IMAGE, &tar, &changes);
    }
}

/// The sandbox's subnet address `.200`: unused (nodes are .11 up).
fn vip_of(swarm: &Swarm) -> Ipv4Addr {
    let ip = swarm.sandbox.node_ip("manager1").expect("manager1");
    let [a, b, c, _] = ip.octets();
    Ipv4Addr::new(a, b, c, 200)
}

/// The policy selects the nodes labelled `vip=yes`; `nodes.yaml` labels
/// all three managers unless [`write_members`] said otherwise.
fn write_policy(dir: &Path, vip: Ipv4Addr, priorities: &str, preempt: bool) {
    std::fs::create_dir_all(dir).expect("mkdir");
    if !dir.join("nodes.yaml").exists() {
        write_members(dir, &["manager1", "manager2", "manager3"]);
    }
    std::fs::write(dir.join("vrrp-password"), format!("{PASSWORD}\n")).expect("password");
    std::fs::write(
        dir.join("vip.yaml"),
        format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: VipPolicy\nmetadata: {{name: front}}\nspec:\n  \
             address: {vip}/24\n  interface: eth0\n  virtualRouterId: 61\n  advertInterval: 1\n  \
             preempt: {preempt}\n  auth: {{passwordFile: vrrp-password}}\n  \
             nodes:\n    selector: {{labels: {{vip: \"yes\"}}}}\n    priorities: {{{priorities}}}\n"
        ),
    )
    .expect("write vip.yaml");
}

/// Label `hosts` `vip=yes` (a `NodeLabels` manifest in the same folder).
fn write_members(dir: &Path, hosts: &[&str]) {
    let mut rules = String::new();
    for h in hosts {
        let _ = writeln!(
            rules,
            "    - selector: {{hostname: {h}}}\n      labels: {{vip: \"yes\"}}"
        );
    }
    std::fs::write(
        dir.join("nodes.yaml"),
        format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: NodeLabels\nmetadata: {{name: vip-nodes}}\nspec:\n  rules:\n{rules}"
        ),
    )
    .expect("write nodes.yaml");
}

/// Pings `vip` every 100 ms on its own thread until stopped: (sent, lost).
struct Pinger {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<(u32, u32)>,
}

impl Pinger {
    fn start(vip: Ipv4Addr) -> Pinger {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut sent, mut lost) = (0u32, 0u32);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                sent += 1;
                if !ping(vip) {
                    lost += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (sent, lost)
        });
        Pinger { stop, handle }
    }

    fn stop(self) -> (u32, u32) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("pinger")
    }
}

/// Where each of `services` is updated in `output`: they appear in order.
fn rolled_in_order(output: &str, services: &[&str]) {
    let at: Vec<usize> = services
        .iter()
        .map(|s| {
            output
                .find(&format!("update service {s}"))
                .unwrap_or_else(|| panic!("{s} not updated:\n{output}"))
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "not rolled in the order {services:?}:\n{output}"
    );
}

/// A ping takes up to 1 s when lost: one failover (about 3.6 s at an
/// advert interval of 1 s) loses a handful, never a whole roll.
const LOST_IN_ONE_FAILOVER: u32 = 8;

/// The nodes whose `eth0` carries `vip` and has a carrier right now (a
/// killed or cut node's link is down: its stale address answers nobody).
fn holders(swarm: &Swarm, vip: Ipv4Addr) -> Vec<String> {
    let want = format!("inet {vip}/");
    swarm
        .sandbox
        .nodes()
        .into_iter()
        .filter(|node| {
            let ns = swarm.sandbox.netns(node).expect("node");
            let ip = |args: &[&str]| {
                let out = std::process::Command::new("ip")
                    .args(["-n", &ns])
                    .args(args)
                    .output()
                    .expect("ip");
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            ip(&["-4", "addr", "show", "dev", "eth0"]).contains(&want)
                && ip(&["-o", "link", "show", "dev", "eth0"]).contains("state UP")
        })
        .collect()
}

/// Wait until exactly `node` holds `vip`; how long it took.
async fn held_by(swarm: &Swarm, vip: Ipv4Addr, node: &str, within: Duration) -> Duration {
    let start = Instant::now();
    let what = format!("{vip} on {node} only");
    e2e::wait_for(&what, within, || {
        let now = holders(swarm, vip);
        async move { (now == [node]).then_some(()) }
    })
    .await;
    start.elapsed()
}

/// One ping from the host.
fn ping(ip: Ipv4Addr) -> bool {
    std::process::Command::new("ping")
        .args(["-n", "-q", "-c", "1", "-W", "1", &ip.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn answers(vip: Ipv4Addr) {
    e2e::wait_for(&format!("{vip} answers ping"), SLOW, || async move {
        ping(vip).then_some(())
    })
    .await;
}

/// keepalived's bound for a backup to take over from a master that went
/// silent: 3 adverts plus the skew `(256 - priority) / 256` adverts.
fn bound(advert: f64, backup_priority: f64) -> Duration {
    Duration::from_secs_f64(3.0 * advert + (256.0 - backup_priority) / 256.0 * advert)
}

async fn reconcile(swarm: &Swarm, dir: &Path) -> String {
    let args = ["reconcile", "--once", dir.to_str().expect("utf-8")];
    let out = e2e::bosun_ok(&swarm.host("manager1"), &args, 0, RECONCILE).await;
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The keepalived services: name → (spec version index, whole inspect).
async fn services(swarm: &Swarm) -> std::collections::BTreeMap<String, (u64, Value)> {
    let api = swarm.client("manager1").await;
    e2e::list_labelled(
        &api,
        bosun::swarm::Kind::Service,
        "dev.bosun.owner=VipPolicy/front",
    )
    .await
    .into_iter()
    .map(|s| {
        let version = s
            .pointer("/Version/Index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        (e2e::name_of(&s), (version, s))
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vip_policy_holds_its_address_fails_over_and_rolls_one_node_at_a_time() {
    let swarm = Swarm::up("vipfo", 3, 0).await;
    build_image(&swarm);
    let vip = vip_of(&swarm);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = tmp.path().join("manifests");
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_members(&dir, &["manager1", "manager2"]);
    write_policy(
        &dir,
        vip,
        "manager1: 200, manager2: 100, manager3: 50",
        true,
    );

    // Deployed on two nodes: the address on the priority-200 node only,
    // answering.
    let mut outputs = reconcile(&swarm, &dir).await;
    held_by(&swarm, vip, "manager1", SLOW).await;
    answers(vip).await;
    assert_eq!(services(&swarm).await.len(), 2);

    // A third node joins the policy: it starts at once, the two others get
    // their new peer one at a time, the holder last, and pings lose at most
    // one failover's worth.
    let pinger = Pinger::start(vip);
    write_members(&dir, &["manager1", "manager2", "manager3"]);
    let grown = reconcile(&swarm, &dir).await;
    let (sent, lost) = pinger.stop();
    assert!(
        grown.contains("create service vip-front_manager3"),
        "{grown}"
    );
    rolled_in_order(&grown, &["vip-front_manager2", "vip-front_manager1"]);
    assert!(
        lost <= LOST_IN_ONE_FAILOVER,
        "{lost} of {sent} pings lost while adding a node:\n{grown}"
    );
    outputs.push_str(&grown);
    held_by(&swarm, vip, "manager1", SLOW).await;
    let svcs = services(&swarm).await;
    assert_eq!(
        svcs.keys().cloned().collect::<Vec<_>>(),
        [
            "vip-front_manager1",
            "vip-front_manager2",
            "vip-front_manager3"
        ]
    );
    let status = e2e::bosun_ok(&swarm.host("manager1"), &["vip", "status"], 0, SLOW).await;
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains(&format!(
            "VipPolicy/front {vip}/24: held by manager1 since "
        )),
        "{status}"
    );
    outputs.push_str(&status);

    // The holder dies: the priority-100 node takes over within the bound.
    swarm.sandbox.kill("manager1").await.expect("kill");
    let took = held_by(&swarm, vip, "manager2", SLOW).await;
    let limit = bound(1.0, 100.0) + Duration::from_secs(1);
    assert!(
        took <= limit,
        "failover took {took:?}, keepalived's bound + 1 s is {limit:?}"
    );
    answers(vip).await;
    // It returns: with preempt it takes the address back.
    swarm.sandbox.start("manager1").await.expect("start");
    held_by(&swarm, vip, "manager1", SLOW).await;

    // Its link is cut (processes left running): the same, and back on mend.
    swarm.sandbox.cut("manager1").await.expect("cut");
    let took = held_by(&swarm, vip, "manager2", SLOW).await;
    assert!(
        took <= limit,
        "failover after a cut took {took:?}, limit {limit:?}"
    );
    answers(vip).await;
    swarm.sandbox.mend("manager1").await.expect("mend");
    held_by(&swarm, vip, "manager1", SLOW).await;

    // A priority edit rolls only that node's service.
    let before = services(&swarm).await;
    write_policy(
        &dir,
        vip,
        "manager1: 200, manager2: 100, manager3: 60",
        true,
    );
    outputs.push_str(&reconcile(&swarm, &dir).await);
    let after = services(&swarm).await;
    for (name, (version, _)) in &after {
        let changed = *version != before[name].0;
        assert_eq!(
            changed,
            name == "vip-front_manager3",
            "{name}: {version} vs {}",
            before[name].0
        );
    }
    held_by(&swarm, vip, "manager1", SLOW).await;

    // nopreempt rolls every node, the holder last, with pings every 100 ms
    // losing at most one failover's worth.
    let pinger = Pinger::start(vip);
    write_policy(
        &dir,
        vip,
        "manager1: 200, manager2: 100, manager3: 60",
        false,
    );
    let rolled = reconcile(&swarm, &dir).await;
    let (sent, lost) = pinger.stop();
    rolled_in_order(
        &rolled,
        &[
            "vip-front_manager2",
            "vip-front_manager3",
            "vip-front_manager1",
        ],
    );
    assert!(
        lost <= LOST_IN_ONE_FAILOVER,
        "{lost} of {sent} pings lost while rolling:\n{rolled}"
    );
    outputs.push_str(&rolled);

    // With nopreempt the address stays where it went.
    let holder = e2e::wait_for("one holder", SLOW, || {
        let now = holders(&swarm, vip);
        async move { (now.len() == 1).then(|| now[0].clone()) }
    })
    .await;
    swarm.sandbox.kill(&holder).await.expect("kill holder");
    let next = e2e::wait_for("a new holder", SLOW, || {
        let now = holders(&swarm, vip);
        let old = holder.clone();
        async move { (now.len() == 1 && now[0] != old).then(|| now[0].clone()) }
    })
    .await;
    swarm.sandbox.start(&holder).await.expect("start");
    // Wait until the returned node's keepalived runs (BACKUP), then a few
    // adverts more: the address does not move back.
    let host = swarm.host("manager2");
    let back = holder.clone();
    e2e::wait_for("the returned node in backup", SLOW, || {
        let host = host.clone();
        let back = back.clone();
        async move {
            let out = e2e::bosun(&host, &["vip", "status"], Duration::from_secs(30)).await;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.lines()
                .any(|l| l.trim_start().starts_with(&back) && l.contains("backup"))
                .then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        holders(&swarm, vip),
        std::slice::from_ref(&next),
        "nopreempt: stays on {next}"
    );

    // The password is in no output, spec or inspect.
    let inspect = cli::docker_at(&swarm.host("manager2"))
        .args([
            "service",
            "inspect",
            "vip-front_manager1",
            "vip-front_manager2",
            "vip-front_manager3",
        ])
        .output()
        .await
        .expect("docker service inspect");
    outputs.push_str(&String::from_utf8_lossy(&inspect.stdout));
    let plan = e2e::bosun(
        &swarm.host("manager2"),
        &["plan", dir.to_str().expect("utf-8"), "--output", "json"],
        SLOW,
    )
    .await;
    outputs.push_str(&String::from_utf8_lossy(&plan.stdout));
    for (_, (_, spec)) in services(&swarm).await {
        outputs.push_str(&spec.to_string());
    }
    assert!(
        !outputs.contains(PASSWORD),
        "the password leaked:\n{outputs}"
    );
}

/// `example` copied to `dest` with its VIP moved onto the sandbox: the
/// address `vip`, the interface `eth0` (the sandbox nodes' only link).
fn adapt_vip_example(example: &str, dest: &Path, vip: Ipv4Addr) {
    crate::support::copy_tree(&repo().join("examples").join(example), dest).expect("copy");
    let file = dest.join("vip.yaml");
    let text = std::fs::read_to_string(&file).expect("vip.yaml");
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("address:") {
            let _ = writeln!(out, "{indent}address: {vip}/24");
        } else if trimmed.starts_with("interface:") {
            let _ = writeln!(out, "{indent}interface: eth0");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(&file, out).expect("write vip.yaml");
}

/// An HTTP server on `127.0.0.1:port` inside a node's network namespace
/// (where the node's host-network keepalived checks it), serving `path`
/// with 200; killed on drop.
struct Serve {
    child: std::process::Child,
    root: tempfile::TempDir,
}

impl Serve {
    fn start(swarm: &Swarm, node: &str, port: u16, path: &str) -> Serve {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join(path.trim_start_matches('/')), "ok\n").expect("write");
        let log = std::fs::File::create(root.path().join("requests.log")).expect("log");
        let ns = swarm.sandbox.netns(node).expect("node");
        let child = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                bosun::sandbox::image::BUSYBOX,
                "httpd",
                "-f",
                "-vv",
            ])
            .args(["-p", &format!("127.0.0.1:{port}")])
            .arg("-h")
            .arg(root.path())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("busybox httpd");
        Serve { child, root }
    }

    /// How many requests it answered with 200 (keepalived's checks).
    fn answered(&self) -> usize {
        std::fs::read_to_string(self.root.path().join("requests.log"))
            .unwrap_or_default()
            .matches("response:200")
            .count()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sandbox with `hostnames` running `example` (its VIP moved onto the
/// sandbox's subnet) after one `reconcile --once --no-wait` (the examples'
/// other images cannot be pulled here), the address held by `holder`.
async fn example_on_sandbox(
    example: &str,
    managers: u32,
    workers: u32,
    hostnames: &str,
    holder: &str,
) -> (Swarm, Ipv4Addr, String, tempfile::TempDir) {
    let names: Vec<String> = hostnames.split(',').map(str::to_string).collect();
    let swarm = Swarm::up_with(
        &format!("vipex{}", example.len()),
        managers,
        workers,
        &names,
    )
    .await;
    build_image(&swarm);
    let vip = vip_of(&swarm);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(example);
    adapt_vip_example(example, &dir, vip);
    let args = [
        "reconcile",
        "--once",
        "--no-wait",
        dir.to_str().expect("utf-8"),
    ];
    let out = e2e::bosun_ok(&swarm.host(&names[0]), &args, 0, RECONCILE).await;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    held_by(&swarm, vip, holder, SLOW).await;
    answers(vip).await;
    let status = e2e::bosun_ok(&swarm.host(&names[0]), &["vip", "status"], 0, SLOW).await;
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains(&format!(": held by {holder} since ")),
        "{example}: {status}"
    );
    (swarm, vip, output, tmp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn homelab_ha_holds_its_vip_on_swarm1_and_a_failing_traefik_check_there_does_not_move_it() {
    let (swarm, vip, output, _tmp) =
        example_on_sandbox("homelab-ha", 3, 0, "swarm1,swarm2,swarm3", "swarm1").await;
    assert!(
        output.contains(
            "when `docker` fails on swarm1 (priority 230 while healthy) its priority is 210"
        ),
        "the weight warning: {output}"
    );
    // Traefik answers /ping on swarm2 and swarm3, not on swarm1: swarm1
    // is at 200 + 20 (dockerd answers), swarm2 at 100 + 20 + 10.
    let ping2 = Serve::start(&swarm, "swarm2", 8080, "/ping");
    let _ping3 = Serve::start(&swarm, "swarm3", 8080, "/ping");
    // The check (every 30 s) has passed on swarm2 once Traefik's stand-in
    // answered it; a few adverts later the address has not moved, as the
    // warning said.
    e2e::wait_for("swarm2's traefik check passes", SLOW, || {
        let passed = ping2.answered() > 0;
        async move { passed.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(holders(&swarm, vip), ["swarm1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalived_haproxy_moves_its_vip_to_lb2_when_haproxy_on_lb1_fails_and_back() {
    let (swarm, vip, _, _tmp) =
        example_on_sandbox("keepalived-haproxy", 1, 1, "lb1,lb2", "lb1").await;
    // HAProxy's monitor-uri answers on both: lb1 13, lb2 12.
    let lb1 = Serve::start(&swarm, "lb1", 8404, "/healthz");
    let _lb2 = Serve::start(&swarm, "lb2", 8404, "/healthz");
    // It stops on lb1: lb1 drops to 11, below lb2's 12.
    drop(lb1);
    held_by(&swarm, vip, "lb2", SLOW).await;
    answers(vip).await;
    // It is back: lb1 at 13 again takes the address back (preempt).
    let _lb1 = Serve::start(&swarm, "lb1", 8404, "/healthz");
    held_by(&swarm, vip, "lb1", SLOW).await;
    answers(vip).await;
}

/// Failover times for BENCHMARKS.md (a measurement, not a check: it is
/// ignored in the suite). For `advertInterval` 1 (`VRRPv2`) and 0.1 (`VRRPv3`):
/// ten times, the holder's node is killed (`sandbox kill`: its processes
/// and its link), and the time until the address is on the next node and
/// answers a ping from the host is taken; the node is started again and
/// takes the address back (preempt) before the next round.
///
/// `cargo nextest run --run-ignored only -E 'test(=failover::failover_time_kill_to_answer)' --no-capture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement for BENCHMARKS.md, about 15 minutes"]
async fn failover_time_kill_to_answer() {
    let swarm = Swarm::up("vipbench", 3, 0).await;
    build_image(&swarm);
    let vip = vip_of(&swarm);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("manifests");
    for advert in [1.0, 0.1] {
        write_policy(
            &dir,
            vip,
            "manager1: 200, manager2: 100, manager3: 50",
            true,
        );
        let policy = dir.join("vip.yaml");
        let text = std::fs::read_to_string(&policy).expect("read");
        let mut text = text.replace(
            "advertInterval: 1\n",
            &format!("advertInterval: {advert}\n"),
        );
        if advert < 1.0 {
            // VRRPv3 has no authentication.
            text = text.replace("  auth: {passwordFile: vrrp-password}\n", "");
        }
        std::fs::write(&policy, text).expect("write");
        reconcile(&swarm, &dir).await;
        held_by(&swarm, vip, "manager1", SLOW).await;
        answers(vip).await;
        let mut times = Vec::new();
        for _ in 0..10 {
            let start = Instant::now();
            swarm.sandbox.kill("manager1").await.expect("kill");
            e2e::wait_for("the next holder answers", SLOW, || {
                let now = holders(&swarm, vip);
                async move { (now == ["manager2"] && ping(vip)).then_some(()) }
            })
            .await;
            times.push(start.elapsed());
            swarm.sandbox.start("manager1").await.expect("start");
            held_by(&swarm, vip, "manager1", SLOW).await;
            answers(vip).await;
        }
        times.sort();
        let bound = bound(advert, 100.0);
        println!(
            "failover advertInterval {advert}: median {:?}, max {:?} over {} kills (keepalived's bound {bound:?})",
            times[times.len() / 2],
            times[times.len() - 1],
            times.len()
        );
    }
}

//! Multi-node sandbox on real daemons: one dockerd per node in its own
//! network namespace. These tests need root, dockerd, ip, nsenter, unshare
//! and iptables; without them they fail (never pass silently) with the list
//! of what is missing.
//!
//! Each test uses its own sandbox name, so they run in parallel with each
//! other and with anyone else's sandbox on the machine.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use bosun::sandbox::{self, Config, LeaderState, Sandbox, preflight};
use tokio::time::Instant;

use super::support::cli;

/// Fail loudly when the host cannot run a sandbox.
fn require_host() {
    let report = preflight::check();
    assert!(
        report.is_ok(),
        "the sandbox tests need a prepared host (CI installs docker.io and runs as root):\n{report}"
    );
}

/// Removes the sandbox when a test ends, also when it panics.
struct Cleanup(&'static str);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let name = self.0;
        // A fresh runtime on another thread: the test's runtime may be the
        // one unwinding.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(sandbox::teardown(Path::new(sandbox::DEFAULT_ROOT), name))
        })
        .join();
        if let Ok(Err(err)) = done {
            eprintln!("cleanup of sandbox {name}: {err}");
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Check with the system's own tools (not the library) that nothing of
/// sandbox `name` is left: processes, namespaces, mounts, bridge, iptables.
fn assert_nothing_left(name: &str) {
    let dir = format!("{}/{name}/", sandbox::DEFAULT_ROOT);
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&dir) {
            left.push(format!(
                "process {}: {cmdline}",
                entry.file_name().display()
            ));
        }
    }
    let netns_prefix = format!("bosun-{name}-");
    for line in run("ip", &["netns", "list"]).lines() {
        if line.starts_with(&netns_prefix) {
            left.push(format!("netns {line}"));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mounts.lines() {
        if line.contains(&dir) || line.contains(&netns_prefix) {
            left.push(format!("mount {line}"));
        }
    }
    let bridge = sandbox::net::bridge_name(name);
    if Command::new("ip")
        .args(["link", "show", "dev", &bridge])
        .output()
        .unwrap()
        .status
        .success()
    {
        left.push(format!("bridge {bridge}"));
    }
    let veth_prefix = format!("bs{}", sandbox::net::short_hash(name));
    for line in run("ip", &["-o", "link", "show"]).lines() {
        if line.contains(&format!(": {veth_prefix}")) {
            left.push(format!("link {line}"));
        }
    }
    let comment = format!("bosun-sandbox:{name}\"");
    let comment_unquoted = format!("bosun-sandbox:{name} ");
    for line in run("iptables", &["-w", "-S"]).lines() {
        if line.contains(&comment) || line.contains(&comment_unquoted) {
            left.push(format!("iptables {line}"));
        }
    }
    if Path::new(&dir).exists() {
        left.push(format!("directory {dir}"));
    }
    assert!(
        left.is_empty(),
        "sandbox {name} left behind:\n{}",
        left.join("\n")
    );
}

/// Poll `leader_state` on `node` until `want` holds or `within` passes.
async fn wait_leader_state(
    sandbox: &Sandbox,
    node: &str,
    within: Duration,
    want: impl Fn(&LeaderState) -> bool,
) -> Result<LeaderState, String> {
    let started = Instant::now();
    let deadline = started + within;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let seen = match tokio::time::timeout(left, sandbox.leader_state(node)).await {
            Ok(Ok(state)) if want(&state) => return Ok(state),
            Ok(Ok(state)) => format!("{state:?}"),
            Ok(Err(err)) => bosun::error::chain(&err),
            Err(_) => "call still blocked at the deadline".into(),
        };
        if seen != last {
            eprintln!("{node} after {:?}: {seen}", started.elapsed());
            last = seen;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_should_lose_quorum_when_two_of_three_managers_die_and_heal_when_they_return() {
    require_host();
    let name = "t-quorum";
    let _ = sandbox::teardown(Path::new(sandbox::DEFAULT_ROOT), name).await;
    let _cleanup = Cleanup(name);

    let sandbox = Sandbox::up(Config::new(name).managers(3).workers(1))
        .await
        .unwrap_or_else(|e| panic!("up: {}", bosun::error::chain(&e)));

    // 4 Ready nodes with their own hostnames, exactly one Leader.
    let rows = sandbox.swarm_nodes("manager1").await.unwrap();
    let mut hostnames: Vec<&str> = rows.iter().map(|r| r.hostname.as_str()).collect();
    hostnames.sort_unstable();
    assert_eq!(
        hostnames,
        ["manager1", "manager2", "manager3", "worker1"],
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.status == "ready"), "{rows:?}");
    assert_eq!(
        rows.iter().filter(|r| r.manager_status == "Leader").count(),
        1,
        "{rows:?}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.role == "manager").count(),
        3,
        "{rows:?}"
    );
    // Each daemon sits in its own UTS namespace: its engine name is the node's.
    let info = sandbox
        .docker("worker1")
        .await
        .unwrap()
        .info()
        .await
        .unwrap();
    assert_eq!(info.name.as_deref(), Some("worker1"));

    // Kill two managers: the survivor refuses writes for lack of a leader.
    sandbox.kill("manager2").await.unwrap();
    sandbox.kill("manager3").await.unwrap();
    assert!(!sandbox.is_running("manager2").unwrap());
    assert!(!sandbox.is_running("manager3").unwrap());
    let killed_at = Instant::now();
    let state = wait_leader_state(
        &sandbox,
        "manager1",
        Duration::from_secs(60),
        |s| matches!(s, LeaderState::NoLeader(m) if m.contains(sandbox::NO_LEADER)),
    )
    .await
    .unwrap_or_else(|last| panic!("manager1 still reports a leader after 60s; last: {last}"));
    eprintln!("quorum lost after {:?}: {state:?}", killed_at.elapsed());
    // `/info` still answers on the survivor, with the error in Swarm.Error.
    let info = sandbox
        .docker("manager1")
        .await
        .unwrap()
        .info()
        .await
        .unwrap();
    assert_eq!(info.swarm.and_then(|s| s.control_available), Some(true));

    // Bring them back: the swarm heals by itself.
    sandbox.start("manager2").await.unwrap();
    sandbox.start("manager3").await.unwrap();
    sandbox
        .wait_ready(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{}", bosun::error::chain(&e)));
    let state = wait_leader_state(&sandbox, "manager1", Duration::from_secs(30), |s| {
        matches!(s, LeaderState::Leader(_))
    })
    .await
    .unwrap();
    eprintln!("healed: {state:?}");

    sandbox.down().await.unwrap();
    assert_nothing_left(name);
}

fn bosun(args: &[&str]) -> Output {
    let out = cli::bosun().arg("sandbox").args(args).output().unwrap();
    eprintln!(
        "$ bosun sandbox {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn bosun_ok(args: &[&str]) -> String {
    let out = bosun(args);
    assert!(
        out.status.success(),
        "bosun sandbox {} failed",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_cli_should_drive_a_sandbox_through_up_image_kill_start_and_down() {
    require_host();
    let name = "t-cli";
    let _ = sandbox::teardown(Path::new(sandbox::DEFAULT_ROOT), name).await;
    let _cleanup = Cleanup(name);
    let n = ["--name", name];

    let up = bosun_ok(&["up", "--managers", "1", "--workers", "1", n[0], n[1]]);
    assert!(up.contains("Leader"), "{up}");
    // A second `up` with the same name refuses and leaves the first alone.
    let again = bosun(&["up", "--managers", "1", n[0], n[1]]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let env = bosun_ok(&["env", "worker1", n[0], n[1]]);
    assert_eq!(
        env.trim(),
        "export DOCKER_HOST=unix:///run/bosun-sandbox/t-cli/worker1/docker.sock"
    );

    // The test image exists on every node and runs.
    bosun_ok(&["image", n[0], n[1]]);
    let sandbox = Sandbox::open(name).unwrap();
    for node in sandbox.nodes() {
        let docker = sandbox.docker(&node).await.unwrap();
        docker
            .inspect_image("bosun/busybox:latest")
            .await
            .unwrap_or_else(|e| panic!("image missing on {node}: {e}"));
    }
    let worker = sandbox.docker("worker1").await.unwrap();
    let body = bollard::models::ContainerCreateBody {
        image: Some("bosun/busybox:latest".into()),
        cmd: Some(vec!["sleep".into(), "4242".into()]),
        ..Default::default()
    };
    let created = worker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .unwrap();
    worker
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap();
    let sleeping = || {
        run("ps", &["-eo", "args"])
            .lines()
            .any(|l| l == "sleep 4242")
    };
    // `start` returns once runc started the task; the exec of `sleep` follows.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sleeping() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sleeping(), "the container's process should run");

    // kill takes the daemon and its containers down; start brings it back.
    bosun_ok(&["kill", "worker1", n[0], n[1]]);
    assert!(!sandbox.is_running("worker1").unwrap());
    assert!(!sleeping(), "kill should also kill the node's containers");
    let status = bosun_ok(&["status", n[0], n[1]]);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("worker1") && l.contains("stopped")),
        "{status}"
    );
    bosun_ok(&["start", "worker1", n[0], n[1]]);
    assert!(sandbox.is_running("worker1").unwrap());
    sandbox
        .wait_ready(Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{}", bosun::error::chain(&e)));

    // down right after a crash still leaves nothing behind.
    bosun_ok(&["kill", "manager1", n[0], n[1]]);
    bosun_ok(&["down", n[0], n[1]]);
    assert_nothing_left(name);

    let out = bosun(&["status", n[0], n[1]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not running"));
}

/// Wait (polling every 500 ms, at most `within`) until `check` holds.
async fn until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_nodes_have_their_hostnames_their_own_docker_socket_and_can_be_cut_and_mended() {
    require_host();
    let name = "t-hosts";
    let _ = sandbox::teardown(Path::new(sandbox::DEFAULT_ROOT), name).await;
    let _cleanup = Cleanup(name);
    let hostnames: Vec<String> = ["swarm1", "swarm2", "swarm3"].map(String::from).to_vec();
    let sandbox = Sandbox::up(Config::new(name).managers(3).hostnames(hostnames.clone()))
        .await
        .expect("up");
    assert_eq!(sandbox.nodes(), hostnames);
    let seen: Vec<String> = sandbox
        .swarm_nodes("swarm1")
        .await
        .expect("node ls")
        .into_iter()
        .map(|n| n.hostname)
        .collect();
    assert_eq!(seen, hostnames);
    // Internal names still work.
    assert_eq!(
        sandbox.docker_host("manager2").unwrap(),
        sandbox.docker_host("swarm2").unwrap()
    );

    // Inside a node, /var/run/docker.sock is that node's daemon.
    let status = sandbox.status().await;
    for n in &status.nodes {
        let pid = n.pid.expect("pid").to_string();
        let out = Command::new("nsenter")
            .args(["--target", &pid, "--mount", "--net", "--"])
            .args([
                "docker",
                "-H",
                "unix:///var/run/docker.sock",
                "info",
                "--format",
                "{{.Name}}",
            ])
            .output()
            .expect("nsenter docker info");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            n.node,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And a task that binds it gets its own node's socket, not the host's.
    sandbox.build_image().await.expect("image");
    let socket = sandbox.docker_host("swarm2").unwrap();
    let socket = socket.trim_start_matches("unix://");
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(socket).expect("socket"));
    let host_inode = std::fs::metadata("/var/run/docker.sock")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .ok();
    assert_ne!(Some(inode), host_inode);
    let docker1 = sandbox.docker_host("swarm1").unwrap();
    let created = cli::docker()
        .env("DOCKER_HOST", &docker1)
        .args([
            "service",
            "create",
            "--detach",
            "--name",
            "sock",
            "--restart-condition",
            "none",
            "--constraint",
            "node.hostname==swarm2",
            "--mount",
            "type=bind,source=/var/run/docker.sock,target=/var/run/docker.sock,readonly",
            "bosun/busybox:latest",
            "sh",
            "-c",
            "stat -L -c 'inode=%i' /var/run/docker.sock; sleep 3600",
        ])
        .output()
        .expect("service create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let want = format!("inode={inode}");
    until(
        "the task reports its socket's inode",
        Duration::from_secs(90),
        async || {
            let logs = cli::docker()
                .env("DOCKER_HOST", &docker1)
                .args(["service", "logs", "--raw", "sock"])
                .output()
                .expect("service logs");
            let text = String::from_utf8_lossy(&logs.stdout);
            if text.contains("inode=") {
                assert!(text.contains(&want), "want {want}, the task saw {text}");
                return true;
            }
            false
        },
    )
    .await;

    // Cut: the link goes down, the daemon keeps running, swarm sees the
    // node down; mended, it is Ready again.
    let ip = sandbox.node_ip("swarm3").unwrap().to_string();
    let ping = |ip: &str| {
        Command::new("ping")
            .args(["-n", "-q", "-c", "1", "-W", "1", ip])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(ping(&ip));
    sandbox.cut("swarm3").await.expect("cut");
    assert!(sandbox.is_cut("swarm3").unwrap());
    assert!(!ping(&ip), "a cut node answers ping");
    assert!(
        sandbox.is_running("swarm3").unwrap(),
        "cut leaves the daemon running"
    );
    until(
        "swarm1 sees swarm3 down",
        Duration::from_secs(120),
        async || {
            sandbox.swarm_nodes("swarm1").await.is_ok_and(|rows| {
                rows.iter()
                    .any(|r| r.hostname == "swarm3" && r.status != "ready")
            })
        },
    )
    .await;
    sandbox.mend("swarm3").await.expect("mend");
    assert!(!sandbox.is_cut("swarm3").unwrap());
    sandbox
        .wait_ready(Duration::from_secs(120))
        .await
        .expect("ready after mend");
    assert!(ping(&ip));
}

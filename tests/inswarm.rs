//! Proof that `bosun run` works as a swarm service (issue 5, "In-swarm"),
//! deployed the way users deploy it: the real `deploy/bosun-stack.yml` with
//! the real docker CLI (`docker stack deploy`) into a sandbox swarm, running
//! an image of this build that mirrors `deploy/Dockerfile`.
//!
//! No registry is reachable, so the image is `docker import`ed into the
//! node's daemon from a rootfs of this host's binaries (`bosun`, `curl` for
//! the stack's health check, `git` for the git source, and their libraries;
//! see `support::rootfs`); swarm runs tasks from local images.
//!
//! Needs root, dockerd, ip, nsenter, unshare, iptables (like the other e2e
//! tests) and the docker CLI; fails, never skips, without them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bosun::swarm::{Api as _, Client, Filters, Kind};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::cli::{self, docker_env, docker_on as docker};
use crate::support::e2e::{self, MANAGED_BY, NAMESPACE, Swarm, labels_of, wait_for};
use crate::support::rootfs::{self, Rootfs};

/// Tag of the bosun image imported into the sandbox node.
const IMAGE: &str = "bosun-test/bosun:inswarm";
/// Stack name of bosun itself, as in the README (`docker stack deploy … bosun`).
const STACK: &str = "bosun";
/// The service that stack creates.
const SERVICE: &str = "bosun_bosun";
/// The port the stack publishes in host mode.
const PORT: u16 = 9090;
/// What debian:bookworm-slim (the Dockerfile's run stage) sets.
const BASE_ENV: [&str; 1] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
/// Upper bound for one convergence.
const CONVERGE: Duration = Duration::from_secs(60);
/// A bound for the stack's health check to pass: its first probe comes 30 s
/// after the container started, on a machine that may be busy.
const HEALTHY: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bosun image: this build's binary with curl and git, configured like
/// the run stage of `deploy/Dockerfile`.
fn build_image(host: &str) {
    let git = which("git");
    let fs = Rootfs::new()
        .binary(Path::new(cli::BOSUN), "usr/local/bin/bosun")
        .binary(&which("curl"), "usr/bin/curl")
        .binary(&git, "usr/bin/git")
        .dir("var/lib/bosun", 0o755)
        .dir("manifests", 0o755);
    let dockerfile =
        std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("deploy/Dockerfile");
    let changes = rootfs::dockerfile_changes(&dockerfile, &BASE_ENV);
    for must in [r#"ENTRYPOINT ["bosun"]"#, "CMD [", "WORKDIR /var/lib/bosun"] {
        assert!(
            changes.iter().any(|c| c.starts_with(must)),
            "{must} not among {changes:?}"
        );
    }
    rootfs::import(host, IMAGE, &fs.tar(), &changes);
}

/// A program on PATH.
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} not on PATH"))
}

/// The manifests folder: one Stack with one busybox service.
fn write_manifests(dir: &Path, replicas: u32) {
    std::fs::create_dir_all(dir.join("demo")).expect("mkdir");
    std::fs::write(
        dir.join("stack.yaml"),
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: demo}\n\
         spec:\n  composeFiles: [demo/docker-compose.yml]\n",
    )
    .expect("write stack.yaml");
    write_compose(dir, replicas);
}

fn write_compose(dir: &Path, replicas: u32) {
    let image = bosun::sandbox::image::IMAGE;
    std::fs::write(
        dir.join("demo/docker-compose.yml"),
        format!(
            "services:\n  web:\n    image: {image}\n    command: [sleep, \"3600\"]\n    \
             deploy:\n      replicas: {replicas}\n"
        ),
    )
    .expect("write docker-compose.yml");
}

/// `GET path` on the node's published port: status and body.
async fn get(ip: Ipv4Addr, path: &str) -> Option<(u16, String)> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((ip, PORT)).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let status = out.split_whitespace().nth(1)?.parse().ok()?;
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

async fn status(ip: Ipv4Addr) -> Value {
    get(ip, "/status")
        .await
        .and_then(|(_, b)| serde_json::from_str(&b).ok())
        .unwrap_or(Value::Null)
}

/// The one service named `name` (exact), if any.
async fn service(api: &Client, name: &str) -> Option<Value> {
    api.list(Kind::Service, &Filters::none().with("name", name))
        .await
        .unwrap_or_else(|e| panic!("list services: {e:#}"))
        .into_iter()
        .find(|s| s.pointer("/Spec/Name").and_then(Value::as_str) == Some(name))
}

/// Tasks of a service that are running now.
async fn running_tasks(api: &Client, service: &str) -> usize {
    api.list(Kind::Task, &Filters::none().with("service", service))
        .await
        .unwrap_or_else(|e| panic!("list tasks: {e:#}"))
        .iter()
        .filter(|t| t.pointer("/Status/State").and_then(Value::as_str) == Some("running"))
        .count()
}

fn replicas_of(service: &Value) -> Option<u64> {
    service
        .pointer("/Spec/Mode/Replicated/Replicas")
        .and_then(Value::as_u64)
}

/// Wait until `service` wants `n` replicas and runs `n` tasks.
async fn wait_replicas(api: &Client, name: &str, n: u64) {
    wait_for(&format!("{name} to run {n} task(s)"), CONVERGE, || async {
        let spec = service(api, name).await?;
        let running = running_tasks(api, name).await as u64;
        (replicas_of(&spec) == Some(n) && running == n).then_some(())
    })
    .await;
}

/// The last successful pass of `/status` once it is newer than `after`
/// (a revision), with the status document.
async fn wait_success(ip: Ipv4Addr, after: Option<&str>) -> (String, Value) {
    wait_for("a successful pass in /status", CONVERGE, || async {
        let s = status(ip).await;
        let last = &s["lastSuccess"];
        let revision = last["revision"].as_str()?.to_string();
        (last["result"] == "success" && after != Some(revision.as_str()))
            .then_some((revision, s.clone()))
    })
    .await
}

/// `docker stack deploy` of the real `deploy/bosun-stack.yml` as [`STACK`],
/// unchanged, with `BOSUN_IMAGE` and `BOSUN_MANIFESTS` in the CLI's
/// environment. The stack file binds `/var/run/docker.sock`, which inside a
/// sandbox node (its own mount namespace) is that node's daemon, as on a real
/// manager.
async fn deploy_stack(host: &str, manifests: &Path) {
    let stack_file = repo().join("deploy/bosun-stack.yml");
    let deploy = docker_env(
        host,
        &[
            "stack",
            "deploy",
            // No registry to resolve a digest from (a real deploy pushes the
            // image to one first).
            "--resolve-image=never",
            "--detach=true",
            "-c",
            stack_file.to_str().expect("utf-8 path"),
            STACK,
        ],
        &[
            ("BOSUN_IMAGE", IMAGE),
            ("BOSUN_MANIFESTS", manifests.to_str().expect("utf-8 path")),
        ],
    )
    .await;
    assert!(
        deploy.status.success(),
        "docker stack deploy: {}",
        String::from_utf8_lossy(&deploy.stderr)
    );
}

/// Bind mounts of a container spec: target → (source, read-only).
fn mounts_of(spec: &Value) -> BTreeMap<String, (String, bool)> {
    spec["Mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            let ro = m["ReadOnly"].as_bool().unwrap_or(false);
            (text("Target"), (text("Source"), ro))
        })
        .collect()
}

/// Inside the running container: PID 1 is docker-init (`init: true`), the
/// stack's own health check command succeeds in the image, and git runs.
async fn check_container(host: &str, container: &str, spec: &Value) {
    let top = docker(host, &["top", container]).await;
    assert!(top.contains("docker-init -- bosun run"), "{top}");
    let check: Vec<&str> = spec["Healthcheck"]["Test"]
        .as_array()
        .expect("the stack's health check")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(check.first(), Some(&"CMD"), "{check:?}");
    let mut exec = vec!["exec", container];
    exec.extend(&check[1..]);
    docker(host, &exec).await;
    let git = docker(host, &["exec", container, "git", "--version"]).await;
    assert!(git.starts_with("git version"), "{git}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bosun_deployed_by_its_stack_file_runs_as_a_service_and_converges_folder_changes() {
    let swarm = Swarm::up("inswarm", 1, 0).await;
    let host = swarm.host("manager1");
    let api = swarm.client("manager1").await;
    let ip = swarm.sandbox.node_ip("manager1").expect("node address");
    let tmp = tempfile::tempdir().expect("tempdir");
    let manifests = tmp.path().join("cluster");
    write_manifests(&manifests, 1);
    build_image(&host);
    deploy_stack(&host, &manifests).await;

    // The service as the stack file says, with the host folder and the
    // socket bound.
    let bosun_svc = service(&api, SERVICE).await.expect("bosun service");
    let spec = &bosun_svc["Spec"]["TaskTemplate"]["ContainerSpec"];
    assert_eq!(spec["Image"], IMAGE);
    let manifests_s = manifests.to_str().expect("utf-8 path");
    let expected: BTreeMap<String, (String, bool)> = [
        ("/manifests".into(), (manifests_s.into(), true)),
        (
            "/var/run/docker.sock".into(),
            ("/var/run/docker.sock".into(), false),
        ),
    ]
    .into();
    assert_eq!(mounts_of(spec), expected);
    assert_eq!(spec["Init"], true, "{spec}");
    let stack_label = labels_of(&bosun_svc).get(NAMESPACE).cloned();
    assert_eq!(stack_label.as_deref(), Some(STACK));

    // Its task runs and serves on the node's address (host-mode port).
    wait_replicas(&api, SERVICE, 1).await;
    wait_for("/healthz to answer 200", CONVERGE, || async {
        get(ip, "/healthz")
            .await
            .and_then(|(s, _)| (s == 200).then_some(()))
    })
    .await;
    let (first, st) = wait_success(ip, None).await;
    assert_eq!(st["ready"], true, "{st}");
    assert_eq!(st["lease"]["held"], true, "{st}");
    assert!(st["lastError"].is_null(), "{st}");
    assert_eq!(st["source"]["location"], "/manifests", "{st}");

    // The stack from the folder, with bosun's ownership labels.
    wait_replicas(&api, "demo_web", 1).await;
    let web = service(&api, "demo_web").await.expect("demo_web");
    let labels = labels_of(&web);
    assert_eq!(labels.get(MANAGED_BY).map(String::as_str), Some("bosun"));
    assert_eq!(
        labels.get("dev.bosun.owner").map(String::as_str),
        Some("Stack/demo")
    );
    assert_eq!(labels.get(NAMESPACE).map(String::as_str), Some("demo"));

    let by_service = format!("label=com.docker.swarm.service.name={SERVICE}");
    let container = docker(&host, &["ps", "-q", "--filter", &by_service]).await;
    assert_eq!(container.lines().count(), 1, "containers: {container}");
    check_container(&host, &container, spec).await;

    // Change the replica count on the host: the folder watch sees it
    // through the bind mount, and the swarm converges.
    write_compose(&manifests, 3);
    wait_replicas(&api, "demo_web", 3).await;
    let (second, st) = wait_success(ip, Some(&first)).await;
    assert!(st["lastError"].is_null(), "{st}");
    let logs = docker_env(&host, &["logs", &container], &[]).await;
    let logs = String::from_utf8_lossy(&logs.stderr).into_owned();
    assert!(
        logs.contains(&format!("trigger=source revision=\"{second}\"")),
        "no pass triggered by the folder change:\n{logs}"
    );
    assert!(
        !logs.contains('\x1b'),
        "escape codes in the service's logs:\n{logs}"
    );

    // bosun's own stack (docker CLI, no bosun labels) is left alone by
    // bosun's prune: same service version, same network, same container.
    let after = service(&api, SERVICE).await.expect("bosun service");
    assert_eq!(after["ID"], bosun_svc["ID"]);
    assert_eq!(after["Version"]["Index"], bosun_svc["Version"]["Index"]);
    assert!(
        !labels_of(&after)
            .keys()
            .any(|k| k.starts_with("dev.bosun."))
    );
    let net = api
        .list(
            Kind::Network,
            &Filters::none().with("name", "bosun_default"),
        )
        .await
        .expect("list networks");
    assert_eq!(net.len(), 1, "{net:?}");
    assert!(!labels_of(&net[0]).contains_key(MANAGED_BY));
    let owned: Vec<&str> = st["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert!(!owned.iter().any(|n| n.starts_with("bosun_")), "{owned:?}");
    let now = docker(&host, &["ps", "-q", "--filter", &by_service]).await;
    assert_eq!(now, container, "the bosun task was restarted");

    // The stack's health check makes the task healthy (first probe after
    // its 30 s interval).
    wait_for("the bosun container to be healthy", HEALTHY, || async {
        let format = "{{.State.Health.Status}}";
        let h = docker(&host, &["inspect", "--format", format, &container]).await;
        (h == "healthy").then_some(())
    })
    .await;

    // `docker stack rm`: bosun gets SIGTERM through docker-init and exits 0;
    // what it deployed stays.
    let exit_code = tokio::spawn({
        let (host, container) = (host.clone(), container.clone());
        async move { docker(&host, &["wait", &container]).await }
    });
    e2e::stack_rm(&host, &api, STACK).await;
    let code = tokio::time::timeout(CONVERGE, exit_code)
        .await
        .expect("bosun stops within a minute")
        .expect("docker wait");
    assert_eq!(code, "0", "bosun's exit code after SIGTERM");
    assert!(service(&api, "demo_web").await.is_some());
}

#[test]
fn ldd_output_yields_the_libraries_and_the_loader_but_not_the_vdso() {
    let out = "\tlinux-vdso.so.1 (0x00007ffd4c5f2000)\n\
               \tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f1c35b9d000)\n\
               \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1c359bb000)\n\
               \t/lib64/ld-linux-x86-64.so.2 (0x00007f1c35cc3000)\n";
    let libs = rootfs::parse_ldd(out);
    let want = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ];
    assert_eq!(libs, want.map(PathBuf::from));
}

#[test]
fn the_image_config_comes_from_the_run_stage_of_the_dockerfile() {
    let dockerfile =
        std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("deploy/Dockerfile");
    let changes = rootfs::dockerfile_changes(&dockerfile, &BASE_ENV);
    assert_eq!(changes[0], format!("ENV {}", BASE_ENV[0]));
    assert!(changes.contains(&r#"ENTRYPOINT ["bosun"]"#.to_string()));
    // Continuation lines are joined into one instruction.
    let health = changes
        .iter()
        .find(|c| c.starts_with("HEALTHCHECK "))
        .expect("HEALTHCHECK");
    assert!(health.contains("--retries=3 CMD curl"), "{health}");
    // Nothing of the build stage, no file system instructions.
    assert!(!changes.iter().any(|c| c == "WORKDIR /src"), "{changes:?}");
    for keyword in ["FROM", "RUN", "COPY", "STOPSIGNAL"] {
        assert!(
            !changes.iter().any(|c| c.starts_with(keyword)),
            "{changes:?}"
        );
    }
}

#[test]
fn a_rootfs_of_curl_and_its_libraries_runs_in_a_chroot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = Rootfs::new().binary(&which("curl"), "usr/bin/curl").tar();
    let archive = dir.path().join("rootfs.tar");
    std::fs::write(&archive, tar).expect("write");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let untar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&root)
        .status()
        .expect("tar");
    assert!(untar.success());
    let out = std::process::Command::new("chroot")
        .arg(&root)
        .args(["/usr/bin/curl", "--version"])
        .output()
        .expect("chroot (needs root, like the sandbox tests)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("curl "));
}

//! Harness of the end-to-end tests: a sandbox swarm that is always removed,
//! the `bosun` binary run against one of its nodes, the swarm read back
//! through the Engine API, and folders of manifests copied and adapted to
//! the sandbox's hostnames.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use bosun::sandbox::{self, Config, Sandbox, preflight};
use bosun::swarm::settle::{self, Check, Schedule};
use bosun::swarm::{Api as _, Client, Filters, Kind};
use serde_json::Value;
use tokio::process::{Child, Command};

pub mod expect;

/// The label every object bosun creates carries.
pub const MANAGED_BY: &str = "dev.bosun.managed-by";
/// The label of a stack's objects (`docker stack` compatible).
pub const NAMESPACE: &str = "com.docker.stack.namespace";

/// Removes the sandbox when dropped, also while a test panics.
struct Teardown(String);

impl Drop for Teardown {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.0);
        // A fresh runtime on another thread: the test's own runtime may be
        // the one unwinding.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let res = rt.block_on(sandbox::teardown(Path::new(sandbox::DEFAULT_ROOT), &name));
            (name, res)
        })
        .join();
        if let Ok((name, Err(err))) = done {
            eprintln!("teardown of sandbox {name}: {err}");
        }
    }
}

/// A running sandbox swarm owned by one test.
pub struct Swarm {
    pub sandbox: Sandbox,
    _teardown: Teardown,
}

impl Swarm {
    /// Bring up `managers` + `workers` nodes under the sandbox name `name`
    /// (a leftover of an earlier crashed run under that name is removed
    /// first) and import the busybox test image.
    pub async fn up(name: &str, managers: u32, workers: u32) -> Swarm {
        Self::up_with(name, managers, workers, &[]).await
    }

    /// [`Swarm::up`] with the nodes' hostnames (managers first; none: the
    /// sandbox's `manager1…`).
    pub async fn up_with(name: &str, managers: u32, workers: u32, hostnames: &[String]) -> Swarm {
        let report = preflight::check();
        assert!(
            report.is_ok(),
            "the e2e tests need a prepared host (root, dockerd, ip, nsenter, unshare, iptables):\n{report}"
        );
        let root = Path::new(sandbox::DEFAULT_ROOT);
        if root.join(name).exists() {
            sandbox::teardown(root, name)
                .await
                .expect("remove a leftover sandbox");
        }
        let teardown = Teardown(name.to_string());
        let config = Config::new(name)
            .managers(managers)
            .workers(workers)
            .hostnames(hostnames.to_vec());
        let sandbox = Sandbox::up(config)
            .await
            .unwrap_or_else(|e| panic!("sandbox {name} up: {e:#}"));
        sandbox.build_image().await.expect("test image");
        Swarm {
            sandbox,
            _teardown: teardown,
        }
    }

    /// `DOCKER_HOST` of a node.
    pub fn host(&self, node: &str) -> String {
        self.sandbox.docker_host(node).expect("known node")
    }

    /// A raw Engine API client for a node.
    pub async fn client(&self, node: &str) -> Client {
        Client::connect_host(&self.host(node))
            .await
            .unwrap_or_else(|e| panic!("connect to {node}: {e:#}"))
    }
}

/// Path of the `bosun` binary Cargo built for these tests, or
/// `$BOSUN_E2E_BIN` (to run the proofs against another build, e.g. a
/// release binary).
pub fn bosun_bin() -> String {
    std::env::var("BOSUN_E2E_BIN").unwrap_or_else(|_| super::cli::BOSUN.to_string())
}

/// The whole environment `bosun` runs with (it is also the lowest layer of
/// compose interpolation, so expectations are built with the same map).
pub fn child_env(docker_host: &str) -> BTreeMap<String, String> {
    let mut env = super::path_and_home();
    env.insert("DOCKER_HOST".to_string(), docker_host.to_string());
    env.insert("RUST_LOG".to_string(), "bosun=info".to_string());
    env
}

/// `bosun ARGS` against `docker_host`, with exactly [`child_env`].
pub fn bosun_command(docker_host: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(bosun_bin());
    cmd.args(args)
        .env_clear()
        .envs(child_env(docker_host))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Run `bosun ARGS` to the end (at most `timeout`).
pub async fn bosun(docker_host: &str, args: &[&str], timeout: Duration) -> Output {
    let mut cmd = bosun_command(docker_host, args);
    let fut = cmd.output();
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| panic!("bosun {} did not finish within {timeout:?}", args.join(" ")))
        .expect("run bosun")
}

/// Start `bosun ARGS` in the background, output captured.
pub fn spawn_bosun(docker_host: &str, args: &[&str]) -> Child {
    bosun_command(docker_host, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bosun")
}

/// Exit code, stdout and stderr of a finished run, for assertion messages.
pub fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "bosun {} exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `bosun ARGS` and require exit code `code`.
pub async fn bosun_ok(docker_host: &str, args: &[&str], code: i32, timeout: Duration) -> Output {
    let out = bosun(docker_host, args, timeout).await;
    assert_eq!(out.status.code(), Some(code), "{}", describe(args, &out));
    out
}

/// Every object of `kind`.
pub async fn list(api: &Client, kind: Kind) -> Vec<Value> {
    api.list(kind, &Filters::none())
        .await
        .unwrap_or_else(|e| panic!("list {kind}s: {e:#}"))
}

/// Every object of `kind` carrying `label=value` (or just `label`).
pub async fn list_labelled(api: &Client, kind: Kind, label: &str) -> Vec<Value> {
    api.list(kind, &Filters::none().with("label", label))
        .await
        .unwrap_or_else(|e| panic!("list {kind}s with {label}: {e:#}"))
}

/// How long a removed stack's objects may take to be gone.
const STACK_GONE: Duration = Duration::from_secs(120);

/// `docker stack rm NS` as clean-up: its exit status is not asserted (it
/// exits 1 when a network is still held by a task that is shutting down);
/// instead wait, through [`settle`], until no service, network, config or
/// secret of the stack is left, running `docker stack rm` again for what a
/// previous run could not remove yet.
pub async fn stack_rm(host: &str, api: &Client, ns: &str) {
    let label = format!("{NAMESPACE}={ns}");
    docker_stack_rm(host, ns).await;
    let what = format!("the objects of stack {ns} to be gone");
    let schedule = Schedule::new(STACK_GONE, Duration::from_millis(500));
    let mut checks = 0_u32;
    settle::until(what, schedule, || {
        checks += 1;
        let again = checks.is_multiple_of(10);
        let label = label.clone();
        async move {
            let mut left = Vec::new();
            for kind in [Kind::Service, Kind::Network, Kind::Config, Kind::Secret] {
                left.extend(
                    list_labelled(api, kind, &label)
                        .await
                        .iter()
                        .map(|o| format!("{kind} {}", name_of(o))),
                );
            }
            if left.is_empty() {
                return Check::Done(());
            }
            if again {
                docker_stack_rm(host, ns).await;
            }
            Check::Pending(left.join(", "))
        }
    })
    .await
    .unwrap_or_else(|t| panic!("{t}"));
}

/// `docker stack rm NS`, whatever it exits with.
async fn docker_stack_rm(host: &str, ns: &str) {
    let _ = super::cli::docker_at(host)
        .args(["stack", "rm", ns])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// Name of a listed object (`Spec.Name`, or `Name` for networks).
pub fn name_of(v: &Value) -> String {
    v.pointer("/Spec/Name")
        .or_else(|| v.get("Name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Labels of a listed object (`Spec.Labels`, or `Labels` for networks).
pub fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.pointer("/Spec/Labels")
        .or_else(|| v.get("Labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Wait until `check` returns `Some` (looking at least every 100 ms), at
/// most `timeout`, through bosun's own [`settle`] mechanism; panics with
/// what it waited for on time-out.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let schedule = Schedule::new(timeout, Duration::from_millis(100));
    settle::until(what, schedule, || {
        let next = check();
        async move {
            next.await
                .map_or_else(|| Check::Pending("not yet".into()), Check::Done)
        }
    })
    .await
    .unwrap_or_else(|t| panic!("{t}"))
}

/// What bosun manages in the swarm right now: names per kind.
pub async fn managed(api: &Client) -> BTreeMap<Kind, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for kind in [Kind::Service, Kind::Config, Kind::Secret, Kind::Network] {
        let names = list_labelled(api, kind, &format!("{MANAGED_BY}=bosun"))
            .await
            .iter()
            .map(name_of)
            .collect();
        out.insert(kind, names);
    }
    out
}

/// Swarm objects that bosun does not manage, other than what a fresh swarm
/// has anyway (the `ingress` network) and local networks.
pub async fn unmanaged(api: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for kind in [Kind::Service, Kind::Config, Kind::Secret, Kind::Network] {
        for obj in list(api, kind).await {
            let name = name_of(&obj);
            if kind == Kind::Network
                && (obj.get("Scope").and_then(Value::as_str) != Some("swarm")
                    || obj.get("Ingress").and_then(Value::as_bool) == Some(true))
            {
                continue;
            }
            if labels_of(&obj).get(MANAGED_BY).map(String::as_str) != Some("bosun") {
                out.push(format!("{kind} {name}"));
            }
        }
    }
    out
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn is_yaml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Replace whole tokens (delimited by anything but `[A-Za-z0-9._-]`).
pub fn replace_tokens(text: &str, map: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        out.push_str(map.get(token.as_str()).unwrap_or(token));
        token.clear();
    };
    for c in text.chars() {
        if token_char(c) {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// Hostnames the manifests and compose files of `dir` select nodes by:
/// `NodeLabels` hostname selectors, `VipPolicy` priorities and
/// `node.hostname == X` / `!= X` placement constraints.
pub fn selected_hostnames(dir: &Path) -> BTreeSet<String> {
    let desired = bosun::manifest::load(dir).unwrap_or_else(|d| panic!("{}: {d}", dir.display()));
    let mut names = BTreeSet::new();
    for nl in &desired.node_labels {
        for rule in &nl.spec.rules {
            names.extend(rule.selector.hostname.clone());
        }
    }
    for vip in &desired.vip_policies {
        names.extend(vip.spec.nodes.priorities.keys().cloned());
    }
    for file in files(dir).into_iter().filter(|f| is_yaml(f)) {
        let text = std::fs::read_to_string(&file).expect("read");
        for line in text.lines() {
            let Some(rest) = line.split("node.hostname").nth(1) else {
                continue;
            };
            let rest = rest.trim_start().trim_start_matches(['=', '!']).trim();
            let host: String = rest.chars().take_while(|c| token_char(*c)).collect();
            if !host.is_empty() {
                names.insert(host);
            }
        }
    }
    names
}

/// Map an example's hostnames onto the sandbox's nodes: names that are
/// already sandbox nodes stay; names that look like managers (`mgr`,
/// `swarmN`) take `manager1…` in sorted order, the others `worker1…`. Names
/// beyond the sandbox's size stay unmapped (their rules select no node).
pub fn hostname_map(
    hostnames: &BTreeSet<String>,
    managers: &[String],
    workers: &[String],
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let (mut m, mut w) = (managers.iter(), workers.iter());
    for host in hostnames {
        if managers.contains(host) || workers.contains(host) {
            continue;
        }
        let manager_like = host.contains("mgr")
            || host.contains("manager")
            || host
                .strip_prefix("swarm")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        let target = if manager_like { m.next() } else { w.next() };
        if let Some(node) = target {
            map.insert(host.clone(), node.clone());
        }
    }
    map
}

/// Copy `example` into `dest` with its hostnames rewritten to the
/// sandbox's; returns the mapping used.
pub fn adapt_example(
    example: &Path,
    dest: &Path,
    managers: &[String],
    workers: &[String],
) -> BTreeMap<String, String> {
    super::copy_tree(example, dest).expect("copy the example");
    let map = hostname_map(&selected_hostnames(dest), managers, workers);
    for file in files(dest).into_iter().filter(|f| is_yaml(f)) {
        let text = std::fs::read_to_string(&file).expect("read");
        let new = replace_tokens(&text, &map);
        if new != text {
            std::fs::write(&file, new).expect("write");
        }
    }
    map
}

/// A folder holding only a `ClusterPolicy`: reconciling it with prune
/// removes everything bosun created from other folders.
pub fn empty_desired(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(
        dir.join("cluster.yaml"),
        "apiVersion: bosun.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: empty}\nspec: {managers: 1}\n",
    )
    .expect("write");
}

/// Remove everything bosun owns with bosun's own prune: reconcile `empty`
/// (see [`empty_desired`]), which must exit 0 — apply waits for removed
/// services' tasks to be gone before it removes what they used, and for
/// removed networks to leave the list, so its own verification sees a clean
/// swarm — then the API shows nothing of bosun's and `plan` is empty.
pub async fn prune_all(host: &str, api: &Client, empty: &Path, timeout: Duration) {
    let dir = empty.to_str().expect("utf-8 path");
    bosun_ok(host, &["reconcile", "--once", "--no-wait", dir], 0, timeout).await;
    let left = managed(api).await;
    assert!(
        left.values().all(BTreeSet::is_empty),
        "bosun's objects left after its prune: {left:?}"
    );
    bosun_ok(host, &["plan", dir], 0, timeout).await;
}

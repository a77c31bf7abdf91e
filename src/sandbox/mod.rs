//! A real multi-node swarm on one Linux host: one `dockerd` per node, each in
//! its own network, UTS and mount namespace, joined by a bridge.
//!
//! It is the test harness of bosun (tests bring up a swarm, break it, and
//! check what bosun does) and the place where users rehearse failover and
//! quorum recovery. Everything a sandbox creates is named after the sandbox,
//! so several sandboxes coexist and `down` removes exactly its own pieces,
//! even after a crash, a `kill -9` of daemons or a half-finished `up`:
//!
//! | what | name |
//! |---|---|
//! | state, data, sockets, logs | `/run/bosun-sandbox/<name>/<node>/` |
//! | network namespace | `bosun-<name>-<node>` |
//! | mount namespace | none named: it lives as long as the node's processes |
//! | bridge / veths | `bsn-<hash6>` / `bs<hash6>m1`, `bs<hash6>w1` |
//! | subnet | `10.213.<n>.0/24`, claimed in `/run/bosun-sandbox/.subnets/<n>` |
//! | iptables | `FORWARD` rules commented `bosun-sandbox:<name>` |
//!
//! `<node>` in these names is the node's internal name (`manager1`,
//! `worker2`: role and index); its hostname may differ
//! ([`Config::hostnames`]), and every method taking a node accepts either.
//!
//! ```no_run
//! # async fn demo() -> bosun::sandbox::Result<()> {
//! use bosun::sandbox::{Config, Sandbox};
//! let sandbox = Sandbox::up(Config::new("demo").managers(3).workers(2)).await?;
//! let host = sandbox.docker_host("manager1")?; // "unix:///run/bosun-sandbox/demo/manager1/docker.sock"
//! sandbox.kill("manager2").await?;
//! sandbox.start("manager2").await?;
//! sandbox.cut("manager3").await?; // its link goes down, its daemon keeps running
//! sandbox.mend("manager3").await?;
//! sandbox.down().await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{SwarmInitRequest, SwarmJoinRequest};
use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio::time::Instant;

pub mod image;
pub mod net;
pub mod node;
pub mod preflight;
mod status;
mod teardown;

pub use status::{LeaderState, NodeProcess, Status, SwarmNode};
use teardown::{claim_subnet, read_pid};
pub use teardown::{leftovers, teardown};

use net::Layout;
use node::NodePaths;

/// Default directory holding every sandbox's state.
pub const DEFAULT_ROOT: &str = "/run/bosun-sandbox";

/// Default sandbox name.
pub const DEFAULT_NAME: &str = "bosun";

/// Text of the daemon's error when a manager has lost quorum.
pub const NO_LEADER: &str = "does not have a leader";

/// How long [`Sandbox::leader_state`] waits for a manager's node list.
pub const LEADER_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host lacks root or tools.
    #[error("{0}")]
    PreflightFailed(preflight::Report),
    /// The sandbox name cannot be used in paths and interface names.
    #[error("invalid sandbox name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// Node counts out of range.
    #[error("invalid sandbox size: {0}")]
    InvalidSize(String),
    /// The `--hostnames` list does not fit the nodes.
    #[error("invalid --hostnames: {0}")]
    InvalidHostnames(String),
    /// `up` found state of a sandbox with the same name.
    #[error(
        "sandbox {name:?} already exists ({dir}); run `bosun sandbox down --name {name}` first"
    )]
    AlreadyExists { name: String, dir: PathBuf },
    /// No state for this sandbox name.
    #[error(
        "sandbox {name:?} is not running (no {dir}); start it with `bosun sandbox up --name {name}`"
    )]
    NotFound { name: String, dir: PathBuf },
    /// The sandbox has no node of that name.
    #[error("sandbox {sandbox:?} has no node {node:?} (its nodes: {known})")]
    UnknownNode {
        sandbox: String,
        node: String,
        known: String,
    },
    /// Every candidate /24 is in use.
    #[error("no free /24 left in 10.213.0.0/16 for a sandbox subnet")]
    NoFreeSubnet,
    /// The bridge name is taken by something else (hash collision or leftover).
    #[error(
        "network interface {bridge} already exists; it belongs to another sandbox or a leftover \
         (remove it with `ip link delete {bridge}` if nothing uses it)"
    )]
    BridgeTaken { bridge: String },
    /// A command could not be started.
    #[error("could not run `{command}`")]
    CommandSpawnFailed {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("`{command}` failed: {stderr}")]
    CommandFailed { command: String, stderr: String },
    /// A file system operation failed.
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state file cannot be read.
    #[error("invalid sandbox state file {path}")]
    StateInvalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A node's dockerd did not answer in time (or exited).
    #[error("dockerd of node {node} {what}; last lines of {log}:\n{tail}")]
    DaemonStartFailed {
        node: String,
        what: String,
        log: PathBuf,
        tail: String,
    },
    /// A Docker API call against a node failed.
    #[error("Docker API call {call} on node {node} failed")]
    DockerApiFailed {
        node: String,
        call: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
    /// A manager's node list did not answer in time (it waits for a leader).
    #[error(
        "node list on {node} did not answer within {secs}s (the manager is probably waiting for a leader)"
    )]
    LeaderProbeTimedOut { node: String, secs: u64 },
    /// The swarm did not reach the expected shape in time.
    #[error("swarm of sandbox {sandbox:?} not ready after {secs}s: {detail}")]
    SwarmNotReady {
        sandbox: String,
        secs: u64,
        detail: String,
    },
    /// The static busybox for the test image is missing or unusable.
    #[error(
        "cannot use {path} for the test image: {reason}; install it with `apt-get install busybox-static`"
    )]
    BusyboxMissing { path: PathBuf, reason: String },
    /// `down` could not remove everything.
    #[error("sandbox {name:?} was not fully removed; left behind: {}", leftovers.join(", "))]
    CleanupIncomplete {
        name: String,
        leftovers: Vec<String>,
    },
}

/// Result of sandbox operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Role of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A swarm manager (raft member).
    Manager,
    /// A swarm worker.
    Worker,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        })
    }
}

/// What to bring up.
#[derive(Debug, Clone)]
pub struct Config {
    name: String,
    managers: u32,
    workers: u32,
    root: PathBuf,
    ready_timeout: Duration,
    keep_on_failure: bool,
    hostnames: Vec<String>,
}

impl Config {
    /// One manager, no worker, state under [`DEFAULT_ROOT`].
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Config {
            name: name.into(),
            managers: 1,
            workers: 0,
            root: PathBuf::from(DEFAULT_ROOT),
            ready_timeout: Duration::from_secs(180),
            keep_on_failure: false,
            hostnames: Vec::new(),
        }
    }
    /// Number of managers (1..=89).
    #[must_use]
    pub fn managers(mut self, n: u32) -> Self {
        self.managers = n;
        self
    }
    /// Number of workers (0..=150).
    #[must_use]
    pub fn workers(mut self, n: u32) -> Self {
        self.workers = n;
        self
    }
    /// Directory holding sandbox state (default [`DEFAULT_ROOT`]).
    #[must_use]
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }
    /// How long `up` waits for every daemon and the swarm (default 180 s).
    #[must_use]
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }
    /// Keep a half-started sandbox for inspection instead of removing it
    /// when `up` fails (default false).
    #[must_use]
    pub fn keep_on_failure(mut self, keep: bool) -> Self {
        self.keep_on_failure = keep;
        self
    }

    /// Hostnames of the nodes, managers first, then workers (default
    /// `manager1…`, `worker1…`). Each node's UTS hostname, and so its swarm
    /// node hostname, is its name here; one per node, unique, each a valid
    /// hostname.
    #[must_use]
    pub fn hostnames(mut self, hostnames: Vec<String>) -> Self {
        self.hostnames = hostnames;
        self
    }

    fn validate(&self) -> Result<()> {
        net::validate_name(&self.name)?;
        if !(1..=89).contains(&self.managers) {
            return Err(Error::InvalidSize(format!(
                "--managers must be 1..=89, not {}",
                self.managers
            )));
        }
        if self.workers > 150 {
            return Err(Error::InvalidSize(format!(
                "--workers must be 0..=150, not {}",
                self.workers
            )));
        }
        if !self.hostnames.is_empty() {
            net::validate_hostnames(&self.hostnames, self.managers, self.workers)?;
        }
        Ok(())
    }
}

/// What a sandbox records on disk so separate CLI calls find it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    name: String,
    octet: u8,
    managers: u32,
    workers: u32,
    /// Hostnames, managers first; empty means `manager1…`, `worker1…`
    /// (and in state files written before hostnames existed).
    #[serde(default)]
    hostnames: Vec<String>,
}

/// A node resolved from its hostname or internal name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeRef {
    role: Role,
    index: u32,
    /// Internal name (`manager1`): state directory, netns, veth.
    name: String,
}

/// A running (or partly running) sandbox.
#[derive(Debug, Clone)]
pub struct Sandbox {
    root: PathBuf,
    state: State,
}

impl Sandbox {
    /// Create the bridge, one namespace and dockerd per node, form the swarm
    /// (manager1 initialises, the others join) and wait until every node is
    /// Ready with one leader. On failure the half-built sandbox is removed
    /// (unless [`Config::keep_on_failure`]).
    pub async fn up(config: Config) -> Result<Sandbox> {
        config.validate()?;
        let report = preflight::check();
        if !report.is_ok() {
            return Err(Error::PreflightFailed(report));
        }
        let dir = config.root.join(&config.name);
        if dir.exists() {
            return Err(Error::AlreadyExists {
                name: config.name.clone(),
                dir,
            });
        }
        mkdir(&config.root)?;
        let octet = claim_subnet(&config.root, &config.name).await?;
        let sandbox = Sandbox {
            root: config.root.clone(),
            state: State {
                name: config.name.clone(),
                octet,
                managers: config.managers,
                workers: config.workers,
                hostnames: config.hostnames.clone(),
            },
        };
        let result = sandbox.build(config.ready_timeout).await;
        if let Err(err) = result {
            if !config.keep_on_failure
                && let Err(cleanup) = teardown(&config.root, &config.name).await
            {
                tracing::warn!(error = %cleanup, "cleanup after failed up");
            }
            return Err(err);
        }
        Ok(sandbox)
    }

    async fn build(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let dir = self.dir();
        mkdir(&dir)?;
        let state_path = dir.join("state.json");
        let json =
            serde_json::to_string_pretty(&self.state).map_err(|source| Error::StateInvalid {
                path: state_path.clone(),
                source,
            })?;
        node::write_file(&state_path, &json)?;
        let layout = self.layout();
        net::create_bridge(&layout).await?;
        for (role, index) in self.node_list() {
            net::create_node_net(&layout, role, index).await?;
        }
        for (role, index) in self.node_list() {
            let node = net::node_name(role, index);
            mkdir(&self.paths(&node).dir)?;
            self.spawn(&Self::node_ref(role, index)).await?;
        }
        for (role, index) in self.node_list() {
            self.wait_daemon(&net::node_name(role, index), deadline)
                .await?;
        }
        self.form_swarm().await?;
        self.wait_ready(deadline.saturating_duration_since(Instant::now()))
            .await
    }

    /// Open the sandbox `name` under [`DEFAULT_ROOT`] (state left by `up`).
    pub fn open(name: &str) -> Result<Sandbox> {
        Self::open_in(Path::new(DEFAULT_ROOT), name)
    }

    /// Open the sandbox `name` under `root`.
    pub fn open_in(root: &Path, name: &str) -> Result<Sandbox> {
        net::validate_name(name)?;
        let path = root.join(name).join("state.json");
        let text = std::fs::read_to_string(&path).map_err(|_| Error::NotFound {
            name: name.to_owned(),
            dir: root.join(name),
        })?;
        let state: State =
            serde_json::from_str(&text).map_err(|source| Error::StateInvalid { path, source })?;
        Ok(Sandbox {
            root: root.to_owned(),
            state,
        })
    }

    /// Sandbox name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Directory holding this sandbox's state.
    #[must_use]
    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.state.name)
    }

    /// Node hostnames, managers first: `manager1…N`, `worker1…M` unless
    /// [`Config::hostnames`] named them.
    #[must_use]
    pub fn nodes(&self) -> Vec<String> {
        self.node_list()
            .into_iter()
            .map(|(r, i)| self.hostname_at(r, i))
            .collect()
    }

    /// Manager hostnames.
    #[must_use]
    pub fn managers(&self) -> Vec<String> {
        (1..=self.state.managers)
            .map(|i| self.hostname_at(Role::Manager, i))
            .collect()
    }

    /// Worker hostnames.
    #[must_use]
    pub fn workers(&self) -> Vec<String> {
        (1..=self.state.workers)
            .map(|i| self.hostname_at(Role::Worker, i))
            .collect()
    }

    /// A node's hostname (`node` is its hostname or its internal name).
    pub fn hostname(&self, node: &str) -> Result<String> {
        let (role, index) = self.check_node(node)?;
        Ok(self.hostname_at(role, index))
    }

    /// A node's network namespace (`ip -n <netns> …`).
    pub fn netns(&self, node: &str) -> Result<String> {
        let n = self.resolve(node)?;
        Ok(self.layout().netns(&n.name))
    }

    /// Take a node's link down (its bridge port): the node loses its
    /// network, its processes keep running. The way keepalived failover is
    /// tested: cut the master's cable.
    pub async fn cut(&self, node: &str) -> Result<()> {
        let n = self.resolve(node)?;
        run_cmd(
            "ip",
            &["link", "set", &self.layout().veth(n.role, n.index), "down"],
        )
        .await
    }

    /// Bring a cut node's link up again.
    pub async fn mend(&self, node: &str) -> Result<()> {
        let n = self.resolve(node)?;
        run_cmd(
            "ip",
            &["link", "set", &self.layout().veth(n.role, n.index), "up"],
        )
        .await
    }

    /// Whether a node's link is cut ([`Sandbox::cut`], or [`Sandbox::kill`]).
    pub fn is_cut(&self, node: &str) -> Result<bool> {
        let n = self.resolve(node)?;
        Ok(link_down(&self.layout().veth(n.role, n.index)))
    }

    /// `DOCKER_HOST` value of a node: `unix:///run/bosun-sandbox/<name>/<node>/docker.sock`.
    pub fn docker_host(&self, node: &str) -> Result<String> {
        self.check_node(node)?;
        Ok(format!("unix://{}", self.paths(node).socket().display()))
    }

    /// Address of a node on the sandbox bridge (its swarm advertise address).
    pub fn node_ip(&self, node: &str) -> Result<Ipv4Addr> {
        let (role, index) = self.check_node(node)?;
        Ok(self.layout().node_ip(role, index))
    }

    /// Path of a node's dockerd log.
    pub fn log_path(&self, node: &str) -> Result<PathBuf> {
        self.check_node(node)?;
        Ok(self.paths(node).log())
    }

    /// A Docker client for a node (API version negotiated with its daemon).
    pub async fn docker(&self, node: &str) -> Result<Docker> {
        self.check_node(node)?;
        let socket = self.paths(node).socket();
        let api_err = |call, source| Error::DockerApiFailed {
            node: node.to_owned(),
            call,
            source,
        };
        let docker =
            Docker::connect_with_unix(&socket.to_string_lossy(), 60, bollard::API_DEFAULT_VERSION)
                .map_err(|e| api_err("connect", e))?;
        docker
            .negotiate_version()
            .await
            .map_err(|e| api_err("version", e))
    }

    /// A crash: SIGKILL a node's dockerd, its containerd, shims and
    /// containers, and take its link down (a crashed machine answers
    /// nothing, not even for addresses its dead processes left on its
    /// interfaces, such as keepalived's VIP). Its data stays, so
    /// [`Sandbox::start`] brings the same node back.
    pub async fn kill(&self, node: &str) -> Result<()> {
        self.cut(node).await?;
        self.kill_processes(node).await
    }

    async fn kill_processes(&self, node: &str) -> Result<()> {
        let n = self.resolve(node)?;
        let paths = self.paths(node);
        let netns: Vec<u64> = node::netns_inode(&net::netns_path(&self.layout().netns(&n.name)))
            .into_iter()
            .collect();
        let marker = format!("{}/", paths.dir.display());
        let recorded: Vec<u32> = read_pid(&paths.dir).into_iter().collect();
        for _ in 0..5 {
            let pids = node::select(&node::processes(), &netns, &marker, &recorded);
            if pids.is_empty() {
                break;
            }
            tracing::info!(node, ?pids, "killing");
            node::kill_all(&pids).await?;
        }
        Ok(())
    }

    /// Start a node's dockerd again with the same data, its link up, and
    /// wait until its API answers; a swarm member rejoins by itself. When
    /// the daemon runs, only the link is brought up.
    pub async fn start(&self, node: &str) -> Result<()> {
        let n = self.resolve(node)?;
        let paths = self.paths(node);
        if read_pid(&paths.dir).is_some_and(node::alive) {
            tracing::info!(node, "already running");
            return self.mend(node).await;
        }
        // A dead dockerd may have left its containerd or shims running.
        self.kill_processes(node).await?;
        self.mend(node).await?;
        self.spawn(&n).await?;
        self.wait_daemon(node, Instant::now() + Duration::from_secs(90))
            .await
    }

    /// Whether a node's recorded dockerd pid is alive.
    pub fn is_running(&self, node: &str) -> Result<bool> {
        self.check_node(node)?;
        Ok(read_pid(&self.paths(node).dir).is_some_and(node::alive))
    }

    /// Ask one manager whether the swarm has a leader. Quorum loss shows as
    /// [`LeaderState::NoLeader`] with the daemon's "The swarm does not have a
    /// leader…" message. Right after the majority died the node list still
    /// answers for a while (with the old leader), then calls block (until
    /// dockerd's own 20 s timeout); this probe gives up after
    /// [`LEADER_PROBE_TIMEOUT`] with [`Error::LeaderProbeTimedOut`] so callers
    /// can poll. Other failures (daemon down) are errors too.
    pub async fn leader_state(&self, node: &str) -> Result<LeaderState> {
        let docker = self.docker(node).await?;
        let listed = tokio::time::timeout(LEADER_PROBE_TIMEOUT, docker.list_nodes(None))
            .await
            .map_err(|_| Error::LeaderProbeTimedOut {
                node: node.to_owned(),
                secs: LEADER_PROBE_TIMEOUT.as_secs(),
            })?;
        match listed {
            Ok(nodes) => Ok(nodes
                .iter()
                .map(SwarmNode::from_api)
                .find(|n| n.manager_status == "Leader")
                .map_or_else(
                    || LeaderState::NoLeader("no manager is marked Leader".into()),
                    |n| LeaderState::Leader(n.hostname),
                )),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains(NO_LEADER) =>
            {
                Ok(LeaderState::NoLeader(message))
            }
            Err(source) => Err(Error::DockerApiFailed {
                node: node.to_owned(),
                call: "node ls",
                source,
            }),
        }
    }

    /// The swarm's node list as one node sees it.
    pub async fn swarm_nodes(&self, node: &str) -> Result<Vec<SwarmNode>> {
        let docker = self.docker(node).await?;
        let nodes = docker
            .list_nodes(None)
            .await
            .map_err(|source| Error::DockerApiFailed {
                node: node.to_owned(),
                call: "node ls",
                source,
            })?;
        let mut rows: Vec<SwarmNode> = nodes.iter().map(SwarmNode::from_api).collect();
        rows.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        Ok(rows)
    }

    /// Daemons and, from the first manager that answers, the swarm's nodes.
    pub async fn status(&self) -> Status {
        let layout = self.layout();
        let nodes: Vec<NodeProcess> = self
            .node_list()
            .into_iter()
            .map(|(role, index)| {
                let node = self.hostname_at(role, index);
                let paths = self.paths(&node);
                let pid = read_pid(&paths.dir);
                NodeProcess {
                    role,
                    ip: layout.node_ip(role, index),
                    pid,
                    alive: pid.is_some_and(node::alive),
                    docker_host: format!("unix://{}", paths.socket().display()),
                    node,
                }
            })
            .collect();
        let mut swarm = Err("no manager daemon is running".to_owned());
        for n in nodes.iter().filter(|n| n.role == Role::Manager && n.alive) {
            let attempt =
                tokio::time::timeout(Duration::from_secs(25), self.swarm_nodes(&n.node)).await;
            match attempt {
                Ok(Ok(rows)) => {
                    swarm = Ok((n.node.clone(), rows));
                    break;
                }
                Ok(Err(err)) => swarm = Err(format!("{}: {}", n.node, crate::error::chain(&err))),
                Err(_) => swarm = Err(format!("{}: node list timed out", n.node)),
            }
        }
        Status {
            name: self.state.name.clone(),
            subnet: layout.subnet(),
            bridge: layout.bridge(),
            nodes,
            swarm,
        }
    }

    /// Wait until every node is in the swarm, Ready, with exactly one leader
    /// and every manager reachable.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no manager answered yet");
        loop {
            for manager in self.managers() {
                if !self.is_running(&manager)? {
                    continue;
                }
                let rows =
                    tokio::time::timeout(Duration::from_secs(25), self.swarm_nodes(&manager)).await;
                match rows {
                    Ok(Ok(rows)) => match self.readiness_gap(&rows) {
                        None => return Ok(()),
                        Some(gap) => last = format!("as seen by {manager}: {gap}"),
                    },
                    Ok(Err(err)) => last = crate::error::chain(&err),
                    Err(_) => last = format!("node list on {manager} timed out"),
                }
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::SwarmNotReady {
                    sandbox: self.state.name.clone(),
                    secs: timeout.as_secs(),
                    detail: last,
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// What keeps the node list from being "all Ready, one leader", or `None`.
    fn readiness_gap(&self, rows: &[SwarmNode]) -> Option<String> {
        let mut gaps = Vec::new();
        for node in self.nodes() {
            let matching: Vec<&SwarmNode> = rows.iter().filter(|r| r.hostname == node).collect();
            let ready = matching.iter().any(|r| r.status == "ready");
            if !ready {
                gaps.push(format!("{node} not ready"));
            }
        }
        let leaders = rows.iter().filter(|r| r.manager_status == "Leader").count();
        if leaders != 1 {
            gaps.push(format!("{leaders} leaders"));
        }
        let unreachable: Vec<&str> = rows
            .iter()
            .filter(|r| r.role == "manager" && r.status == "ready")
            .filter(|r| !matches!(r.manager_status.as_str(), "Leader" | "Reachable"))
            .map(|r| r.hostname.as_str())
            .collect();
        if !unreachable.is_empty() {
            gaps.push(format!(
                "managers not reachable: {}",
                unreachable.join(", ")
            ));
        }
        (!gaps.is_empty()).then(|| gaps.join("; "))
    }

    /// Build the busybox test image ([`image::IMAGE`]) and import it into every
    /// running node. Returns the image reference.
    pub async fn build_image(&self) -> Result<String> {
        let busybox = image::read_busybox(Path::new(image::BUSYBOX))?;
        let applets = image::applets(Path::new(image::BUSYBOX)).await?;
        let tar = bytes::Bytes::from(image::rootfs_tar(&busybox, &applets));
        let (repo, tag) = image::IMAGE
            .split_once(':')
            .unwrap_or((image::IMAGE, "latest"));
        for node in self.nodes() {
            if !self.is_running(&node)? {
                tracing::warn!(node, "not running; image not imported");
                continue;
            }
            let docker = self.docker(&node).await?;
            let options = bollard::query_parameters::CreateImageOptions {
                from_src: Some("-".into()),
                repo: Some(repo.into()),
                tag: Some(tag.into()),
                changes: vec![r#"CMD ["sh"]"#.into()],
                ..Default::default()
            };
            let stream =
                docker.create_image(Some(options), Some(bollard::body_full(tar.clone())), None);
            futures::TryStreamExt::try_collect::<Vec<_>>(stream)
                .await
                .map_err(|source| Error::DockerApiFailed {
                    node: node.clone(),
                    call: "image import",
                    source,
                })?;
        }
        Ok(image::IMAGE.to_owned())
    }

    /// Remove everything of this sandbox (see [`teardown`]).
    pub async fn down(&self) -> Result<()> {
        teardown(&self.root, &self.state.name).await
    }

    fn layout(&self) -> Layout {
        Layout {
            name: self.state.name.clone(),
            octet: self.state.octet,
        }
    }

    /// Files of a node (`node`: hostname or internal name).
    fn paths(&self, node: &str) -> NodePaths {
        let name = self
            .resolve(node)
            .map_or_else(|_| node.to_owned(), |n| n.name);
        NodePaths {
            dir: self.dir().join(name),
        }
    }

    fn node_list(&self) -> Vec<(Role, u32)> {
        (1..=self.state.managers)
            .map(|i| (Role::Manager, i))
            .chain((1..=self.state.workers).map(|i| (Role::Worker, i)))
            .collect()
    }

    fn check_node(&self, node: &str) -> Result<(Role, u32)> {
        self.resolve(node).map(|n| (n.role, n.index))
    }

    /// A node by its hostname, or by its internal name (`manager1`).
    fn resolve(&self, node: &str) -> Result<NodeRef> {
        let by_hostname = self
            .node_list()
            .into_iter()
            .find(|(r, i)| self.hostname_at(*r, *i) == node);
        let by_name = || {
            net::parse_node_name(node).filter(|(role, index)| match role {
                Role::Manager => *index <= self.state.managers,
                Role::Worker => *index <= self.state.workers,
            })
        };
        by_hostname
            .or_else(by_name)
            .map(|(role, index)| Self::node_ref(role, index))
            .ok_or_else(|| Error::UnknownNode {
                sandbox: self.state.name.clone(),
                node: node.to_owned(),
                known: self.nodes().join(", "),
            })
    }

    fn node_ref(role: Role, index: u32) -> NodeRef {
        NodeRef {
            role,
            index,
            name: net::node_name(role, index),
        }
    }

    /// The hostname of the node at `(role, index)`.
    fn hostname_at(&self, role: Role, index: u32) -> String {
        let at = match role {
            Role::Manager => index as usize - 1,
            Role::Worker => (self.state.managers + index) as usize - 1,
        };
        self.state
            .hostnames
            .get(at)
            .cloned()
            .unwrap_or_else(|| net::node_name(role, index))
    }

    /// Start a node's dockerd in its namespaces.
    async fn spawn(&self, n: &NodeRef) -> Result<u32> {
        let netns = net::netns_path(&self.layout().netns(&n.name));
        let hostname = self.hostname_at(n.role, n.index);
        node::spawn_dockerd(
            &self.paths(&n.name),
            node::Spawn {
                hostname: &hostname,
                netns: &netns,
                sandbox_dir: &self.dir(),
            },
        )
        .await
    }

    /// Wait until a node's daemon answers `/_ping`; fail early when it exits.
    async fn wait_daemon(&self, node: &str, deadline: Instant) -> Result<()> {
        let paths = self.paths(node);
        let failed = |what: String| Error::DaemonStartFailed {
            node: node.to_owned(),
            what,
            log: paths.log(),
            tail: node::log_tail(&paths.log(), 15),
        };
        loop {
            if !read_pid(&paths.dir).is_some_and(node::alive) {
                return Err(failed("exited".into()));
            }
            if paths.socket().exists()
                && let Ok(docker) = self.docker(node).await
                && docker.ping().await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(failed("did not answer in time".into()));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `swarm init` on manager1, then join every other node to it.
    async fn form_swarm(&self) -> Result<()> {
        let first = net::node_name(Role::Manager, 1);
        let first_ip = self.node_ip(&first)?;
        let api = |node: &str, call, source| Error::DockerApiFailed {
            node: node.to_owned(),
            call,
            source,
        };
        let docker = self.docker(&first).await?;
        docker
            .init_swarm(SwarmInitRequest {
                listen_addr: Some("0.0.0.0:2377".into()),
                advertise_addr: Some(first_ip.to_string()),
                ..Default::default()
            })
            .await
            .map_err(|e| api(&first, "swarm init", e))?;
        let tokens = docker
            .inspect_swarm()
            .await
            .map_err(|e| api(&first, "swarm inspect", e))?
            .join_tokens
            .unwrap_or_default();
        for (role, index) in self.node_list().into_iter().skip(1) {
            let node = net::node_name(role, index);
            let token = match role {
                Role::Manager => tokens.manager.clone(),
                Role::Worker => tokens.worker.clone(),
            };
            let ip = self.layout().node_ip(role, index);
            self.docker(&node)
                .await?
                .join_swarm(SwarmJoinRequest {
                    listen_addr: Some("0.0.0.0:2377".into()),
                    advertise_addr: Some(ip.to_string()),
                    remote_addrs: Some(vec![format!("{first_ip}:2377")]),
                    join_token: token,
                    ..Default::default()
                })
                .await
                .map_err(|e| api(&node, "swarm join", e))?;
        }
        Ok(())
    }
}

/// Whether a host link is administratively down.
fn link_down(link: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{link}/flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & 1 == 0)
}

pub(crate) fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        action: "create directory",
        path: dir.to_owned(),
        source,
    })
}

/// Run a command; error with its stderr when it fails.
pub(crate) async fn run_cmd(program: &str, args: &[&str]) -> Result<()> {
    run_cmd_output(program, args).await.map(|_| ())
}

/// Run a command and return its stdout; error with its stderr when it fails.
pub(crate) async fn run_cmd_output(program: &str, args: &[&str]) -> Result<String> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .env("PATH", preflight::search_path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| Error::CommandSpawnFailed {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::CommandFailed {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(managers: u32, workers: u32) -> Sandbox {
        Sandbox {
            root: PathBuf::from("/run/bosun-sandbox"),
            state: State {
                name: "unit".into(),
                octet: 9,
                managers,
                workers,
                hostnames: Vec::new(),
            },
        }
    }

    fn row(host: &str, role: &str, status: &str, ms: &str) -> SwarmNode {
        SwarmNode {
            hostname: host.into(),
            role: role.into(),
            status: status.into(),
            availability: "active".into(),
            manager_status: ms.into(),
        }
    }

    #[test]
    fn docker_host_should_point_into_the_state_dir() {
        let s = sandbox(3, 1);
        assert_eq!(
            s.docker_host("manager2").unwrap(),
            "unix:///run/bosun-sandbox/unit/manager2/docker.sock"
        );
        assert_eq!(s.nodes(), ["manager1", "manager2", "manager3", "worker1"]);
        let err = s.docker_host("worker2").unwrap_err().to_string();
        assert!(err.contains("no node \"worker2\""), "{err}");
        assert!(
            err.contains("manager1, manager2, manager3, worker1"),
            "{err}"
        );
    }

    #[test]
    fn readiness_should_need_every_node_ready_and_one_leader() {
        let s = sandbox(2, 1);
        let good = vec![
            row("manager1", "manager", "ready", "Leader"),
            row("manager2", "manager", "ready", "Reachable"),
            row("worker1", "worker", "ready", ""),
        ];
        assert_eq!(s.readiness_gap(&good), None);
        let mut bad = good.clone();
        bad[1].manager_status = "Unreachable".into();
        bad[2].status = "down".into();
        let gap = s.readiness_gap(&bad).unwrap();
        assert!(gap.contains("worker1 not ready"), "{gap}");
        assert!(gap.contains("managers not reachable: manager2"), "{gap}");
        let gap = s.readiness_gap(&good[1..]).unwrap();
        assert!(
            gap.contains("manager1 not ready") && gap.contains("0 leaders"),
            "{gap}"
        );
    }

    #[test]
    fn config_should_reject_bad_sizes() {
        assert!(Config::new("x").managers(0).validate().is_err());
        assert!(Config::new("x").workers(151).validate().is_err());
        assert!(Config::new("x").managers(3).workers(2).validate().is_ok());
        assert!(Config::new("X").validate().is_err());
    }
}

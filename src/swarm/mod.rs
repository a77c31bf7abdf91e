//! The Docker Engine API, as bosun uses it.
//!
//! Everything bosun reads from or writes to a swarm goes through one trait,
//! [`Api`], so the controller and apply can be tested against a scripted fake
//! as well as a real daemon. The trait is deliberately JSON-level: specs
//! travel as `serde_json::Value` with the field names the daemon really uses
//! (`Healthcheck`, not the `HealthCheck` of the API schema that typed clients
//! follow — see docs/architecture.md, "Swarm traps"), so a read-modify-write never drops a
//! field and a drift check compares like with like.
//!
//! [`observe`] takes one [`Snapshot`] per pass: one list call per kind.
//!
//! - [`Client`]: the real daemon, raw JSON over HTTP/1.1 on versioned paths,
//!   pooled connections, every request counted ([`RequestCounter`]).
//! - [`Fake`]: an in-memory swarm with the daemon's error semantics and a
//!   call log, for controller and apply tests.
//! - [`retry`]: backoff with jitter on transient errors, and a
//!   read-modify-write that re-reads after "update out of sequence".
//! - [`settle`]: the one way to wait for swarm's asynchronous removals
//!   (and other eventual states), bounded, with a message on time-out.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use serde_json::Value;

mod client;
mod counter;
pub mod fake;
mod model;
pub mod retry;
pub mod settle;

pub use client::{
    Client, Config, DEFAULT_HOST, DEFAULT_TIMEOUT, Host, MAX_API_VERSION, MIN_SAFE_API_VERSION,
    TlsFiles,
};
pub use counter::{RequestCounter, RequestKey, Requests};
pub use fake::{Call, Fake, Method};
pub use model::{Info, ManagerStatus, Meta, Network, Node, Object, Snapshot, Task};

/// Kinds of swarm objects: the one object-kind enum of plans, apply
/// reports, status and metrics (written lowercase: `service`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Service,
    Network,
    Config,
    Secret,
    Node,
    Task,
}

impl Kind {
    /// The kinds bosun creates and owns, in the order metrics list them.
    pub const MANAGED: [Kind; 5] = [
        Kind::Network,
        Kind::Config,
        Kind::Secret,
        Kind::Node,
        Kind::Service,
    ];

    /// The kind written lowercase, as in labels, metrics and messages.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Network => "network",
            Kind::Config => "config",
            Kind::Secret => "secret",
            Kind::Node => "node",
            Kind::Task => "task",
        }
    }

    /// The collection path segment: `services`, `networks`, …
    #[must_use]
    pub fn collection(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::Network => "networks",
            Kind::Config => "configs",
            Kind::Secret => "secrets",
            Kind::Node => "nodes",
            Kind::Task => "tasks",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// List filters (`?filters={"label":["a=b"],…}`), in the daemon's format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// No filter: every object of the kind.
    #[must_use]
    pub fn none() -> Self {
        Filters::default()
    }

    /// Add a filter value (`label`, `name`, `desired-state`, `service`, …).
    #[must_use]
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.0
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
        self
    }
}

/// Errors of the Docker API.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The daemon could not be reached or the connection broke.
    #[error("cannot reach the Docker daemon at {host}: {message}")]
    ConnectFailed { host: String, message: String },
    /// The daemon answered with an error status.
    #[error("{method} {path}: HTTP {status}: {message}")]
    ResponseFailed {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// The daemon answered with a body bosun could not read.
    #[error("{method} {path}: unexpected response: {message}")]
    DecodeFailed {
        method: String,
        path: String,
        message: String,
    },
    /// A request did not complete in time.
    #[error("{method} {path}: timed out after {seconds} s")]
    TimedOut {
        method: String,
        path: String,
        seconds: u64,
    },
}

impl Error {
    /// The HTTP status, when the daemon answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::ResponseFailed { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The daemon's message (or the transport error text).
    #[must_use]
    pub fn message(&self) -> &str {
        match self {
            Error::ConnectFailed { message, .. }
            | Error::ResponseFailed { message, .. }
            | Error::DecodeFailed { message, .. } => message,
            Error::TimedOut { .. } => "timed out",
        }
    }

    /// Worth retrying: connection problems, timeouts, HTTP 5xx other than
    /// "no leader", and "update out of sequence" (re-read the version first).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Error::ConnectFailed { .. } | Error::TimedOut { .. } => true,
            Error::ResponseFailed { status, .. } => {
                (*status >= 500 && !self.is_no_leader()) || self.is_out_of_sequence()
            }
            Error::DecodeFailed { .. } => false,
        }
    }

    /// The write raced another writer: re-read the version index and retry.
    #[must_use]
    pub fn is_out_of_sequence(&self) -> bool {
        self.message().contains("update out of sequence")
    }

    /// The object does not exist (HTTP 404).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The swarm has lost quorum ("The swarm does not have a leader").
    #[must_use]
    pub fn is_no_leader(&self) -> bool {
        self.message().contains("does not have a leader")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The Docker Engine API calls bosun makes, at the JSON level.
///
/// Bodies and results carry the daemon's own field names. `create` returns
/// the new object's ID. `update` applies to services, nodes, configs and
/// secrets (configs and secrets: labels only) and needs the version index the
/// object was read at.
pub trait Api: Send + Sync {
    /// `GET /info`.
    fn info(&self) -> impl Future<Output = Result<Value>> + Send;
    /// `GET /<kind>s` with filters: one call, every matching object.
    fn list(
        &self,
        kind: Kind,
        filters: &Filters,
    ) -> impl Future<Output = Result<Vec<Value>>> + Send;
    /// `GET /<kind>s/<id>`.
    fn inspect(&self, kind: Kind, id: &str) -> impl Future<Output = Result<Value>> + Send;
    /// `POST /<kind>s/create`; returns the ID.
    fn create(&self, kind: Kind, body: &Value) -> impl Future<Output = Result<String>> + Send;
    /// `POST /<kind>s/<id>/update?version=<version>`.
    fn update(
        &self,
        kind: Kind,
        id: &str,
        version: u64,
        body: &Value,
    ) -> impl Future<Output = Result<()>> + Send;
    /// `DELETE /<kind>s/<id>`.
    fn remove(&self, kind: Kind, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// `GET /services/<id>/logs?stdout=1&stderr=1&timestamps=1&tail=<tail>`:
    /// the last `tail` lines of each of the service's tasks, as text (the
    /// stream framing removed), each line led by its RFC 3339 timestamp.
    /// Tasks on nodes that do not answer are left out. An API without logs
    /// has none.
    fn service_logs(&self, id: &str, tail: usize) -> impl Future<Output = Result<String>> + Send {
        let _ = (id, tail);
        async { Ok(String::new()) }
    }
}

/// The payload of a Docker log stream: frames of an 8-byte header (stream,
/// three zero bytes, big-endian length) and the bytes; a stream without
/// that framing (a TTY) is taken as it is.
#[must_use]
pub fn demux_logs(bytes: &[u8]) -> String {
    let framed = bytes.len() >= 8 && matches!(bytes[0], 0..=2) && bytes[1..4] == [0, 0, 0];
    if !framed {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let end = (8 + len).min(rest.len());
        out.extend_from_slice(&rest[8..end]);
        rest = &rest[end..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Take one snapshot of the swarm: `/info` and one list call per kind, all
/// at once (tasks: only those whose desired state is running).
pub async fn observe(api: &impl Api) -> Result<Snapshot> {
    let (info, snapshot) = futures::try_join!(api.info(), observe_objects(api))?;
    Ok(Snapshot {
        info: Info::from_owned(info),
        ..snapshot
    })
}

/// [`observe`] without `/info` (the snapshot's `info` is empty): the
/// objects, which is all a plan reads. `/info` is among the daemon's
/// slowest answers, so a verification after applying, or a command that
/// only needs `/info` to explain a failure, skips it.
pub async fn observe_objects(api: &impl Api) -> Result<Snapshot> {
    let all = Filters::none();
    let running = Filters::none().with("desired-state", "running");
    let (nodes, networks, services, configs, secrets, tasks) = futures::try_join!(
        api.list(Kind::Node, &all),
        api.list(Kind::Network, &all),
        api.list(Kind::Service, &all),
        api.list(Kind::Config, &all),
        api.list(Kind::Secret, &all),
        api.list(Kind::Task, &running),
    )?;
    let networks = with_predefined(api, networks, &services).await?;
    Ok(Snapshot::from_owned(
        Value::Null,
        &nodes,
        networks,
        services,
        configs,
        secrets,
        &tasks,
    ))
}

/// Add the networks services are attached to that `GET /networks` does not
/// list: swarm's predefined `host` and `bridge` networks (label
/// `com.docker.swarm.predefined`) have their own IDs, hidden behind the
/// local networks of the same name. Without them a service on `host` could
/// not be mapped back to its network's name and would drift forever. Costs
/// one inspect per such ID, only when a service uses one.
async fn with_predefined(
    api: &impl Api,
    mut networks: Vec<Value>,
    services: &[Value],
) -> Result<Vec<Value>> {
    let known: std::collections::BTreeSet<String> = networks
        .iter()
        .filter_map(|n| n.get("Id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut unknown = std::collections::BTreeSet::new();
    for s in services {
        for ptr in ["/Spec/TaskTemplate/Networks", "/Spec/Networks"] {
            for n in s
                .pointer(ptr)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = n.get("Target").and_then(Value::as_str)
                    && !known.contains(t)
                {
                    unknown.insert(t.to_string());
                }
            }
        }
    }
    for id in unknown {
        match api.inspect(Kind::Network, &id).await {
            // A name (the fake keeps what was sent) resolves to a listed one.
            Ok(n)
                if n.get("Id")
                    .and_then(Value::as_str)
                    .is_some_and(|i| known.contains(i)) => {}
            Ok(n) => networks.push(n),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(networks)
}

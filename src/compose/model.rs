//! The typed compose model: what docker/cli's `compose/types.Config` holds
//! after loading, limited to what `docker stack deploy` reads. Durations are
//! nanoseconds, byte sizes bytes, paths already resolved.

use std::collections::BTreeMap;

use crate::yaml::Pos;

pub use super::parse::PortConfig;

/// Where a definition came from, for conversion errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub pos: Pos,
}

/// A loaded (and merged) compose project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Project {
    pub version: String,
    /// Sorted by name.
    pub services: Vec<Service>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, FileObject>,
    pub configs: BTreeMap<String, FileObject>,
    pub(crate) warnings: Vec<String>,
    /// Where [`convert`](super::convert()) may read config and secret
    /// files; `None` (a project loaded without confinement): anywhere.
    pub(crate) confinement: Option<crate::source::Confinement>,
}

impl Project {
    /// Warnings docker would print (unsupported/deprecated options, ignored
    /// host IPs, deprecated `external.name`) and unset variables.
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The service called `name`.
    #[must_use]
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    pub name: String,
    pub origin: Origin,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub command: Vec<String>,
    pub entrypoint: Vec<String>,
    pub configs: Vec<FileRef>,
    pub secrets: Vec<FileRef>,
    pub credential_spec: CredentialSpec,
    pub deploy: Deploy,
    /// `None` when absent (docker sends no `DNSConfig` then).
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    /// `None` values are variables without a value (`FOO` in a list).
    pub environment: BTreeMap<String, Option<String>>,
    pub env_file: Vec<String>,
    /// `host:ip` entries in file order.
    pub extra_hosts: Vec<String>,
    pub healthcheck: Option<Healthcheck>,
    pub hostname: String,
    pub image: String,
    pub init: Option<bool>,
    pub isolation: String,
    pub labels: BTreeMap<String, String>,
    pub logging: Option<Logging>,
    /// Network name → attachment options (`None` for a bare reference).
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    pub ports: Vec<PortConfig>,
    pub read_only: bool,
    /// The container `restart:` policy, used when `deploy.restart_policy` is absent.
    pub restart: String,
    pub stdin_open: bool,
    pub tty: bool,
    pub stop_grace_period: Option<i64>,
    pub stop_signal: String,
    pub sysctls: BTreeMap<String, String>,
    pub tmpfs: Vec<String>,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub user: String,
    pub working_dir: String,
    pub oom_score_adj: i64,
    pub volumes: Vec<ServiceVolume>,
}

/// A service's reference to a config or secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRef {
    pub source: String,
    pub target: String,
    pub uid: String,
    pub gid: String,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialSpec {
    pub config: String,
    pub file: String,
    pub registry: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deploy {
    pub mode: String,
    pub replicas: Option<u64>,
    pub labels: BTreeMap<String, String>,
    pub update_config: Option<UpdateConfig>,
    pub rollback_config: Option<UpdateConfig>,
    pub resources: Resources,
    pub restart_policy: Option<RestartPolicy>,
    pub placement: Placement,
    pub endpoint_mode: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: i64,
    pub failure_action: String,
    pub monitor: i64,
    /// A Go `float32`, kept as the `f64` its JSON form reads back as.
    pub max_failure_ratio: f64,
    pub order: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub limits: Option<Limits>,
    pub reservations: Option<Reservations>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub cpus: String,
    pub memory: i64,
    pub pids: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservations {
    pub cpus: String,
    pub memory: i64,
    /// Discrete generic resources: (kind, value); `None` for an entry without
    /// `discrete_resource_spec`.
    pub generic_resources: Vec<Option<(String, i64)>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartPolicy {
    pub condition: String,
    pub delay: Option<i64>,
    pub max_attempts: Option<u64>,
    pub window: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub constraints: Vec<String>,
    pub preferences: Vec<String>,
    pub max_replicas: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub timeout: Option<i64>,
    pub interval: Option<i64>,
    pub retries: Option<u64>,
    pub start_period: Option<i64>,
    pub start_interval: Option<i64>,
    pub disable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logging {
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceNetwork {
    pub aliases: Vec<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub ipv4_address: String,
    pub ipv6_address: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ulimit {
    pub single: i64,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceVolume {
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub consistency: String,
    pub bind: Option<String>,
    pub volume: Option<VolumeOptions>,
    pub tmpfs: Option<i64>,
    pub image: Option<String>,
    pub cluster: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeOptions {
    pub nocopy: bool,
    pub subpath: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    pub origin: Origin,
    pub name: String,
    pub driver: String,
    /// `None` when absent: docker then sends `"Options": null`.
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub ipam_driver: String,
    pub ipam_subnets: Vec<String>,
    pub external: bool,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volume {
    pub origin: Origin,
    pub name: String,
    pub driver: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
}

/// A top-level config or secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileObject {
    pub origin: Origin,
    pub name: String,
    /// Absolute path of the content (resolved against the working dir).
    pub file: String,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
    pub driver: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub template_driver: String,
}

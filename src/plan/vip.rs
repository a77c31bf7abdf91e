//! `VipPolicy` as swarm objects: for every node a policy selects, a secret
//! holding the node's rendered `keepalived.conf` and a keepalived service
//! pinned to the node.
//!
//! The objects depend on the live nodes (their ids and swarm addresses), so
//! they are made when a plan sees a snapshot ([`with_vips`]), not when the
//! manifests are read. They then go through the planner like a stack's
//! (`vip-<policy>`, owned by `VipPolicy/<policy>`): created, updated when
//! the rendered file or the policy changes (a new content-hashed secret),
//! drift reverted, removed with the policy or with the node.
//!
//! The service (one replica, `node.id == …`):
//!
//! - on the `host` network, so keepalived sees the node's interfaces;
//! - `CAP_NET_ADMIN`, `CAP_NET_BROADCAST`, `CAP_NET_RAW` added (addresses,
//!   gratuitous ARP, raw VRRP sockets);
//! - the node's Docker socket bound read-only, only when a `docker` check
//!   needs it;
//! - [`STOP_GRACE`] to stop: on `SIGTERM` keepalived sends a priority-0
//!   advert and drops the address, so a backup takes over at once;
//! - `UpdateConfig`: stop-first, a one-second monitor, rollback on failure
//!   (a node whose new keepalived dies keeps its old one).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use super::desired::{DesiredStack, DesiredState};
use crate::compose::api::{
    ContainerSpec, FileTarget, Mount, NetworkAttachmentConfig, Placement, ReplicatedService,
    RestartPolicy, SecretReference, SecretSpec, ServiceMode, ServiceSpec, TaskSpec, UpdateConfig,
};
use crate::compose::{self, LABEL_NAMESPACE, StackObjects};
use crate::manifest::{self, CheckType, ObjectRef, VipPolicySpec};
use crate::swarm::Snapshot;
use crate::vip::{self, Member, NodeFacts};

/// Where the rendered configuration is in the keepalived container.
pub const CONFIG_PATH: &str = "/etc/keepalived/keepalived.conf";

/// How long a keepalived task gets to give the address up when stopped.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long apply waits for one node's keepalived to run its new spec
/// before it stops rolling the policy.
pub const ROLL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The node a keepalived service runs on (service label).
pub const LABEL_NODE: &str = "dev.bosun.vip.node";

/// The node's VRRP priority in the rendered file (service label).
pub const LABEL_PRIORITY: &str = "dev.bosun.vip.priority";

/// The policy's address (service label).
pub const LABEL_ADDRESS: &str = "dev.bosun.vip.address";

/// keepalived's command line: stay in the foreground, log to stdout (the
/// state transitions bosun reads back), VRRP only.
pub const COMMAND: [&str; 6] = [
    "keepalived",
    "--dont-fork",
    "--log-console",
    "--log-detail",
    "--vrrp",
    "--use-file=/etc/keepalived/keepalived.conf",
];

/// A `VipPolicy` with its password read.
#[derive(Clone, PartialEq)]
pub struct DesiredVip {
    /// `VipPolicy/<name>`.
    pub owner: ObjectRef,
    pub spec: VipPolicySpec,
    /// The VRRP password; never printed (see the `Debug` impl).
    pub password: Option<String>,
}

impl fmt::Debug for DesiredVip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DesiredVip")
            .field("owner", &self.owner)
            .field("spec", &self.spec)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

impl DesiredVip {
    /// The stack namespace of the policy's services: `vip-<policy>`.
    #[must_use]
    pub fn stack_name(&self) -> String {
        stack_name(&self.owner.name)
    }
}

/// `vip-<policy>`.
#[must_use]
pub fn stack_name(policy: &str) -> String {
    format!("vip-{policy}")
}

/// `vip-<policy>_<hostname>` (dots as dashes; a long one is cut and keeps
/// the node id's start, service names have at most 63 characters).
#[must_use]
pub fn service_name(policy: &str, hostname: &str, node_id: &str) -> String {
    let host = hostname.replace('.', "-");
    let name = format!("{}_{host}", stack_name(policy));
    if name.len() <= 54 {
        return name;
    }
    let id: String = node_id.chars().take(8).collect();
    let keep = 54usize.saturating_sub(stack_name(policy).len() + 2 + id.len());
    let host: String = host.chars().take(keep).collect();
    format!("{}_{host}-{id}", stack_name(policy))
}

/// `desired` with every VIP policy's objects for the nodes of `snapshot`
/// added as stacks (borrowed as it is when there is no policy).
#[must_use]
pub fn with_vips<'a>(desired: &'a DesiredState, snapshot: &Snapshot) -> Cow<'a, DesiredState> {
    if desired.vips.is_empty() {
        return Cow::Borrowed(desired);
    }
    let facts = node_facts(desired, snapshot);
    let mut out = desired.clone();
    for v in &desired.vips {
        let members = vip::members(&v.spec, &facts);
        if members.is_empty() {
            // Selecting no node (or a node list that came back empty) never
            // removes running keepalived services: the plan warns instead.
            continue;
        }
        let mut stack = stack(v, &members);
        if let Some(scope) = desired.scope.as_deref() {
            for s in &mut stack.objects.secrets {
                s.labels
                    .insert(super::LABEL_SCOPE.to_string(), scope.to_string());
            }
            for s in &mut stack.objects.services {
                s.labels
                    .insert(super::LABEL_SCOPE.to_string(), scope.to_string());
            }
        }
        out.stacks.push(stack);
    }
    Cow::Owned(out)
}

/// What the policies' selectors see of the nodes: as observed, with the
/// labels the same plan's `NodeLabels` rules set (a policy selecting nodes
/// by a label this folder sets converges in one pass).
#[must_use]
pub fn node_facts(desired: &DesiredState, snapshot: &Snapshot) -> Vec<NodeFacts> {
    let planned = super::nodes::plan(&desired.node_rules, snapshot, desired.scope.as_deref());
    snapshot
        .nodes
        .iter()
        .filter_map(|n| {
            let mut facts = NodeFacts::of(n)?;
            let labels = planned.iter().find_map(|a| match a {
                super::Action::UpdateNode { id, spec, .. } if *id == n.meta.id => {
                    serde_json::from_value(spec["Labels"].clone()).ok()
                }
                _ => None,
            });
            if let Some(labels) = labels {
                facts.labels = labels;
            }
            Some(facts)
        })
        .collect()
}

/// The policy's stack: one secret and one service per member.
fn stack(v: &DesiredVip, members: &[Member]) -> DesiredStack {
    let policy = v.owner.name.as_str();
    let ns = stack_name(policy);
    let rendered = vip::render(
        policy,
        &v.spec,
        members,
        vip::Options {
            password: v.password.as_deref(),
            checker: vip::CHECKER,
        },
    );
    let mut objects = StackObjects::default();
    for r in &rendered {
        let name = service_name(policy, &r.hostname, &r.node_id);
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_NAMESPACE.to_string(), ns.clone());
        objects.secrets.push(SecretSpec {
            name: name.clone(),
            labels: labels.clone(),
            data: r.config.clone().into_bytes(),
            ..SecretSpec::default()
        });
        labels.insert(LABEL_NODE.to_string(), r.hostname.clone());
        labels.insert(LABEL_PRIORITY.to_string(), r.priority.to_string());
        labels.insert(LABEL_ADDRESS.to_string(), v.spec.address.clone());
        objects
            .services
            .push(service(&v.spec, &name, &r.node_id, &ns, labels));
    }
    let owner = v.owner.to_string();
    DesiredStack {
        name: ns,
        owned_by: Some(v.owner.clone()),
        prune: true,
        after: Vec::new(),
        wait: Some(ROLL_TIMEOUT),
        objects: compose::bosunify(objects, &owner),
    }
}

fn service(
    spec: &VipPolicySpec,
    name: &str,
    node_id: &str,
    ns: &str,
    labels: BTreeMap<String, String>,
) -> ServiceSpec {
    let mut container_labels = BTreeMap::new();
    container_labels.insert(LABEL_NAMESPACE.to_string(), ns.to_string());
    let mounts = if spec.checks.iter().any(|c| c.kind == CheckType::Docker) {
        vec![Mount {
            r#type: "bind".into(),
            source: "/var/run/docker.sock".into(),
            target: "/var/run/docker.sock".into(),
            read_only: true,
            ..Mount::default()
        }]
    } else {
        Vec::new()
    };
    ServiceSpec {
        name: name.to_string(),
        labels,
        task_template: TaskSpec {
            container_spec: Some(ContainerSpec {
                image: spec.image.clone(),
                labels: container_labels,
                command: COMMAND.iter().map(|s| (*s).to_string()).collect(),
                mounts,
                stop_grace_period: Some(STOP_GRACE.as_nanos() as i64),
                secrets: vec![SecretReference {
                    file: Some(FileTarget {
                        name: CONFIG_PATH.into(),
                        uid: "0".into(),
                        gid: "0".into(),
                        mode: 0o400,
                    }),
                    secret_id: String::new(),
                    secret_name: name.to_string(),
                }],
                capability_add: vec![
                    "CAP_NET_ADMIN".into(),
                    "CAP_NET_BROADCAST".into(),
                    "CAP_NET_RAW".into(),
                ],
                ..ContainerSpec::default()
            }),
            restart_policy: Some(RestartPolicy {
                condition: "any".into(),
                delay: Some(1_000_000_000),
                ..RestartPolicy::default()
            }),
            placement: Some(Placement {
                constraints: vec![format!("node.id=={node_id}")],
                ..Placement::default()
            }),
            networks: vec![NetworkAttachmentConfig {
                target: "host".into(),
                ..NetworkAttachmentConfig::default()
            }],
            ..TaskSpec::default()
        },
        mode: ServiceMode {
            replicated: Some(ReplicatedService { replicas: Some(1) }),
            ..ServiceMode::default()
        },
        update_config: Some(UpdateConfig {
            parallelism: 1,
            failure_action: "rollback".into(),
            monitor: 1_000_000_000,
            order: "stop-first".into(),
            ..UpdateConfig::default()
        }),
        ..ServiceSpec::default()
    }
}

/// The policies of `desired` with their passwords, read through the
/// manifests' confinement and `env`.
pub(super) fn read(
    desired: &manifest::Desired,
    env: &BTreeMap<String, String>,
) -> Result<Vec<DesiredVip>, super::Error> {
    desired
        .vip_policies
        .iter()
        .map(|v| {
            let password = v
                .spec
                .password(&desired.confinement, env)
                .map_err(|message| super::Error::VipPasswordFailed {
                    policy: v.id().to_string(),
                    file: v.source.to_string(),
                    message,
                })?;
            Ok(DesiredVip {
                owner: v.id(),
                spec: v.spec.clone(),
                password,
            })
        })
        .collect()
}

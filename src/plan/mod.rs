//! Diff the desired state against one snapshot of the swarm into an ordered
//! list of actions, and render it for people (`kubectl diff` style) and for
//! machines (JSON).
//!
//! [`plan()`] is a pure function: no async, no IO, no Docker client. What
//! it sees of the swarm is a [`swarm::Snapshot`]; what it wants is a
//! [`DesiredState`] built once per revision from the manifests
//! ([`DesiredState::build`]).
//!
//! # Order
//!
//! Networks → configs and secrets → node labels → services (stack by stack,
//! `dependsOn` order, a stack after the stacks that create the networks it
//! uses as external) → removals in reverse: services, then configs and
//! secrets, then networks.
//!
//! # Drift that converges
//!
//! The daemon stores more than a client sends: it fills `UpdateConfig`,
//! `RollbackConfig`, `RestartPolicy`, `StopGracePeriod`, `Isolation`, … and
//! replaces network names with IDs. Both sides are brought to one canonical
//! form ([`normalize`]) before they are compared, so a spec bosun wrote reads
//! back as "no change", while `docker service update --replicas 7` (or
//! `--env-add`, `--image`) shows as one. The default table is proven
//! complete against every request/inspect pair of the oracle corpus.
//!
//! # Ownership
//!
//! Only objects labelled `dev.bosun.managed-by=bosun` are ever updated or
//! removed. A desired name held by an object bosun does not manage is a
//! conflict ([`Problem`]): the plan creates nothing for it and says so.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::compose::api::{ConfigSpec, NetworkCreate, SecretSpec, ServiceSpec};
use crate::manifest::{self, ObjectRef};
use crate::swarm::{self, Kind};

mod desired;
mod diff;
mod engine;
mod nodes;
pub mod normalize;
mod render;
pub mod vip;

pub use desired::{DesiredNetwork, DesiredStack, DesiredState, NodeRule};
pub use diff::diff;
pub use engine::owner_of;
pub use engine::plan;
pub use render::{REDACTED, owners_text};

/// The node label in which bosun records which label keys it set on a node
/// (comma-separated, sorted), so that it removes only those.
pub const LABEL_NODE_LABELS: &str = "dev.bosun.node-labels";

/// The scope of a bosun instance, on everything it creates when it runs
/// with `--scope NAME`: instances with different scopes (one per team or
/// folder) share a swarm without touching, updating or pruning each
/// other's objects. Objects without it belong to the default scope. Node
/// label bookkeeping is kept per scope too (`dev.bosun.node-labels.NAME`).
pub const LABEL_SCOPE: &str = "dev.bosun.scope";

/// What [`DesiredState::build`] can fail on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stack's compose files could not be loaded or converted.
    /// The compose diagnostics are the message itself, not a cause.
    #[error("Stack/{stack} ({file}): cannot convert its compose files:\n{diagnostics}")]
    ConvertFailed {
        stack: String,
        /// The manifest, `file:line`.
        file: String,
        diagnostics: crate::compose::Error,
    },
    /// A VIP policy's password cannot be read.
    #[error("{policy} ({file}): {message}")]
    VipPasswordFailed {
        policy: String,
        /// The manifest, `file:line`.
        file: String,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Remove what bosun owns and no longer wants: objects of deleted
    /// manifests, and objects that disappeared from a stack with `prune:
    /// true`. Without it nothing is removed except superseded versions of
    /// content-hashed configs and secrets.
    pub prune: bool,
    /// Stacks whose rollouts have not converged: their dependents wait.
    pub holds: Holds,
}

impl Options {
    #[must_use]
    pub fn prune(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    #[must_use]
    pub fn holds(mut self, holds: Holds) -> Self {
        self.holds = holds;
        self
    }
}

/// Stacks whose rollouts have not converged, as the controller (or a look
/// at the live services) knows them; the plan defers what must wait for
/// them instead of planning it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holds {
    /// Stack name → why it has not converged (`1/3 tasks running`, `its
    /// rollout failed: …`). A stack that `dependsOn` one of these is
    /// deferred whole: "waiting for Stack/a to converge".
    pub waiting: BTreeMap<String, String>,
    /// Stack name → why its own service updates are not sent again (its
    /// rollout of this very revision failed: retrying would only fail the
    /// same way until the manifest changes).
    pub held: BTreeMap<String, String>,
}

impl Holds {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.held.is_empty()
    }
}

/// An action the plan would make but defers, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deferred {
    pub action: Action,
    pub reason: String,
}

/// A stack whose services are still rolling out, or whose rollout failed,
/// as seen when the plan was made (for people: the plan itself does not
/// depend on it beyond [`Holds`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    pub stack: ObjectRef,
    /// `progressing` or `failed`.
    pub state: &'static str,
    /// `web_app: 1/3 tasks running; last task error: "No such image: …"`.
    pub message: String,
}

/// One field that differs: `path` in the daemon's field names
/// (`TaskTemplate.ContainerSpec.Env[2]`), `old` absent for an added field,
/// `new` absent for a removed one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// One step of a plan. Bodies use the daemon's field names; services refer
/// to networks, configs and secrets by *name* (`Target`, `ConfigName`,
/// `SecretName`) and apply fills in the IDs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action")]
pub enum Action {
    /// `POST /networks/create`. `changes` lists why, when this re-creates a
    /// network that differs from its manifest (after a `RemoveNetwork`).
    CreateNetwork {
        name: String,
        owner: ObjectRef,
        body: NetworkCreate,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        changes: Vec<Change>,
    },
    /// `DELETE /networks/<id>`.
    RemoveNetwork {
        name: String,
        owner: ObjectRef,
        id: String,
        reason: String,
    },
    /// `POST /configs/create`.
    CreateConfig {
        name: String,
        owner: ObjectRef,
        body: ConfigSpec,
    },
    /// `DELETE /configs/<id>`.
    RemoveConfig {
        name: String,
        owner: ObjectRef,
        id: String,
        reason: String,
    },
    /// `POST /secrets/create`. The data never leaves the process through
    /// serde: it serializes as `(secret data)`.
    CreateSecret {
        name: String,
        owner: ObjectRef,
        #[serde(serialize_with = "render::redacted_secret")]
        body: SecretSpec,
    },
    /// `DELETE /secrets/<id>`.
    RemoveSecret {
        name: String,
        owner: ObjectRef,
        id: String,
        reason: String,
    },
    /// `POST /nodes/<id>/update?version=<version>` with the whole node spec
    /// (labels and availability changed, the rest as observed).
    UpdateNode {
        name: String,
        /// The `NodeLabels` manifests whose rules select the node (none:
        /// labels bosun set earlier are taken off).
        #[serde(rename = "owner", serialize_with = "render::serialize_owners")]
        owners: Vec<ObjectRef>,
        id: String,
        version: u64,
        spec: Value,
        changes: Vec<Change>,
    },
    /// `POST /services/create`.
    CreateService {
        name: String,
        owner: ObjectRef,
        body: ServiceSpec,
    },
    /// `POST /services/<id>/update?version=<version>` with the whole desired
    /// spec (`ForceUpdate` never goes down).
    UpdateService {
        name: String,
        owner: ObjectRef,
        id: String,
        version: u64,
        spec: ServiceSpec,
        changes: Vec<Change>,
    },
    /// `DELETE /services/<id>`.
    RemoveService {
        name: String,
        owner: ObjectRef,
        id: String,
        reason: String,
    },
}

/// Create, update or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Update,
    Remove,
}

impl Action {
    /// The object's name in the swarm (a node: its hostname).
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Action::CreateNetwork { name, .. }
            | Action::RemoveNetwork { name, .. }
            | Action::CreateConfig { name, .. }
            | Action::RemoveConfig { name, .. }
            | Action::CreateSecret { name, .. }
            | Action::RemoveSecret { name, .. }
            | Action::UpdateNode { name, .. }
            | Action::CreateService { name, .. }
            | Action::UpdateService { name, .. }
            | Action::RemoveService { name, .. } => name,
        }
    }

    /// The manifests that own the object (one, but for node labels).
    #[must_use]
    pub fn owners(&self) -> &[ObjectRef] {
        match self {
            Action::CreateNetwork { owner, .. }
            | Action::RemoveNetwork { owner, .. }
            | Action::CreateConfig { owner, .. }
            | Action::RemoveConfig { owner, .. }
            | Action::CreateSecret { owner, .. }
            | Action::RemoveSecret { owner, .. }
            | Action::CreateService { owner, .. }
            | Action::UpdateService { owner, .. }
            | Action::RemoveService { owner, .. } => std::slice::from_ref(owner),
            Action::UpdateNode { owners, .. } => owners,
        }
    }

    /// The stack that owns the object, if a stack does.
    #[must_use]
    pub fn stack(&self) -> Option<&ObjectRef> {
        match self.owners() {
            [owner]
                if matches!(
                    owner.kind,
                    manifest::Kind::Stack | manifest::Kind::VipPolicy
                ) =>
            {
                Some(owner)
            }
            _ => None,
        }
    }

    /// Field-level changes (updates and re-creations).
    #[must_use]
    pub fn changes(&self) -> &[Change] {
        match self {
            Action::CreateNetwork { changes, .. }
            | Action::UpdateNode { changes, .. }
            | Action::UpdateService { changes, .. } => changes,
            _ => &[],
        }
    }

    /// Why an object is removed.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        match self {
            Action::RemoveNetwork { reason, .. }
            | Action::RemoveConfig { reason, .. }
            | Action::RemoveSecret { reason, .. }
            | Action::RemoveService { reason, .. } => Some(reason),
            _ => None,
        }
    }

    #[must_use]
    pub fn verb(&self) -> Verb {
        match self {
            Action::CreateNetwork { .. }
            | Action::CreateConfig { .. }
            | Action::CreateSecret { .. }
            | Action::CreateService { .. } => Verb::Create,
            Action::UpdateNode { .. } | Action::UpdateService { .. } => Verb::Update,
            Action::RemoveNetwork { .. }
            | Action::RemoveConfig { .. }
            | Action::RemoveSecret { .. }
            | Action::RemoveService { .. } => Verb::Remove,
        }
    }

    /// The kind of swarm object it acts on.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Action::CreateNetwork { .. } | Action::RemoveNetwork { .. } => Kind::Network,
            Action::CreateConfig { .. } | Action::RemoveConfig { .. } => Kind::Config,
            Action::CreateSecret { .. } | Action::RemoveSecret { .. } => Kind::Secret,
            Action::UpdateNode { .. } => Kind::Node,
            Action::CreateService { .. }
            | Action::UpdateService { .. }
            | Action::RemoveService { .. } => Kind::Service,
        }
    }

    /// The action's name, verb-noun (`UpdateService`).
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Action::CreateNetwork { .. } => "CreateNetwork",
            Action::RemoveNetwork { .. } => "RemoveNetwork",
            Action::CreateConfig { .. } => "CreateConfig",
            Action::RemoveConfig { .. } => "RemoveConfig",
            Action::CreateSecret { .. } => "CreateSecret",
            Action::RemoveSecret { .. } => "RemoveSecret",
            Action::UpdateNode { .. } => "UpdateNode",
            Action::CreateService { .. } => "CreateService",
            Action::UpdateService { .. } => "UpdateService",
            Action::RemoveService { .. } => "RemoveService",
        }
    }
}

/// Something the plan cannot do (an error: the swarm will not match the
/// manifests after apply) or wants a person to know (a warning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: Kind,
    pub name: String,
    /// The manifest that wants the object (none: no manifest does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<ObjectRef>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)?;
        if let Some(owner) = &self.owner {
            write!(f, " ({owner})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The ordered actions that make the swarm equal to the manifests, plus
/// what cannot be done.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Objects that cannot be converged (name conflicts with unmanaged
    /// objects, networks that would need re-creating while in use, missing
    /// external objects).
    pub errors: Vec<Problem>,
    /// Things skipped on purpose (a removal deferred while still in use).
    pub warnings: Vec<Problem>,
    /// Actions that wait for another stack's rollout (see [`Holds`]).
    pub deferred: Vec<Deferred>,
    /// Stacks still rolling out or failed, when the caller looked.
    pub rollouts: Vec<Rollout>,
    /// Who holds each VIP, when the caller looked (`bosun plan`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vips: Vec<crate::vip::status::PolicyStatus>,
}

/// How many objects a plan creates, updates and removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub remove: usize,
}

impl Plan {
    /// No action, deferred or not, and no error: the swarm matches the
    /// manifests.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.is_done() && self.deferred.is_empty()
    }

    /// Nothing to do now and no error; deferred actions may remain.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.actions.is_empty() && self.errors.is_empty()
    }

    /// Counts by verb.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for a in &self.actions {
            match a.verb() {
                Verb::Create => s.create += 1,
                Verb::Update => s.update += 1,
                Verb::Remove => s.remove += 1,
            }
        }
        s
    }

    /// The plan as text, one line per object and its field changes
    /// indented below; ANSI colours when `color` (a terminal).
    #[must_use]
    pub fn render_text(&self, color: bool) -> String {
        render::text(self, color)
    }

    /// The plan as JSON (secret data redacted).
    #[must_use]
    pub fn to_json(&self) -> Value {
        render::json(self)
    }
}

/// IDs of the snapshot's objects mapped to names: observed service specs
/// carry network IDs (`Target`) and config IDs (`CredentialSpec.Config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub networks: BTreeMap<String, String>,
    pub configs: BTreeMap<String, String>,
}

impl Names {
    /// The ID → name tables of a snapshot.
    #[must_use]
    pub fn of(snapshot: &swarm::Snapshot) -> Self {
        Names {
            networks: snapshot
                .networks
                .iter()
                .map(|n| (n.meta.id.clone(), n.meta.name.clone()))
                .collect(),
            configs: snapshot
                .configs
                .iter()
                .map(|c| (c.meta.id.clone(), c.meta.name.clone()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;

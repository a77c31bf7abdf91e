//! Manifest kinds, loading and validation.
//!
//! A bosun revision is a folder of YAML manifests (`apiVersion:
//! bosun.dev/v1alpha1`). [`load`] reads the whole folder, checks every file
//! and every rule across the set, and returns either the typed [`Desired`]
//! state or every problem found at once ([`Diagnostics`]): a revision is
//! applied all or nothing, so a user should see all of its problems in one
//! run, each with file, line, column and field path.
//!
//! Pure: no Docker, no async. Referenced files (compose files, env files,
//! VRRP password files) are read from disk, nothing else, and only when they
//! resolve inside the source root ([`crate::source::confine`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::source::Confinement;
use crate::yaml::{self, Path, Pos};

mod cluster;
mod diagnostic;
pub mod duration;
mod load;
mod meta;
pub mod net;
mod network;
mod node_labels;
mod placement;
mod precheck;
pub mod schema;
mod stack;
mod validate;
mod vip;

pub use cluster::{ClusterPolicySpec, Quorum, Recovery};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use duration::Duration;
pub use load::{load, load_confined, load_with};
pub use meta::{
    Metadata, NodeSelector, Role, check_label_key, check_name, did_you_mean, glob_match,
};
pub use network::{Ipam, IpamConfig, NetworkSpec};
pub use node_labels::{Availability, NodeLabelRule, NodeLabelsSpec};
pub use placement::{Constraint, ConstraintOp, PlacementPolicySpec, Preference, ServiceSelector};
pub use stack::{ResolveImage, StackSpec, Wait};
pub(crate) use validate::normalize;
pub use vip::{CheckType, Seconds, VipAuth, VipCheck, VipNodes, VipPolicySpec, weight_analysis};

/// The one API version this build understands.
pub const API_VERSION: &str = "bosun.dev/v1alpha1";

/// What every bosun `apiVersion` starts with; files whose documents carry
/// it are manifest files.
pub const API_GROUP: &str = "bosun.dev/";

/// The manifest kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Network,
    Stack,
    NodeLabels,
    PlacementPolicy,
    VipPolicy,
    ClusterPolicy,
}

impl Kind {
    /// Every kind, in apply order.
    pub const ALL: [Kind; 6] = [
        Kind::Network,
        Kind::Stack,
        Kind::NodeLabels,
        Kind::PlacementPolicy,
        Kind::VipPolicy,
        Kind::ClusterPolicy,
    ];

    /// The kind as written in `kind:`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.with(Facts).0
    }

    /// File stem of the kind's JSON Schema in `crds/` (`vip-policy`).
    #[must_use]
    pub fn file_stem(self) -> &'static str {
        self.with(Facts).1
    }

    /// One sentence on what the kind owns in the swarm (schema description).
    #[must_use]
    pub fn description(self) -> &'static str {
        self.with(Facts).2
    }

    /// `f` for this kind's spec type: the one place a kind is matched to
    /// its type, so a new kind is named here by the compiler and nowhere
    /// else.
    pub(crate) fn with<F: ForKind>(self, f: F) -> F::Out {
        match self {
            Kind::Network => f.call::<NetworkSpec>(),
            Kind::Stack => f.call::<StackSpec>(),
            Kind::NodeLabels => f.call::<NodeLabelsSpec>(),
            Kind::PlacementPolicy => f.call::<PlacementPolicySpec>(),
            Kind::VipPolicy => f.call::<VipPolicySpec>(),
            Kind::ClusterPolicy => f.call::<ClusterPolicySpec>(),
        }
    }
}

/// Something done with one kind's spec type, through [`Kind::with`].
pub(crate) trait ForKind {
    type Out;
    fn call<S: Rules>(self) -> Self::Out;
}

/// A kind's name, schema file stem and description.
struct Facts;

impl ForKind for Facts {
    type Out = (&'static str, &'static str, &'static str);
    fn call<S: Rules>(self) -> Self::Out {
        (S::NAME, S::FILE_STEM, S::DESCRIPTION)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| match did_you_mean(s, Kind::ALL.map(Kind::as_str)) {
                Some(close) => format!("unknown kind `{s}`, did you mean `{close}`?"),
                None => format!(
                    "unknown kind `{s}`; expected one of {}",
                    Kind::ALL.map(|k| format!("`{k}`")).join(", ")
                ),
            })
    }
}

/// A reference to another object, written `Kind/name` (as in `dependsOn`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: Kind,
    pub name: String,
}

impl ObjectRef {
    #[must_use]
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        ObjectRef {
            kind,
            name: name.into(),
        }
    }
}

/// Written `Kind/name`, as in labels and messages.
impl Serialize for ObjectRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

impl FromStr for ObjectRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((kind, name)) = s.split_once('/') else {
            return Err(format!(
                "`{s}` is not of the form `Kind/name` (like `Stack/traefik`)"
            ));
        };
        let kind: Kind = kind.parse()?;
        if name.is_empty() {
            return Err(format!("`{s}` has no name after `/`"));
        }
        Ok(ObjectRef {
            kind,
            name: name.to_string(),
        })
    }
}

/// Where a manifest came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Absolute path of the manifest file.
    pub file: PathBuf,
    /// The file as diagnostics name it (relative to the folder as given).
    pub display: String,
    /// Index of the document in the file (0-based).
    pub document: usize,
    /// Where the document starts.
    pub pos: Pos,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.display, self.pos.line)
    }
}

/// The spec type of a kind, with the kind's facts: adding a kind is its
/// file in `manifest/` (this trait and `Rules` on its spec type), and the
/// arms the compiler then names.
pub trait Spec: Sized + Clone + fmt::Debug + DeserializeOwned + Serialize + JsonSchema {
    /// The kind whose `spec` this is.
    const KIND: Kind;
    /// The kind as written in `kind:`.
    const NAME: &'static str;
    /// File stem of the kind's JSON Schema in `crds/` (`vip-policy`).
    const FILE_STEM: &'static str;
    /// One sentence on what the kind owns in the swarm (schema description).
    const DESCRIPTION: &'static str;
}

/// A kind's own validation rules, on its spec type in its file. Rules that
/// span kinds are in `validate`.
pub(crate) trait Rules: Kept {
    /// The rules on one object of the kind.
    fn check(obj: &Object<Self>, cx: &mut validate::Cx);
}

/// Where a kind's objects are kept: in a [`Desired`], and in the [`Set`]
/// of a folder being loaded.
pub(crate) trait Kept: Spec {
    fn of(desired: &Desired) -> &[Object<Self>];
    fn in_set(set: &Set) -> &[Object<Self>];
    fn in_set_mut(set: &mut Set) -> &mut Vec<Object<Self>>;
}

/// [`Kept`] for each kind: its field of [`Set`], and how [`Desired`] holds it.
macro_rules! kept {
    ($($spec:ty => $field:ident, $of:expr;)*) => {$(
        impl Kept for $spec {
            fn of(desired: &Desired) -> &[Object<Self>] {
                let of: fn(&Desired) -> &[Object<Self>] = $of;
                of(desired)
            }
            fn in_set(set: &Set) -> &[Object<Self>] {
                &set.$field
            }
            fn in_set_mut(set: &mut Set) -> &mut Vec<Object<Self>> {
                &mut set.$field
            }
        }
    )*};
}

kept! {
    NetworkSpec => networks, |d| &d.networks;
    StackSpec => stacks, |d| &d.stacks;
    NodeLabelsSpec => node_labels, |d| &d.node_labels;
    PlacementPolicySpec => placement_policies, |d| &d.placement_policies;
    VipPolicySpec => vip_policies, |d| &d.vip_policies;
    ClusterPolicySpec => cluster_policies, |d| d.cluster_policy.as_slice();
}

/// The manifests of a folder while it is loaded and validated, by kind
/// (every `ClusterPolicy` document, to report all but the first).
#[derive(Debug, Default)]
pub(crate) struct Set {
    pub networks: Vec<Network>,
    pub stacks: Vec<Stack>,
    pub node_labels: Vec<NodeLabels>,
    pub placement_policies: Vec<PlacementPolicy>,
    pub vip_policies: Vec<VipPolicy>,
    pub cluster_policies: Vec<ClusterPolicy>,
}

impl Set {
    pub(crate) fn add<S: Rules>(&mut self, obj: Object<S>) {
        S::in_set_mut(self).push(obj);
    }

    pub(crate) fn is_empty(&self) -> bool {
        struct Len<'a>(&'a Set);
        impl ForKind for Len<'_> {
            type Out = usize;
            fn call<S: Rules>(self) -> usize {
                S::in_set(self.0).len()
            }
        }
        Kind::ALL.into_iter().all(|k| k.with(Len(self)) == 0)
    }

    /// Each object's own rules.
    pub(crate) fn check_each(&self, cx: &mut validate::Cx) {
        struct Each<'a, 'c, 'x>(&'a Set, &'c mut validate::Cx<'x>);
        impl ForKind for Each<'_, '_, '_> {
            type Out = ();
            fn call<S: Rules>(self) {
                for obj in S::in_set(self.0) {
                    S::check(obj, self.1);
                }
            }
        }
        for kind in Kind::ALL {
            kind.with(Each(self, cx));
        }
    }

    /// The validated set as a desired state. Destructured field by field:
    /// a kind added to the set and not moved here does not compile.
    pub(crate) fn into_desired(self, root: PathBuf, confinement: Confinement) -> Desired {
        let Set {
            networks,
            stacks,
            node_labels,
            placement_policies,
            vip_policies,
            cluster_policies,
        } = self;
        Desired {
            root,
            confinement,
            networks,
            stacks,
            node_labels,
            placement_policies,
            vip_policies,
            cluster_policy: cluster_policies.into_iter().next(),
            warnings: Vec::new(),
            converted: BTreeMap::new(),
        }
    }
}

/// A typed manifest: metadata, spec, and where it was written.
///
/// After [`load`], every file path in a spec (`composeFiles`, `envFiles`,
/// `auth.passwordFile`) is absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct Object<S> {
    pub metadata: Metadata,
    pub spec: S,
    pub source: Source,
    /// The document as parsed (merge keys applied), for positions of fields
    /// and for consumers that need the YAML as written (inline compose).
    pub node: yaml::Node,
}

impl<S: Spec> Object<S> {
    /// The object's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The object as `Kind/name`.
    #[must_use]
    pub fn id(&self) -> ObjectRef {
        ObjectRef {
            kind: S::KIND,
            name: self.metadata.name.clone(),
        }
    }

    /// Position of the field at `path` (or the nearest existing parent).
    #[must_use]
    pub fn pos_of(&self, path: &Path) -> Pos {
        self.node.pos_of(&path.0)
    }

    /// `file:line` of the field at `path`, for messages that point elsewhere.
    #[must_use]
    pub fn place(&self, path: &Path) -> String {
        format!("{}:{}", self.source.display, self.pos_of(path).line)
    }

    /// A diagnostic about the field at `path` of this object.
    #[must_use]
    pub fn diagnostic(
        &self,
        severity: Severity,
        path: impl Into<Path>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let path = path.into();
        Diagnostic {
            severity,
            file: self.source.display.clone(),
            pos: Some(self.pos_of(&path)),
            object: (!self.metadata.name.is_empty()).then(|| self.id().to_string()),
            path: (!path.is_empty()).then_some(path),
            message: message.into(),
        }
    }
}

pub type Network = Object<NetworkSpec>;
pub type Stack = Object<StackSpec>;
pub type NodeLabels = Object<NodeLabelsSpec>;
pub type PlacementPolicy = Object<PlacementPolicySpec>;
pub type VipPolicy = Object<VipPolicySpec>;
pub type ClusterPolicy = Object<ClusterPolicySpec>;

/// The desired state of a folder: every manifest, typed and validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// The folder, absolute.
    pub root: PathBuf,
    /// Where files named by the manifests may be read from (the source
    /// root and the folders allowed besides it); later reads (conversion
    /// when the environment changed) check again through it.
    pub confinement: Confinement,
    pub networks: Vec<Network>,
    pub stacks: Vec<Stack>,
    pub node_labels: Vec<NodeLabels>,
    pub placement_policies: Vec<PlacementPolicy>,
    pub vip_policies: Vec<VipPolicy>,
    /// At most one per folder.
    pub cluster_policy: Option<ClusterPolicy>,
    /// Findings that do not make the set invalid, sorted by file and line.
    pub warnings: Vec<Diagnostic>,
    /// Each stack's compose as validation loaded and converted it, by stack
    /// name: building the desired state reuses it instead of reading and
    /// converting every compose file a second time.
    pub converted: BTreeMap<String, ConvertedStack>,
}

/// How many objects of a kind a desired state has.
struct Count<'a>(&'a Desired);

impl ForKind for Count<'_> {
    type Out = usize;
    fn call<S: Rules>(self) -> usize {
        S::of(self.0).len()
    }
}

/// A stack's compose, converted during validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertedStack {
    /// The lowest-precedence variables it was interpolated with (the
    /// process environment): the conversion stands for these only.
    pub env: BTreeMap<String, String>,
    pub objects: crate::compose::StackObjects,
}

impl Desired {
    /// Manifests of each kind, in [`Kind::ALL`] order.
    #[must_use]
    pub fn counts(&self) -> Vec<(Kind, usize)> {
        Kind::ALL
            .into_iter()
            .map(|k| (k, k.with(Count(self))))
            .collect()
    }

    /// How many manifests in total.
    #[must_use]
    pub fn len(&self) -> usize {
        self.counts().iter().map(|(_, n)| n).sum()
    }

    /// Whether there are no manifests.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `7 manifests (2 Network, 3 Stack, 1 VipPolicy, 1 ClusterPolicy)`.
    #[must_use]
    pub fn summary(&self) -> String {
        let n = self.len();
        let parts: Vec<String> = self
            .counts()
            .into_iter()
            .filter(|(_, c)| *c > 0)
            .map(|(k, c)| format!("{c} {k}"))
            .collect();
        let noun = if n == 1 { "manifest" } else { "manifests" };
        format!("{n} {noun} ({})", parts.join(", "))
    }

    /// The network named `name`.
    #[must_use]
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name() == name)
    }

    /// The stack named `name`.
    #[must_use]
    pub fn stack(&self, name: &str) -> Option<&Stack> {
        self.stacks.iter().find(|s| s.name() == name)
    }

    /// Stacks in deploy order: every stack after the stacks it depends on,
    /// otherwise in name order. (Validation guarantees there is no cycle.)
    #[must_use]
    pub fn stack_order(&self) -> Vec<&Stack> {
        validate::stack_order(&self.stacks)
    }
}

#[cfg(test)]
mod tests;

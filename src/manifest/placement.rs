//! `PlacementPolicy`: placement preferences and constraints added to services.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{string_map, string_map_schema};
use super::validate::Cx;
use super::{Kind, Object, Rules, Spec, check_name, did_you_mean};
use crate::yaml::Path;

/// Placement added to every service its selector picks, on top of what the
/// compose file says: its constraints and spread preferences are appended
/// after the compose file's own, policies in name order, each one skipped
/// when already there. Swarm spreads over preferences as a tree, the first
/// at the top, so the compose file's spread stays the outer one and a
/// policy's spreads further inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlacementPolicySpec {
    /// Which services: by stack, by service name glob, by service label (all given must match).
    pub selector: ServiceSelector,
    /// Spread preferences, e.g. `{spread: node.labels.rack}`. Nodes without
    /// the label form their own group; ignored for global services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<Preference>,
    /// Constraints such as `node.role == worker` or `node.labels.rack != a`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// At most this many replicas of a service per node (0: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas_per_node: Option<u64>,
}

/// Picks services. Every condition given must hold; at least one must be given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSelector {
    /// Stack names (services of any of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<String>,
    /// Full service names (`<stack>_<service>`); `*` matches any run of characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Service labels (`deploy.labels`) the service must carry, with these values.
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "string_map_schema")]
    pub labels: BTreeMap<String, String>,
}

impl ServiceSelector {
    /// Whether no condition is given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty() && self.services.is_empty() && self.labels.is_empty()
    }
}

/// One placement preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Preference {
    /// Spread tasks evenly over the values of this node descriptor, e.g. `node.labels.rack`.
    pub spread: String,
}

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintOp {
    Eq,
    Ne,
}

/// A parsed placement constraint, `<key> ==|!= <value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub key: String,
    pub op: ConstraintOp,
    pub value: String,
}

/// Constraint keys swarm understands (besides `node.labels.*`, `engine.labels.*`).
const CONSTRAINT_KEYS: [&str; 6] = [
    "node.id",
    "node.hostname",
    "node.role",
    "node.platform.os",
    "node.platform.arch",
    "node.labels.",
];

impl Constraint {
    /// Parse a constraint the way swarm does; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (at, op) = match (text.find("=="), text.find("!=")) {
            (Some(e), Some(n)) if n < e => (n, ConstraintOp::Ne),
            (Some(e), _) => (e, ConstraintOp::Eq),
            (None, Some(n)) => (n, ConstraintOp::Ne),
            (None, None) => {
                return Err(format!(
                    "constraint `{text}` needs `==` or `!=`, like `node.role == worker`"
                ));
            }
        };
        let key = text[..at].trim();
        let value = text[at + 2..].trim();
        if key.is_empty() || value.is_empty() {
            return Err(format!(
                "constraint `{text}` needs a key and a value around the operator"
            ));
        }
        if value.contains("==") || value.contains("!=") {
            return Err(format!("constraint `{text}` has more than one operator"));
        }
        let label_key = ["node.labels.", "engine.labels."]
            .iter()
            .find_map(|p| key.strip_prefix(p));
        match label_key {
            Some("") => {
                return Err(format!("constraint `{text}` names no label after `{key}`"));
            }
            Some(_) => {}
            None if CONSTRAINT_KEYS.contains(&key) => {}
            None => {
                let hint = did_you_mean(key, CONSTRAINT_KEYS)
                    .map(|k| format!(", did you mean `{k}`?"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown constraint key `{key}`{hint} (use node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<key> or engine.labels.<key>)"
                ));
            }
        }
        if key == "node.role"
            && !matches!(value.to_ascii_lowercase().as_str(), "manager" | "worker")
        {
            return Err(format!(
                "`node.role` is `manager` or `worker`, not `{value}`"
            ));
        }
        Ok(Constraint {
            key: key.to_string(),
            op,
            value: value.to_string(),
        })
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            ConstraintOp::Eq => "==",
            ConstraintOp::Ne => "!=",
        };
        write!(f, "{} {op} {}", self.key, self.value)
    }
}

impl Spec for PlacementPolicySpec {
    const KIND: Kind = Kind::PlacementPolicy;
    const NAME: &'static str = "PlacementPolicy";
    const FILE_STEM: &'static str = "placement-policy";
    const DESCRIPTION: &'static str = "Placement preferences, constraints and max replicas per node added to the services its selector picks.";
}

impl Rules for PlacementPolicySpec {
    fn check(obj: &Object<Self>, cx: &mut Cx) {
        let spec = &obj.spec;
        if let Err(e) = check_name(obj.name(), false) {
            cx.error(obj, "metadata.name", e);
        }
        if spec.selector.is_empty() {
            cx.error(
                obj,
                "spec.selector",
                "selector is empty: give at least one of `stacks`, `services`, `labels`",
            );
        }
        for (i, stack) in spec.selector.stacks.iter().enumerate() {
            if stack.trim().is_empty() {
                cx.error(
                    obj,
                    Path::parse("spec.selector.stacks").index(i),
                    "must not be empty",
                );
            }
        }
        for (i, svc) in spec.selector.services.iter().enumerate() {
            if svc.trim().is_empty() {
                cx.error(
                    obj,
                    Path::parse("spec.selector.services").index(i),
                    "must not be empty",
                );
            }
        }
        for (i, pref) in spec.preferences.iter().enumerate() {
            let path = Path::parse("spec.preferences").index(i).key("spread");
            if pref.spread.trim().is_empty() {
                cx.error(obj, path, "must not be empty (e.g. `node.labels.rack`)");
            } else if pref.spread.contains(char::is_whitespace) {
                cx.error(
                    obj,
                    path,
                    format!(
                        "`{}` must be a single node descriptor like `node.labels.rack`",
                        pref.spread
                    ),
                );
            }
        }
        for (i, c) in spec.constraints.iter().enumerate() {
            if let Err(e) = Constraint::parse(c) {
                cx.error(obj, Path::parse("spec.constraints").index(i), e);
            }
        }
        if spec.preferences.is_empty()
            && spec.constraints.is_empty()
            && spec.max_replicas_per_node.is_none()
        {
            cx.warning(
                obj,
                "spec",
                "sets no preferences, constraints or maxReplicasPerNode; it does nothing",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_parse_like_swarm() {
        let c = Constraint::parse("node.role == worker").unwrap();
        assert_eq!(
            (c.key.as_str(), c.op, c.value.as_str()),
            ("node.role", ConstraintOp::Eq, "worker")
        );
        let c = Constraint::parse("node.labels.rack!=a").unwrap();
        assert_eq!(c.op, ConstraintOp::Ne);
        assert_eq!(c.to_string(), "node.labels.rack != a");
        assert!(Constraint::parse("engine.labels.x == y").is_ok());
    }

    #[test]
    fn bad_constraints_are_explained() {
        assert!(
            Constraint::parse("node.role = worker")
                .unwrap_err()
                .contains("needs `==` or `!=`")
        );
        assert!(
            Constraint::parse("node.rol == worker")
                .unwrap_err()
                .contains("did you mean `node.role`")
        );
        assert!(
            Constraint::parse("node.role == boss")
                .unwrap_err()
                .contains("manager")
        );
        assert!(Constraint::parse("node.labels. == x").is_err());
        assert!(Constraint::parse(" == x").is_err());
        assert!(Constraint::parse("node.id == a == b").is_err());
    }
}

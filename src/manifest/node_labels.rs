//! `NodeLabels`: labels and availability for selected nodes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{string_map, string_map_schema};
use super::validate::Cx;
use super::{Kind, NodeSelector, Object, Rules, Spec, check_label_key, check_name};
use crate::yaml::Path;

/// Node labels (and optionally availability) for the nodes each rule selects.
/// bosun records which labels it set and removes only those.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeLabelsSpec {
    /// Rules, applied in order; at least one.
    pub rules: Vec<NodeLabelRule>,
}

/// Labels and availability for the nodes a selector picks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeLabelRule {
    /// Which nodes: `hostname`, `id`, `role` and/or existing `labels` (all must match).
    pub selector: NodeSelector,
    /// Labels to set on the selected nodes. Numbers and booleans are taken as strings.
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "string_map_schema")]
    pub labels: BTreeMap<String, String>,
    /// Availability to enforce on the selected nodes; unset leaves it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Availability>,
}

/// Node availability, as `docker node update --availability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    /// Schedule tasks on the node.
    Active,
    /// Keep running tasks, schedule no new ones.
    Pause,
    /// Move tasks away and schedule none.
    Drain,
}

impl Spec for NodeLabelsSpec {
    const KIND: Kind = Kind::NodeLabels;
    const NAME: &'static str = "NodeLabels";
    const FILE_STEM: &'static str = "node-labels";
    const DESCRIPTION: &'static str = "Labels (and optionally availability) for the nodes each rule selects; bosun removes only labels it set itself.";
}

impl Rules for NodeLabelsSpec {
    fn check(obj: &Object<Self>, cx: &mut Cx) {
        if let Err(e) = check_name(obj.name(), false) {
            cx.error(obj, "metadata.name", e);
        }
        if obj.spec.rules.is_empty() {
            cx.error(obj, "spec.rules", "needs at least one rule");
        }
        for (i, rule) in obj.spec.rules.iter().enumerate() {
            let base = Path::parse("spec.rules").index(i);
            check_selector(obj, &base.key("selector"), &rule.selector, cx);
            for key in rule.labels.keys() {
                if let Err(e) = check_label_key(key) {
                    cx.error(obj, base.key("labels").key(key), e);
                }
            }
            if rule.labels.is_empty() && rule.availability.is_none() {
                cx.warning(
                    obj,
                    base,
                    "sets neither labels nor availability; it does nothing",
                );
            }
        }
    }
}

/// A node selector must select by something, with sensible values.
pub(crate) fn check_selector<S: Spec>(
    obj: &Object<S>,
    path: &Path,
    sel: &NodeSelector,
    cx: &mut Cx,
) {
    if sel.is_empty() {
        cx.error(
            obj,
            path.clone(),
            "selector is empty: give at least one of `hostname`, `id`, `role`, `labels`",
        );
    }
    if sel.hostname.as_deref().is_some_and(|h| h.trim().is_empty()) {
        cx.error(obj, path.key("hostname"), "must not be empty");
    }
    if sel.id.as_deref().is_some_and(|h| h.trim().is_empty()) {
        cx.error(obj, path.key("id"), "must not be empty");
    }
    for key in sel.labels.keys() {
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '=') {
            cx.error(
                obj,
                path.key("labels").key(key),
                format!("label key `{key}` is not valid"),
            );
        }
    }
}

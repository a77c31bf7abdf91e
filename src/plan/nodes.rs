//! Node labels and availability.
//!
//! bosun records the label keys it set on a node in the node label
//! [`LABEL_NODE_LABELS`] (`rack,loadbalancer`, sorted). A key that was set
//! by bosun and is no longer wanted is removed; every other label (set by
//! hand, by another tool) is never touched. Removing keys bosun set before
//! does not need `--prune`: node labels are settings of an object bosun
//! does not own, not objects of their own.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Action, LABEL_NODE_LABELS, NodeRule, diff};
use crate::manifest::{Availability, ObjectRef, Role};
use crate::swarm::{Node, Snapshot};

fn availability_str(a: Availability) -> &'static str {
    match a {
        Availability::Active => "active",
        Availability::Pause => "pause",
        Availability::Drain => "drain",
    }
}

/// One `UpdateNode` per node whose labels or availability differ from what
/// the rules that select it want, nodes in hostname order.
pub(super) fn plan(rules: &[NodeRule], snapshot: &Snapshot, scope: Option<&str>) -> Vec<Action> {
    let key = match scope {
        Some(scope) => format!("{LABEL_NODE_LABELS}.{scope}"),
        None => LABEL_NODE_LABELS.to_string(),
    };
    let mut nodes: Vec<&Node> = snapshot.nodes.iter().collect();
    nodes.sort_by(|a, b| (&a.hostname, &a.meta.id).cmp(&(&b.hostname, &b.meta.id)));
    nodes
        .into_iter()
        .filter_map(|node| plan_node(rules, node, &key))
        .collect()
}

fn plan_node(rules: &[NodeRule], node: &Node, key: &str) -> Option<Action> {
    let current = &node.meta.labels;
    let role = match node.role.as_str() {
        "manager" => Some(Role::Manager),
        "worker" => Some(Role::Worker),
        _ => None,
    };
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    let mut owners: BTreeSet<&ObjectRef> = BTreeSet::new();
    let mut availability = None;
    for rule in rules {
        let selected = role.is_some_and(|r| {
            rule.selector
                .matches(&node.hostname, &node.meta.id, r, current)
        });
        if !selected {
            continue;
        }
        want.extend(rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        owners.insert(&rule.owner);
        if let Some(a) = rule.availability {
            availability = Some(a);
        }
    }
    let before: BTreeSet<&str> = current
        .get(key)
        .map(|v| v.split(',').filter(|k| !k.is_empty()).collect())
        .unwrap_or_default();
    let mut labels = current.clone();
    for key in &before {
        if !want.contains_key(*key) {
            labels.remove(*key);
        }
    }
    labels.extend(want.iter().map(|(k, v)| (k.clone(), v.clone())));
    if want.is_empty() {
        labels.remove(key);
    } else {
        let keys: Vec<&str> = want.keys().map(String::as_str).collect();
        labels.insert(key.to_string(), keys.join(","));
    }
    let new_availability: &str = match availability {
        Some(a) => availability_str(a),
        None => &node.availability,
    };
    if labels == *current && new_availability == node.availability {
        return None;
    }
    let old_view = json!({"Labels": current, "Availability": node.availability});
    let new_view = json!({"Labels": labels, "Availability": new_availability});
    let mut spec = match &node.spec {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({"Role": node.role}),
    };
    spec["Labels"] = json!(labels);
    spec["Availability"] = json!(new_availability);
    Some(Action::UpdateNode {
        name: if node.hostname.is_empty() {
            node.meta.id.clone()
        } else {
            node.hostname.clone()
        },
        owners: owners.into_iter().cloned().collect(),
        id: node.meta.id.clone(),
        version: node.meta.version,
        spec,
        changes: diff(&old_view, &new_view),
    })
}

//! Plans for people (text, `kubectl diff` style) and machines (JSON).
//!
//! Secret data never appears: a `CreateSecret` body serializes its `Data`
//! as `(secret data)` (see [`redacted_secret`]), and secrets are never
//! updated, so no field change can carry it.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::{Action, Plan, Problem, Verb};
use crate::compose::api::SecretSpec;
use crate::manifest::ObjectRef;

/// What secret data is replaced with in every output.
pub const REDACTED: &str = "(secret data)";

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Serialize a secret's spec with its data redacted.
pub(super) fn redacted_secret<S: serde::Serializer>(
    body: &SecretSpec,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut v = serde_json::to_value(body).map_err(serde::ser::Error::custom)?;
    if let Some(obj) = v.as_object_mut()
        && obj.contains_key("Data")
    {
        obj.insert("Data".into(), Value::String(REDACTED.into()));
    }
    v.serialize(s)
}

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("{code}{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// A value as one line of JSON; absent as `(none)`.
fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(none)".to_string(), Value::to_string)
}

pub(super) fn text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    for a in &plan.actions {
        action(&mut out, a, None, color);
    }
    for d in &plan.deferred {
        action(&mut out, &d.action, Some(&d.reason), color);
    }
    for r in &plan.rollouts {
        let line = format!("rollout {} of {}: {}", r.state, r.stack, r.message);
        let code = if r.state == "failed" { RED } else { YELLOW };
        let _ = writeln!(out, "{}", paint(color, code, &line));
    }
    for v in &plan.vips {
        let held = v.held();
        let nodes: Vec<String> = v
            .nodes
            .iter()
            .map(|n| format!("{} {}", n.hostname, n.state.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "vip {} {}: {held} ({})",
            v.policy,
            v.address,
            nodes.join(", ")
        );
    }
    let problem = |out: &mut String, label: &str, code: &str, p: &Problem| {
        let _ = writeln!(out, "{}", paint(color, code, &format!("{label}: {p}")));
    };
    for p in &plan.errors {
        problem(&mut out, "error", RED, p);
    }
    for p in &plan.warnings {
        problem(&mut out, "warning", YELLOW, p);
    }
    let deferred = match plan.deferred.len() {
        0 => String::new(),
        n => format!(" {n} deferred until the stacks they wait for converge."),
    };
    let summary = if plan.actions.is_empty() && !plan.deferred.is_empty() {
        format!("Nothing to do now.{deferred}")
    } else if plan.actions.is_empty() {
        if plan.errors.is_empty() {
            "No changes. The swarm matches the manifests.".to_string()
        } else {
            format!(
                "No changes can be planned, {} {}.",
                plan.errors.len(),
                if plan.errors.len() == 1 {
                    "error"
                } else {
                    "errors"
                }
            )
        }
    } else {
        let s = plan.summary();
        format!(
            "Plan: {} to create, {} to update, {} to remove.{deferred}",
            s.create, s.update, s.remove
        )
    };
    let _ = writeln!(out, "{}", paint(color, BOLD, &summary));
    out
}

/// One action, its field changes indented below; `deferred`: why it waits.
fn action(out: &mut String, a: &Action, deferred: Option<&str>, color: bool) {
    let (sign, code) = match a.verb() {
        Verb::Create => ("+", GREEN),
        Verb::Update => ("~", YELLOW),
        Verb::Remove => ("-", RED),
    };
    let mut head = format!("{sign} {} {}", a.kind(), a.name());
    let _ = write!(head, " ({})", owners_text(a.owners()));
    if let Some(reason) = a.reason() {
        let _ = write!(head, ": {reason}");
    }
    if let Action::CreateNetwork { changes, .. } = a
        && !changes.is_empty()
    {
        head.push_str(": re-created with");
    }
    if let Some(why) = deferred {
        let _ = write!(head, " [deferred: {why}]");
    }
    let _ = writeln!(out, "{}", paint(color, code, &head));
    for c in a.changes() {
        let line = match (&c.old, &c.new) {
            (None, new) => paint(
                color,
                GREEN,
                &format!("+ {}: {}", c.path, show(new.as_ref())),
            ),
            (old, None) => paint(color, RED, &format!("- {}: {}", c.path, show(old.as_ref()))),
            (old, new) => paint(
                color,
                YELLOW,
                &format!(
                    "~ {}: {} → {}",
                    c.path,
                    show(old.as_ref()),
                    show(new.as_ref())
                ),
            ),
        };
        let _ = writeln!(out, "    {line}");
    }
}

pub(super) fn json(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(plan).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "summary".into(),
            serde_json::to_value(plan.summary()).unwrap_or(Value::Null),
        );
    }
    v
}

/// The owners of a node update as one string, as plans have always shown
/// them: `NodeLabels/a, NodeLabels/b`, or `NodeLabels` when no rule selects
/// the node any more.
pub(super) fn serialize_owners<S: serde::Serializer>(
    owners: &[ObjectRef],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&owners_text(owners))
}

/// `NodeLabels/a, NodeLabels/b`: owners where a message names them.
#[must_use]
pub fn owners_text(owners: &[ObjectRef]) -> String {
    if owners.is_empty() {
        return crate::manifest::Kind::NodeLabels.to_string();
    }
    let all: Vec<String> = owners.iter().map(ToString::to_string).collect();
    all.join(", ")
}

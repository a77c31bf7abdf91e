//! Docker events as drift hints.
//!
//! bosun subscribes to the daemon's events for the swarm object types
//! (`service`, `network`, `node`, `config`, `secret`) and turns a change it
//! did not make into a [`Trigger::Event`]. The subscription is re-opened
//! with a capped exponential backoff whenever the stream ends or fails (a
//! daemon restart, a proxy timeout).
//!
//! # Telling bosun's own writes from others'
//!
//! Events carry no author. bosun ignores:
//!
//! - every event while a pass runs and for a short settle window after it
//!   ([`Activity::is_busy`]): the pass's own creates, updates and removes,
//!   and the orchestrator's follow-up updates, arrive then. A foreign change
//!   made in that window is not lost for long: the next resync re-reads
//!   everything (and a pass that follows a pass is a cheap no-op anyway);
//! - the lease's own config (renewals are label updates every few seconds);
//! - progress reports of a rolling update (service `update` events whose
//!   only changed attributes are `updatestate.*`);
//! - container-level network events (`connect`, `disconnect`) and
//!   local-scope networks;
//! - with a name prefix, objects named outside it.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::scheduler::{Activity, Trigger};
use crate::swarm::{Client, Filters};

/// What events to ignore besides those of bosun's own passes.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// The lease config's name.
    pub lease_name: String,
    /// Only objects named with this prefix (nodes excepted); empty: all.
    pub name_prefix: String,
}

/// The daemon-side filter: the swarm object types.
#[must_use]
pub fn filters() -> Filters {
    ["service", "network", "node", "config", "secret"]
        .into_iter()
        .fold(Filters::none(), |f, t| f.with("type", t))
}

impl EventFilter {
    /// Does this event show a change worth a pass?
    #[must_use]
    pub fn relevant(&self, event: &Value) -> bool {
        let kind = event
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let action = event
            .get("Action")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let attrs = event
            .pointer("/Actor/Attributes")
            .and_then(Value::as_object);
        let name = attrs
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !matches!(action, "create" | "update" | "remove" | "destroy") {
            return false;
        }
        if kind == "network" && event.get("scope").and_then(Value::as_str) == Some("local") {
            return false;
        }
        if kind == "config" && name == self.lease_name {
            return false;
        }
        if kind != "node" && !self.name_prefix.is_empty() && !name.starts_with(&self.name_prefix) {
            return false;
        }
        if kind == "service" && action == "update" {
            let changed: Vec<&String> = attrs
                .map(|a| {
                    a.keys()
                        .filter(|k| k.rsplit('.').next() == Some("new") && k.contains('.'))
                        .collect()
                })
                .unwrap_or_default();
            if !changed.is_empty() && changed.iter().all(|k| k.starts_with("updatestate.")) {
                return false;
            }
        }
        true
    }
}

/// Watch events until `tx` closes, sending [`Trigger::Event`] for relevant
/// ones while no pass is busy.
pub async fn watch(
    client: Client,
    filter: EventFilter,
    activity: Activity,
    tx: mpsc::Sender<Trigger>,
) {
    let min = Duration::from_millis(500);
    let max = Duration::from_secs(30);
    let mut delay = min;
    loop {
        match client.events(&filters()).await {
            Ok(stream) => {
                tracing::debug!("watching Docker events");
                delay = min;
                let mut stream = std::pin::pin!(stream);
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(event) => {
                            if !filter.relevant(&event) || activity.is_busy() {
                                continue;
                            }
                            let field = |p: &str| {
                                event
                                    .pointer(p)
                                    .and_then(serde_json::Value::as_str)
                                    .unwrap_or_default()
                                    .to_string()
                            };
                            let (kind, action, name) = (
                                field("/Type"),
                                field("/Action"),
                                field("/Actor/Attributes/name"),
                            );
                            tracing::info!(%kind, %action, %name, "change by someone else; pass triggered");
                            if tx.send(Trigger::Event).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "Docker event stream failed");
                            break;
                        }
                    }
                }
                tracing::debug!("Docker event stream ended; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot watch Docker events");
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, action: &str, attrs: &Value) -> Value {
        json!({"Type": kind, "Action": action, "scope": "swarm", "Actor": {"ID": "x", "Attributes": attrs.clone()}})
    }

    #[test]
    fn a_hand_made_replica_change_should_be_relevant() {
        let f = EventFilter::default();
        assert!(f.relevant(&event(
            "service",
            "update",
            &json!({"name": "web_app", "replicas.new": "7", "replicas.old": "1"})
        )));
    }

    #[test]
    fn rollout_progress_lease_renewals_and_container_network_events_should_not() {
        let f = EventFilter {
            lease_name: "bosun-lease".into(),
            name_prefix: String::new(),
        };
        assert!(!f.relevant(&event(
            "service",
            "update",
            &json!({"name": "web_app", "updatestate.new": "completed", "updatestate.old": "updating"})
        )));
        assert!(!f.relevant(&event("config", "update", &json!({"name": "bosun-lease"}))));
        assert!(!f.relevant(&event(
            "network",
            "connect",
            &json!({"name": "web_default"})
        )));
    }

    #[test]
    fn a_name_prefix_should_hide_other_objects_but_not_nodes() {
        let f = EventFilter {
            lease_name: String::new(),
            name_prefix: "t1".into(),
        };
        assert!(!f.relevant(&event("service", "remove", &json!({"name": "other_app"}))));
        assert!(f.relevant(&event("service", "remove", &json!({"name": "t1web_app"}))));
        assert!(f.relevant(&event("node", "update", &json!({"name": "manager1"}))));
    }
}

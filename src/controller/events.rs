//! Docker events as drift hints.
//!
//! bosun subscribes to the daemon's events for the swarm object types
//! (`service`, `network`, `node`, `config`, `secret`) and turns a change it
//! did not make into a [`Trigger::Event`]. The subscription is re-opened
//! with a capped exponential backoff whenever the stream ends or fails (a
//! daemon restart, a proxy timeout), and each reopening triggers one pass:
//! changes made while the stream was down were not seen.
//!
//! # Telling bosun's own writes from others'
//!
//! Events carry no author. bosun ignores:
//!
//! - every event while a pass runs and for a short settle window after it
//!   ([`Activity::is_busy`]) *as a reason for a pass now*: the pass's own
//!   creates, updates and removes, and the orchestrator's follow-up updates,
//!   arrive then. A foreign change made in that window must not wait for
//!   the resync, though, so when relevant events came while busy, one pass
//!   is triggered as the window closes. For bosun's own echoes that pass is
//!   a no-op (one read of the swarm, no writes, so no new events);
//! - the lease's own config (renewals are label updates every few seconds);
//! - progress reports of a rolling update (service `update` events whose
//!   only changed attributes are `updatestate.*`);
//! - container-level network events (`connect`, `disconnect`) and
//!   local-scope networks;
//! - with a name prefix, objects named outside it.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
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

/// While a pass runs, how often the watcher looks whether it has ended
/// (to start the settle window of the events it held back).
const RECHECK: Duration = Duration::from_millis(250);

/// Watch events until `tx` closes, sending [`Trigger::Event`] for relevant
/// ones: at once while no pass is busy, once when the settle window closes
/// for those that came while one was. After a reconnection one trigger more:
/// whatever happened while the stream was down was not seen.
pub async fn watch(
    client: Client,
    filter: EventFilter,
    activity: Activity,
    tx: mpsc::Sender<Trigger>,
) {
    let connect = move || {
        let client = client.clone();
        async move {
            let filters = filters();
            // Boxed: the stream outlives the call that opened it.
            let opened = client.events(&filters).await;
            opened.map(|s| -> futures::stream::BoxStream<'static, _> { s.boxed() })
        }
    };
    watch_with(connect, filter, activity, tx).await;
}

/// [`watch`] over any way to open the event stream.
async fn watch_with<C, Fut, S>(
    mut connect: C,
    filter: EventFilter,
    activity: Activity,
    tx: mpsc::Sender<Trigger>,
) where
    C: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::swarm::Result<S>>,
    S: futures::Stream<Item = crate::swarm::Result<Value>>,
{
    // 500 ms doubling to at most 30 s, without end; a stream that opened
    // starts the sequence again.
    let max = Duration::from_secs(30);
    let backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(max)
        .with_factor(2.0)
        .without_max_times();
    let mut delays = backoff.build();
    let mut watched_before = false;
    loop {
        let failed = match connect().await {
            Ok(stream) => {
                tracing::debug!("watching Docker events");
                delays = backoff.build();
                if watched_before {
                    tracing::info!(
                        "Docker event stream reopened; pass triggered for what it missed"
                    );
                    if tx.send(Trigger::Event).await.is_err() {
                        return;
                    }
                }
                watched_before = true;
                if forward(stream, &filter, &activity, &tx).await == Forwarded::Closed {
                    return;
                }
                tracing::debug!("Docker event stream ended; reconnecting");
                None
            }
            Err(e) => Some(e),
        };
        let delay = delays.next().unwrap_or(max);
        if let Some(e) = failed {
            tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot watch Docker events");
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

/// How [`forward`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forwarded {
    /// The stream ended or failed: reconnect.
    StreamEnded,
    /// Nobody listens for triggers any more.
    Closed,
}

/// Turn one event stream into triggers (see [`watch`]).
async fn forward<S>(
    stream: S,
    filter: &EventFilter,
    activity: &Activity,
    tx: &mpsc::Sender<Trigger>,
) -> Forwarded
where
    S: futures::Stream<Item = crate::swarm::Result<Value>>,
{
    let mut stream = std::pin::pin!(stream);
    // Relevant events came while a pass was busy: look once it is not.
    let mut held_back = false;
    loop {
        // Not busy any more (the window closed meanwhile): look at once.
        let wake = held_back.then(|| {
            activity
                .idle_at(RECHECK)
                .unwrap_or_else(tokio::time::Instant::now)
        });
        let item = tokio::select! {
            item = stream.next() => item,
            () = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            }, if held_back => {
                if activity.is_busy() {
                    continue;
                }
                held_back = false;
                tracing::info!("changes seen while a pass was busy; pass triggered to check them");
                if tx.send(Trigger::Event).await.is_err() {
                    return Forwarded::Closed;
                }
                continue;
            }
        };
        let event = match item {
            None => return Forwarded::StreamEnded,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Docker event stream failed");
                return Forwarded::StreamEnded;
            }
            Some(Ok(event)) => event,
        };
        if !filter.relevant(&event) {
            continue;
        }
        let field = |p: &str| {
            event
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (kind, action, name) = (
            field("/Type"),
            field("/Action"),
            field("/Actor/Attributes/name"),
        );
        if activity.is_busy() {
            tracing::debug!(%kind, %action, %name, "event while a pass is busy; looked at when it settles");
            held_back = true;
            continue;
        }
        tracing::info!(%kind, %action, %name, "change by someone else; pass triggered");
        if tx.send(Trigger::Event).await.is_err() {
            return Forwarded::Closed;
        }
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

    /// Events sent by the test at chosen moments, then the stream stays
    /// open (as the daemon's does).
    fn scripted(
        events: Vec<(Duration, Value)>,
    ) -> impl futures::Stream<Item = crate::swarm::Result<Value>> {
        futures::stream::unfold(events.into_iter(), |mut rest| async move {
            match rest.next() {
                Some((after, event)) => {
                    tokio::time::sleep(after).await;
                    Some((Ok(event), rest))
                }
                None => std::future::pending().await,
            }
        })
    }

    fn replicas_changed() -> Value {
        event(
            "service",
            "update",
            &json!({"name": "web_app", "replicas.new": "7", "replicas.old": "1"}),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_while_no_pass_runs_should_trigger_at_once() {
        let (tx, mut rx) = mpsc::channel(8);
        let activity = Activity::default();
        let stream = scripted(vec![(Duration::from_secs(1), replicas_changed())]);
        let filter = EventFilter::default();
        let watcher = forward(stream, &filter, &activity, &tx);
        tokio::select! {
            _ = watcher => panic!("the stream stays open"),
            t = rx.recv() => assert_eq!(t, Some(Trigger::Event)),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_during_a_pass_should_trigger_one_pass_when_the_pass_settles() {
        let (tx, mut rx) = mpsc::channel(8);
        let activity = Activity::default();
        activity.started();
        // Three events while the pass runs: its own echoes or a hand edit,
        // events cannot tell.
        let stream = scripted(vec![
            (Duration::from_millis(100), replicas_changed()),
            (Duration::from_millis(100), replicas_changed()),
            (Duration::from_millis(100), replicas_changed()),
        ]);
        let filter = EventFilter::default();
        let start = tokio::time::Instant::now();
        let pass = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            activity.finished(Duration::from_secs(2));
            std::future::pending::<()>().await;
        };
        let watcher = forward(stream, &filter, &activity, &tx);
        let triggered = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                _ = watcher => panic!("the stream stays open"),
                () = pass => unreachable!(),
                t = rx.recv() => t,
            }
        })
        .await;
        assert_eq!(
            triggered,
            Ok(Some(Trigger::Event)),
            "the held-back events trigger a pass"
        );
        let at = start.elapsed();
        // The pass ended at 3 s, its window closed at 5 s.
        assert!(
            at >= Duration::from_secs(5) && at < Duration::from_millis(5500),
            "{at:?}"
        );
        assert!(rx.try_recv().is_err(), "one trigger for the lot");
    }

    #[tokio::test(start_paused = true)]
    async fn no_event_during_a_pass_should_mean_no_pass_after_it() {
        let (tx, mut rx) = mpsc::channel(8);
        let activity = Activity::default();
        activity.started();
        activity.finished(Duration::from_secs(2));
        let filter = EventFilter::default();
        let watcher = forward(scripted(Vec::new()), &filter, &activity, &tx);
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                _ = watcher => {},
                _ = rx.recv() => panic!("a trigger without an event"),
            }
        })
        .await;
        assert!(waited.is_err(), "nothing happened for a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reopened_stream_should_trigger_one_pass_for_what_it_missed() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut opened = 0;
        // The first stream ends at once (a daemon restart), then the daemon
        // refuses once, then a stream stays open without events.
        let connect = move || {
            opened += 1;
            let n = opened;
            async move {
                match n {
                    1 => Ok(futures::stream::empty().boxed()),
                    2 => Err(crate::swarm::fake::connect_failed()),
                    _ => Ok(scripted(Vec::new()).boxed()),
                }
            }
        };
        let watcher = watch_with(connect, EventFilter::default(), Activity::default(), tx);
        let triggered = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                () = watcher => None,
                t = rx.recv() => t,
            }
        })
        .await;
        assert_eq!(triggered, Ok(Some(Trigger::Event)));
        assert!(rx.try_recv().is_err(), "one trigger");
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

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
//! Events carry no author, so bosun looks at what the objects now hold:
//! before it triggers a pass for an event it observes the swarm and plans
//! against the desired state it enforces ([`watch`]'s `check`). When the
//! plan has nothing to do, the event was an echo of bosun's own write (or
//! of swarm's follow-up to it) and is dropped; otherwise it is drift, and
//! the pass starts at once. Events that arrive while a pass runs are looked
//! at once, when it ends (the pass itself writes what would show as drift
//! halfway through). Events that arrive together are looked at together.
//!
//! Dropped without a look:
//!
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
/// (to look at the events it held back).
const RECHECK: Duration = Duration::from_millis(100);

/// Watch events until `tx` closes, sending [`Trigger::Event`] for relevant
/// ones that `check` finds a pass would act on (`true`: drift): at once
/// while no pass runs, when it ends for those that came while one ran.
/// After a reconnection one trigger more: whatever happened while the
/// stream was down was not seen.
pub async fn watch<K, KF>(
    client: Client,
    filter: EventFilter,
    check: K,
    activity: Activity,
    tx: mpsc::Sender<Trigger>,
) where
    K: FnMut() -> KF,
    KF: std::future::Future<Output = bool>,
{
    let connect = move || {
        let client = client.clone();
        async move {
            let filters = filters();
            // Boxed: the stream outlives the call that opened it.
            let opened = client.events(&filters).await;
            opened.map(|s| -> futures::stream::BoxStream<'static, _> { s.boxed() })
        }
    };
    watch_with(connect, filter, check, activity, tx).await;
}

/// [`watch`] over any way to open the event stream.
async fn watch_with<C, Fut, S, K, KF>(
    mut connect: C,
    filter: EventFilter,
    mut check: K,
    activity: Activity,
    tx: mpsc::Sender<Trigger>,
) where
    K: FnMut() -> KF,
    KF: std::future::Future<Output = bool>,
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
                if forward(stream, &filter, &mut check, &activity, &tx).await == Forwarded::Closed {
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
async fn forward<S, K, KF>(
    stream: S,
    filter: &EventFilter,
    check: &mut K,
    activity: &Activity,
    tx: &mpsc::Sender<Trigger>,
) -> Forwarded
where
    S: futures::Stream<Item = crate::swarm::Result<Value>>,
    K: FnMut() -> KF,
    KF: std::future::Future<Output = bool>,
{
    let mut stream = std::pin::pin!(stream);
    // Relevant events came and were not looked at yet: `(kind, action, name)`
    // of the first.
    let mut unseen: Option<(String, String, String)> = None;
    loop {
        // Look now: events are waiting and no pass runs, and no other
        // event is ready at this instant (a burst is looked at once).
        if unseen.is_some() && !activity.is_busy() {
            if let Some(item) = futures::FutureExt::now_or_never(stream.next()) {
                match take(item, filter) {
                    Taken::Ended => return Forwarded::StreamEnded,
                    Taken::Relevant(what) => {
                        unseen.get_or_insert(what);
                    }
                    Taken::Irrelevant => {}
                }
                continue;
            }
            let (kind, action, name) = unseen.take().unwrap_or_default();
            if check().await {
                tracing::info!(%kind, %action, %name, "change by someone else; pass triggered");
                if tx.send(Trigger::Event).await.is_err() {
                    return Forwarded::Closed;
                }
            } else {
                tracing::debug!(%kind, %action, %name, "the swarm matches the manifests: an echo of bosun's own writes");
            }
            continue;
        }
        let item = tokio::select! {
            item = stream.next() => item,
            () = tokio::time::sleep(RECHECK), if unseen.is_some() => continue,
        };
        match take(item, filter) {
            Taken::Ended => return Forwarded::StreamEnded,
            Taken::Relevant(what) => {
                if activity.is_busy() {
                    tracing::debug!(kind = %what.0, action = %what.1, name = %what.2, "event while a pass runs; looked at when it ends");
                }
                unseen.get_or_insert(what);
            }
            Taken::Irrelevant => {}
        }
    }
}

/// One item of the event stream, sorted.
enum Taken {
    /// The stream ended or failed: reconnect.
    Ended,
    /// `(kind, action, name)` of an event worth a look.
    Relevant((String, String, String)),
    Irrelevant,
}

fn take(item: Option<crate::swarm::Result<Value>>, filter: &EventFilter) -> Taken {
    let event = match item {
        None => return Taken::Ended,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "Docker event stream failed");
            return Taken::Ended;
        }
        Some(Ok(event)) => event,
    };
    if !filter.relevant(&event) {
        return Taken::Irrelevant;
    }
    let field = |p: &str| {
        event
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Taken::Relevant((
        field("/Type"),
        field("/Action"),
        field("/Actor/Attributes/name"),
    ))
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

    /// A check that answers `drift` and counts its calls.
    fn counting(
        drift: bool,
    ) -> (
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
        impl FnMut() -> std::future::Ready<bool>,
    ) {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = calls.clone();
        (calls, move || {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::ready(drift)
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_while_no_pass_runs_should_trigger_at_once() {
        let (tx, mut rx) = mpsc::channel(8);
        let activity = Activity::default();
        let stream = scripted(vec![(Duration::from_secs(1), replicas_changed())]);
        let filter = EventFilter::default();
        let (calls, mut check) = counting(true);
        let start = tokio::time::Instant::now();
        let watcher = forward(stream, &filter, &mut check, &activity, &tx);
        tokio::select! {
            _ = watcher => panic!("the stream stays open"),
            t = rx.recv() => assert_eq!(t, Some(Trigger::Event)),
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1), "no delay");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_echo_of_bosuns_own_write_should_not_trigger() {
        let (tx, mut rx) = mpsc::channel(8);
        let activity = Activity::default();
        let stream = scripted(vec![(Duration::from_secs(1), replicas_changed())]);
        let filter = EventFilter::default();
        // The swarm matches the manifests: the event was an echo.
        let (calls, mut check) = counting(false);
        let watcher = forward(stream, &filter, &mut check, &activity, &tx);
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                _ = watcher => {},
                _ = rx.recv() => panic!("an echo triggered a pass"),
            }
        })
        .await;
        assert!(waited.is_err(), "nothing triggered for a minute");
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "looked at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn changes_during_a_pass_should_be_looked_at_once_when_it_ends() {
        let (tx, mut rx) = mpsc::channel(8);
        let activity = Activity::default();
        activity.started();
        // Three events while the pass runs: its own echoes or a hand edit,
        // events cannot tell; what the swarm holds after the pass can.
        let stream = scripted(vec![
            (Duration::from_millis(100), replicas_changed()),
            (Duration::from_millis(100), replicas_changed()),
            (Duration::from_millis(100), replicas_changed()),
        ]);
        let filter = EventFilter::default();
        let (calls, mut check) = counting(true);
        let start = tokio::time::Instant::now();
        let pass = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            activity.finished();
            std::future::pending::<()>().await;
        };
        let watcher = forward(stream, &filter, &mut check, &activity, &tx);
        let triggered = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                _ = watcher => panic!("the stream stays open"),
                () = pass => unreachable!(),
                t = rx.recv() => t,
            }
        })
        .await;
        assert_eq!(triggered, Ok(Some(Trigger::Event)));
        let at = start.elapsed();
        // The pass ended at 3 s; the watcher looks within its recheck.
        assert!(
            at >= Duration::from_secs(3) && at <= Duration::from_secs(3) + RECHECK,
            "{at:?}"
        );
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one look for the lot"
        );
        assert!(rx.try_recv().is_err(), "one trigger for the lot");
    }

    #[tokio::test(start_paused = true)]
    async fn no_event_during_a_pass_should_mean_no_pass_after_it() {
        let (tx, mut rx) = mpsc::channel(8);
        let activity = Activity::default();
        activity.started();
        activity.finished();
        let filter = EventFilter::default();
        let (calls, mut check) = counting(true);
        let watcher = forward(scripted(Vec::new()), &filter, &mut check, &activity, &tx);
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                _ = watcher => {},
                _ = rx.recv() => panic!("a trigger without an event"),
            }
        })
        .await;
        assert!(waited.is_err(), "nothing happened for a minute");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
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
        let (_, check) = counting(false);
        let watcher = watch_with(
            connect,
            EventFilter::default(),
            check,
            Activity::default(),
            tx,
        );
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

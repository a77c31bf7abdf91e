//! Rollouts watched beside the loop (`bosun run`).
//!
//! A pass writes services and returns ([`Wait::Detach`](crate::apply::Wait::Detach)); each stack
//! whose services it created or updated, with `wait` enabled, becomes a
//! rollout here, watched by its own task until it
//!
//! - converges (`ready`): every waited service runs its new spec;
//! - fails (`failed`): swarm rolled it back or paused it, or it has not
//!   converged within the stack's `wait.timeout`; or
//! - is superseded: a later pass wrote a new revision of the stack (its
//!   services' spec hashes differ), which starts a new rollout at once. A
//!   pass that writes the same revision again (a drift reverted) joins the
//!   running rollout, deadline unchanged.
//!
//! A rollout that ends triggers a pass ([`Trigger::Rollout`]) when other
//! stacks `dependsOn` its stack: they were deferred while it ran
//! ([`Rollouts::holds`]) and are applied now. A failed rollout is logged once and stays failed for
//! its revision: its dependents stay deferred, and its own service updates
//! (the rolled-back spec put back) are not sent again until the manifest
//! changes, so it fails once, not once per pass.
//!
//! Each look at a rollout costs two requests plus one per pending service
//! (its last task error), every [`poll_interval`](crate::apply::Options::poll_interval). Events
//! would not say enough: a task that keeps failing to pull its image emits
//! no service event at all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::scheduler::Trigger;
use super::status::{Condition, ObjectStatus, RolloutState, RolloutStatus, StatusHandle, rfc3339};
use crate::apply::Started;
use crate::apply::wait::{Progress, Watch, not_converged};
use crate::compose::LABEL_SPEC_HASH;
use crate::manifest::{self, ObjectRef};
use crate::plan::{self, DesiredStack, DesiredState, Holds};
use crate::swarm::{Api, Kind, Snapshot};

/// The rollouts of one controller, shared by the passes and the watchers.
pub struct Rollouts<A> {
    api: Arc<A>,
    shared: Arc<Mutex<BTreeMap<String, Entry>>>,
    /// Stacks that other stacks `dependsOn`: only their rollouts' ends
    /// trigger a pass.
    awaited: Arc<Mutex<BTreeSet<String>>>,
    status: StatusHandle,
    metrics: Metrics,
    tx: mpsc::Sender<Trigger>,
    stop: CancellationToken,
    interval: Duration,
}

impl<A> Clone for Rollouts<A> {
    fn clone(&self) -> Self {
        Rollouts {
            api: self.api.clone(),
            shared: self.shared.clone(),
            awaited: self.awaited.clone(),
            status: self.status.clone(),
            metrics: self.metrics.clone(),
            tx: self.tx.clone(),
            stop: self.stop.clone(),
            interval: self.interval,
        }
    }
}

/// One stack's latest rollout.
struct Entry {
    /// The revision rolled out: its services' spec hashes.
    revision: String,
    /// `(name, id)` of the services waited for.
    services: Vec<(String, String)>,
    started: Instant,
    started_at: SystemTime,
    deadline: Instant,
    timeout: Duration,
    state: RolloutState,
    /// How far it is, or why it failed.
    message: String,
    /// When it ended.
    took: Option<Duration>,
    /// Stops its watcher (superseded, joined, shut down).
    cancel: CancellationToken,
}

/// A stack's revision as far as its services go: their spec hashes.
#[must_use]
pub fn revision(stack: &DesiredStack) -> String {
    let mut parts: Vec<String> = stack
        .objects
        .services
        .iter()
        .map(|s| {
            let hash = s.labels.get(LABEL_SPEC_HASH).map_or("", String::as_str);
            format!("{}={hash}", s.name)
        })
        .collect();
    parts.sort();
    parts.join(",")
}

/// Why a stack's dependents wait, given where its rollout stands.
fn waiting_reason(state: RolloutState, message: &str) -> String {
    match state {
        RolloutState::Failed => format!("its rollout failed: {message}"),
        _ => message.to_string(),
    }
}

/// Where the rollouts of `state`'s stacks stand in the swarm right now, for
/// `bosun plan`: one look at each stack with `wait` whose services exist.
/// A stack not converged holds its dependents back, as in the controller;
/// its own updates are not held (the plan does not know which revision
/// failed).
pub async fn look<A: Api>(
    api: &A,
    state: &DesiredState,
    snapshot: &Snapshot,
) -> (Holds, Vec<plan::Rollout>) {
    let mut holds = Holds::default();
    let mut notes = Vec::new();
    for stack in state.stacks.iter().filter(|s| s.wait.is_some()) {
        let services: Vec<(String, String)> = stack
            .objects
            .services
            .iter()
            .filter_map(|s| {
                let live = snapshot.service(&s.name)?;
                Some((s.name.clone(), live.meta.id.clone()))
            })
            .collect();
        if services.is_empty() {
            continue;
        }
        let owner = stack.owner();
        let (seen, message) = match Watch::new(&owner, &services).poll(api, true).await {
            Progress::Ready => continue,
            Progress::Pending(why) => (RolloutState::Progressing, why),
            Progress::Failed(why) => (RolloutState::Failed, why),
        };
        holds
            .waiting
            .insert(stack.name.clone(), waiting_reason(seen, &message));
        notes.push(plan::Rollout {
            stack: owner,
            state: seen.as_str(),
            message,
        });
    }
    (holds, notes)
}

impl<A: Api + Send + Sync + 'static> Rollouts<A> {
    /// Watchers poll `api` every `interval`, publish into `status` and
    /// `metrics`, send [`Trigger::Rollout`] on `tx` when a rollout ends,
    /// and stop with `stop`.
    pub fn new(
        api: Arc<A>,
        status: StatusHandle,
        metrics: Metrics,
        tx: mpsc::Sender<Trigger>,
        stop: CancellationToken,
        interval: Duration,
    ) -> Self {
        Rollouts {
            api,
            shared: Arc::default(),
            awaited: Arc::default(),
            status,
            metrics,
            tx,
            stop,
            interval,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the next plan of `state` must wait for: stacks rolling out, and
    /// stacks whose rollout of their current revision failed. Rollouts of
    /// stacks that are gone are stopped and forgotten, failures of an older
    /// revision forgotten.
    pub fn holds(&self, state: &DesiredState) -> Holds {
        *self.awaited.lock().unwrap_or_else(PoisonError::into_inner) = state
            .stacks
            .iter()
            .flat_map(|s| s.after.iter().cloned())
            .collect();
        let mut holds = Holds::default();
        let mut entries = self.lock();
        entries.retain(|name, e| {
            let Some(stack) = state.stacks.iter().find(|s| s.name == *name) else {
                e.cancel.cancel();
                return false;
            };
            match e.state {
                RolloutState::Progressing => {
                    holds
                        .waiting
                        .insert(name.clone(), waiting_reason(e.state, &e.message));
                    true
                }
                RolloutState::Failed if e.revision == revision(stack) => {
                    holds
                        .waiting
                        .insert(name.clone(), waiting_reason(e.state, &e.message));
                    holds.held.insert(
                        name.clone(),
                        format!(
                            "the rollout of this revision failed ({}); not retried until the manifest changes",
                            e.message
                        ),
                    );
                    true
                }
                RolloutState::Failed => false,
                RolloutState::Ready => true,
            }
        });
        drop(entries);
        self.publish();
        holds
    }

    /// Watch the rollouts a pass of `state` started.
    pub fn begin(&self, started: &[Started], state: &DesiredState) {
        for s in started {
            let name = s.stack.name.clone();
            let rev = state.stack(&name).map(revision).unwrap_or_default();
            let mut entries = self.lock();
            let now = Instant::now();
            let joined = entries.get_mut(&name).and_then(|e| {
                (e.state == RolloutState::Progressing && e.revision == rev).then(|| {
                    // The same revision written again (a drift reverted):
                    // one rollout, its deadline unchanged.
                    e.cancel.cancel();
                    for svc in &s.services {
                        if !e.services.contains(svc) {
                            e.services.push(svc.clone());
                        }
                    }
                    e.cancel = self.stop.child_token();
                    (e.services.clone(), e.deadline, e.cancel.clone())
                })
            });
            let (services, deadline, cancel) = if let Some(j) = joined {
                j
            } else {
                if let Some(old) = entries.get(&name)
                    && old.state == RolloutState::Progressing
                {
                    old.cancel.cancel();
                    let took = now.duration_since(old.started);
                    tracing::info!(stack = %name, after_ms = took.as_millis() as u64, "rollout superseded by a new revision");
                    self.metrics.rollout_finished("superseded", took);
                }
                let cancel = self.stop.child_token();
                let entry = Entry {
                    revision: rev,
                    services: s.services.clone(),
                    started: now,
                    started_at: SystemTime::now(),
                    deadline: now + s.timeout,
                    timeout: s.timeout,
                    state: RolloutState::Progressing,
                    message: "rollout started".to_string(),
                    took: None,
                    cancel: cancel.clone(),
                };
                let out = (entry.services.clone(), entry.deadline, cancel);
                entries.insert(name.clone(), entry);
                out
            };
            drop(entries);
            let this = self.clone();
            let owner = s.stack.clone();
            tokio::spawn(async move {
                cancel
                    .clone()
                    .run_until_cancelled(this.watch(owner, services, deadline, cancel))
                    .await;
            });
        }
        self.publish();
    }

    /// Poll one rollout until it ends or its token is cancelled.
    async fn watch(
        self,
        owner: ObjectRef,
        services: Vec<(String, String)>,
        deadline: Instant,
        cancel: CancellationToken,
    ) {
        let mut watch = Watch::new(&owner, &services);
        loop {
            tokio::time::sleep(self.interval).await;
            let progress = watch.poll(self.api.as_ref(), true).await;
            let ended = {
                let mut entries = self.lock();
                let Some(e) = entries.get_mut(&owner.name) else {
                    return;
                };
                if cancel.is_cancelled() {
                    return;
                }
                let ended = match progress {
                    Progress::Ready => Some((RolloutState::Ready, String::new())),
                    Progress::Failed(why) => Some((RolloutState::Failed, why)),
                    Progress::Pending(why) if Instant::now() >= deadline => {
                        Some((RolloutState::Failed, not_converged(e.timeout, &why)))
                    }
                    Progress::Pending(why) => {
                        e.message = why;
                        None
                    }
                };
                if let Some((state, message)) = &ended {
                    let took = e.started.elapsed();
                    e.state = *state;
                    e.message.clone_from(message);
                    e.took = Some(took);
                    let ms = took.as_millis() as u64;
                    match state {
                        RolloutState::Ready => {
                            tracing::info!(stack = %owner.name, took_ms = ms, "rollout converged");
                        }
                        _ => {
                            tracing::warn!(stack = %owner.name, took_ms = ms, "rollout failed: {message}");
                        }
                    }
                    self.metrics.rollout_finished(state.as_str(), took);
                }
                ended
            };
            self.publish();
            if ended.is_some() {
                let awaited = self
                    .awaited
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(&owner.name);
                if awaited {
                    let _ = self.tx.send(Trigger::Rollout).await;
                }
                return;
            }
        }
    }

    /// The rollouts as `/status` shows them.
    #[must_use]
    pub fn statuses(&self) -> Vec<RolloutStatus> {
        self.lock()
            .iter()
            .map(|(name, e)| RolloutStatus {
                stack: ObjectRef::new(manifest::Kind::Stack, name).to_string(),
                state: e.state,
                services: e.services.iter().map(|(n, _)| n.clone()).collect(),
                started_at: rfc3339(e.started_at),
                duration_ms: e.took.unwrap_or_else(|| e.started.elapsed()).as_millis() as u64,
                message: e.message.clone(),
            })
            .collect()
    }

    /// Set the conditions of the services of rollouts in progress or
    /// failed (and of those that just converged).
    pub fn overlay(&self, objects: &mut [ObjectStatus]) {
        let entries = self.lock();
        for o in objects.iter_mut().filter(|o| o.kind == Kind::Service) {
            let Some((stack, e)) = entries
                .iter()
                .find(|(_, e)| e.services.iter().any(|(n, _)| *n == o.name))
            else {
                continue;
            };
            if o.owner != ObjectRef::new(manifest::Kind::Stack, stack).to_string() {
                continue;
            }
            match e.state {
                RolloutState::Progressing => {
                    o.condition = Condition::Progressing;
                    o.message = format!("rolling out: {}", e.message);
                }
                RolloutState::Failed => {
                    o.condition = Condition::Failed;
                    o.message = format!("rollout failed: {}", e.message);
                }
                RolloutState::Ready if o.condition == Condition::Progressing => {
                    o.condition = Condition::Ready;
                    o.message.clear();
                }
                RolloutState::Ready => {}
            }
        }
    }

    /// Publish to `/status` and the metrics.
    pub fn publish(&self) {
        let rollouts = self.statuses();
        let count = |s: RolloutState| rollouts.iter().filter(|r| r.state == s).count();
        self.metrics.set_rollouts(
            count(RolloutState::Progressing),
            count(RolloutState::Failed),
        );
        self.status.update(|st| {
            st.rollouts = rollouts;
            self.overlay(&mut st.objects);
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::apply::{self, Outcome};
    use crate::swarm::{Fake, RequestCounter, observe};

    /// Stack `web` (waited for, 30 s) and stack `api`, which depends on it.
    fn web(image: &str) -> String {
        format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: web}}\nspec:\n  wait: {{enabled: true, timeout: 30s}}\n  compose: {{services: {{app: {{image: {image}}}}}}}\n---\n{API}"
        )
    }

    const API: &str = "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: api}\nspec:\n  dependsOn: [Stack/web]\n  wait: {enabled: false}\n  compose: {services: {srv: {image: api:1}}}\n";

    struct Setup {
        api: Arc<Fake>,
        rollouts: Rollouts<Fake>,
        rx: mpsc::Receiver<Trigger>,
        status: StatusHandle,
        metrics: Metrics,
    }

    fn setup() -> Setup {
        let api = Arc::new(Fake::single_node());
        let (tx, rx) = mpsc::channel(8);
        let status = StatusHandle::new(super::super::status::SourceStatus {
            kind: "dir".into(),
            location: "/m".into(),
            revision: None,
            error: None,
        });
        let metrics = Metrics::new(Arc::new(RequestCounter::default()));
        let rollouts = Rollouts::new(
            api.clone(),
            status.clone(),
            metrics.clone(),
            tx,
            CancellationToken::new(),
            Duration::from_secs(1),
        );
        Setup {
            api,
            rollouts,
            rx,
            status,
            metrics,
        }
    }

    /// Apply `state` detached, as a controller pass does, and watch what it
    /// started.
    async fn pass(s: &Setup, state: &DesiredState) -> apply::Report {
        let snap = observe(s.api.as_ref()).await.expect("observe");
        let opts = plan::Options::default().holds(s.rollouts.holds(state));
        let p = plan::plan(state, &snap, &opts);
        let report = apply::apply(
            s.api.as_ref(),
            &p,
            state,
            &snap,
            &apply::Options::default().detach(),
        )
        .await
        .expect("applied");
        s.rollouts.begin(&report.started, state);
        report
    }

    fn running_task(api: &Fake, service: &str) {
        let id = api.get(Kind::Service, service).expect("service")["ID"].clone();
        api.seed(
            Kind::Task,
            json!({"ServiceID": id, "Slot": 1, "DesiredState": "running",
                   "Status": {"State": "running", "Timestamp": "2024-01-01T00:00:00Z"}}),
        );
    }

    fn failing_task(api: &Fake, service: &str) {
        let id = api.get(Kind::Service, service).expect("service")["ID"].clone();
        api.seed(
            Kind::Task,
            json!({"ServiceID": id, "Slot": 1, "DesiredState": "running",
                   "Status": {"State": "rejected", "Message": "preparing",
                              "Err": "No such image: web:bad", "Timestamp": "2024-01-01T00:00:00Z"}}),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rollout_is_progressing_with_its_task_error_then_ready_and_triggers_a_pass() {
        let mut s = setup();
        let state = DesiredState::of_files(&[("web.yaml", &web("web:1"))]);
        pass(&s, &state).await;
        failing_task(&s.api, "web_app");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let holds = s.rollouts.holds(&state);
        let why = holds.waiting.get("web").expect("waiting on web");
        assert!(
            why.contains("web_app: 0/1 tasks running; last task error: \"No such image: web:bad\""),
            "{why}"
        );
        assert!(holds.held.is_empty());
        let st = s.status.snapshot();
        assert_eq!(st.rollouts.len(), 1);
        assert_eq!(st.rollouts[0].state, RolloutState::Progressing);
        assert_eq!(st.rollouts[0].stack, "Stack/web");
        assert!(
            s.metrics
                .encode()
                .contains("bosun_rollouts{state=\"progressing\"} 1")
        );
        assert!(s.rx.try_recv().is_err(), "no pass while it progresses");

        s.api.clear(Kind::Task);
        running_task(&s.api, "web_app");
        let t = tokio::time::timeout(Duration::from_secs(5), s.rx.recv()).await;
        assert_eq!(t, Ok(Some(Trigger::Rollout)));
        assert!(s.rollouts.holds(&state).is_empty());
        let st = s.status.snapshot();
        assert_eq!(st.rollouts[0].state, RolloutState::Ready);
        let text = s.metrics.encode();
        assert!(
            text.contains("bosun_rollouts{state=\"progressing\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("bosun_rollout_duration_seconds_count{outcome=\"ready\"} 1"),
            "{text}"
        );
    }

    /// README: a look costs two requests plus one per pending service.
    #[tokio::test(start_paused = true)]
    async fn a_look_costs_two_requests_and_one_per_pending_service() {
        let s = setup();
        let state = DesiredState::of_files(&[("web.yaml", &web("web:1"))]);
        pass(&s, &state).await;
        failing_task(&s.api, "web_app");
        s.api.clear_calls();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(s.api.calls().len(), 3, "{:?}", s.api.calls());
        // Nothing pending: the two lists only.
        s.api.clear(Kind::Task);
        running_task(&s.api, "web_app");
        s.api.clear_calls();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(s.api.calls().len(), 2, "{:?}", s.api.calls());
    }

    #[tokio::test(start_paused = true)]
    async fn a_rollout_past_its_timeout_fails_once_and_holds_its_revision_only() {
        let mut s = setup();
        let state = DesiredState::of_files(&[("web.yaml", &web("web:bad"))]);
        pass(&s, &state).await;
        failing_task(&s.api, "web_app");
        let t = tokio::time::timeout(Duration::from_secs(40), s.rx.recv()).await;
        assert_eq!(t, Ok(Some(Trigger::Rollout)));
        let st = s.status.snapshot();
        assert_eq!(st.rollouts[0].state, RolloutState::Failed);
        assert!(
            st.rollouts[0].message.starts_with(
                "not converged after 30s: web_app: 0/1 tasks running; last task error"
            ),
            "{}",
            st.rollouts[0].message
        );
        let holds = s.rollouts.holds(&state);
        assert!(holds.held["web"].contains("not retried until the manifest changes"));
        // Failed is where it stays: no more triggers, no more polls.
        s.api.clear_calls();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(s.rx.try_recv().is_err());
        assert!(s.api.calls().is_empty(), "{:?}", s.api.calls());
        assert!(
            s.metrics
                .encode()
                .contains("bosun_rollouts{state=\"failed\"} 1")
        );
        // A new revision is not held by the old one's failure.
        let fixed = DesiredState::of_files(&[("web.yaml", &web("web:1"))]);
        assert!(s.rollouts.holds(&fixed).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_revision_supersedes_a_stuck_rollout_and_a_reverted_drift_joins_it() {
        let mut s = setup();
        let bad = DesiredState::of_files(&[("web.yaml", &web("web:bad"))]);
        pass(&s, &bad).await;
        failing_task(&s.api, "web_app");
        tokio::time::sleep(Duration::from_secs(5)).await;

        // The same revision written again (a hand edit reverted): one
        // rollout, its deadline kept (30 s from the first write).
        let live = s.api.get(Kind::Service, "web_app").expect("web_app");
        let mut spec = live["Spec"].clone();
        spec["Mode"]["Replicated"]["Replicas"] = json!(3);
        let id = live["ID"].as_str().expect("id").to_string();
        let version = live["Version"]["Index"].as_u64().expect("version");
        s.api
            .update(Kind::Service, &id, version, &spec)
            .await
            .expect("hand edit");
        let report = pass(&s, &bad).await;
        assert_eq!(report.started.len(), 1);
        assert!(
            s.metrics
                .encode()
                .contains("bosun_rollouts{state=\"progressing\"} 1")
        );

        // The fix: a new revision supersedes the stuck rollout at once.
        let fixed = DesiredState::of_files(&[("web.yaml", &web("web:1"))]);
        let report = pass(&s, &fixed).await;
        assert!(
            report
                .actions
                .iter()
                .all(|a| a.outcome == Outcome::Done { adopted: false }),
            "{report}"
        );
        let text = s.metrics.encode();
        assert!(
            text.contains("bosun_rollout_duration_seconds_count{outcome=\"superseded\"} 1"),
            "{text}"
        );
        assert!(!text.contains("outcome=\"failed\""), "{text}");
        s.api.clear(Kind::Task);
        running_task(&s.api, "web_app");
        let t = tokio::time::timeout(Duration::from_secs(5), s.rx.recv()).await;
        assert_eq!(t, Ok(Some(Trigger::Rollout)));
        assert_eq!(s.status.snapshot().rollouts[0].state, RolloutState::Ready);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dependent_waits_for_the_rollout_and_goes_once_it_converged() {
        let s = setup();
        let state = DesiredState::of_files(&[("web.yaml", &web("web:1"))]);
        let first = pass(&s, &state).await;
        assert!(first.deferred()[0].contains("waiting for Stack/web to converge"));
        // A pass while web still rolls out defers api in the plan.
        let second = pass(&s, &state).await;
        assert!(second.actions.is_empty(), "{second}");
        assert!(s.api.get(Kind::Service, "api_srv").is_none());
        running_task(&s.api, "web_app");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        pass(&s, &state).await;
        assert!(s.api.get(Kind::Service, "api_srv").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_rollout_no_stack_waits_for_ends_without_a_pass() {
        let mut s = setup();
        let alone = web("web:1").replace(&format!("---\n{API}"), "");
        let state = DesiredState::of_files(&[("web.yaml", &alone)]);
        pass(&s, &state).await;
        running_task(&s.api, "web_app");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(s.status.snapshot().rollouts[0].state, RolloutState::Ready);
        assert!(s.rx.try_recv().is_err(), "nothing waited for it");
    }
}

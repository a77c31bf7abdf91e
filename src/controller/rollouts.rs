//! Rollouts watched beside the loop (`bosun run`).
//!
//! A pass writes services and returns ([`apply::Wait::Detach`]); each stack
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
//! A rollout that ends triggers a pass ([`Trigger::Rollout`]): the stacks
//! that `dependsOn` it were deferred while it ran ([`Rollouts::holds`]) and
//! are applied now. A failed rollout is logged once and stays failed for
//! its revision: its dependents stay deferred, and its own service updates
//! (the rolled-back spec put back) are not sent again until the manifest
//! changes, so it fails once, not once per pass.
//!
//! Each look at a rollout costs two requests plus one per pending service
//! (its last task error), every [`apply::Options::poll_interval`]. Events
//! would not say enough: a task that keeps failing to pull its image emits
//! no service event at all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::scheduler::Trigger;
use super::status::{Condition, ObjectStatus, RolloutState, RolloutStatus, StatusHandle, rfc3339};
use crate::apply::Started;
use crate::apply::wait::{Progress, Watch, humanize};
use crate::compose::LABEL_SPEC_HASH;
use crate::manifest::{self, ObjectRef};
use crate::plan::{DesiredStack, DesiredState, Holds};
use crate::swarm::{Api, Kind};

/// The rollouts of one controller, shared by the passes and the watchers.
pub struct Rollouts<A> {
    api: Arc<A>,
    shared: Arc<Mutex<BTreeMap<String, Entry>>>,
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
        let mut holds = Holds::default();
        let mut entries = self.lock();
        entries.retain(|name, e| {
            let Some(stack) = state.stacks.iter().find(|s| s.name == *name) else {
                e.cancel.cancel();
                return false;
            };
            match e.state {
                RolloutState::Progressing => {
                    holds.waiting.insert(name.clone(), e.message.clone());
                    true
                }
                RolloutState::Failed if e.revision == revision(stack) => {
                    holds
                        .waiting
                        .insert(name.clone(), format!("its rollout failed: {}", e.message));
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
            let (services, deadline, cancel) = match joined {
                Some(j) => j,
                None => {
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
                }
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
                Progress::Pending(why) if Instant::now() >= deadline => Some((
                    RolloutState::Failed,
                    format!("not converged after {}: {why}", humanize(e.timeout)),
                )),
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
                    _ => tracing::warn!(stack = %owner.name, took_ms = ms, "rollout failed: {message}"),
                }
                self.metrics.rollout_finished(state.as_str(), took);
            }
            ended
            };
            self.publish();
            if ended.is_some() {
                let _ = self.tx.send(Trigger::Rollout).await;
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
            let Some((stack, e)) = entries.iter().find(|(_, e)| {
                e.services.iter().any(|(n, _)| *n == o.name)
            }) else {
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
        self.metrics
            .set_rollouts(count(RolloutState::Progressing), count(RolloutState::Failed));
        self.status.update(|st| {
            st.rollouts = rollouts;
            self.overlay(&mut st.objects);
        });
    }
}

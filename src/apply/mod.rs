//! Execute a [`Plan`] against a swarm: phases, bounded concurrency,
//! retries, waits.
//!
//! [`apply()`] runs the plan's actions in its order, in phases:
//!
//! 1. networks: re-creations first remove the old network and wait until it
//!    is really gone (removal is asynchronous), then creates, each waiting
//!    until the manager shows the network with its driver;
//! 2. configs and secrets (their IDs join the name → ID table);
//! 3. node updates;
//! 4. services, stack by stack in deploy order, then (with `wait`) until
//!    the stack's created and updated services have converged (see
//!    [`wait`]); a stack whose action or wait failed fails its
//!    dependents (`dependsOn`, and services using a network, config or
//!    secret that could not be created), which are skipped; independent
//!    stacks go on. [`Wait::Detach`] (the controller) does not wait: it
//!    reports the started rollout ([`Report::started`]) and defers the
//!    stacks that depend on it ([`Outcome::Deferred`]);
//!    A VIP policy's keepalived services roll one node at a time instead
//!    ([`Run::vip_roll`]), in every wait mode but `Skip`: new nodes at
//!    once, then the updated nodes not holding the address, the holder
//!    last, each waited for before the next; a node that does not converge
//!    stops the roll. It is the one wait a controller pass makes: the
//!    address must never lose its holder to two nodes restarting at once;
//! 5. prune, in reverse: services, then configs and secrets, then networks
//!    (again waiting until they are gone). Removals owned by a failed stack
//!    are skipped.
//!
//! Independent actions inside a phase run concurrently, at most
//! [`Options::concurrency`] at a time.
//!
//! # Retries and lost responses
//!
//! Transient errors (connection, timeout, HTTP 5xx except "no leader") are
//! retried with exponential backoff and jitter ([`swarm::retry`]); "update
//! out of sequence" re-reads the object's version first. A create answered
//! with 409 is a success only when the existing object carries bosun's
//! labels *for the same owner* — the previous attempt created it and its
//! response was lost; the next plan catches any difference. Otherwise the
//! action fails. "No leader" stops the pass: every action not yet started
//! is skipped. So does a daemon that still refuses connections after an
//! action's retries: the other actions would only wait through the same
//! retries. Write attempts that never reached the daemon are not counted.
//!
//! # Secrets
//!
//! Nothing here logs or returns a request body: log lines and errors carry
//! the action's verb and the object's name.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tracing::Instrument;

use crate::manifest::{self, ObjectRef};
use crate::plan::{Action, DesiredStack, DesiredState, Plan};
use crate::swarm::{Api, Kind, Snapshot, retry};

mod exec;
mod ids;
pub mod wait;

use exec::{Counted, Done, Failure};
use ids::Ids;

/// Why the rest of a pass is skipped after "no leader".
const NO_LEADER: &str = "the swarm has no leader (quorum lost)";
/// Why the rest of a pass is skipped after a refused connection.
const UNREACHABLE: &str =
    "the Docker daemon cannot be reached (an earlier action failed to connect after its retries)";

/// Actions of one phase in flight at once, by default. The manager commits
/// concurrent writes to its raft log together, so 100 service creates take
/// well under half the time one at a time takes (the way `docker stack
/// deploy` sends them). Measured on dockerd 20.10 (BENCHMARKS.md): 32 in
/// flight beat 16 and 24; at 64 the daemon's own contention makes it slower
/// again.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// How to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Actions of one phase running at the same time (at least 1).
    pub concurrency: usize,
    /// What to do about the stacks' `wait` settings.
    pub wait: Wait,
    /// Retries of transient errors.
    pub retry: retry::Policy,
    /// Delay between polls (service convergence, "in use" removals).
    pub poll_interval: Duration,
    /// How long a new network may take to appear, a removed one to leave
    /// the list. A removed overlay network stays listed on a node until its
    /// last local task is torn down; apply waits for a removed service's
    /// tasks before it removes the networks they used, so this is a bound
    /// for a slow daemon, not a delay met in practice.
    pub network_timeout: Duration,
    /// How long a removed service's tasks may take to be gone, and a
    /// removal is retried while something still uses the object (tasks of
    /// a service someone else removed).
    pub removal_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: DEFAULT_CONCURRENCY,
            wait: Wait::Block,
            retry: retry::Policy::default(),
            poll_interval: Duration::from_secs(1),
            network_timeout: Duration::from_secs(60),
            removal_timeout: Duration::from_secs(60),
        }
    }
}

impl Options {
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Wait in the pass (`true`, [`Wait::Block`]) or never (`false`,
    /// `--no-wait`, [`Wait::Skip`]).
    #[must_use]
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = if wait { Wait::Block } else { Wait::Skip };
        self
    }

    /// Start rollouts and return ([`Wait::Detach`], the controller).
    #[must_use]
    pub fn detach(mut self) -> Self {
        self.wait = Wait::Detach;
        self
    }

    #[must_use]
    pub fn retry(mut self, policy: retry::Policy) -> Self {
        self.retry = policy;
        self
    }

    #[must_use]
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }
}

/// What apply does about a stack's `wait` once its services are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait until they converge, in dependency order; a stack that does not
    /// converge fails its dependents (`bosun reconcile --once`).
    Block,
    /// Do not wait: report each started rollout ([`Report::started`]) for
    /// the caller to watch, and defer the stacks that depend on it
    /// ([`Outcome::Deferred`]) to a later pass (`bosun run`).
    Detach,
    /// Never wait (`--no-wait`).
    Skip,
}

/// A rollout apply started and did not wait for ([`Wait::Detach`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub stack: ObjectRef,
    /// `(name, id)` of the services created or updated.
    pub services: Vec<(String, String)>,
    /// The stack's `wait.timeout`.
    pub timeout: Duration,
}

/// How one action (or wait) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (or found already applied by a previous attempt: `adopted`).
    Done { adopted: bool },
    /// Failed; the message names the object and the daemon's error.
    Failed(String),
    /// Not attempted; why.
    Skipped(String),
    /// Not attempted yet: it waits for another stack's rollout; why.
    Deferred(String),
}

impl Outcome {
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done { .. })
    }

    /// Done, or deferred on purpose: nothing went wrong.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Done { .. } | Outcome::Deferred(_))
    }
}

/// The result of one action of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionReport {
    /// `CreateService`, … (for messages).
    pub action: &'static str,
    /// The kind of object acted on.
    pub kind: Kind,
    pub name: String,
    /// The manifests that own the object.
    pub owners: Vec<ObjectRef>,
    pub outcome: Outcome,
    /// Write calls the daemon answered (retries included; 0 when skipped).
    pub attempts: usize,
    pub duration: Duration,
}

/// The result of waiting for one stack's services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitReport {
    pub stack: String,
    /// Services waited for.
    pub services: usize,
    pub outcome: Outcome,
    pub duration: Duration,
}

/// What [`apply()`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per plan action, in plan order.
    pub actions: Vec<ActionReport>,
    /// One entry per stack waited for, in deploy order.
    pub waits: Vec<WaitReport>,
    /// Rollouts started and not waited for ([`Wait::Detach`]).
    pub started: Vec<Started>,
    /// Write calls the daemon answered (creates, updates, removes; retries
    /// included).
    pub writes: usize,
    pub duration: Duration,
}

impl Report {
    /// Every action done (or deferred) and every wait converged.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.actions.iter().all(|a| a.outcome.is_ok())
            && self.waits.iter().all(|w| w.outcome.is_done())
    }

    /// `kind name: reason` of every deferred action.
    #[must_use]
    pub fn deferred(&self) -> Vec<String> {
        self.reasons(|o| match o {
            Outcome::Deferred(why) => Some(why),
            _ => None,
        })
    }

    /// Failure messages: failed actions, then failed waits.
    #[must_use]
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .actions
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Failed(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        out.extend(self.waits.iter().filter_map(|w| match &w.outcome {
            Outcome::Failed(m) => Some(format!("wait for Stack/{}: {m}", w.stack)),
            _ => None,
        }));
        out
    }

    /// `kind name: reason` of every skipped action.
    #[must_use]
    pub fn skipped(&self) -> Vec<String> {
        self.reasons(|o| match o {
            Outcome::Skipped(why) => Some(why),
            _ => None,
        })
    }

    /// `action name: reason` of the actions whose outcome `pick` gives a
    /// reason for.
    fn reasons(&self, pick: impl Fn(&Outcome) -> Option<&String>) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| pick(&a.outcome).map(|why| format!("{} {}: {why}", a.action, a.name)))
            .collect()
    }

    /// `5 done, 1 failed, 2 skipped; 6 writes in 3.2 s`.
    #[must_use]
    pub fn summary(&self) -> String {
        let count = |f: fn(&Outcome) -> bool| self.actions.iter().filter(|a| f(&a.outcome)).count();
        let deferred = match count(|o| matches!(o, Outcome::Deferred(_))) {
            0 => String::new(),
            n => format!(", {n} deferred"),
        };
        format!(
            "{} done, {} failed, {} skipped{deferred}; {} writes in {:.1} s",
            count(Outcome::is_done),
            count(|o| matches!(o, Outcome::Failed(_))),
            count(|o| matches!(o, Outcome::Skipped(_))),
            self.writes,
            self.duration.as_secs_f64()
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in self.failures() {
            writeln!(f, "failed: {m}")?;
        }
        for m in self.skipped() {
            writeln!(f, "skipped: {m}")?;
        }
        for m in self.deferred() {
            writeln!(f, "deferred: {m}")?;
        }
        write!(f, "{}", self.summary())
    }
}

/// What [`apply()`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Some actions or waits failed (their dependents were skipped); the
    /// rest was applied. A rerun plans what is left.
    #[error("the plan was not completely applied:\n{report}")]
    Incomplete { report: Box<Report> },
}

impl Error {
    /// The report of what was (and was not) done.
    #[must_use]
    pub fn report(&self) -> &Report {
        match self {
            Error::Incomplete { report } => report,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Apply `plan` (made from `desired` against `snapshot`) to the swarm.
///
/// `Ok` means every action was applied and every wait converged; otherwise
/// [`Error::Incomplete`] carries the report.
pub async fn apply(
    api: &impl Api,
    plan: &Plan,
    desired: &DesiredState,
    snapshot: &Snapshot,
    opts: &Options,
) -> Result<Report> {
    let start = tokio::time::Instant::now();
    let desired = &*crate::plan::vip::with_vips(desired, snapshot);
    let mut run = Run {
        api,
        opts,
        plan,
        reports: plan.actions.iter().map(pending).collect(),
        waits: Vec::new(),
        started: Vec::new(),
        ids: Ids::of(snapshot),
        failed_objects: BTreeSet::new(),
        failed_stacks: BTreeSet::new(),
        deferred_stacks: BTreeMap::new(),
        abort: None,
    };
    let phases = Phases::of(plan);

    run.batch(&phases.network_removes, |_| None).await;
    let failed_removes: BTreeSet<String> = phases
        .network_removes
        .iter()
        .filter(|&&i| !run.reports[i].outcome.is_done())
        .map(|&i| plan.actions[i].name().to_string())
        .collect();
    let creates: Vec<usize> = phases
        .network_creates
        .iter()
        .copied()
        .filter(|&i| {
            let name = plan.actions[i].name();
            if failed_removes.contains(name) {
                run.skip(i, format!("the old network `{name}` could not be removed"));
                false
            } else {
                true
            }
        })
        .collect();
    run.batch(&creates, |_| None).await;
    run.batch(&phases.configs_and_secrets, |_| None).await;
    run.batch(&phases.nodes, |_| None).await;

    for stack in &phases.stacks {
        match desired.stacks.iter().find(|s| s.owner() == stack.0) {
            Some(s) if s.is_vip() && opts.wait != Wait::Skip => {
                run.vip_roll(s, snapshot, &stack.1).await;
            }
            _ => run.stack(desired, stack).await,
        }
    }

    for group in [
        &phases.prune_services,
        &phases.prune_configs_and_secrets,
        &phases.prune_networks,
    ] {
        let go: Vec<usize> = group
            .iter()
            .copied()
            .filter(|&i| {
                let owners = plan.actions[i].owners();
                if let Some(owner) = owners.iter().find(|o| run.failed_stacks.contains(*o)) {
                    run.skip(i, format!("{owner} failed"));
                    false
                } else if let Some(why) = owners.iter().find_map(|o| run.deferred_stacks.get(o)) {
                    run.reports[i].outcome = Outcome::Deferred(why.clone());
                    false
                } else {
                    true
                }
            })
            .collect();
        run.batch(&go, |_| None).await;
    }

    let report = Report {
        writes: run.reports.iter().map(|r| r.attempts).sum(),
        actions: run.reports,
        waits: run.waits,
        started: run.started,
        duration: start.elapsed(),
    };
    if report.is_success() {
        Ok(report)
    } else {
        Err(Error::Incomplete {
            report: Box::new(report),
        })
    }
}

fn pending(a: &Action) -> ActionReport {
    ActionReport {
        action: a.kind_name(),
        kind: a.kind(),
        name: a.name().to_string(),
        owners: a.owners().to_vec(),
        outcome: Outcome::Skipped("not reached".into()),
        attempts: 0,
        duration: Duration::ZERO,
    }
}

/// Indices of the plan's actions, by phase.
#[derive(Default)]
struct Phases {
    network_removes: Vec<usize>,
    network_creates: Vec<usize>,
    configs_and_secrets: Vec<usize>,
    nodes: Vec<usize>,
    /// `(owner, actions)` in plan (deploy) order.
    stacks: Vec<(ObjectRef, Vec<usize>)>,
    prune_services: Vec<usize>,
    prune_configs_and_secrets: Vec<usize>,
    prune_networks: Vec<usize>,
}

impl Phases {
    fn of(plan: &Plan) -> Self {
        let mut p = Phases::default();
        // Network removals before the last network create belong to the
        // network phase (re-creations, ingress replacement); the others
        // are prune.
        let last_create = plan
            .actions
            .iter()
            .rposition(|a| matches!(a, Action::CreateNetwork { .. }));
        for (i, a) in plan.actions.iter().enumerate() {
            match a {
                Action::RemoveNetwork { .. } if last_create.is_some_and(|l| i < l) => {
                    p.network_removes.push(i);
                }
                Action::RemoveNetwork { .. } => p.prune_networks.push(i),
                Action::CreateNetwork { .. } => p.network_creates.push(i),
                Action::CreateConfig { .. } | Action::CreateSecret { .. } => {
                    p.configs_and_secrets.push(i);
                }
                Action::UpdateNode { .. } => p.nodes.push(i),
                Action::CreateService { owner, .. } | Action::UpdateService { owner, .. } => {
                    match p.stacks.iter_mut().find(|(o, _)| o == owner) {
                        Some((_, v)) => v.push(i),
                        None => p.stacks.push((owner.clone(), vec![i])),
                    }
                }
                Action::RemoveService { .. } => p.prune_services.push(i),
                Action::RemoveConfig { .. } | Action::RemoveSecret { .. } => {
                    p.prune_configs_and_secrets.push(i);
                }
            }
        }
        p
    }
}

/// What a service body refers to by name: networks, configs, secrets.
fn references(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (ptr, key) in [
        ("/TaskTemplate/Networks", "Target"),
        ("/TaskTemplate/ContainerSpec/Configs", "ConfigName"),
        ("/TaskTemplate/ContainerSpec/Secrets", "SecretName"),
    ] {
        if let Some(items) = body.pointer(ptr).and_then(Value::as_array) {
            out.extend(
                items
                    .iter()
                    .filter_map(|i| i.get(key).and_then(Value::as_str))
                    .map(str::to_string),
            );
        }
    }
    out
}

/// How a started action ended: its result, writes made, time taken.
type Ran = (Result<Done, Failure>, usize, Duration);

struct Run<'a, A> {
    api: &'a A,
    opts: &'a Options,
    plan: &'a Plan,
    reports: Vec<ActionReport>,
    waits: Vec<WaitReport>,
    ids: Ids,
    /// Networks, configs and secrets whose create failed or was skipped.
    failed_objects: BTreeSet<String>,
    /// Owners (`Stack/x`) with a failed action or wait.
    failed_stacks: BTreeSet<ObjectRef>,
    /// Rollouts started and not waited for ([`Wait::Detach`]).
    started: Vec<Started>,
    /// Stacks deferred in this run ([`Wait::Detach`]), and why.
    deferred_stacks: BTreeMap<ObjectRef, String>,
    /// Set once the swarm has no leader or the daemon is unreachable:
    /// everything else is skipped.
    abort: Option<String>,
}

impl<A: Api> Run<'_, A> {
    fn skip(&mut self, i: usize, why: String) {
        self.reports[i].outcome = Outcome::Skipped(why);
        if let Some(owner) = self.owner_stack(i) {
            self.failed_stacks.insert(owner);
        }
        self.note_failed_object(i);
    }

    fn owner_stack(&self, i: usize) -> Option<ObjectRef> {
        self.plan.actions[i].stack().cloned()
    }

    fn note_failed_object(&mut self, i: usize) {
        if matches!(
            self.plan.actions[i],
            Action::CreateNetwork { .. }
                | Action::CreateConfig { .. }
                | Action::CreateSecret { .. }
        ) {
            self.failed_objects
                .insert(self.plan.actions[i].name().to_string());
        }
    }

    /// Run these actions concurrently (bounded); `body` gives the request
    /// body with IDs filled in, where the action's own is not enough.
    /// Returns the IDs of what was created, by action index.
    async fn batch(
        &mut self,
        indices: &[usize],
        body: impl Fn(usize) -> Option<Value>,
    ) -> BTreeMap<usize, String> {
        if let Some(why) = self.abort.clone() {
            for &i in indices {
                self.skip(i, why.clone());
            }
            return BTreeMap::new();
        }
        let api = self.api;
        let opts = self.opts;
        let plan = self.plan;
        // Set by the first action that finds the swarm leaderless or the
        // daemon unreachable: actions not started yet are skipped (those
        // already running finish).
        let stop: OnceLock<String> = OnceLock::new();
        let stop = &stop;
        let work = indices.iter().map(|&i| {
            let action = &plan.actions[i];
            let body = body(i);
            let span = tracing::info_span!(
                "action",
                action = action.kind_name(),
                name = action.name(),
                owner = %crate::plan::owners_text(action.owners())
            );
            // The stream asks for the next action only when a slot is free.
            let stopped = stop.get().is_some();
            async move {
                if stopped {
                    return (i, None);
                }
                let counted = Counted::new(api);
                let started = tokio::time::Instant::now();
                tracing::debug!("start");
                let res = exec::run(&counted, action, body, opts).await;
                match &res {
                    Ok(_) => tracing::info!("{}: done", exec::describe(action)),
                    Err(f) => {
                        tracing::warn!("{}", f.message);
                        if f.no_leader {
                            let _ = stop.set(NO_LEADER.to_string());
                        } else if f.unreachable {
                            let _ = stop.set(UNREACHABLE.to_string());
                        }
                    }
                }
                (i, Some((res, counted.writes(), started.elapsed())))
            }
            .instrument(span)
        });
        let results: Vec<(usize, Option<Ran>)> = futures::stream::iter(work)
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await;
        if self.abort.is_none() {
            self.abort = stop.get().cloned();
        }
        let mut created = BTreeMap::new();
        for (i, ran) in results {
            let Some((res, attempts, duration)) = ran else {
                let why = self.abort.clone().unwrap_or_default();
                self.skip(i, why);
                continue;
            };
            let r = &mut self.reports[i];
            r.attempts = attempts;
            r.duration = duration;
            match res {
                Ok(done) => {
                    r.outcome = Outcome::Done {
                        adopted: done.adopted,
                    };
                    if let Some(id) = done.id {
                        let name = self.plan.actions[i].name().to_string();
                        match self.plan.actions[i] {
                            Action::CreateConfig { .. } => {
                                self.ids.configs.insert(name, id.clone());
                            }
                            Action::CreateSecret { .. } => {
                                self.ids.secrets.insert(name, id.clone());
                            }
                            _ => {}
                        }
                        created.insert(i, id);
                    }
                }
                Err(f) => {
                    r.outcome = Outcome::Failed(f.message.clone());
                    if let Some(owner) = self.owner_stack(i) {
                        self.failed_stacks.insert(owner);
                    }
                    self.note_failed_object(i);
                }
            }
        }
        created
    }

    /// One stack's service creates and updates, then its wait.
    async fn stack(&mut self, desired: &DesiredState, (owner, indices): &(ObjectRef, Vec<usize>)) {
        let stack = desired.stacks.iter().find(|s| s.owner() == *owner);
        if let Some(why) = self.abort.clone() {
            for &i in indices {
                self.skip(i, why.clone());
            }
            return;
        }
        if let Some(dep) = stack.and_then(|s| {
            s.after
                .iter()
                .map(|d| ObjectRef::new(manifest::Kind::Stack, d))
                .find(|d| self.failed_stacks.contains(d))
        }) {
            for &i in indices {
                self.skip(i, format!("depends on {dep}, which failed"));
            }
            self.failed_stacks.insert(owner.clone());
            return;
        }
        // Detached: a stack after one whose rollout started in this run (or
        // one deferred so) waits for a later pass.
        if let Some(dep) = stack.and_then(|s| {
            s.after
                .iter()
                .map(|d| ObjectRef::new(manifest::Kind::Stack, d))
                .find(|d| {
                    self.deferred_stacks.contains_key(d)
                        || self.started.iter().any(|r| r.stack == *d)
                })
        }) {
            let why = format!("waiting for {dep} to converge");
            for &i in indices {
                self.reports[i].outcome = Outcome::Deferred(why.clone());
            }
            self.deferred_stacks.insert(owner.clone(), why);
            return;
        }
        let (bodies, go) = self.bodies(indices);
        let created = self.batch(&go, |i| bodies.get(&i).cloned()).await;
        if self.failed_stacks.contains(owner) {
            return;
        }
        let Some(timeout) = stack
            .and_then(|s| s.wait)
            .filter(|_| self.opts.wait != Wait::Skip)
        else {
            return;
        };
        let services: Vec<(String, String)> = go
            .iter()
            .filter_map(|&i| match &self.plan.actions[i] {
                Action::CreateService { name, .. } => {
                    created.get(&i).map(|id| (name.clone(), id.clone()))
                }
                Action::UpdateService { name, id, .. } => Some((name.clone(), id.clone())),
                _ => None,
            })
            .collect();
        if services.is_empty() {
            return;
        }
        if self.opts.wait == Wait::Detach {
            tracing::info!(stack = %owner.name, services = services.len(), "rollout started");
            self.started.push(Started {
                stack: owner.clone(),
                services,
                timeout,
            });
            return;
        }
        let name = owner.name.clone();
        let span = tracing::info_span!("wait", stack = %name, services = services.len());
        let started = tokio::time::Instant::now();
        let res = wait::wait(self.api, owner, &services, timeout, self.opts.poll_interval)
            .instrument(span)
            .await;
        let outcome = match res {
            Ok(()) => {
                tracing::info!(stack = %name, "converged");
                Outcome::Done { adopted: false }
            }
            Err(m) => {
                tracing::warn!(stack = %name, "{m}");
                self.failed_stacks.insert(owner.clone());
                Outcome::Failed(m)
            }
        };
        self.waits.push(WaitReport {
            stack: name,
            services: services.len(),
            outcome,
            duration: started.elapsed(),
        });
    }

    /// A VIP policy's keepalived services, one node at a time: services of
    /// new nodes are created at once; updates wait until every other node
    /// of the policy that is up runs its keepalived (or the address could
    /// lose its last backup), then go one by one, nodes not holding the
    /// address first and the holder (as its logs say, else the node with
    /// the highest priority) last, each waited for before the next. A node
    /// that does not converge stops the roll: the nodes after it keep their
    /// running keepalived.
    async fn vip_roll(&mut self, stack: &DesiredStack, snapshot: &Snapshot, indices: &[usize]) {
        let owner = stack.owner();
        if let Some(why) = self.abort.clone() {
            for &i in indices {
                self.skip(i, why.clone());
            }
            return;
        }
        let (bodies, go) = self.bodies(indices);
        let (updates, creates): (Vec<usize>, Vec<usize>) = go
            .into_iter()
            .partition(|&i| matches!(self.plan.actions[i], Action::UpdateService { .. }));
        self.batch(&creates, |i| bodies.get(&i).cloned()).await;
        if updates.is_empty() {
            return;
        }
        let live = vip_services(snapshot, &owner);
        let updating: BTreeSet<&str> = updates
            .iter()
            .map(|&i| self.plan.actions[i].name())
            .collect();
        let others: Vec<(String, String)> = live
            .iter()
            .filter(|(_, name, _)| !updating.contains(name.as_str()))
            .filter(|(host, _, _)| {
                snapshot
                    .nodes
                    .iter()
                    .any(|n| n.hostname == *host && n.state == "ready")
            })
            .map(|(_, name, id)| (name.clone(), id.clone()))
            .collect();
        if !others.is_empty()
            && let wait::Progress::Pending(why) | wait::Progress::Failed(why) =
                wait::Watch::new(&owner, &others).poll(self.api, true).await
        {
            let why = format!(
                "not rolled: the keepalived of another node is not running ({why}); \
                 fix it first, or the address could be left without a holder"
            );
            for &i in &updates {
                self.skip(i, why.clone());
            }
            return;
        }
        let states = crate::vip::status::observe(self.api, &live).await;
        let holder = crate::vip::status::holder(&states)
            .map(|n| n.service.clone())
            .or_else(|| {
                stack
                    .objects
                    .services
                    .iter()
                    .max_by_key(|s| {
                        s.labels
                            .get(crate::plan::vip::LABEL_PRIORITY)
                            .and_then(|p| p.parse::<i64>().ok())
                    })
                    .map(|s| s.name.clone())
            });
        let mut order = updates;
        order.sort_by_key(|&i| {
            let name = self.plan.actions[i].name();
            (holder.as_deref() == Some(name), name.to_string())
        });
        tracing::info!(
            policy = %owner,
            holder = holder.as_deref().unwrap_or("-"),
            nodes = order.len(),
            "rolling keepalived one node at a time, the holder last"
        );
        for (n, &i) in order.iter().enumerate() {
            self.batch(&[i], |i| bodies.get(&i).cloned()).await;
            let name = self.plan.actions[i].name().to_string();
            let converged = match &self.plan.actions[i] {
                Action::UpdateService { id, .. } if self.reports[i].outcome.is_done() => {
                    let started = tokio::time::Instant::now();
                    let services = [(name.clone(), id.clone())];
                    let timeout = stack.wait.unwrap_or(crate::plan::vip::ROLL_TIMEOUT);
                    let res = wait::wait(
                        self.api,
                        &owner,
                        &services,
                        timeout,
                        self.opts.poll_interval,
                    )
                    .await;
                    let outcome = match &res {
                        Ok(()) => Outcome::Done { adopted: false },
                        Err(m) => Outcome::Failed(m.clone()),
                    };
                    self.waits.push(WaitReport {
                        stack: name.clone(),
                        services: 1,
                        outcome,
                        duration: started.elapsed(),
                    });
                    res.is_ok()
                }
                _ => false,
            };
            if !converged {
                self.failed_stacks.insert(owner.clone());
                for &rest in &order[n + 1..] {
                    self.reports[rest].outcome =
                        Outcome::Skipped(format!("not rolled: {name} did not converge"));
                }
                return;
            }
        }
    }

    /// The request bodies (IDs filled in) of these service actions, and
    /// the actions that can go; the others are failed or skipped here.
    fn bodies(&mut self, indices: &[usize]) -> (BTreeMap<usize, Value>, Vec<usize>) {
        let mut bodies = BTreeMap::new();
        let mut go = Vec::new();
        for &i in indices {
            let spec = match &self.plan.actions[i] {
                Action::CreateService { body, .. } => serde_json::to_value(body),
                Action::UpdateService { spec, .. } => serde_json::to_value(spec),
                _ => continue,
            };
            let mut spec = match spec {
                Ok(v) => v,
                Err(e) => {
                    self.fail(i, &format!("cannot serialize the spec: {e}"));
                    continue;
                }
            };
            if let Some(missing) = references(&spec)
                .into_iter()
                .find(|r| self.failed_objects.contains(r))
            {
                self.skip(i, format!("`{missing}` could not be created"));
                continue;
            }
            if let Err(e) = self.ids.fill(&mut spec) {
                self.fail(i, &e);
                continue;
            }
            bodies.insert(i, spec);
            go.push(i);
        }
        (bodies, go)
    }

    fn fail(&mut self, i: usize, message: &str) {
        let what = exec::describe(&self.plan.actions[i]);
        self.reports[i].outcome = Outcome::Failed(Failure::other(&what, message).message);
        if let Some(owner) = self.owner_stack(i) {
            self.failed_stacks.insert(owner);
        }
    }
}

/// The live keepalived services of a VIP policy: `(hostname, service
/// name, service id)`.
fn vip_services(snapshot: &Snapshot, owner: &ObjectRef) -> Vec<(String, String, String)> {
    let owner = owner.to_string();
    snapshot
        .services
        .iter()
        .filter(|s| s.meta.labels.get(crate::compose::LABEL_OWNER) == Some(&owner))
        .filter_map(|s| {
            let host = s.meta.labels.get(crate::plan::vip::LABEL_NODE)?;
            Some((host.clone(), s.meta.name.clone(), s.meta.id.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests;

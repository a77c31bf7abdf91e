//! One reconcile pass as a library function: what `bosun reconcile --once`
//! does once and `bosun run` does on every trigger.
//!
//! load manifests → [`DesiredState::build`] → observe → plan → apply →
//! observe + plan again (the verification must have nothing left to do now;
//! actions deferred behind a rollout are expected).
//!
//! The pass never panics and never returns `Err`: every way it can end is a
//! [`PassOutcome`] that status, metrics and the CLI read. Loading is split
//! from enforcing ([`load`] / [`enforce`]) so that the controller can keep
//! the last valid desired state in memory and keep enforcing it while the
//! source shows an invalid revision.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::status::{Condition, ObjectStatus, PassResult};
use crate::apply::{self, Outcome, Report};
use crate::compose::LABEL_SPEC_HASH;
use crate::manifest::{self, ObjectRef};
use crate::plan::{self, Action, DesiredState, Plan};
use crate::source::Confinement;
use crate::swarm::{self, Api, Kind, Snapshot};

/// How a pass runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassOptions {
    /// Remove what bosun owns and no longer wants (`--no-prune` clears it).
    pub prune: bool,
    /// How apply runs (concurrency, waits, retries).
    pub apply: apply::Options,
    /// The desired state is the one last enforced successfully: every
    /// change this pass makes corrects a drift. (Service updates are
    /// recognised as drift without it, by their unchanged spec hash.)
    pub unchanged: bool,
    /// Manage only objects whose names start with this prefix (several
    /// bosun instances or test runs sharing one swarm); empty: everything.
    pub name_prefix: String,
    /// The instance scope (`--scope`, [`crate::plan::LABEL_SCOPE`]).
    pub scope: Option<String>,
    /// Folders files may be read from besides the source root
    /// (`--allow-path`, [`crate::source::confine`]).
    pub allow_paths: Vec<PathBuf>,
    /// Stacks whose rollouts have not converged (the controller's); what
    /// waits for them is deferred.
    pub holds: plan::Holds,
}

impl Default for PassOptions {
    fn default() -> Self {
        PassOptions {
            prune: true,
            apply: apply::Options::default(),
            unchanged: false,
            name_prefix: String::new(),
            scope: None,
            allow_paths: Vec::new(),
            holds: plan::Holds::default(),
        }
    }
}

impl PassOptions {
    #[must_use]
    pub fn scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope.filter(|s| !s.is_empty());
        self
    }

    /// Also read files below these folders, outside the source root.
    #[must_use]
    pub fn allow_paths(mut self, dirs: Vec<PathBuf>) -> Self {
        self.allow_paths = dirs;
        self
    }

    #[must_use]
    pub fn prune(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    #[must_use]
    pub fn apply(mut self, apply: apply::Options) -> Self {
        self.apply = apply;
        self
    }

    #[must_use]
    pub fn holds(mut self, holds: plan::Holds) -> Self {
        self.holds = holds;
        self
    }

    /// The plan options of a pass.
    #[must_use]
    pub fn plan(&self) -> plan::Options {
        plan::Options::default()
            .prune(self.prune)
            .holds(self.holds.clone())
    }

    #[must_use]
    pub fn unchanged(mut self, unchanged: bool) -> Self {
        self.unchanged = unchanged;
        self
    }

    #[must_use]
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = prefix.into();
        self
    }
}

/// Why a pass failed, for per-cause backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureCause {
    /// The daemon could not be reached or read.
    Unreachable,
    /// Applying failed or did not converge.
    ApplyFailed,
    /// The manifests are invalid.
    Invalid,
}

/// What one pass did, as status, metrics and the CLI need it.
#[derive(Debug, Clone, PartialEq)]
pub struct PassOutcome {
    pub result: PassResult,
    /// Set when `result` is `Failed` or `Invalid`.
    pub cause: Option<FailureCause>,
    /// Per managed object (empty when the manifests are invalid or the
    /// daemon could not be read).
    pub objects: Vec<ObjectStatus>,
    /// Actions applied.
    pub changes: usize,
    /// Drifts corrected, by kind (`service` → 1).
    pub drift_corrected: BTreeMap<Kind, usize>,
    /// Objects managed, by kind.
    pub managed: BTreeMap<Kind, usize>,
    /// What went wrong; for invalid manifests the diagnostics with file and
    /// line.
    pub error: Option<String>,
    /// Warnings of loading the manifests.
    pub warnings: Vec<String>,
    /// The plan that was applied.
    pub plan: Option<Plan>,
    /// What apply did.
    pub report: Option<Report>,
    /// The verification plan, when it was not empty.
    pub remaining: Option<Plan>,
    /// Who holds each VIP after the pass (policies only).
    pub vips: Vec<crate::vip::status::PolicyStatus>,
}

impl PassOutcome {
    fn empty(result: PassResult, cause: Option<FailureCause>, error: Option<String>) -> Self {
        PassOutcome {
            result,
            cause,
            objects: Vec::new(),
            changes: 0,
            drift_corrected: BTreeMap::new(),
            managed: BTreeMap::new(),
            error,
            warnings: Vec::new(),
            plan: None,
            report: None,
            remaining: None,
            vips: Vec::new(),
        }
    }

    /// A pass that found the manifests invalid.
    #[must_use]
    pub fn invalid(error: impl Into<String>) -> Self {
        Self::empty(
            PassResult::Invalid,
            Some(FailureCause::Invalid),
            Some(error.into()),
        )
    }

    /// A pass that could not read the swarm.
    #[must_use]
    pub fn unreachable(error: impl Into<String>) -> Self {
        Self::empty(
            PassResult::Failed,
            Some(FailureCause::Unreachable),
            Some(error.into()),
        )
    }

    /// Drift corrections of every kind.
    #[must_use]
    pub fn drift_total(&self) -> usize {
        self.drift_corrected.values().sum()
    }
}

/// A revision's manifests, loaded and built.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub state: DesiredState,
    /// Loader warnings, rendered.
    pub warnings: Vec<String>,
}

/// Load and validate the manifests under `dir` and build the desired state;
/// `Err` carries the diagnostics (file, line, field) as text. Files are read
/// only inside `dir`.
pub fn load(
    dir: &Path,
    env: &BTreeMap<String, String>,
    scope: Option<&str>,
) -> Result<Loaded, String> {
    load_confined(dir, &Confinement::new(dir), env, scope)
}

/// [`load`], reading files only where `confine` allows (the source root,
/// which for a git source is the whole checkout, and `--allow-path`).
pub fn load_confined(
    dir: &Path,
    confine: &Confinement,
    env: &BTreeMap<String, String>,
    scope: Option<&str>,
) -> Result<Loaded, String> {
    let process: BTreeMap<String, String> = std::env::vars().collect();
    let desired = manifest::load_confined(dir, &process, confine).map_err(|d| d.to_string())?;
    let warnings = desired.warnings.iter().map(ToString::to_string).collect();
    let state = DesiredState::build(&desired, env)
        .map_err(|e| format!("error: {e}"))?
        .with_scope(scope);
    Ok(Loaded { state, warnings })
}

/// One pass over the manifests under `dir`.
pub async fn run_pass(
    api: &impl Api,
    dir: &Path,
    env: &BTreeMap<String, String>,
    opts: &PassOptions,
) -> PassOutcome {
    let confine = Confinement::new(dir).allow(&opts.allow_paths);
    match load_confined(dir, &confine, env, opts.scope.as_deref()) {
        Ok(loaded) => {
            let mut out = enforce(api, &loaded.state, opts).await;
            out.warnings = loaded.warnings;
            out
        }
        Err(diagnostics) => PassOutcome::invalid(diagnostics),
    }
}

/// Observe, plan, apply and verify a built desired state.
pub async fn enforce(api: &impl Api, state: &DesiredState, opts: &PassOptions) -> PassOutcome {
    match observe(api, opts).await {
        Ok(snapshot) => enforce_from(api, state, snapshot, opts).await,
        Err(e) => PassOutcome::unreachable(format!("cannot read the swarm's state: {e}")),
    }
}

async fn observe(api: &impl Api, opts: &PassOptions) -> swarm::Result<Snapshot> {
    swarm::observe(api)
        .await
        .map(|s| narrowed(s, &opts.name_prefix))
}

/// The objects only, for the verification: a plan does not read `/info`.
async fn observe_objects(api: &impl Api, opts: &PassOptions) -> swarm::Result<Snapshot> {
    swarm::observe_objects(api)
        .await
        .map(|s| narrowed(s, &opts.name_prefix))
}

/// The snapshot with only the objects named `prefix…` (networks: also the
/// ingress and local-scope networks, which services may use).
fn narrowed(mut snap: Snapshot, prefix: &str) -> Snapshot {
    if prefix.is_empty() {
        return snap;
    }
    snap.services.retain(|o| o.meta.name.starts_with(prefix));
    snap.configs.retain(|o| o.meta.name.starts_with(prefix));
    snap.secrets.retain(|o| o.meta.name.starts_with(prefix));
    snap.networks
        .retain(|n| n.meta.name.starts_with(prefix) || n.ingress || n.scope == "local");
    snap
}

/// [`enforce`] from a snapshot already taken (the CLI's, after it checked
/// that the daemon is a manager).
pub async fn enforce_from(
    api: &impl Api,
    state: &DesiredState,
    snapshot: Snapshot,
    opts: &PassOptions,
) -> PassOutcome {
    let started = std::time::Instant::now();
    let snapshot = narrowed(snapshot, &opts.name_prefix);
    let mut plan = plan::plan(state, &snapshot, &opts.plan());
    leave_nodes_alone(&mut plan, state, &opts.name_prefix);
    let drift = drifted(&plan, &snapshot, opts.unchanged);
    tracing::debug!(actions = plan.actions.len(), elapsed = ?started.elapsed(), "planned");
    let applied = apply::apply(api, &plan, state, &snapshot, &opts.apply).await;
    let (report, apply_error) = match applied {
        Ok(r) => (r, None),
        Err(e) => (e.report().clone(), Some(e.to_string())),
    };
    let mut out = PassOutcome::empty(PassResult::Success, None, None);
    out.changes = report
        .actions
        .iter()
        .filter(|a| a.outcome.is_done())
        .count();
    let mut remaining = None;
    // A pass that had nothing to do needs no second look: the snapshot it
    // planned from is the verification (a no-op pass is one observe).
    // apply waited for what swarm does asynchronously (a removed service's
    // tasks, a removed network leaving the list), so one look tells.
    if apply_error.is_none() && !plan.is_done() {
        // Rollouts this pass started hold their dependents back too.
        let mut verify_opts = opts.plan();
        for s in &report.started {
            verify_opts
                .holds
                .waiting
                .entry(s.stack.name.clone())
                .or_insert_with(|| "its rollout started".to_string());
        }
        match observe_objects(api, opts).await {
            Ok(after) => {
                let mut verify = plan::plan(state, &after, &verify_opts);
                leave_nodes_alone(&mut verify, state, &opts.name_prefix);
                if !verify.is_done() {
                    remaining = Some(verify);
                }
            }
            Err(e) => {
                out.result = PassResult::Failed;
                out.cause = Some(FailureCause::Unreachable);
                out.error = Some(format!("cannot read the swarm's state after applying: {e}"));
            }
        }
    }
    if let Some(e) = apply_error {
        out.result = PassResult::Failed;
        out.cause = Some(FailureCause::ApplyFailed);
        out.error = Some(e);
    } else if let Some(verify) = &remaining {
        out.result = PassResult::Failed;
        out.cause = Some(FailureCause::ApplyFailed);
        out.error = Some(format!(
            "the swarm does not match the manifests after applying; still to do:\n{}",
            verify.render_text(false)
        ));
    }
    out.objects = conditions(state, &plan, &report, remaining.as_ref(), &drift);
    for o in &out.objects {
        *out.managed.entry(o.kind).or_default() += 1;
    }
    for (kind, name) in &drift {
        let done = report
            .actions
            .iter()
            .any(|a| a.name == *name && a.kind == *kind && a.outcome.is_done());
        if done {
            *out.drift_corrected.entry(*kind).or_default() += 1;
        }
    }
    if !state.vips.is_empty()
        && let Ok(now) = observe_objects(api, opts).await
    {
        out.vips = crate::vip::status::of_swarm(api, &now).await;
    }
    out.plan = Some(plan);
    out.report = Some(report);
    out.remaining = remaining;
    out
}

/// Observe and plan without applying (an instance that does not hold the
/// lease): objects the plan would change are reported `Drifted` with
/// `why_not` as the message.
pub async fn observe_only(
    api: &impl Api,
    state: &DesiredState,
    opts: &PassOptions,
    why_not: &str,
) -> PassOutcome {
    let snapshot = match observe(api, opts).await {
        Ok(s) => s,
        Err(e) => return PassOutcome::unreachable(format!("cannot read the swarm's state: {e}")),
    };
    let plan = plan::plan(state, &snapshot, &opts.plan());
    let pending: BTreeSet<(Kind, String)> = plan
        .actions
        .iter()
        .map(|a| (a.kind(), a.name().to_string()))
        .collect();
    let mut out = PassOutcome::empty(PassResult::Success, None, None);
    out.objects = conditions(state, &plan, &Report::default(), None, &pending);
    for o in &mut out.objects {
        if o.condition == Condition::Drifted {
            o.message = format!("differs from its manifest; {why_not}");
        }
        *out.managed.entry(o.kind).or_default() += 1;
    }
    out.plan = Some(plan);
    out
}

/// Would a pass of `state` act now? Observes the swarm's objects and plans
/// (deferred actions do not count): the Docker event watcher's way to tell
/// bosun's own echoes from drift.
pub async fn has_work(
    api: &impl Api,
    state: &DesiredState,
    opts: &PassOptions,
) -> swarm::Result<bool> {
    let snapshot = observe_objects(api, opts).await?;
    let mut plan = plan::plan(state, &snapshot, &opts.plan());
    leave_nodes_alone(&mut plan, state, &opts.name_prefix);
    Ok(!plan.actions.is_empty())
}

/// Nodes have no names to narrow by: with a name prefix, bosun leaves them
/// alone unless these manifests label nodes themselves.
fn leave_nodes_alone(plan: &mut Plan, state: &DesiredState, prefix: &str) {
    if !prefix.is_empty() && state.node_rules.is_empty() {
        plan.actions
            .retain(|a| !matches!(a, Action::UpdateNode { .. }));
    }
}

/// `(kind, name)` of the plan's actions that correct a drift: everything
/// but removals when the desired state is unchanged, otherwise service
/// updates whose spec hash equals the live one (the manifest did not
/// change, the service did).
fn drifted(plan: &Plan, snapshot: &Snapshot, unchanged: bool) -> BTreeSet<(Kind, String)> {
    let mut out = BTreeSet::new();
    for a in &plan.actions {
        let kind = a.kind();
        let drift = match a {
            // Prune is not a correction; a network removal before its
            // re-creation is the same fix as the create.
            Action::RemoveService { .. }
            | Action::RemoveConfig { .. }
            | Action::RemoveSecret { .. }
            | Action::RemoveNetwork { .. } => false,
            Action::UpdateService { name, spec, .. } => {
                unchanged || {
                    let live = snapshot
                        .service(name)
                        .and_then(|s| s.meta.labels.get(LABEL_SPEC_HASH));
                    live.is_some() && live == spec.labels.get(LABEL_SPEC_HASH)
                }
            }
            _ => unchanged,
        };
        if drift {
            out.insert((kind, a.name().to_string()));
        }
    }
    out
}

/// Every object the desired state manages, with its condition.
fn conditions(
    state: &DesiredState,
    plan: &Plan,
    report: &Report,
    remaining: Option<&Plan>,
    drift: &BTreeSet<(Kind, String)>,
) -> Vec<ObjectStatus> {
    let mut objects: Vec<(Kind, String, Vec<ObjectRef>)> = Vec::new();
    for n in &state.networks {
        objects.push((Kind::Network, n.body.name.clone(), vec![n.owner.clone()]));
    }
    for s in &state.stacks {
        let owner = vec![s.owner()];
        let o = &s.objects;
        let names = o
            .networks
            .iter()
            .map(|x| (Kind::Network, &x.name))
            .chain(o.configs.iter().map(|x| (Kind::Config, &x.name)))
            .chain(o.secrets.iter().map(|x| (Kind::Secret, &x.name)))
            .chain(o.services.iter().map(|x| (Kind::Service, &x.name)));
        objects.extend(names.map(|(kind, name)| (kind, name.clone(), owner.clone())));
    }
    for a in &plan.actions {
        if let Action::UpdateNode { name, owners, .. } = a {
            objects.push((Kind::Node, name.clone(), owners.clone()));
        }
    }
    objects
        .into_iter()
        .map(|(kind, name, owners)| {
            let failure = report
                .actions
                .iter()
                .filter(|a| a.name == name && a.kind == kind)
                .find_map(|a| match &a.outcome {
                    Outcome::Failed(m) => Some(m.clone()),
                    Outcome::Skipped(why) => Some(format!("skipped: {why}")),
                    Outcome::Done { .. } | Outcome::Deferred(_) => None,
                })
                .or_else(|| {
                    plan.errors
                        .iter()
                        .find(|p| p.kind == kind && p.name == name)
                        .map(|p| p.message.clone())
                })
                .or_else(|| {
                    report
                        .waits
                        .iter()
                        .find(|w| {
                            owners
                                .iter()
                                .any(|o| o.kind == manifest::Kind::Stack && o.name == w.stack)
                        })
                        .filter(|_| kind == Kind::Service)
                        .and_then(|w| match &w.outcome {
                            Outcome::Failed(m) => Some(format!("did not converge: {m}")),
                            _ => None,
                        })
                })
                .or_else(|| {
                    remaining
                        .and_then(|r| {
                            r.actions
                                .iter()
                                .find(|a| a.kind() == kind && a.name() == name)
                        })
                        .map(|a| format!("still differs after applying ({})", a.kind_name()))
                });
            let deferred = plan
                .deferred
                .iter()
                .find(|d| d.action.kind() == kind && d.action.name() == name)
                .map(|d| d.reason.clone())
                .or_else(|| {
                    report
                        .actions
                        .iter()
                        .filter(|a| a.name == name && a.kind == kind)
                        .find_map(|a| match &a.outcome {
                            Outcome::Deferred(why) => Some(why.clone()),
                            _ => None,
                        })
                });
            let (condition, message) = if let Some(m) = failure {
                (Condition::Failed, m)
            } else if let Some(why) = deferred {
                (Condition::Deferred, format!("deferred: {why}"))
            } else if drift.contains(&(kind, name.clone())) {
                (
                    Condition::Drifted,
                    "drifted from its manifest; corrected".to_string(),
                )
            } else {
                (Condition::Ready, String::new())
            };
            ObjectStatus {
                kind,
                name,
                owner: plan::owners_text(&owners),
                condition,
                message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::{Fake, Kind, Method};

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write");
    }

    const STACK: &str = "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: web}\nspec:\n  wait: {enabled: false}\n  compose:\n    services:\n      app:\n        image: nginx:1\n        deploy: {replicas: 2}\n";

    fn env() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[tokio::test]
    async fn a_pass_should_create_then_find_nothing_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "web.yaml", STACK);
        let api = Fake::single_node();
        let opts = PassOptions::default();
        let first = run_pass(&api, dir.path(), &env(), &opts).await;
        assert_eq!(first.result, PassResult::Success, "{:?}", first.error);
        assert!(first.changes > 0);
        assert_eq!(first.managed.get(&Kind::Service), Some(&1));
        assert!(
            first
                .objects
                .iter()
                .all(|o| o.condition == Condition::Ready)
        );
        api.clear_calls();
        let second = run_pass(&api, dir.path(), &env(), &opts).await;
        assert_eq!(second.result, PassResult::Success);
        assert_eq!(second.changes, 0);
        assert_eq!(second.drift_total(), 0);
        // Nothing to do: the snapshot it planned from is the verification.
        let lists = api
            .calls()
            .iter()
            .filter(|c| c.method == Method::List && c.kind == Some(Kind::Service))
            .count();
        assert_eq!(lists, 1, "{:?}", api.calls());
    }

    #[tokio::test]
    async fn a_pass_should_report_a_hand_edit_as_a_corrected_drift() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "web.yaml", STACK);
        let api = Fake::single_node();
        let opts = PassOptions::default();
        run_pass(&api, dir.path(), &env(), &opts).await;
        let live = api
            .get(crate::swarm::Kind::Service, "web_app")
            .expect("web_app");
        let mut spec = live["Spec"].clone();
        spec["Mode"]["Replicated"]["Replicas"] = serde_json::json!(7);
        let id = live["ID"].as_str().expect("ID").to_string();
        let version = live["Version"]["Index"].as_u64().expect("version");
        api.update(crate::swarm::Kind::Service, &id, version, &spec)
            .await
            .expect("hand edit");
        let out = run_pass(&api, dir.path(), &env(), &opts).await;
        assert_eq!(out.result, PassResult::Success, "{:?}", out.error);
        assert_eq!(out.drift_corrected.get(&Kind::Service), Some(&1));
        let app = out
            .objects
            .iter()
            .find(|o| o.name == "web_app")
            .expect("web_app");
        assert_eq!(app.condition, Condition::Drifted);
    }

    #[tokio::test]
    async fn a_pass_should_report_invalid_manifests_with_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "bad.yaml",
            "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: web}\nspec:\n  nonsense: 1\n",
        );
        let api = Fake::single_node();
        let out = run_pass(&api, dir.path(), &env(), &PassOptions::default()).await;
        assert_eq!(out.result, PassResult::Invalid);
        let error = out.error.expect("error");
        assert!(error.contains("bad.yaml:"), "{error}");
        assert_eq!(api.writes(), 0);
    }

    #[tokio::test]
    async fn a_pass_should_fail_as_unreachable_when_the_daemon_does_not_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "web.yaml", STACK);
        let api = Fake::single_node();
        api.fail(
            crate::swarm::Method::Info,
            None,
            1,
            crate::swarm::fake::connect_failed(),
        );
        let out = run_pass(&api, dir.path(), &env(), &PassOptions::default()).await;
        assert_eq!(out.result, PassResult::Failed);
        assert_eq!(out.cause, Some(FailureCause::Unreachable));
    }
}

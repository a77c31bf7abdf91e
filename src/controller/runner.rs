//! `bosun run`: the loop that keeps a swarm equal to a source.
//!
//! Tasks, all feeding one trigger channel of the [`scheduler`]:
//!
//! - the source: a [`DirSource`] watch, or a git poll timer plus webhooks
//!   (both answered by a `git fetch` inside the pass, so that the checkout
//!   never changes under a running pass);
//! - Docker [`events`] (changes bosun did not make);
//! - the lease: acquire/renew every `renew_every`; gaining it triggers a
//!   pass;
//! - one watcher per stack rollout ([`Rollouts`]): passes apply with
//!   [`apply::Wait::Detach`] and return; a rollout that ends triggers a
//!   pass (its dependents were deferred meanwhile).
//!
//! The pass itself ([`Worker::pass`]) loads the revision (once per
//! revision), keeps the last *valid* desired state in memory and keeps
//! enforcing it while the source shows an invalid revision (the swarm keeps
//! the previous revision; status shows the diagnostics). Only the lease
//! holder applies; the others observe and report.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Mutex, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::events::{self, EventFilter};
use super::http::{self, HttpState};
use super::lease::{Lease, LeaseConfig};
use super::metrics::Metrics;
use super::pass::{self, FailureCause, Loaded, PassOptions, PassOutcome};
use super::rollouts::Rollouts;
use super::scheduler::{self, Activity, Trigger, Triggers};
use super::status::{LeaseStatus, PassResult, PassStatus, SourceStatus, StatusHandle, rfc3339};
use crate::apply;
use crate::error;
use crate::source::Confinement;
use crate::source::dir::{self, DirSource};
use crate::source::git::{GitConfig, GitSource, redact};
use crate::swarm::{Client, Kind};

/// Where the manifests come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A folder, watched.
    Dir(PathBuf),
    /// A git repository, polled every `interval` and on webhooks.
    Git(GitConfig),
}

/// Everything `bosun run` needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub source: Source,
    /// Where `/healthz`, `/readyz`, `/status`, `/metrics`, `/hooks/git` are served.
    pub listen: SocketAddr,
    /// Resync, backoff and settle timing.
    pub scheduler: scheduler::Config,
    /// The webhook secret; `None` refuses webhooks.
    pub webhook_secret: Option<Vec<u8>>,
    pub pass: PassOptions,
    pub lease: LeaseConfig,
    /// Interpolation variables (the process environment).
    pub env: BTreeMap<String, String>,
    /// The folder watch's debounce window.
    pub debounce: Duration,
}

impl RunConfig {
    #[must_use]
    pub fn new(source: Source, listen: SocketAddr, holder: impl Into<String>) -> Self {
        RunConfig {
            source,
            listen,
            scheduler: scheduler::Config::default(),
            webhook_secret: None,
            pass: PassOptions::default(),
            lease: LeaseConfig::new(holder),
            env: BTreeMap::new(),
            debounce: dir::DEFAULT_DEBOUNCE,
        }
    }
}

/// What [`run`] can fail with before the loop starts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP listener could not be bound.
    #[error(transparent)]
    BindFailed(#[from] http::Error),
    /// The manifest folder could not be watched.
    #[error(transparent)]
    WatchFailed(#[from] dir::Error),
    /// The git source's settings are invalid.
    #[error(transparent)]
    GitInvalid(#[from] crate::source::git::Error),
    /// The Docker daemon's address or TLS settings are unusable.
    #[error("cannot set up the Docker client")]
    ConnectFailed(#[source] crate::swarm::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How [`run`] is stopped, one mechanism for every task: [`stop`](Self::stop)
/// (the first signal) ends the watches and lets the running pass finish,
/// the lease renewed until it has; [`abort`](Self::abort) (a second signal)
/// also cancels the running pass.
/// Either way [`run`] then awaits its tasks, releases the lease and stops
/// the HTTP server before it returns.
#[derive(Debug, Clone)]
pub struct Shutdown {
    abort: CancellationToken,
    /// A child of `abort`: aborting stops too.
    stop: CancellationToken,
}

impl Default for Shutdown {
    fn default() -> Self {
        let abort = CancellationToken::new();
        let stop = abort.child_token();
        Shutdown { abort, stop }
    }
}

impl Shutdown {
    #[must_use]
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Stop: side tasks end, the running pass finishes.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stop and cancel the running pass.
    pub fn abort(&self) {
        self.abort.cancel();
    }
}

/// How long shutdown waits for the side tasks, the lease release and the
/// HTTP server; each is a bounded request or a loop that checks its token.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Run until `shutdown` says stop. [`Stopped::Aborted`](scheduler::Stopped)
/// when the running pass was cancelled.
pub async fn run(config: RunConfig, shutdown: Shutdown) -> Result<scheduler::Stopped> {
    // The source first: a missing folder or a bad git setting is reported
    // before anything reaches for the network.
    let (hook_tx, hook_rx) = mpsc::channel::<()>(1);
    let (tx, rx) = mpsc::channel::<Trigger>(64);
    let _ = tx.try_send(Trigger::Initial);
    let mut tasks = JoinSet::new();
    let (dir, git) = spawn_source(&config, hook_rx, &tx, &shutdown.stop, &mut tasks)?;
    let client = Client::connect().await.map_err(Error::ConnectFailed)?;
    let metrics = Metrics::new(client.counter());
    let status = source_status(&config.source);
    // The HTTP server outlives the pass (status stays readable while it
    // finishes): its own token, cancelled last or by an abort.
    let http_stop = shutdown.abort.child_token();
    let server = serve_http(&config, &status, &metrics, hook_tx, http_stop.clone()).await?;

    // Rollouts are watched beside the loop: a pass writes and returns.
    let mut opts = config.pass.clone();
    if opts.apply.wait == apply::Wait::Block {
        opts.apply = opts.apply.detach();
    }
    let rollouts = Rollouts::new(
        Arc::new(client.clone()),
        status.clone(),
        metrics.clone(),
        tx.clone(),
        shutdown.stop.child_token(),
        opts.apply.poll_interval,
    );
    let enforced: Enforced = Arc::default();
    let activity = Activity::default();
    let check = EchoCheck {
        client: client.clone(),
        opts: opts.clone(),
        enforced: enforced.clone(),
        rollouts: rollouts.clone(),
    };
    spawn_events(
        &config,
        &client,
        check,
        &activity,
        &tx,
        &shutdown.stop,
        &mut tasks,
    );
    let lease = Arc::new(Mutex::new(Lease::new(
        Arc::new(client.clone()),
        config.lease.clone(),
    )));
    // Renewed until the running pass has finished: a pass that outlives
    // the lease after the first signal must not let another instance apply
    // beside it.
    let lease_stop = shutdown.abort.child_token();
    spawn_lease_renewal(
        &config,
        &lease,
        &status,
        &metrics,
        tx,
        &lease_stop,
        &mut tasks,
    );

    let worker = Arc::new(Mutex::new(Worker {
        client,
        dir,
        git,
        env: config.env.clone(),
        opts,
        rollouts,
        enforced,
        status: status.clone(),
        metrics: metrics.clone(),
        lease: lease.clone(),
        loaded: None,
        invalid: None,
        last_success_revision: None,
    }));
    let stopped = scheduler::run(
        config.scheduler,
        activity,
        rx,
        move |triggers| {
            let worker = worker.clone();
            async move { worker.lock().await.pass(triggers).await }
        },
        shutdown.stop.clone().cancelled_owned(),
        shutdown.abort.clone().cancelled_owned(),
    )
    .await;
    if stopped == scheduler::Stopped::Aborted {
        tracing::warn!("second signal: the running pass is cancelled");
    }
    tracing::info!("shutting down: releasing the lease, stopping the HTTP server");
    // The scheduler returns when stopped, aborted, or when every trigger
    // sender is gone; make sure every task sees it.
    shutdown.stop();
    lease_stop.cancel();
    wind_down(tasks, &lease, server, &http_stop).await;
    Ok(stopped)
}

/// What `/status` says of the source before the first pass.
fn source_status(source: &Source) -> StatusHandle {
    let (location, kind) = match source {
        Source::Dir(d) => (d.display().to_string(), "dir"),
        Source::Git(g) => (redact(&g.url), "git"),
    };
    StatusHandle::new(SourceStatus {
        kind: kind.to_string(),
        location,
        revision: None,
        error: None,
    })
}

/// The desired state being enforced, for the event watcher's check.
type Enforced = Arc<std::sync::Mutex<Option<Arc<Loaded>>>>;

/// Would a pass act now? (See [`events`]: how echoes are told from drift.)
#[derive(Clone)]
struct EchoCheck {
    client: Client,
    opts: PassOptions,
    enforced: Enforced,
    rollouts: Rollouts<Client>,
}

impl EchoCheck {
    async fn drifted(self) -> bool {
        let loaded = self
            .enforced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // Nothing enforced yet: let the pass find out.
        let Some(loaded) = loaded else { return true };
        let opts = self.opts.holds(self.rollouts.holds(&loaded.state));
        pass::has_work(&self.client, &loaded.state, &opts)
            .await
            .unwrap_or(true)
    }
}

/// Docker events: changes bosun did not make trigger a pass.
fn spawn_events(
    config: &RunConfig,
    client: &Client,
    check: EchoCheck,
    activity: &Activity,
    tx: &mpsc::Sender<Trigger>,
    stop: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    let events = events::watch(
        client.clone(),
        EventFilter {
            lease_name: config.lease.name.clone(),
            name_prefix: config.pass.name_prefix.clone(),
        },
        move || check.clone().drifted(),
        activity.clone(),
        tx.clone(),
    );
    let stop = stop.child_token();
    tasks.spawn(async move {
        stop.run_until_cancelled(Box::pin(events)).await;
    });
}

/// Bind the listener and serve the endpoints until `stop`.
async fn serve_http(
    config: &RunConfig,
    status: &StatusHandle,
    metrics: &Metrics,
    hook_tx: mpsc::Sender<()>,
    stop: CancellationToken,
) -> Result<JoinHandle<http::Result<()>>> {
    let listener = http::bind(config.listen).await?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    Ok(tokio::spawn(http::serve(
        listener,
        HttpState {
            status: status.clone(),
            metrics: metrics.clone(),
            webhook_secret: config.webhook_secret.clone(),
            hook_tx,
        },
        stop.cancelled_owned(),
    )))
}

/// The source's tasks: the folder watch, or the git poll timer and the
/// webhook forwarder. The folder (or checkout) passes read, and the git
/// source when there is one.
fn spawn_source(
    config: &RunConfig,
    mut hook_rx: mpsc::Receiver<()>,
    tx: &mpsc::Sender<Trigger>,
    stop: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<(PathBuf, Option<GitSource>)> {
    match &config.source {
        Source::Dir(d) => {
            let mut watch = DirSource::new(d, dir::Config::default().debounce(config.debounce))?;
            let root = watch.root().to_path_buf();
            let tx = tx.clone();
            let stop = stop.child_token();
            tasks.spawn(async move {
                while let Some(Some(t)) = stop.run_until_cancelled(watch.changed()).await {
                    tracing::debug!(paths = ?t.paths, rescan = t.rescan, "folder changed");
                    if tx.send(Trigger::Source).await.is_err() {
                        break;
                    }
                }
            });
            Ok((root, None))
        }
        Source::Git(g) => {
            let git = GitSource::new(g.clone())?;
            let interval = git.interval();
            let poll_tx = tx.clone();
            let poll_stop = stop.child_token();
            tasks.spawn(async move {
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while poll_stop.run_until_cancelled(tick.tick()).await.is_some() {
                    if poll_tx.send(Trigger::Poll).await.is_err() {
                        break;
                    }
                }
            });
            let hook_fwd = tx.clone();
            let hook_stop = stop.child_token();
            tasks.spawn(async move {
                while let Some(Some(())) = hook_stop.run_until_cancelled(hook_rx.recv()).await {
                    if hook_fwd.send(Trigger::Webhook).await.is_err() {
                        break;
                    }
                }
            });
            Ok((git.dir(), Some(git)))
        }
    }
}

/// Acquire or renew the lease every `renew_every`; gaining it triggers a
/// pass. Only the wait between renewals is cancelled: a renewal in flight
/// completes, so its write is never cut in the middle.
fn spawn_lease_renewal(
    config: &RunConfig,
    lease: &Arc<Mutex<Lease<Client>>>,
    status: &StatusHandle,
    metrics: &Metrics,
    tx: mpsc::Sender<Trigger>,
    stop: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    let lease = lease.clone();
    let status = status.clone();
    let metrics = metrics.clone();
    let every = config.lease.renew_every;
    let stop = stop.child_token();
    tasks.spawn(async move {
        while stop
            .run_until_cancelled(tokio::time::sleep(every))
            .await
            .is_some()
        {
            let (gained, lost) = keep_lease(&lease, &status, &metrics).await;
            if gained && tx.send(Trigger::Lease).await.is_err() {
                break;
            }
            if lost {
                tracing::warn!("lease lost: another instance applies now");
            }
        }
    });
}

/// After the loop: await the side tasks (their tokens are cancelled), then
/// release the lease, then stop the HTTP server; each bounded by
/// [`SHUTDOWN_GRACE`].
async fn wind_down(
    mut tasks: JoinSet<()>,
    lease: &Mutex<Lease<Client>>,
    server: JoinHandle<http::Result<()>>,
    http_stop: &CancellationToken,
) {
    let joined = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if joined.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "side tasks did not stop in 5 s; dropping them"
        );
        tasks.abort_all();
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, async { lease.lock().await.release().await }).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %error::chain(&e), "cannot release the lease; it expires on its own");
        }
        Err(_) => tracing::warn!("the lease release took over 5 s; it expires on its own"),
    }
    http_stop.cancel();
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %error::chain(&e), "HTTP server failed"),
        Err(_) => tracing::warn!("HTTP server did not stop in 5 s"),
        _ => {}
    }
}

/// Acquire or renew the lease and publish who holds it; `(gained, lost)`.
async fn keep_lease(
    lease: &Mutex<Lease<Client>>,
    status: &StatusHandle,
    metrics: &Metrics,
) -> (bool, bool) {
    let mut lease = lease.lock().await;
    let before = lease.held();
    let result = if before {
        lease.renew().await
    } else {
        lease.try_acquire().await
    };
    if let Err(e) = result {
        tracing::warn!(error = %error::chain(&e), "lease: cannot read or write it");
    }
    let held = lease.held();
    let holder = lease.holder();
    status.update(|s| {
        s.lease = LeaseStatus {
            holder: holder.clone(),
            held,
        };
    });
    metrics.set_lease_held(held);
    (!before && held, before && !held)
}

/// The state a pass needs between passes.
struct Worker {
    client: Client,
    /// Where the manifests are read (the folder, or the git checkout's path).
    dir: PathBuf,
    git: Option<GitSource>,
    env: BTreeMap<String, String>,
    opts: PassOptions,
    /// Rollouts started by passes, watched beside the loop.
    rollouts: Rollouts<Client>,
    /// What is enforced, shared with the event watcher's check.
    enforced: Enforced,
    status: StatusHandle,
    metrics: Metrics,
    lease: Arc<Mutex<Lease<Client>>>,
    /// The last valid revision, loaded: what is enforced.
    loaded: Option<(String, Arc<Loaded>)>,
    /// The source's current revision when it is invalid, with the diagnostics.
    invalid: Option<(String, String)>,
    last_success_revision: Option<String>,
}

impl Worker {
    async fn pass(&mut self, triggers: Triggers) -> Result<(), FailureCause> {
        let span = tracing::info_span!(
            "pass",
            trigger = %scheduler::describe(&triggers),
            revision = tracing::field::Empty
        );
        self.pass_inner(triggers).instrument(span).await
    }

    async fn pass_inner(&mut self, triggers: Triggers) -> Result<(), FailureCause> {
        let started = SystemTime::now();
        let clock = Instant::now();
        let trigger = scheduler::describe(&triggers);

        // 1. Which revision, and is it new?
        let revision = match self.current_revision(&triggers).await {
            Ok(found) => {
                self.status.update(|s| s.source.error = None);
                match found {
                    Some(r) => r,
                    // A git poll that found nothing new: nothing to do.
                    None => return Ok(()),
                }
            }
            Err(e) => {
                self.status.update(|s| s.source.error = Some(e.clone()));
                // The last good revision is in memory: it stays enforced
                // (drift is still reverted) until the source works again.
                if let Some((last, _)) = &self.loaded {
                    tracing::error!(error = %e, revision = %last, "cannot sync the source; the last good revision stays enforced");
                    last.clone()
                } else {
                    let out = PassOutcome::unreachable(e);
                    self.record(&out, started, clock, &trigger, "");
                    return Err(FailureCause::Unreachable);
                }
            }
        };
        tracing::Span::current().record("revision", revision.as_str());

        // 2. Load it, once per revision.
        let loaded_rev = self.loaded.as_ref().map(|(r, _)| r.clone());
        let invalid_rev = self.invalid.as_ref().map(|(r, _)| r.clone());
        if loaded_rev.as_deref() != Some(&revision) && invalid_rev.as_deref() != Some(&revision) {
            // The source root: the folder, or the whole git checkout (a
            // manifest under `--path` may name files elsewhere in the repository).
            let root = self
                .git
                .as_ref()
                .map_or(self.dir.as_path(), |g| g.config().checkout_dir.as_path());
            let confine = Confinement::new(root).allow(&self.opts.allow_paths);
            match pass::load_confined(&self.dir, &confine, &self.env, self.opts.scope.as_deref()) {
                Ok(l) => {
                    for w in &l.warnings {
                        tracing::warn!("{w}");
                    }
                    self.loaded = Some((revision.clone(), Arc::new(l)));
                    self.invalid = None;
                }
                Err(diagnostics) => {
                    tracing::error!(%revision, "invalid revision; the last valid one stays enforced:\n{diagnostics}");
                    self.invalid = Some((revision.clone(), diagnostics.clone()));
                    let out = PassOutcome::invalid(diagnostics);
                    self.record(&out, started, clock, &trigger, &revision);
                    // Nothing of it is applied; the next resync or event
                    // enforces the last valid revision.
                    return Ok(());
                }
            }
        }
        let Some((enforced, loaded)) = self.loaded.clone() else {
            // Invalid, and no valid revision seen since start: nothing to
            // enforce yet.
            return Ok(());
        };

        // 3. Apply if we hold the lease, observe otherwise.
        let (held, holder) = {
            let mut lease = self.lease.lock().await;
            if !lease.held()
                && let Err(e) = lease.try_acquire().await
            {
                tracing::warn!(error = %error::chain(&e), "lease: cannot read or write it");
            }
            (lease.held(), lease.holder())
        };
        self.status.update(|s| {
            s.lease = LeaseStatus {
                holder: holder.clone(),
                held,
            };
        });
        self.metrics.set_lease_held(held);
        *self
            .enforced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(loaded.clone());
        let holds = self.rollouts.holds(&loaded.state);
        let out = if held {
            let opts = self
                .opts
                .clone()
                .holds(holds)
                .unchanged(self.last_success_revision.as_deref() == Some(enforced.as_str()));
            let out = pass::enforce(&self.client, &loaded.state, &opts).await;
            if let Some(report) = &out.report {
                self.rollouts.begin(&report.started, &loaded.state);
            }
            out
        } else {
            let why = format!(
                "not applied: {} holds the lease",
                holder.as_deref().unwrap_or("another instance")
            );
            pass::observe_only(&self.client, &loaded.state, &self.opts, &why).await
        };
        // Deferred work is not done yet: the revision is not enforced whole.
        let deferred = out.plan.as_ref().is_some_and(|p| !p.deferred.is_empty())
            || out
                .report
                .as_ref()
                .is_some_and(|r| !r.deferred().is_empty());
        if held && out.result == PassResult::Success && !deferred {
            self.last_success_revision = Some(enforced.clone());
        }
        for why in out.report.iter().flat_map(apply::Report::deferred).chain(
            out.plan
                .iter()
                .flat_map(|p| &p.deferred)
                .map(|d| format!("{} {}: {}", d.action.kind_name(), d.action.name(), d.reason)),
        ) {
            tracing::info!("deferred: {why}");
        }
        tracing::info!(
            result = %out.result,
            changes = out.changes,
            drift = out.drift_total(),
            applied = held,
            "pass finished"
        );
        self.record(&out, started, clock, &trigger, &enforced);
        match out.cause {
            Some(cause) if out.result != PassResult::Success => Err(cause),
            _ => Ok(()),
        }
    }

    /// The revision to work on: the folder's content hash, or the git
    /// commit after a fetch when the triggers ask for one (`None`: a poll
    /// found nothing new and nothing else asked for a pass).
    async fn current_revision(&mut self, triggers: &Triggers) -> Result<Option<String>, String> {
        let Some(git) = &mut self.git else {
            return dir::revision(&self.dir)
                .map(Some)
                .map_err(|e| error::chain(&e));
        };
        let fetch = triggers
            .iter()
            .any(|t| matches!(t, Trigger::Initial | Trigger::Poll | Trigger::Webhook))
            || git.revision().is_none();
        if !fetch {
            return Ok(git.revision().map(str::to_string));
        }
        let synced = git.sync().await.map_err(|e| error::chain(&e))?;
        self.dir.clone_from(&synced.dir);
        let only_poll = triggers
            .iter()
            .all(|t| matches!(t, Trigger::Poll | Trigger::Webhook));
        if only_poll && !synced.changed {
            tracing::debug!(revision = %synced.revision, "no new commit");
            return Ok(None);
        }
        Ok(Some(synced.revision))
    }

    fn record(
        &self,
        out: &PassOutcome,
        started: SystemTime,
        clock: Instant,
        trigger: &str,
        revision: &str,
    ) {
        let duration = clock.elapsed();
        let pass = PassStatus {
            started_at: rfc3339(started),
            duration_ms: duration.as_millis() as u64,
            result: out.result,
            trigger: trigger.to_string(),
            revision: revision.to_string(),
            error: out.error.clone(),
            changes: out.changes,
        };
        let invalid = self.invalid.clone();
        self.status.update(|s| {
            s.record_pass(pass);
            if out.result != PassResult::Invalid && (out.result == PassResult::Success || !out.objects.is_empty()) {
                s.objects.clone_from(&out.objects);
                s.vips.clone_from(&out.vips);
                // Conditions of rollouts in progress or failed over the
                // pass's own, in the same update: no reader sees one
                // without the other.
                self.rollouts.overlay(&mut s.objects);
            }
            // While the source's revision is invalid, say so even when the
            // last valid one was enforced fine.
            if let Some((rev, diagnostics)) = &invalid {
                s.last_error = Some(format!(
                    "revision {rev} is invalid; the last valid revision stays enforced:\n{diagnostics}"
                ));
            }
        });
        self.metrics.pass_finished(out.result, duration);
        if out.result == PassResult::Success {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            self.metrics.set_last_success(now.as_secs_f64());
        }
        if !out.managed.is_empty() || out.result == PassResult::Success {
            for kind in Kind::MANAGED {
                self.metrics
                    .set_objects(kind, out.managed.get(&kind).copied().unwrap_or(0) as u64);
            }
        }
        for (kind, n) in &out.drift_corrected {
            self.metrics.drift_corrected(*kind, *n as u64);
        }
    }
}

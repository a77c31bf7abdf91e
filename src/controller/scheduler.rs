//! When passes run: coalescing, periodic resync, backoff, shutdown.
//!
//! Everything that may warrant a pass sends a [`Trigger`] into one channel:
//! the folder watch, the git poll timer, the webhook, Docker events. The
//! scheduler owns the only place where a pass starts, so two passes never
//! run at once; triggers that arrive while a pass runs are merged into one
//! pending set, which becomes exactly one follow-up pass. Triggers are hints
//! (kube-rs style): every pass re-reads the world, so losing the detail of
//! *which* event fired costs nothing.
//!
//! A resync runs `resync` after the last pass even when nothing fired
//! (missed events, a daemon restarted, a lease taken over).
//!
//! A failed pass is retried after an exponential backoff kept *per cause*
//! (daemon unreachable, apply failed, …), capped; any success resets every
//! cause. While backing off, hints that cannot change the outcome (Docker
//! events, resync) wait for the retry; a new revision (folder change, git
//! poll, webhook) runs at once.
//!
//! Shutdown is two futures: after `shutdown` no new pass starts and the
//! running one finishes; `abort` drops the running pass at once.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    /// The first pass after start.
    Initial,
    /// The watched folder changed.
    Source,
    /// A webhook said the repository changed: fetch now.
    Webhook,
    /// The git poll interval elapsed: fetch, pass if the revision moved.
    Poll,
    /// A Docker event showed a change bosun did not make.
    Event,
    /// The periodic resync.
    Resync,
    /// The retry of a failed pass.
    Retry,
    /// The lease was acquired: apply what only observing showed.
    Lease,
    /// A rollout ended: apply the stacks that waited for it.
    Rollout,
}

impl Trigger {
    /// A new revision may be waiting: run even while backing off.
    #[must_use]
    pub fn is_source(self) -> bool {
        matches!(
            self,
            Trigger::Initial
                | Trigger::Source
                | Trigger::Webhook
                | Trigger::Poll
                | Trigger::Lease
                | Trigger::Rollout
        )
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Initial => "initial",
            Trigger::Source => "source",
            Trigger::Webhook => "webhook",
            Trigger::Poll => "poll",
            Trigger::Event => "event",
            Trigger::Resync => "resync",
            Trigger::Retry => "retry",
            Trigger::Lease => "lease",
            Trigger::Rollout => "rollout",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The triggers one pass answers, deduplicated and ordered.
pub type Triggers = BTreeSet<Trigger>;

/// Render a set of triggers for logs and status: `source,event`.
#[must_use]
pub fn describe(triggers: &Triggers) -> String {
    triggers
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Timing of the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// A pass at least this long after the last one, even when nothing fired.
    pub resync: Duration,
    /// The first retry delay of a failing cause; doubles per failure.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_cap: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resync: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// The retry delay after the `n`th (1-based) consecutive failure of
    /// one cause.
    #[must_use]
    pub fn backoff(&self, n: u32) -> Duration {
        // backon's sequence (base doubling up to the cap, no jitter), at
        // the failure count: the count is kept per cause across passes.
        let nth = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
        ExponentialBuilder::new()
            .with_min_delay(self.backoff_base)
            .with_max_delay(self.backoff_cap)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(nth)
            .unwrap_or(self.backoff_cap)
    }
}

/// Whether a pass is running, shared with the Docker event watcher: it
/// looks at the events that came during a pass once the pass has ended.
#[derive(Debug, Clone, Default)]
pub struct Activity(Arc<Mutex<bool>>);

impl Activity {
    fn set(&self, running: bool) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = running;
    }

    pub(crate) fn started(&self) {
        self.set(true);
    }

    pub(crate) fn finished(&self) {
        self.set(false);
    }

    /// A pass is running.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Shut down gracefully: the running pass (if any) finished.
    Gracefully,
    /// Aborted: the running pass was dropped.
    Aborted,
    /// Every trigger sender was dropped.
    Closed,
}

/// Run passes until shut down. `work` runs one pass for a set of triggers
/// and returns `Err(cause)` when it failed.
pub async fn run<C, W, F>(
    config: Config,
    activity: Activity,
    mut triggers: mpsc::Receiver<Trigger>,
    mut work: W,
    shutdown: impl Future<Output = ()>,
    abort: impl Future<Output = ()>,
) -> Stopped
where
    C: Eq + Hash + fmt::Debug,
    W: FnMut(Triggers) -> F,
    F: Future<Output = Result<(), C>>,
{
    tokio::pin!(shutdown);
    tokio::pin!(abort);
    let mut pending: Triggers = BTreeSet::new();
    let mut failures: HashMap<C, u32> = HashMap::new();
    let mut retry_at: Option<Instant> = None;
    let mut next_resync = Instant::now() + config.resync;
    let mut open = true;
    loop {
        // Ready now: a source trigger, or anything once no retry is pending.
        let held = retry_at.is_some_and(|r| Instant::now() < r);
        let ready = pending.iter().any(|t| t.is_source()) || (!held && !pending.is_empty());
        if ready {
            let batch = std::mem::take(&mut pending);
            retry_at = None;
            activity.started();
            let pass = work(batch);
            tokio::pin!(pass);
            let mut stopping = false;
            let result = loop {
                tokio::select! {
                    biased;
                    () = &mut abort => return Stopped::Aborted,
                    () = &mut shutdown, if !stopping => {
                        tracing::info!("shutting down: letting the running pass finish");
                        stopping = true;
                    }
                    r = &mut pass => break r,
                    t = triggers.recv(), if open && !stopping => match t {
                        Some(t) => { pending.insert(t); }
                        None => open = false,
                    },
                }
            };
            activity.finished();
            next_resync = Instant::now() + config.resync;
            match result {
                Ok(()) => failures.clear(),
                Err(cause) => {
                    let n = failures.entry(cause).or_default();
                    *n = n.saturating_add(1);
                    let delay = config.backoff(*n);
                    tracing::info!(
                        retry_in_ms = delay.as_millis() as u64,
                        failures = *n,
                        "pass failed; backing off"
                    );
                    retry_at = Some(Instant::now() + delay);
                }
            }
            if stopping {
                return Stopped::Gracefully;
            }
            continue;
        }
        if !open && pending.is_empty() && retry_at.is_none() {
            return Stopped::Closed;
        }
        tokio::select! {
            biased;
            () = &mut abort => return Stopped::Aborted,
            () = &mut shutdown => return Stopped::Gracefully,
            t = triggers.recv(), if open => match t {
                Some(t) => { pending.insert(t); }
                None => open = false,
            },
            () = tokio::time::sleep_until(retry_at.unwrap_or(next_resync)), if retry_at.is_some() => {
                pending.insert(Trigger::Retry);
                retry_at = None;
            }
            () = tokio::time::sleep_until(next_resync) => {
                pending.insert(Trigger::Resync);
                next_resync = Instant::now() + config.resync;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Cause {
        Unreachable,
        Apply,
    }

    /// What the fake pass saw: `(start, end, triggers)` in virtual time.
    type Log = Arc<Mutex<Vec<(Duration, Duration, Triggers)>>>;

    fn config() -> Config {
        Config {
            resync: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(8),
        }
    }

    /// A fake pass taking `took`, failing with the causes in `script` first.
    fn fake(
        log: Log,
        took: Duration,
        script: Vec<Option<Cause>>,
    ) -> impl FnMut(Triggers) -> std::pin::Pin<Box<dyn Future<Output = Result<(), Cause>> + Send>>
    {
        let start = Instant::now();
        let running = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(script.into_iter()));
        move |triggers| {
            let log = log.clone();
            let running = running.clone();
            let next = script.lock().expect("script").next().flatten();
            Box::pin(async move {
                assert_eq!(
                    running.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two passes at once"
                );
                let t0 = start.elapsed();
                tokio::time::sleep(took).await;
                running.fetch_sub(1, Ordering::SeqCst);
                log.lock()
                    .expect("log")
                    .push((t0, start.elapsed(), triggers));
                next.map_or(Ok(()), Err)
            })
        }
    }

    fn never() -> impl Future<Output = ()> {
        std::future::pending()
    }

    fn set(ts: &[Trigger]) -> Triggers {
        ts.iter().copied().collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_triggers_during_a_pass_should_give_exactly_one_follow_up() {
        let log: Log = Log::default();
        let (tx, rx) = mpsc::channel(64);
        tx.send(Trigger::Initial).await.expect("send");
        let work = fake(log.clone(), Duration::from_secs(5), vec![]);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sched = tokio::spawn(run(
            config(),
            Activity::default(),
            rx,
            work,
            async {
                let _ = stop_rx.await;
            },
            never(),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        for _ in 0..10 {
            tx.send(Trigger::Event).await.expect("send");
            tx.send(Trigger::Source).await.expect("send");
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        stop_tx.send(()).expect("stop");
        assert_eq!(sched.await.expect("join"), Stopped::Gracefully);
        let log = log.lock().expect("log").clone();
        assert_eq!(log.len(), 2, "{log:?}");
        assert_eq!(log[0].2, set(&[Trigger::Initial]));
        assert_eq!(log[1].2, set(&[Trigger::Source, Trigger::Event]));
        // The follow-up starts when the first ends, not before.
        assert_eq!(log[1].0, log[0].1);
    }

    #[tokio::test(start_paused = true)]
    async fn resync_should_fire_when_nothing_else_does() {
        let log: Log = Log::default();
        let (tx, rx) = mpsc::channel(8);
        tx.send(Trigger::Initial).await.expect("send");
        let mut cfg = config();
        cfg.resync = Duration::from_secs(60);
        let sched = tokio::spawn(run(
            cfg,
            Activity::default(),
            rx,
            fake(log.clone(), Duration::from_secs(1), vec![]),
            tokio::time::sleep(Duration::from_secs(200)),
            never(),
        ));
        assert_eq!(sched.await.expect("join"), Stopped::Gracefully);
        drop(tx);
        let log = log.lock().expect("log").clone();
        let starts: Vec<u64> = log.iter().map(|l| l.0.as_secs()).collect();
        // 0 (initial), then 60 s after the end of each pass.
        assert_eq!(starts, vec![0, 61, 122, 183]);
        assert!(log[1..].iter().all(|l| l.2 == set(&[Trigger::Resync])));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_should_back_off_exponentially_per_cause_and_reset_on_success() {
        use Cause::{Apply, Unreachable};
        let log: Log = Log::default();
        let (tx, rx) = mpsc::channel(8);
        tx.send(Trigger::Initial).await.expect("send");
        let script = vec![
            Some(Unreachable), // t=0 → retry in 1
            Some(Unreachable), // t=1 → 2
            Some(Unreachable), // t=3 → 4
            Some(Apply),       // t=7 → 1 (its own counter)
            Some(Unreachable), // t=8 → 8
            Some(Unreachable), // t=16 → 8 (capped)
            None,              // t=24 succeeds → no more retries
        ];
        let sched = tokio::spawn(run(
            config(),
            Activity::default(),
            rx,
            fake(log.clone(), Duration::ZERO, script),
            tokio::time::sleep(Duration::from_secs(100)),
            never(),
        ));
        assert_eq!(sched.await.expect("join"), Stopped::Gracefully);
        drop(tx);
        let starts: Vec<u64> = log
            .lock()
            .expect("log")
            .iter()
            .map(|l| l.0.as_secs())
            .collect();
        assert_eq!(starts, vec![0, 1, 3, 7, 8, 16, 24]);
    }

    #[tokio::test(start_paused = true)]
    async fn events_should_wait_for_the_backoff_but_a_new_revision_should_not() {
        let log: Log = Log::default();
        let (tx, rx) = mpsc::channel(8);
        tx.send(Trigger::Initial).await.expect("send");
        let mut cfg = config();
        cfg.backoff_base = Duration::from_secs(10);
        cfg.backoff_cap = Duration::from_secs(10);
        let sched = tokio::spawn(run(
            cfg,
            Activity::default(),
            rx,
            fake(log.clone(), Duration::ZERO, vec![Some(Cause::Apply)]),
            tokio::time::sleep(Duration::from_secs(30)),
            never(),
        ));
        tokio::time::sleep(Duration::from_secs(2)).await;
        tx.send(Trigger::Event).await.expect("send");
        tokio::time::sleep(Duration::from_secs(2)).await;
        tx.send(Trigger::Source).await.expect("send");
        assert_eq!(sched.await.expect("join"), Stopped::Gracefully);
        let log = log.lock().expect("log").clone();
        let starts: Vec<(u64, Triggers)> =
            log.iter().map(|l| (l.0.as_secs(), l.2.clone())).collect();
        assert_eq!(
            starts,
            vec![
                (0, set(&[Trigger::Initial])),
                (4, set(&[Trigger::Source, Trigger::Event])),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_should_let_the_running_pass_finish_and_start_no_other() {
        let log: Log = Log::default();
        let (tx, rx) = mpsc::channel(8);
        tx.send(Trigger::Initial).await.expect("send");
        let sched = tokio::spawn(run(
            config(),
            Activity::default(),
            rx,
            fake(log.clone(), Duration::from_secs(10), vec![]),
            tokio::time::sleep(Duration::from_secs(3)),
            never(),
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        // Sent after shutdown began: must not start a pass.
        let _ = tx.send(Trigger::Source).await;
        let started = Instant::now();
        assert_eq!(sched.await.expect("join"), Stopped::Gracefully);
        let log = log.lock().expect("log").clone();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].1, Duration::from_secs(10), "the pass ran to its end");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_signal_should_abort_the_running_pass() {
        let log: Log = Log::default();
        let (tx, rx) = mpsc::channel(8);
        tx.send(Trigger::Initial).await.expect("send");
        let start = Instant::now();
        let stopped = run(
            config(),
            Activity::default(),
            rx,
            fake(log.clone(), Duration::from_secs(60), vec![]),
            tokio::time::sleep(Duration::from_secs(1)),
            tokio::time::sleep(Duration::from_secs(2)),
        )
        .await;
        assert_eq!(stopped, Stopped::Aborted);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert!(
            log.lock().expect("log").is_empty(),
            "the pass never finished"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn activity_should_be_busy_exactly_while_a_pass_runs() {
        let activity = Activity::default();
        let (tx, rx) = mpsc::channel(8);
        tx.send(Trigger::Initial).await.expect("send");
        let log: Log = Log::default();
        let sched = tokio::spawn(run(
            config(),
            activity.clone(),
            rx,
            fake(log.clone(), Duration::from_secs(4), vec![]),
            tokio::time::sleep(Duration::from_secs(20)),
            never(),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(activity.is_busy(), "running");
        tokio::time::sleep(Duration::from_secs(4)).await; // t=5: ended at 4
        assert!(!activity.is_busy(), "ended: no settle window");
        sched.await.expect("join");
        drop(tx);
    }

    #[test]
    fn backoff_should_double_and_cap() {
        let c = config();
        let d: Vec<u64> = (1..=6).map(|n| c.backoff(n).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 8, 8]);
        assert_eq!(c.backoff(100), Duration::from_secs(8));
    }
}

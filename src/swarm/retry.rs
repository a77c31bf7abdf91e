//! Retrying Docker API calls.
//!
//! Swarm writes fail transiently: the daemon is restarting, a raft election
//! is running, another writer bumped the version index ("update out of
//! sequence"). [`retry`] runs an operation again with exponential backoff
//! and jitter (the `backon` crate) while the error [`is_transient`], within
//! a bound on attempts and on total sleep. The operation learns, through
//! [`Attempt::reread`], that the previous attempt lost an optimistic-
//! concurrency race, so it re-reads the version index before writing again;
//! [`update_spec`] packages that read-modify-write loop.
//!
//! "No leader" (quorum lost) is not transient: retrying cannot help, and the
//! caller must report it (docs/architecture.md, "Swarm traps": no leader).
//!
//! [`is_transient`]: super::Error::is_transient

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::Value;

use super::{Api, Error, Kind, Result};

/// How hard to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The first delay.
    pub min_delay: Duration,
    /// No single delay is longer.
    pub max_delay: Duration,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: usize,
    /// Upper bound on the total time spent sleeping between attempts.
    pub max_total_delay: Duration,
    /// Add random jitter to each delay.
    pub jitter: bool,
}

impl Default for Policy {
    /// 200 ms doubling to at most 10 s, 6 attempts, 60 s of sleeping, jitter.
    fn default() -> Self {
        Policy {
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_attempts: 6,
            max_total_delay: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl Policy {
    /// Set the number of attempts (the first included).
    #[must_use]
    pub fn attempts(mut self, n: usize) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Set the first and the largest delay.
    #[must_use]
    pub fn delays(mut self, min: Duration, max: Duration) -> Self {
        self.min_delay = min;
        self.max_delay = max.max(min);
        self
    }

    /// Bound the total time spent sleeping.
    #[must_use]
    pub fn total_delay(mut self, total: Duration) -> Self {
        self.max_total_delay = total;
        self
    }

    /// Without jitter (deterministic delays).
    #[must_use]
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    fn backoff(&self) -> ExponentialBuilder {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1))
            .with_total_delay(Some(self.max_total_delay));
        if self.jitter { b.with_jitter() } else { b }
    }
}

/// What an operation knows about the attempt it is making.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: usize,
    /// The previous attempt failed with "update out of sequence": re-read
    /// the object's version index before writing.
    pub reread: bool,
}

/// Run `op` until it succeeds, fails with an error that is not transient,
/// or the policy's bounds are reached (then the last error is returned).
pub async fn retry<T, F, Fut>(policy: &Policy, mut op: F) -> Result<T>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let number = AtomicUsize::new(0);
    let reread = AtomicBool::new(false);
    let attempt = || {
        let a = Attempt {
            number: number.fetch_add(1, Ordering::Relaxed) + 1,
            reread: reread.load(Ordering::Relaxed),
        };
        op(a)
    };
    attempt
        .retry(policy.backoff())
        .when(Error::is_transient)
        .notify(|e: &Error, delay: Duration| {
            reread.store(e.is_out_of_sequence(), Ordering::Relaxed);
            tracing::debug!(error = %e, ?delay, "retrying Docker API call");
        })
        .await
}

/// Read-modify-write an object's `Spec` with retries.
///
/// `observed` is the `(version, spec)` the caller already holds (from a
/// snapshot), or `None` to inspect first. `change` maps the current spec to
/// the desired one, or `None` when nothing needs writing. After an "update
/// out of sequence" the object is inspected again and `change` re-applied.
/// Returns whether an update was written.
pub async fn update_spec<A, C>(
    api: &A,
    policy: &Policy,
    kind: Kind,
    id: &str,
    observed: Option<(u64, Value)>,
    change: C,
) -> Result<bool>
where
    A: Api,
    C: FnMut(&Value) -> Option<Value> + Send,
{
    let observed = Mutex::new(observed);
    let change = Mutex::new(change);
    retry(policy, |attempt| {
        let known = if attempt.reread {
            None
        } else {
            observed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        };
        let change = &change;
        async move {
            let (version, spec) = if let Some(known) = known {
                known
            } else {
                let v = api.inspect(kind, id).await?;
                let version = v
                    .pointer("/Version/Index")
                    .and_then(Value::as_u64)
                    .unwrap_or_default();
                (version, v.get("Spec").cloned().unwrap_or(Value::Null))
            };
            let desired = {
                let mut change = change
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                (*change)(&spec)
            };
            match desired {
                None => Ok(false),
                Some(desired) => api.update(kind, id, version, &desired).await.map(|()| true),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::fake::{self, Fake, Method};
    use serde_json::json;
    use tokio::time::Instant;

    fn svc(name: &str) -> Value {
        json!({"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}}})
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_growing_delays() {
        let fake = Fake::new();
        fake.fail_times(
            Method::Create,
            Some(Kind::Service),
            1,
            2,
            fake::connect_failed(),
        );
        let policy = Policy::default()
            .delays(Duration::from_secs(1), Duration::from_secs(30))
            .without_jitter();
        let start = Instant::now();
        let body = svc("web");
        let id = retry(&policy, |_| fake.create(Kind::Service, &body)).await;
        assert!(id.is_ok());
        assert_eq!(fake.calls().len(), 3);
        // 1 s, then 2 s.
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_after_the_last_attempt_with_the_last_error() {
        let fake = Fake::new();
        fake.fail_times(Method::Info, None, 1, 100, fake::connect_failed());
        let policy = Policy::default().attempts(4);
        let res = retry(&policy, |_| fake.info()).await;
        assert!(matches!(res, Err(Error::ConnectFailed { .. })));
        assert_eq!(fake.calls().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn total_delay_bounds_the_time_spent() {
        let fake = Fake::new();
        fake.fail_times(Method::Info, None, 1, 100, fake::connect_failed());
        let policy = Policy::default()
            .attempts(100)
            .delays(Duration::from_secs(1), Duration::from_secs(1))
            .total_delay(Duration::from_secs(10));
        let start = Instant::now();
        assert!(retry(&policy, |_| fake.info()).await.is_err());
        assert!(
            start.elapsed() <= Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
        assert!(fake.calls().len() < 100);
    }

    #[tokio::test(start_paused = true)]
    async fn conflicts_and_lost_quorum_are_not_retried() {
        let fake = Fake::new();
        let body = svc("web");
        assert!(fake.create(Kind::Service, &body).await.is_ok());
        let res = retry(&Policy::default(), |_| fake.create(Kind::Service, &body)).await;
        assert_eq!(res.err().and_then(|e| e.status()), Some(409));
        fake.fail(Method::Create, None, 1, fake::no_leader());
        let other = svc("other");
        let res = retry(&Policy::default(), |_| fake.create(Kind::Service, &other)).await;
        assert!(res.err().is_some_and(|e| e.is_no_leader()));
        assert_eq!(fake.calls().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn out_of_sequence_rereads_the_version_and_writes_once_more() {
        let fake = Fake::new();
        let id = fake
            .create(Kind::Service, &svc("web"))
            .await
            .unwrap_or_default();
        let seen = fake.get(Kind::Service, &id).unwrap_or_default();
        let version = seen
            .pointer("/Version/Index")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        // Someone else writes in between: our version is now stale.
        let mut theirs = svc("web");
        theirs["Labels"] = json!({"by": "them"});
        assert!(
            fake.update(Kind::Service, &id, version, &theirs)
                .await
                .is_ok()
        );
        fake.clear_calls();

        let observed = Some((version, seen["Spec"].clone()));
        let wrote = update_spec(
            &fake,
            &Policy::default(),
            Kind::Service,
            &id,
            observed,
            |spec| {
                let mut s = spec.clone();
                s["Labels"]["replicas"] = json!("2");
                Some(s)
            },
        )
        .await;
        assert!(matches!(wrote, Ok(true)), "{wrote:?}");
        let methods: Vec<Method> = fake.calls().iter().map(|c| c.method).collect();
        assert_eq!(methods, [Method::Update, Method::Inspect, Method::Update]);
        let now = fake.get(Kind::Service, &id).unwrap_or_default();
        assert_eq!(now.pointer("/Spec/Labels/by"), Some(&json!("them")));
        assert_eq!(now.pointer("/Spec/Labels/replicas"), Some(&json!("2")));
    }

    #[test]
    fn retrying_futures_can_be_spawned() {
        fn send<T: Send>(_: &T) {}
        let fake = Fake::new();
        let policy = Policy::default();
        send(&update_spec(
            &fake,
            &policy,
            Kind::Service,
            "x",
            None,
            |_| None,
        ));
        send(&retry(&policy, |_| fake.info()));
    }

    #[tokio::test(start_paused = true)]
    async fn update_spec_writes_nothing_when_there_is_no_change() {
        let fake = Fake::new();
        let id = fake
            .create(Kind::Service, &svc("web"))
            .await
            .unwrap_or_default();
        fake.clear_calls();
        let wrote = update_spec(&fake, &Policy::default(), Kind::Service, &id, None, |_| {
            None
        })
        .await;
        assert!(matches!(wrote, Ok(false)));
        assert_eq!(fake.writes(), 0);
    }
}

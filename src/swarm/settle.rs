//! Waiting for swarm to catch up with a write: the one mechanism.
//!
//! Swarm applies removals asynchronously. A removed service's tasks shut
//! down after the `DELETE` has answered, and hold their networks, configs
//! and secrets until they have; a removed overlay network stays listed on a
//! node until its last local endpoint is gone; a new network shows
//! `Driver: ""` for a moment. Code that acts on the next state must wait for
//! it, and every such wait — in apply and in the tests — goes through
//! [`until`] (or [`until_blocking`] in synchronous code): a bounded time, a
//! schedule that checks quickly first, and on time-out an error that says
//! what was awaited and what the last check still saw.
//!
//! A check returns [`Check::Done`] with its result, or [`Check::Pending`]
//! with a short description of what is still in the way ("2 tasks of
//! `app_web` shutting down"), which the time-out message repeats.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// The answer of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check<T> {
    /// The awaited state is there.
    Done(T),
    /// Not yet: what is still in the way.
    Pending(String),
}

impl Check<()> {
    /// `Done(())` when `done`, else `Pending(why())`.
    pub fn from_bool(done: bool, why: impl FnOnce() -> String) -> Self {
        if done {
            Check::Done(())
        } else {
            Check::Pending(why())
        }
    }
}

/// The awaited state did not come in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {:.0?} waiting for {what}; last seen: {last}", after)]
pub struct TimedOut {
    /// What was awaited ("network `app_net` to leave the list").
    pub what: String,
    /// How long it was awaited.
    pub after: Duration,
    /// What the last check still saw.
    pub last: String,
}

/// How long to wait and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Give up after this long.
    pub timeout: Duration,
    /// The longest delay between two checks.
    pub interval: Duration,
    /// Check quickly first (5, 10, 20, 50, 100 ms), or every `interval`
    /// from the start (a check that compares two answers for stability).
    pub quick_start: bool,
}

impl Schedule {
    /// Quick checks first, then every `interval`.
    #[must_use]
    pub fn new(timeout: Duration, interval: Duration) -> Self {
        Schedule {
            timeout,
            interval,
            quick_start: true,
        }
    }

    /// A check every `interval` from the start.
    #[must_use]
    pub fn every(interval: Duration, timeout: Duration) -> Self {
        Schedule {
            quick_start: false,
            ..Schedule::new(timeout, interval)
        }
    }

    /// The delays between checks: 5, 10, 20, 50, 100 ms, then `interval`
    /// (never more than `interval`). Removals usually settle within
    /// milliseconds, so the first checks come quickly; a slow one is not
    /// hammered.
    fn delays(self) -> impl Iterator<Item = Duration> {
        const FIRST_MS: [u64; 5] = [5, 10, 20, 50, 100];
        let interval = self.interval;
        let quick = if self.quick_start { &FIRST_MS[..] } else { &[] };
        quick
            .iter()
            .map(move |&ms| Duration::from_millis(ms).min(interval))
            .chain(std::iter::repeat(interval))
    }

    /// After a check that was still pending at `elapsed`: the time-out
    /// once the deadline has passed, else the delay before the next check
    /// (never past the deadline, so the last check is made at it).
    fn next(
        self,
        elapsed: Duration,
        delays: &mut impl Iterator<Item = Duration>,
        what: &impl fmt::Display,
        last: String,
    ) -> Result<Duration, TimedOut> {
        if elapsed >= self.timeout {
            return Err(TimedOut {
                what: what.to_string(),
                after: elapsed,
                last,
            });
        }
        let delay = delays.next().unwrap_or(self.interval);
        Ok(delay.min(self.timeout.saturating_sub(elapsed)))
    }
}

impl Default for Schedule {
    /// 60 s, looking at least every second.
    fn default() -> Self {
        Schedule::new(Duration::from_secs(60), Duration::from_secs(1))
    }
}

/// Check at once, then on `schedule`'s delays, until the check is done or
/// the time is up (the check is always made once more at the deadline).
pub async fn until<T, F, Fut>(
    what: impl fmt::Display,
    schedule: Schedule,
    mut check: F,
) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    let start = tokio::time::Instant::now();
    let mut delays = schedule.delays();
    loop {
        let last = match check().await {
            Check::Done(v) => return Ok(v),
            Check::Pending(why) => why,
        };
        let delay = schedule.next(start.elapsed(), &mut delays, &what, last)?;
        tokio::time::sleep(delay).await;
    }
}

/// [`until`] for synchronous code (tests that drive the docker CLI).
pub fn until_blocking<T>(
    what: impl fmt::Display,
    schedule: Schedule,
    mut check: impl FnMut() -> Check<T>,
) -> Result<T, TimedOut> {
    let start = Instant::now();
    let mut delays = schedule.delays();
    loop {
        let last = match check() {
            Check::Done(v) => return Ok(v),
            Check::Pending(why) => why,
        };
        let delay = schedule.next(start.elapsed(), &mut delays, &what, last)?;
        std::thread::sleep(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test(start_paused = true)]
    async fn until_returns_the_first_done_answer() {
        let n = Cell::new(0);
        let got = until("three checks", Schedule::default(), || async {
            n.set(n.get() + 1);
            if n.get() == 3 {
                Check::Done(n.get())
            } else {
                Check::Pending(format!("check {}", n.get()))
            }
        })
        .await;
        assert_eq!(got, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn until_times_out_with_what_it_waited_for_and_the_last_answer() {
        let start = tokio::time::Instant::now();
        let n = Cell::new(0);
        let schedule = Schedule::new(Duration::from_secs(10), Duration::from_secs(1));
        let err = until("network x to leave the list", schedule, || async {
            n.set(n.get() + 1);
            Check::<()>::Pending(format!("still listed ({})", n.get()))
        })
        .await
        .unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(err.what, "network x to leave the list");
        assert_eq!(err.last, format!("still listed ({})", n.get()));
        // 5 quick checks in the first 185 ms, then one a second, and one at
        // the deadline: never a busy loop.
        assert!((14..=17).contains(&n.get()), "{} checks", n.get());
        assert_eq!(
            err.to_string(),
            format!(
                "timed out after 10s waiting for network x to leave the list; last seen: still listed ({})",
                n.get()
            )
        );
    }

    #[test]
    fn until_blocking_checks_at_the_deadline_once_more() {
        let n = Cell::new(0);
        let schedule = Schedule::new(Duration::from_millis(30), Duration::from_millis(10));
        let err = until_blocking("nothing", schedule, || {
            n.set(n.get() + 1);
            Check::<()>::Pending("no".into())
        })
        .unwrap_err();
        assert!(n.get() >= 3, "{} checks", n.get());
        assert!(err.after >= Duration::from_millis(30));
        let ok = until_blocking("at once", schedule, || Check::Done(7));
        assert_eq!(ok, Ok(7));
    }
}

//! A single-writer lease for several `bosun run` instances on one swarm.
//!
//! Running bosun as a replicated service (or on every manager) is fine as
//! long as only one instance applies at a time. The swarm itself is the
//! arbiter, with no extra moving parts: a swarm *config* object named after
//! the lease (`bosun-lease`) whose labels say who holds it and until when.
//! Configs are immutable except for their labels, and a label update carries
//! the version index it was read at, so two instances that read the same
//! version and both try to take the lease cannot both succeed: the second
//! update fails with "update out of sequence" (see docs/architecture.md, "Swarm traps").
//!
//! - acquire: read the config (create it if missing); if it is free, ours, or
//!   expired, write our holder id and a new expiry at the version we read;
//! - renew: the same, but only while the config still names us;
//! - release: clear the holder (at the version read), so another instance
//!   can take over at once instead of waiting for the expiry.
//!
//! Expiry is wall-clock time (unix milliseconds in a label), so instances
//! need roughly synchronised clocks (NTP); the holder considers its own lease
//! lost as soon as `duration` has passed since the read that preceded its
//! last successful write, before anyone else may take it over. The clock is
//! a parameter ([`Clock`]) so that tests control time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::swarm::{self, Api, Filters, Kind};

/// The default name of the lease's config object.
pub const DEFAULT_NAME: &str = "bosun-lease";
/// How long a lease lasts without renewal, by default.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews, by default.
pub const DEFAULT_RENEW_EVERY: Duration = Duration::from_secs(5);

/// Marks objects bosun owns.
pub const LABEL_MANAGED_BY: &str = "dev.bosun.managed-by";
/// The instance id of the holder (empty: free).
pub const LABEL_HOLDER: &str = "dev.bosun.lease.holder";
/// When the lease runs out, in unix milliseconds.
pub const LABEL_EXPIRES: &str = "dev.bosun.lease.expires";

/// The config's data: configs need some, and it never changes.
const PAYLOAD: &[u8] = b"bosun lease: see the dev.bosun.lease.* labels\n";

/// Errors of the lease: the Docker API call that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the lease's config failed.
    #[error("cannot read lease {name}")]
    ReadFailed {
        name: String,
        #[source]
        source: swarm::Error,
    },
    /// Creating the lease's config failed.
    #[error("cannot create lease {name}")]
    CreateFailed {
        name: String,
        #[source]
        source: swarm::Error,
    },
    /// Updating the lease's labels failed (other than losing a race).
    #[error("cannot update lease {name}")]
    UpdateFailed {
        name: String,
        #[source]
        source: swarm::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wall-clock time in unix milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that moves only when told to; clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `ms` unix milliseconds.
    #[must_use]
    pub fn new(ms: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Settings of a [`Lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The config object's name.
    pub name: String,
    /// This instance's id (unique among the contenders, e.g. hostname + pid
    /// or the swarm task id).
    pub holder: String,
    /// How long the lease lasts after each acquire or renewal.
    pub duration: Duration,
    /// How often the holder should renew (for the controller's loop);
    /// well below `duration`.
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// The default lease name and timings, for instance `holder`.
    pub fn new(holder: impl Into<String>) -> Self {
        LeaseConfig {
            name: DEFAULT_NAME.to_string(),
            holder: holder.into(),
            duration: DEFAULT_DURATION,
            renew_every: DEFAULT_RENEW_EVERY,
        }
    }

    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    #[must_use]
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    #[must_use]
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.renew_every = every;
        self
    }
}

/// The lease's config object as last read.
#[derive(Debug, Clone)]
struct Record {
    id: String,
    version: u64,
    labels: BTreeMap<String, String>,
}

impl Record {
    fn from_json(v: &Value) -> Option<Self> {
        let id = v.get("ID")?.as_str()?.to_string();
        let version = v.pointer("/Version/Index")?.as_u64()?;
        let labels = v
            .pointer("/Spec/Labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Record {
            id,
            version,
            labels,
        })
    }

    fn holder(&self) -> &str {
        self.labels.get(LABEL_HOLDER).map_or("", String::as_str)
    }

    fn expires(&self) -> u64 {
        self.labels
            .get(LABEL_EXPIRES)
            .and_then(|e| e.parse().ok())
            .unwrap_or(0)
    }
}

/// Who held the lease when it was last read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: String,
    expires: u64,
}

/// One contender for the lease.
#[derive(Debug)]
pub struct Lease<A, C = SystemClock> {
    api: Arc<A>,
    config: LeaseConfig,
    clock: C,
    /// Until when (clock ms) we hold it, if we do.
    held_until: Option<u64>,
    observed: Option<Observed>,
}

impl<A: Api> Lease<A, SystemClock> {
    /// A contender on the system clock.
    pub fn new(api: Arc<A>, config: LeaseConfig) -> Self {
        Lease::with_clock(api, config, SystemClock)
    }
}

impl<A: Api, C: Clock> Lease<A, C> {
    /// A contender on a given clock.
    pub fn with_clock(api: Arc<A>, config: LeaseConfig, clock: C) -> Self {
        Lease {
            api,
            config,
            clock,
            held_until: None,
            observed: None,
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Do we hold the lease now (acquired or renewed less than `duration`
    /// ago)? A holder that cannot renew stops believing it holds the lease
    /// no later than the others may take it over.
    #[must_use]
    pub fn held(&self) -> bool {
        self.held_until
            .is_some_and(|until| self.clock.now_ms() < until)
    }

    /// Who holds the lease, as last read (for `/status`): `None` when it is
    /// free or expired.
    #[must_use]
    pub fn holder(&self) -> Option<String> {
        if self.held() {
            return Some(self.config.holder.clone());
        }
        let now = self.clock.now_ms();
        self.observed
            .as_ref()
            .filter(|o| !o.holder.is_empty() && o.expires > now)
            .map(|o| o.holder.clone())
    }

    /// Take the lease if it is free, expired or already ours; `false` when
    /// another instance holds it or won a race for it.
    pub async fn try_acquire(&mut self) -> Result<bool> {
        self.claim(false).await
    }

    /// Extend the lease we hold; `false` (and no longer held) when another
    /// instance has taken it over.
    pub async fn renew(&mut self) -> Result<bool> {
        self.claim(true).await
    }

    /// Give the lease up, so another instance can take it at once. Does
    /// nothing when the lease names someone else.
    pub async fn release(&mut self) -> Result<()> {
        self.held_until = None;
        let Some(record) = self.read().await? else {
            return Ok(());
        };
        if record.holder() != self.config.holder {
            return Ok(());
        }
        let mut labels = record.labels.clone();
        labels.insert(LABEL_HOLDER.to_string(), String::new());
        labels.insert(LABEL_EXPIRES.to_string(), "0".to_string());
        match self.write(&record, labels).await {
            Ok(()) => {
                self.observed = None;
                tracing::info!(lease = %self.config.name, holder = %self.config.holder, "lease released");
                Ok(())
            }
            // Someone else wrote in between: it is theirs now.
            Err(e) if e.is_out_of_sequence() => Ok(()),
            Err(source) => Err(Error::UpdateFailed {
                name: self.config.name.clone(),
                source,
            }),
        }
    }

    async fn claim(&mut self, only_if_mine: bool) -> Result<bool> {
        let now = self.clock.now_ms();
        let until = now.saturating_add(self.config.duration.as_millis() as u64);
        let me = self.config.holder.clone();
        let Some(record) = self.read().await? else {
            if only_if_mine {
                return Ok(self.lost());
            }
            return self.create(until).await;
        };
        let holder = record.holder().to_string();
        let mine = holder == me;
        let free = holder.is_empty() || record.expires() <= now;
        if !mine && (only_if_mine || !free) {
            return Ok(self.lost());
        }
        let mut labels = record.labels.clone();
        labels.insert(LABEL_MANAGED_BY.to_string(), "bosun".to_string());
        labels.insert(LABEL_HOLDER.to_string(), me.clone());
        labels.insert(LABEL_EXPIRES.to_string(), until.to_string());
        match self.write(&record, labels).await {
            Ok(()) => {
                if !self.held() {
                    tracing::info!(lease = %self.config.name, holder = %me, previous = %holder, "lease acquired");
                }
                self.won(until);
                Ok(true)
            }
            Err(e) if e.is_out_of_sequence() => {
                tracing::debug!(lease = %self.config.name, "lost a race for the lease");
                self.observed = None;
                Ok(self.lost())
            }
            Err(source) => Err(Error::UpdateFailed {
                name: self.config.name.clone(),
                source,
            }),
        }
    }

    async fn create(&mut self, until: u64) -> Result<bool> {
        let body = json!({
            "Name": self.config.name,
            "Labels": {
                LABEL_MANAGED_BY: "bosun",
                LABEL_HOLDER: self.config.holder,
                LABEL_EXPIRES: until.to_string(),
            },
            "Data": base64::engine::general_purpose::STANDARD.encode(PAYLOAD),
        });
        match self.api.create(Kind::Config, &body).await {
            Ok(_) => {
                tracing::info!(lease = %self.config.name, holder = %self.config.holder, "lease created and acquired");
                self.won(until);
                Ok(true)
            }
            // Another instance created it first.
            Err(e) if e.status() == Some(409) => Ok(self.lost()),
            Err(source) => Err(Error::CreateFailed {
                name: self.config.name.clone(),
                source,
            }),
        }
    }

    fn won(&mut self, until: u64) {
        self.held_until = Some(until);
        self.observed = Some(Observed {
            holder: self.config.holder.clone(),
            expires: until,
        });
    }

    fn lost(&mut self) -> bool {
        if self.held_until.take().is_some() {
            tracing::warn!(lease = %self.config.name, holder = %self.config.holder, "lease lost");
        }
        false
    }

    /// The lease's config, if it exists (one list call, exact name).
    async fn read(&mut self) -> Result<Option<Record>> {
        let filters = Filters::none().with("name", &self.config.name);
        let found = self
            .api
            .list(Kind::Config, &filters)
            .await
            .map_err(|source| Error::ReadFailed {
                name: self.config.name.clone(),
                source,
            })?;
        let record = found
            .iter()
            .find(|v| v.pointer("/Spec/Name").and_then(Value::as_str) == Some(&self.config.name))
            .and_then(Record::from_json);
        self.observed = record.as_ref().map(|r| Observed {
            holder: r.holder().to_string(),
            expires: r.expires(),
        });
        Ok(record)
    }

    /// Replace the labels at the version read (configs: labels only; the
    /// daemon refuses a body with `Data`).
    async fn write(&self, record: &Record, labels: BTreeMap<String, String>) -> swarm::Result<()> {
        let body = json!({"Name": self.config.name, "Labels": labels});
        self.api
            .update(Kind::Config, &record.id, record.version, &body)
            .await
    }
}

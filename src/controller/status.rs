//! What the controller knows about its own progress, as `/status` serves it.
//!
//! The controller loop writes; the HTTP server reads. Both hold a
//! [`StatusHandle`] (an `Arc` around a lock), and the server only ever takes
//! a [`snapshot`](StatusHandle::snapshot), so a slow client never holds the
//! lock. The lock is a `std` one: updates are short, synchronous field
//! assignments, and a panicking writer must not take `/status` down with it
//! (a poisoned lock is recovered, not propagated).
//!
//! The JSON shape (camelCase, every field always present, `null` when
//! unknown) is an interface: scripts and dashboards read it.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::lease::{Clock, Lease};
use crate::swarm;

/// How one managed object compares with its desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// Equal to the manifests.
    Ready,
    /// Found different from the manifests (and being corrected).
    Drifted,
    /// The last attempt to converge it failed (or its rollout did).
    Failed,
    /// Written; its stack's rollout is still in progress (the message
    /// says how far: tasks running, the last task error).
    Progressing,
    /// Not applied yet: it waits for another stack's rollout (the message
    /// says which).
    Deferred,
}

/// One object bosun manages (a network, a service, node labels, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// The swarm object kind, written `network`, `service`, `config`,
    /// `secret`, `node`.
    pub kind: crate::swarm::Kind,
    /// Its name in the swarm (`traefik_proxy`).
    pub name: String,
    /// The manifest that owns it (`Stack/traefik`).
    pub owner: String,
    /// How it compares with its desired state.
    pub condition: Condition,
    /// A human-readable reason; empty when `Ready`.
    pub message: String,
}

/// Where a stack's rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloutState {
    /// Its services were written and have not converged yet.
    Progressing,
    /// Every service it waited for runs its new spec.
    Ready,
    /// Rolled back, paused, or not converged within `wait.timeout`.
    Failed,
}

impl RolloutState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progressing => "progressing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

/// One stack's latest rollout, as the controller watches it beside the
/// loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// `Stack/web`.
    pub stack: String,
    pub state: RolloutState,
    /// The services it waits for.
    pub services: Vec<String>,
    /// When it started, RFC 3339 in UTC.
    pub started_at: String,
    /// How long it has run (progressing) or took (ready, failed).
    pub duration_ms: u64,
    /// Tasks running, the last task error; the reason when failed.
    pub message: String,
}

/// How a reconcile pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PassResult {
    /// The swarm equals the manifests.
    Success,
    /// Loading was fine but applying failed (API error, timeout, rollback).
    Failed,
    /// The revision did not load or validate; nothing of it was applied.
    Invalid,
}

impl PassResult {
    /// The lowercase name used in JSON and as a metric label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for PassResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reconcile pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassStatus {
    /// When it started, RFC 3339 in UTC (see [`rfc3339`]).
    pub started_at: String,
    /// How long it took.
    pub duration_ms: u64,
    /// How it ended.
    pub result: PassResult,
    /// What started it: `startup`, `source`, `webhook`, `event`, `resync`.
    pub trigger: String,
    /// The source revision it worked on (a commit id, or a content hash for
    /// a directory).
    pub revision: String,
    /// The error, with its causes, when it did not succeed.
    pub error: Option<String>,
    /// How many actions it applied (0 for a no-op pass).
    pub changes: usize,
}

/// Where the manifests come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// `dir` or `git`.
    pub kind: String,
    /// The directory, or the repository URL with credentials removed.
    pub location: String,
    /// The last revision applied successfully.
    pub revision: Option<String>,
    /// Why the last sync of the source failed (a git fetch into a folder
    /// that cannot be written, a full disk, an unreachable remote); `None`
    /// once a sync succeeds. Meanwhile the last good revision stays
    /// enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The single-writer lease (see [`super::lease`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseStatus {
    /// Who holds it, as last seen.
    pub holder: Option<String>,
    /// Whether this instance holds it (and so is the one applying).
    pub held: bool,
}

impl<A: swarm::Api, C: Clock> From<&Lease<A, C>> for LeaseStatus {
    fn from(lease: &Lease<A, C>) -> Self {
        Self {
            holder: lease.holder(),
            held: lease.held(),
        }
    }
}

/// Everything `/status` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Where the manifests come from.
    pub source: SourceStatus,
    /// The most recent pass, whatever its result.
    pub last_pass: Option<PassStatus>,
    /// The most recent successful pass.
    pub last_success: Option<PassStatus>,
    /// Every managed object, as of the last pass (conditions of rollouts
    /// kept up to date between passes).
    pub objects: Vec<ObjectStatus>,
    /// Each stack's latest rollout, in stack name order.
    pub rollouts: Vec<RolloutStatus>,
    /// Each `VipPolicy`'s address: which node holds it and every node's
    /// VRRP state, from the keepalived services' logs, as of the last pass.
    #[serde(default)]
    pub vips: Vec<crate::vip::status::PolicyStatus>,
    /// The error of the last pass, `None` once a pass succeeds again.
    pub last_error: Option<String>,
    /// The single-writer lease.
    pub lease: LeaseStatus,
    /// True once a pass has succeeded; `/readyz` answers 200 from then on.
    pub ready: bool,
}

impl Status {
    /// Nothing known yet but the source.
    #[must_use]
    pub fn new(source: SourceStatus) -> Self {
        Self {
            source,
            last_pass: None,
            last_success: None,
            objects: Vec::new(),
            rollouts: Vec::new(),
            vips: Vec::new(),
            last_error: None,
            lease: LeaseStatus::default(),
            ready: false,
        }
    }

    /// Record a finished pass: `last_pass`, and on success `last_success`,
    /// the source revision, `ready` and a cleared `last_error`; otherwise
    /// `last_error`. Objects are the caller's to set.
    pub fn record_pass(&mut self, pass: PassStatus) {
        if pass.result == PassResult::Success {
            self.source.revision = Some(pass.revision.clone());
            self.last_error = None;
            self.ready = true;
            self.last_success = Some(pass.clone());
        } else {
            self.last_error.clone_from(&pass.error);
        }
        self.last_pass = Some(pass);
    }
}

/// A shared, cheaply cloned handle on the [`Status`].
#[derive(Debug, Clone)]
pub struct StatusHandle(Arc<RwLock<Status>>);

impl StatusHandle {
    /// A handle on a fresh [`Status`].
    #[must_use]
    pub fn new(source: SourceStatus) -> Self {
        Self(Arc::new(RwLock::new(Status::new(source))))
    }

    /// Change the status in place. Keep `f` short: readers wait for it.
    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        let mut status = self.0.write().unwrap_or_else(PoisonError::into_inner);
        f(&mut status);
    }

    /// A copy of the current status.
    #[must_use]
    pub fn snapshot(&self) -> Status {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a pass has succeeded yet.
    #[must_use]
    pub fn ready(&self) -> bool {
        self.0.read().unwrap_or_else(PoisonError::into_inner).ready
    }
}

/// `t` as RFC 3339 in UTC with second precision: `2024-05-01T12:00:00Z`.
/// Times before 1970 are clamped to the epoch.
#[must_use]
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn source() -> SourceStatus {
        SourceStatus {
            kind: "dir".into(),
            location: "/etc/bosun/cluster".into(),
            revision: None,
            error: None,
        }
    }

    fn pass(result: PassResult) -> PassStatus {
        PassStatus {
            started_at: "2024-05-01T12:00:00Z".into(),
            duration_ms: 1234,
            result,
            trigger: "resync".into(),
            revision: "abc123".into(),
            error: (result != PassResult::Success).then(|| "boom".to_string()),
            changes: 2,
        }
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_827_696); // leap day 2000
        assert_eq!(rfc3339(t), "2000-02-29T12:34:56Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(rfc3339(t), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn status_serializes_camel_case_with_every_field_present() {
        let mut status = Status::new(source());
        status.record_pass(pass(PassResult::Success));
        status.objects.push(ObjectStatus {
            kind: crate::swarm::Kind::Service,
            name: "traefik_proxy".into(),
            owner: "Stack/traefik".into(),
            condition: Condition::Drifted,
            message: "replicas 1 != 2".into(),
        });
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["ready"], true);
        assert_eq!(json["lastError"], serde_json::Value::Null);
        assert_eq!(json["lastPass"]["result"], "success");
        assert_eq!(json["lastPass"]["durationMs"], 1234);
        assert_eq!(json["lastPass"]["startedAt"], "2024-05-01T12:00:00Z");
        assert_eq!(json["lastSuccess"]["revision"], "abc123");
        assert_eq!(json["source"]["revision"], "abc123");
        assert_eq!(json["objects"][0]["condition"], "Drifted");
        assert_eq!(json["lease"]["holder"], serde_json::Value::Null);
        assert_eq!(json["lease"]["held"], false);
    }

    #[test]
    fn failed_pass_keeps_last_success_and_sets_last_error() {
        let handle = StatusHandle::new(source());
        assert!(!handle.ready());
        handle.update(|s| s.record_pass(pass(PassResult::Success)));
        handle.update(|s| s.record_pass(pass(PassResult::Invalid)));
        let status = handle.snapshot();
        assert!(status.ready);
        assert_eq!(status.last_error.as_deref(), Some("boom"));
        assert_eq!(status.last_pass.unwrap().result, PassResult::Invalid);
        assert_eq!(status.last_success.unwrap().result, PassResult::Success);
    }
}

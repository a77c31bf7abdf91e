//! `ClusterPolicy`: cluster-wide expectations (managers, quorum, autolock).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validate::Cx;
use super::{Duration, Kind, Object, Rules, Spec, check_name};

/// What the whole cluster should look like, and what bosun does when it
/// does not. At most one per folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterPolicySpec {
    /// Desired number of managers. Odd numbers of 3 or more tolerate
    /// failures (3 tolerate 1, 5 tolerate 2); unset: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managers: Option<u64>,
    /// Keep workloads off managers (managers drained of tasks, except
    /// bosun's own and VIP services). Default false.
    #[serde(default)]
    pub dedicated_managers: bool,
    /// Whether the swarm is expected to be autolocked; a difference is
    /// reported. Unset: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autolock: Option<bool>,
    /// Quorum monitoring and recovery.
    #[serde(default)]
    pub quorum: Quorum,
}

/// Quorum monitoring and recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Quorum {
    /// How long quorum must be lost before bosun reports it (and writes the
    /// runbook). Default `60s`.
    #[serde(default = "sixty_seconds")]
    pub grace_period: Duration,
    /// What bosun does when quorum is lost. Default `runbook`.
    #[serde(default)]
    pub recovery: Recovery,
    /// Run the recovery steps bosun can do on the local manager without
    /// being asked (`swarm init --force-new-cluster` …), after
    /// `autoRecoverGracePeriod`. Default false: a human decides.
    #[serde(default)]
    pub auto_recover: bool,
    /// How long quorum must be lost before an automatic recovery. Default `300s`.
    #[serde(default = "five_minutes")]
    pub auto_recover_grace_period: Duration,
}

impl Default for Quorum {
    fn default() -> Self {
        Quorum {
            grace_period: sixty_seconds(),
            recovery: Recovery::default(),
            auto_recover: false,
            auto_recover_grace_period: five_minutes(),
        }
    }
}

/// What bosun does when quorum is lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Recovery {
    /// Report it (metric, status condition, log); nothing else.
    Detect,
    /// Report it and write a runbook for this cluster.
    #[default]
    Runbook,
    /// Runbook, plus `bosun recover` performs the local steps when asked.
    Guided,
}

fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

impl Spec for ClusterPolicySpec {
    const KIND: Kind = Kind::ClusterPolicy;
    const NAME: &'static str = "ClusterPolicy";
    const FILE_STEM: &'static str = "cluster-policy";
    const DESCRIPTION: &'static str = "Cluster-wide expectations: manager count, quorum monitoring and recovery policy, autolock.";
}

impl Rules for ClusterPolicySpec {
    fn check(obj: &Object<Self>, cx: &mut Cx) {
        let spec = &obj.spec;
        if let Err(e) = check_name(obj.name(), false) {
            cx.error(obj, "metadata.name", e);
        }
        match spec.managers {
        Some(0) => cx.error(obj, "spec.managers", "a swarm needs at least one manager"),
        Some(n @ (1 | 2)) => cx.warning(
            obj,
            "spec.managers",
            format!("{n} manager(s) tolerate no manager failure; use 3 (or 5) for a highly available swarm"),
        ),
        Some(n) if n % 2 == 0 => cx.warning(
            obj,
            "spec.managers",
            format!(
                "{n} managers tolerate no more failures than {} (an even count adds no fault tolerance); use an odd number",
                n - 1
            ),
        ),
        Some(n) if n > 7 => cx.warning(
            obj,
            "spec.managers",
            format!("{n} managers slow down raft; Docker recommends at most 7"),
        ),
        _ => {}
    }
        let q = &spec.quorum;
        if q.grace_period.get().is_zero() {
            cx.error(obj, "spec.quorum.gracePeriod", "must be longer than 0");
        }
        if q.auto_recover {
            if q.recovery == Recovery::Detect {
                cx.error(
                    obj,
                    "spec.quorum.autoRecover",
                    "autoRecover needs `recovery: guided` (or `runbook`), not `detect`",
                );
            }
            if q.auto_recover_grace_period.get() < q.grace_period.get() {
                cx.warning(
                    obj,
                    "spec.quorum.autoRecoverGracePeriod",
                    "shorter than gracePeriod: recovery would start before the loss is reported",
                );
            }
        }
    }
}

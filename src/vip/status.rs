//! Who holds a VIP, as the swarm can see it: each node's keepalived logs
//! its state transitions (`(VI_x) Entering MASTER STATE`) on stdout, and
//! the service's logs, read through the API with their timestamps, give
//! each node's last transition and when it happened.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::swarm::Api;

/// How many log lines per task are read back.
pub const TAIL: usize = 200;

/// How long one service's logs may take (a node that is down does not
/// answer; its state is then unknown).
pub const LOGS_TIMEOUT: Duration = Duration::from_secs(3);

/// A node's VRRP state, from its keepalived's last transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VrrpState {
    /// Holds the address.
    Master,
    /// Ready to take it over.
    Backup,
    /// A check with weight 0 failed, or the interface is down.
    Fault,
    /// keepalived stopped (its task was stopped or replaced).
    Stopped,
    /// Nothing logged yet, or the node's logs could not be read.
    Unknown,
}

impl VrrpState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            VrrpState::Master => "master",
            VrrpState::Backup => "backup",
            VrrpState::Fault => "fault",
            VrrpState::Stopped => "stopped",
            VrrpState::Unknown => "unknown",
        }
    }
}

/// One node of a policy as its logs show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub hostname: String,
    /// The keepalived service on that node.
    pub service: String,
    pub state: VrrpState,
    /// RFC 3339 time of the last transition, when one was logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Why the state is unknown (logs unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The state a keepalived log line reports, if it reports one.
fn transition(text: &str) -> Option<VrrpState> {
    if text.contains("Entering MASTER STATE") {
        Some(VrrpState::Master)
    } else if text.contains("Entering BACKUP STATE") {
        Some(VrrpState::Backup)
    } else if text.contains("Entering FAULT STATE") {
        Some(VrrpState::Fault)
    } else if text.contains("Stopped Keepalived") || text.trim_end().ends_with("Stopping") {
        Some(VrrpState::Stopped)
    } else {
        None
    }
}

/// `2026-12-05T14:22:57.1234Z` as a key that sorts in time order (the
/// daemon trims trailing zeros of the fraction, so the text does not).
fn time_key(ts: &str) -> Option<(String, u32)> {
    let ts = ts.strip_suffix('Z')?;
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    if secs.len() != 19 || !secs.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    Some((secs.to_string(), digits.parse().ok()?))
}

/// The last transition in a service's logs (lines led by the daemon's
/// timestamps), with its timestamp.
#[must_use]
pub fn last_transition(logs: &str) -> Option<(String, VrrpState)> {
    logs.lines()
        .filter_map(|line| {
            let (ts, text) = line.split_once(' ')?;
            let key = time_key(ts)?;
            Some((key, ts.to_string(), transition(text)?))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, ts, state)| (ts, state))
}

/// The node holding the address: the one in `master` state, the most
/// recent when (for a moment, or split) several say so.
#[must_use]
pub fn holder(nodes: &[NodeState]) -> Option<&NodeState> {
    nodes
        .iter()
        .filter(|n| n.state == VrrpState::Master)
        .max_by_key(|n| n.since.as_deref().and_then(time_key))
}

/// One policy's address and nodes, as the swarm shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// `VipPolicy/<name>`.
    pub policy: String,
    pub address: String,
    /// The node holding the address, when one says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// When the holder took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    pub nodes: Vec<NodeState>,
}

/// A policy's address and its keepalived services: `(hostname, service
/// name, service id)`.
type Policy = (String, Vec<(String, String, String)>);

impl PolicyStatus {
    /// `held by swarm1 since 2026-…`, `held by no node`.
    #[must_use]
    pub fn held(&self) -> String {
        match (&self.holder, &self.since) {
            (Some(h), Some(since)) => format!("held by {h} since {since}"),
            (Some(h), None) => format!("held by {h}"),
            _ => "held by no node".to_string(),
        }
    }
}

/// Every VIP policy with keepalived services in `snapshot` (bosun's
/// labels say which), each node's state from its service's logs.
pub async fn of_swarm<A: Api>(api: &A, snapshot: &crate::swarm::Snapshot) -> Vec<PolicyStatus> {
    use crate::compose::LABEL_OWNER;
    use crate::plan::vip::{LABEL_ADDRESS, LABEL_NODE};
    let mut policies: std::collections::BTreeMap<String, Policy> =
        std::collections::BTreeMap::new();
    for s in &snapshot.services {
        let labels = &s.meta.labels;
        let (Some(owner), Some(host)) = (labels.get(LABEL_OWNER), labels.get(LABEL_NODE)) else {
            continue;
        };
        if !owner.starts_with("VipPolicy/") {
            continue;
        }
        let entry = policies.entry(owner.clone()).or_default();
        entry.0 = labels.get(LABEL_ADDRESS).cloned().unwrap_or_default();
        entry
            .1
            .push((host.clone(), s.meta.name.clone(), s.meta.id.clone()));
    }
    let mut out = Vec::new();
    for (policy, (address, mut services)) in policies {
        services.sort();
        let nodes = observe(api, &services).await;
        let held = holder(&nodes);
        out.push(PolicyStatus {
            policy,
            address,
            holder: held.map(|n| n.hostname.clone()),
            since: held.and_then(|n| n.since.clone()),
            nodes,
        });
    }
    out
}

/// Read each `(hostname, service name, service id)`'s logs at once and
/// give its state.
pub async fn observe<A: Api>(api: &A, services: &[(String, String, String)]) -> Vec<NodeState> {
    let looks = services.iter().map(|(hostname, name, id)| async move {
        let read = tokio::time::timeout(LOGS_TIMEOUT, api.service_logs(id, TAIL)).await;
        let (state, since, error) = match read {
            Ok(Ok(logs)) => match last_transition(&logs) {
                Some((ts, state)) => (state, Some(ts), None),
                None => (VrrpState::Unknown, None, None),
            },
            Ok(Err(e)) => (VrrpState::Unknown, None, Some(crate::error::chain(&e))),
            Err(_) => (
                VrrpState::Unknown,
                None,
                Some(format!(
                    "its logs did not answer within {}s",
                    LOGS_TIMEOUT.as_secs()
                )),
            ),
        };
        NodeState {
            hostname: hostname.clone(),
            service: name.clone(),
            state,
            since,
            error,
        }
    });
    futures::future::join_all(looks).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_transition_wins_in_time_order_not_text_order() {
        let logs = "\
2026-12-05T14:00:00.5Z Sat Dec  5 14:00:00 2026: (VI_ha) Entering BACKUP STATE (init)
2026-12-05T14:00:03.25Z Sat Dec  5 14:00:03 2026: (VI_ha) Entering MASTER STATE
2026-12-05T14:00:03.125Z (VI_ha) received lower priority advert
2026-12-05T14:00:03.3Z unrelated line
";
        let (ts, state) = last_transition(logs).unwrap();
        assert_eq!(state, VrrpState::Master);
        assert_eq!(ts, "2026-12-05T14:00:03.25Z");
        // .3 is after .25 although "3Z" > "25Z" only as numbers.
        let more = format!("{logs}2026-12-05T14:00:03.3Z Stopping\n");
        assert_eq!(last_transition(&more).unwrap().1, VrrpState::Stopped);
        assert_eq!(last_transition("no timestamps Entering MASTER STATE"), None);
    }

    #[test]
    fn the_holder_is_the_latest_master() {
        let n = |h: &str, state, since: &str| NodeState {
            hostname: h.into(),
            service: format!("vip-ha_{h}"),
            state,
            since: Some(since.into()),
            error: None,
        };
        let nodes = vec![
            n("swarm1", VrrpState::Master, "2026-12-05T14:00:01Z"),
            n("swarm2", VrrpState::Master, "2026-12-05T14:00:02.5Z"),
            n("swarm3", VrrpState::Backup, "2026-12-05T14:00:09Z"),
        ];
        assert_eq!(holder(&nodes).unwrap().hostname, "swarm2");
        assert!(holder(&nodes[2..]).is_none());
    }
}

//! What `status` and the quorum probes report: the daemons, the swarm's
//! node list, and whether the swarm has a leader.

use std::fmt;
use std::net::Ipv4Addr;

use bollard::models::Node;

use super::Role;

/// Whether a swarm has a leader, as one manager sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderState {
    /// The node list answers and names this leader (hostname).
    Leader(String),
    /// The manager refuses writes because the swarm has no leader (quorum
    /// lost), or its node list marks no leader; the daemon's message.
    NoLeader(String),
}

/// A node's daemon process, as `status` reports it.
#[derive(Debug, Clone)]
pub struct NodeProcess {
    /// Node name (also its hostname).
    pub node: String,
    /// Role it was created with.
    pub role: Role,
    /// Address on the sandbox bridge.
    pub ip: Ipv4Addr,
    /// Recorded dockerd pid.
    pub pid: Option<u32>,
    /// Whether that pid is alive.
    pub alive: bool,
    /// `unix://…` socket of its Docker API.
    pub docker_host: String,
}

/// One row of the swarm's node list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmNode {
    /// Hostname (the sandbox node name).
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `ready`, `down`, `unknown`, …
    pub status: String,
    /// `active`, `pause`, `drain`.
    pub availability: String,
    /// `Leader`, `Reachable`, `Unreachable`, or empty for workers.
    pub manager_status: String,
}

impl SwarmNode {
    pub(crate) fn from_api(node: &Node) -> Self {
        let ms = node.manager_status.as_ref();
        let manager_status = match ms {
            Some(ms) if ms.leader == Some(true) => "Leader".to_owned(),
            Some(ms) => ms
                .reachability
                .map(|r| capitalize(&r.to_string()))
                .unwrap_or_default(),
            None => String::new(),
        };
        SwarmNode {
            hostname: node
                .description
                .as_ref()
                .and_then(|d| d.hostname.clone())
                .unwrap_or_default(),
            role: node
                .spec
                .as_ref()
                .and_then(|s| s.role)
                .map(|r| r.to_string())
                .unwrap_or_default(),
            status: node
                .status
                .as_ref()
                .and_then(|s| s.state)
                .map(|s| s.to_string())
                .unwrap_or_default(),
            availability: node
                .spec
                .as_ref()
                .and_then(|s| s.availability)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            manager_status,
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A snapshot of a sandbox.
#[derive(Debug, Clone)]
pub struct Status {
    /// Sandbox name.
    pub name: String,
    /// Its subnet.
    pub subnet: String,
    /// Its bridge.
    pub bridge: String,
    /// Every node's daemon.
    pub nodes: Vec<NodeProcess>,
    /// The manager that answered the node list, and the list; or why none did.
    pub swarm: std::result::Result<(String, Vec<SwarmNode>), String>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sandbox {}  subnet {}  bridge {}",
            self.name, self.subnet, self.bridge
        )?;
        writeln!(
            f,
            "{:<11} {:<8} {:<15} {:<8} {:<8} DOCKER_HOST",
            "NODE", "ROLE", "IP", "PID", "DAEMON"
        )?;
        for n in &self.nodes {
            writeln!(
                f,
                "{:<11} {:<8} {:<15} {:<8} {:<8} {}",
                n.node,
                n.role,
                n.ip,
                n.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                if n.alive { "running" } else { "stopped" },
                n.docker_host
            )?;
        }
        match &self.swarm {
            Ok((seen_by, nodes)) => {
                writeln!(f, "\nswarm nodes (as seen by {seen_by}):")?;
                writeln!(
                    f,
                    "{:<11} {:<8} {:<8} {:<13} MANAGER STATUS",
                    "HOSTNAME", "ROLE", "STATUS", "AVAILABILITY"
                )?;
                for n in nodes {
                    writeln!(
                        f,
                        "{:<11} {:<8} {:<8} {:<13} {}",
                        n.hostname, n.role, n.status, n.availability, n.manager_status
                    )?;
                }
                Ok(())
            }
            Err(why) => writeln!(f, "\nswarm: {why}"),
        }
    }
}

//! `VipPolicy` rendered into keepalived configurations, one per node (pure:
//! no IO, no clock).
//!
//! [`members`] picks the policy's nodes from what the swarm says of them
//! (hostname, id, role, labels, address) and gives each its priority:
//! explicit by hostname, or, for selected nodes the policy does not list,
//! one below the lowest listed (or 100 when none is listed) and down by one
//! in hostname order. [`render`] writes each node's `keepalived.conf`:
//!
//! - every node starts in state `BACKUP`: the priorities elect the holder,
//!   and keepalived honours `nopreempt` (`preempt: false`) only so;
//! - with `unicast` (the default), `unicast_src_ip` is the node's swarm
//!   address and `unicast_peer` the other members' addresses, so peers
//!   follow the cluster's node list;
//! - one `vrrp_script` per check, run by the checker inside the keepalived
//!   container (`bosun vip check docker|http|tcp …`, or the policy's own
//!   script), with its interval, weight, fall and rise, tracked by the
//!   instance;
//! - `script_user root` and `enable_script_security`, which keepalived
//!   needs before it runs any script as a container's root;
//! - `authentication` (PASS) when the policy has a password.
//!
//! The password is only in the rendered text; [`Rendered`] never prints it
//! through `Debug`.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::manifest::{CheckType, Role, VipCheck, VipPolicySpec};

pub mod check;
pub mod status;

/// The priority of the first selected node the policy does not list, when
/// it lists none.
pub const DEFAULT_TOP_PRIORITY: i64 = 100;

/// What the swarm says of a node (or what is given by hand for a machine
/// that has no swarm yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub hostname: String,
    pub id: String,
    pub role: Role,
    pub labels: BTreeMap<String, String>,
    /// The node's swarm address (`Status.Addr`), used for unicast.
    pub addr: String,
}

impl NodeFacts {
    /// What a policy's selector sees of a node of the swarm; `None` for a
    /// node whose role is neither manager nor worker.
    #[must_use]
    pub fn of(node: &crate::swarm::Node) -> Option<Self> {
        let role = match node.role.as_str() {
            "manager" => Role::Manager,
            "worker" => Role::Worker,
            _ => return None,
        };
        Some(NodeFacts {
            hostname: node.hostname.clone(),
            id: node.meta.id.clone(),
            role,
            labels: node.meta.labels.clone(),
            addr: node.addr.clone(),
        })
    }
}

/// A node taking part in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub hostname: String,
    pub id: String,
    pub addr: String,
    pub priority: i64,
}

/// The nodes the policy selects, in hostname order, with their priorities.
#[must_use]
pub fn members(spec: &VipPolicySpec, nodes: &[NodeFacts]) -> Vec<Member> {
    let selected = nodes.iter().filter(|n| {
        spec.nodes
            .selector
            .matches(&n.hostname, &n.id, n.role, &n.labels)
    });
    with_priorities(
        spec,
        selected.map(|n| (n.hostname.clone(), n.id.clone(), n.addr.clone())),
    )
}

/// These nodes (`(hostname, id, address)`, given by hand: no swarm to
/// select from), in hostname order, with their priorities.
#[must_use]
pub fn with_priorities(
    spec: &VipPolicySpec,
    nodes: impl IntoIterator<Item = (String, String, String)>,
) -> Vec<Member> {
    let mut nodes: Vec<(String, String, String)> = nodes.into_iter().collect();
    nodes.sort();
    let listed = &spec.nodes.priorities;
    let mut next = listed
        .values()
        .min()
        .map_or(DEFAULT_TOP_PRIORITY, |lowest| lowest - 1);
    nodes
        .into_iter()
        .map(|(hostname, id, addr)| {
            let priority = listed.get(&hostname).copied().unwrap_or_else(|| {
                let p = next.max(1);
                next -= 1;
                p
            });
            Member {
                hostname,
                id,
                addr,
                priority,
            }
        })
        .collect()
}

/// How to render.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// The VRRP password (at most 8 characters), when the policy has one.
    pub password: Option<&'a str>,
    /// The checker's path inside the keepalived container.
    pub checker: &'a str,
}

impl fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("password", &self.password.map(|_| "(hidden)"))
            .field("checker", &self.checker)
            .finish()
    }
}

/// Where bosun's own binary is in the keepalived image.
pub const CHECKER: &str = "/usr/local/bin/bosun";

/// One node's configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    pub hostname: String,
    pub node_id: String,
    pub priority: i64,
    /// The `keepalived.conf` text (with the password, if any).
    pub config: String,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("hostname", &self.hostname)
            .field("node_id", &self.node_id)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// Replace the password in rendered text (what is printed unless asked).
#[must_use]
pub fn mask(config: &str) -> String {
    config
        .lines()
        .map(|l| match l.trim_start().strip_prefix("auth_pass ") {
            Some(_) => {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}auth_pass ********")
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if config.ends_with('\n') { "\n" } else { "" }
}

/// The `vrrp_instance` name of a policy: `VI_` and its name, `-` as `_`.
#[must_use]
pub fn instance_name(policy: &str) -> String {
    format!("VI_{}", policy.replace(['-', '.'], "_"))
}

/// Render one `keepalived.conf` per member of `policy` (`name`).
#[must_use]
pub fn render(
    name: &str,
    spec: &VipPolicySpec,
    members: &[Member],
    opts: Options,
) -> Vec<Rendered> {
    members
        .iter()
        .map(|m| Rendered {
            hostname: m.hostname.clone(),
            node_id: m.id.clone(),
            priority: m.priority,
            config: config(name, spec, m, members, opts),
        })
        .collect()
}

fn config(name: &str, spec: &VipPolicySpec, me: &Member, all: &[Member], opts: Options) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# keepalived.conf of {} for VipPolicy/{name}, rendered by bosun: do not edit.",
        me.hostname
    );
    let _ = writeln!(w, "global_defs {{");
    let _ = writeln!(w, "    router_id {}", me.hostname);
    let _ = writeln!(w, "    script_user root");
    let _ = writeln!(w, "    enable_script_security");
    let _ = writeln!(w, "}}");
    for check in &spec.checks {
        let _ = writeln!(w);
        let _ = writeln!(w, "vrrp_script {} {{", script_name(check));
        let _ = writeln!(w, "    script \"{}\"", command(check, opts.checker));
        let _ = writeln!(w, "    interval {}", check.interval);
        if check.weight != 0 {
            let _ = writeln!(w, "    weight {}", check.weight);
        }
        let _ = writeln!(w, "    fall {}", check.fall);
        let _ = writeln!(w, "    rise {}", check.rise);
        let _ = writeln!(w, "}}");
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "vrrp_instance {} {{", instance_name(name));
    let interface = spec.interface_of(&me.hostname);
    let _ = writeln!(w, "    state BACKUP");
    if spec.vrrp3() {
        let _ = writeln!(w, "    version 3");
    }
    let _ = writeln!(w, "    interface {interface}");
    let _ = writeln!(w, "    virtual_router_id {}", spec.virtual_router_id);
    let _ = writeln!(w, "    priority {}", me.priority);
    let _ = writeln!(w, "    advert_int {}", spec.advert_interval);
    if !spec.preempt {
        let _ = writeln!(w, "    nopreempt");
    }
    if spec.unicast {
        let _ = writeln!(w, "    unicast_src_ip {}", me.addr);
        let _ = writeln!(w, "    unicast_peer {{");
        for peer in all.iter().filter(|m| m.hostname != me.hostname) {
            let _ = writeln!(w, "        {}", peer.addr);
        }
        let _ = writeln!(w, "    }}");
    }
    if let Some(password) = opts.password {
        let _ = writeln!(w, "    authentication {{");
        let _ = writeln!(w, "        auth_type PASS");
        let _ = writeln!(w, "        auth_pass {password}");
        let _ = writeln!(w, "    }}");
    }
    let _ = writeln!(w, "    virtual_ipaddress {{");
    let _ = writeln!(w, "        {} dev {interface}", spec.address);
    let _ = writeln!(w, "    }}");
    if !spec.checks.is_empty() {
        let _ = writeln!(w, "    track_script {{");
        for check in &spec.checks {
            let _ = writeln!(w, "        {}", script_name(check));
        }
        let _ = writeln!(w, "    }}");
    }
    let _ = writeln!(w, "}}");
    out
}

fn script_name(check: &VipCheck) -> String {
    format!("chk_{}", check.name.replace(['-', '.'], "_"))
}

/// The command keepalived runs for a check, inside the container.
fn command(check: &VipCheck, checker: &str) -> String {
    match check.kind {
        CheckType::Docker => format!("{checker} vip check docker"),
        CheckType::Http => format!(
            "{checker} vip check http {}",
            check.url.as_deref().unwrap_or_default()
        ),
        CheckType::Tcp => {
            let target = match (&check.address, &check.host, check.port) {
                (Some(a), _, _) => a.clone(),
                (None, Some(h), Some(p)) => format!("{h}:{p}"),
                _ => String::new(),
            };
            format!("{checker} vip check tcp {target}")
        }
        CheckType::Script => check
            .script
            .as_deref()
            .unwrap_or_default()
            .replace('"', "\\\""),
    }
}

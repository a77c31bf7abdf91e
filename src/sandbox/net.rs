//! Names and addresses of a sandbox, and the host network plumbing (bridge,
//! veth pairs, network namespaces, iptables rules) built with `ip`/`iptables`.
//!
//! Every name is derived from the sandbox name alone, so `down` can find what
//! a crashed or half-finished `up` left behind even without its state file.
//! Interface names must fit IFNAMSIZ (15 bytes), hence the short hash.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Error, Result, Role, run_cmd, run_cmd_output};

/// Directory where `ip netns add` bind-mounts network namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

/// First two octets of every sandbox subnet; each sandbox gets one /24 in it.
pub const SUBNET_PREFIX: [u8; 2] = [10, 213];

/// Longest accepted sandbox name (keeps unix socket paths under 108 bytes).
pub const MAX_NAME_LEN: usize = 24;

/// Check a sandbox name: 1–24 characters of `a-z`, `0-9`, `-`, starting with
/// a letter or digit.
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("must be at most 24 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("may contain only a-z, 0-9 and '-'")
    } else if name.starts_with('-') {
        Some("must start with a letter or digit")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Check `--hostnames`: one per node (`managers + workers`), unique, each a
/// hostname (labels of lowercase letters, digits and `-`, at most 63
/// characters, not starting or ending with `-`, separated by `.`).
pub fn validate_hostnames(hostnames: &[String], managers: u32, workers: u32) -> Result<()> {
    let bad = |why: String| Err(Error::InvalidHostnames(why));
    let want = (managers + workers) as usize;
    if hostnames.len() != want {
        return bad(format!(
            "{} given for {want} nodes ({managers} managers, {workers} workers); give one per node, managers first",
            hostnames.len()
        ));
    }
    for (i, h) in hostnames.iter().enumerate() {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if h.len() > 253 || !h.split('.').all(label_ok) {
            return bad(format!(
                "`{h}` is not a hostname (lowercase letters, digits, `-` and `.`, labels of at most 63)"
            ));
        }
        if hostnames[..i].contains(h) {
            return bad(format!("`{h}` is given twice"));
        }
    }
    Ok(())
}

/// Six hex digits of SHA-256 of the name: stable across Rust versions and hosts.
#[must_use]
pub fn short_hash(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    digest[..3].iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Preferred third octet of the sandbox subnet (1..=254), derived from the name.
/// `up` probes upward from here when it is taken.
#[must_use]
pub fn preferred_octet(name: &str) -> u8 {
    let digest = Sha256::digest(name.as_bytes());
    (digest[3] % 254) + 1
}

/// The candidates `up` tries, in order: the preferred octet, then upward, wrapping.
#[must_use]
pub fn octet_candidates(name: &str) -> Vec<u8> {
    let start = preferred_octet(name);
    (0..254u16)
        .map(|i| ((u16::from(start) - 1 + i) % 254 + 1) as u8)
        .collect()
}

/// Node name of the `index`-th (1-based) node of a role: `manager1`, `worker2`.
#[must_use]
pub fn node_name(role: Role, index: u32) -> String {
    match role {
        Role::Manager => format!("manager{index}"),
        Role::Worker => format!("worker{index}"),
    }
}

/// Parse a node name back into role and index (`manager3` → (Manager, 3)).
#[must_use]
pub fn parse_node_name(node: &str) -> Option<(Role, u32)> {
    let (role, digits) = if let Some(d) = node.strip_prefix("manager") {
        (Role::Manager, d)
    } else if let Some(d) = node.strip_prefix("worker") {
        (Role::Worker, d)
    } else {
        return None;
    };
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(|i| (role, i))
}

/// Every name and address of one sandbox, derived from its name and subnet octet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Sandbox name.
    pub name: String,
    /// Third octet of the sandbox's /24.
    pub octet: u8,
}

impl Layout {
    /// Bridge on the host joining the nodes: `bsn-<hash6>` (10 bytes).
    #[must_use]
    pub fn bridge(&self) -> String {
        bridge_name(&self.name)
    }

    /// The bridge's own address, the nodes' default gateway.
    #[must_use]
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], self.octet, 1)
    }

    /// The sandbox subnet in CIDR notation.
    #[must_use]
    pub fn subnet(&self) -> String {
        format!(
            "{}.{}.{}.0/24",
            SUBNET_PREFIX[0], SUBNET_PREFIX[1], self.octet
        )
    }

    /// Address of a node: managers from .11, workers from .101.
    #[must_use]
    pub fn node_ip(&self, role: Role, index: u32) -> Ipv4Addr {
        let host = match role {
            Role::Manager => 10 + index,
            Role::Worker => 100 + index,
        };
        Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], self.octet, host as u8)
    }

    /// Network namespace of a node: `bosun-<name>-<node>`.
    #[must_use]
    pub fn netns(&self, node: &str) -> String {
        netns_name(&self.name, node)
    }

    /// Host end of a node's veth pair: `bs<hash6>m1` / `bs<hash6>w2` (≤ 15 bytes).
    #[must_use]
    pub fn veth(&self, role: Role, index: u32) -> String {
        let r = match role {
            Role::Manager => 'm',
            Role::Worker => 'w',
        };
        format!("bs{}{r}{index}", short_hash(&self.name))
    }
}

/// Bridge name of a sandbox (needs no subnet, so `down` can find it without state).
#[must_use]
pub fn bridge_name(name: &str) -> String {
    format!("bsn-{}", short_hash(name))
}

/// Network namespace name of a node.
#[must_use]
pub fn netns_name(name: &str, node: &str) -> String {
    format!("bosun-{name}-{node}")
}

/// Path of a node's network namespace file.
#[must_use]
pub fn netns_path(netns: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(netns)
}

/// Whether `netns` is a node namespace of sandbox `name` (exact shape, so the
/// sandbox `a` never claims the namespaces of a sandbox `a-manager1`).
#[must_use]
pub fn is_sandbox_netns(name: &str, netns: &str) -> bool {
    netns
        .strip_prefix("bosun-")
        .and_then(|rest| rest.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|node| parse_node_name(node).is_some())
}

/// The iptables comment marking the rules of one sandbox (no spaces, so
/// `iptables -S` prints it unquoted).
#[must_use]
pub fn rule_comment(name: &str) -> String {
    format!("bosun-sandbox:{name}")
}

/// The FORWARD rule letting nodes talk to each other across the bridge
/// (another dockerd on the host sets the FORWARD policy to DROP, and
/// bridged traffic goes through iptables when `br_netfilter` is loaded).
#[must_use]
pub fn forward_rule(name: &str) -> Vec<String> {
    let bridge = bridge_name(name);
    [
        "FORWARD",
        "-i",
        &bridge,
        "-o",
        &bridge,
        "-m",
        "comment",
        "--comment",
        &rule_comment(name),
        "-j",
        "ACCEPT",
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

/// From `iptables -S FORWARD` output, the `-D` argument lists deleting exactly
/// the rules carrying this sandbox's comment.
#[must_use]
pub fn rules_to_delete(name: &str, iptables_s: &str) -> Vec<Vec<String>> {
    let comment = rule_comment(name);
    iptables_s
        .lines()
        .filter_map(|line| {
            // iptables-nft quotes comments (`--comment "x"`), legacy does not;
            // the quotes are not part of the argument when passed without a shell.
            let words: Vec<&str> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"'))
                .collect();
            let tagged = words
                .windows(2)
                .any(|w| w[0] == "--comment" && w[1] == comment);
            if !tagged || words.first() != Some(&"-A") {
                return None;
            }
            let mut args = vec!["-D".to_owned()];
            args.extend(words[1..].iter().map(|w| (*w).to_owned()));
            Some(args)
        })
        .collect()
}

/// Whether any address or route on the host already lies in `10.213.<octet>.0/24`.
#[must_use]
pub fn octet_in_use(octet: u8, ip_route_output: &str) -> bool {
    let prefix = format!("{}.{}.{octet}.", SUBNET_PREFIX[0], SUBNET_PREFIX[1]);
    ip_route_output
        .split_whitespace()
        .any(|word| word.starts_with(&prefix))
}

/// Create the bridge with the gateway address and the forwarding rule.
pub async fn create_bridge(layout: &Layout) -> Result<()> {
    let bridge = layout.bridge();
    if link_exists(&bridge).await {
        return Err(Error::BridgeTaken { bridge });
    }
    run_cmd("ip", &["link", "add", &bridge, "type", "bridge"]).await?;
    let addr = format!("{}/24", layout.gateway());
    run_cmd("ip", &["addr", "add", &addr, "dev", &bridge]).await?;
    run_cmd("ip", &["link", "set", &bridge, "up"]).await?;
    let mut args = vec!["-w".to_owned(), "-I".to_owned()];
    args.extend(forward_rule(&layout.name));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_cmd("iptables", &args).await?;
    Ok(())
}

/// Create a node's namespace, its veth pair into the bridge, address and routes.
pub async fn create_node_net(layout: &Layout, role: Role, index: u32) -> Result<()> {
    let node = node_name(role, index);
    let ns = layout.netns(&node);
    let veth = layout.veth(role, index);
    let bridge = layout.bridge();
    let addr = format!("{}/24", layout.node_ip(role, index));
    let gateway = layout.gateway().to_string();
    run_cmd("ip", &["netns", "add", &ns]).await?;
    run_cmd(
        "ip",
        &[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ],
    )
    .await?;
    run_cmd("ip", &["link", "set", &veth, "master", &bridge, "up"]).await?;
    run_cmd("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"]).await?;
    run_cmd("ip", &["-n", &ns, "link", "set", "eth0", "up"]).await?;
    run_cmd("ip", &["-n", &ns, "link", "set", "lo", "up"]).await?;
    run_cmd(
        "ip",
        &["-n", &ns, "route", "add", "default", "via", &gateway],
    )
    .await?;
    Ok(())
}

/// Whether a network interface exists on the host.
pub async fn link_exists(link: &str) -> bool {
    run_cmd("ip", &["link", "show", "dev", link]).await.is_ok()
}

/// The network namespaces of sandbox `name` that exist now.
#[must_use]
pub fn sandbox_netns(name: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|ns| is_sandbox_netns(name, ns))
        .collect();
    found.sort();
    found
}

/// Host links (veths) of sandbox `name` that exist now.
pub async fn sandbox_links(name: &str) -> Result<Vec<String>> {
    let out = run_cmd_output("ip", &["-o", "link", "show"]).await?;
    let veth_prefix = format!("bs{}", short_hash(name));
    let bridge = bridge_name(name);
    Ok(out
        .lines()
        .filter_map(|line| {
            // "12: bsab12cdm1@if2: <...>"
            let field = line.split(": ").nth(1)?;
            let link = field.split('@').next()?;
            let ours = link == bridge
                || link
                    .strip_prefix(&veth_prefix)
                    .is_some_and(|rest| rest.starts_with(['m', 'w']));
            ours.then(|| link.to_owned())
        })
        .collect())
}

/// Remove everything network-related of sandbox `name`: namespaces, veths,
/// bridge, iptables rules. Missing pieces are fine (idempotent).
pub async fn teardown(name: &str) -> Result<()> {
    for ns in sandbox_netns(name) {
        // Deleting the namespace destroys the veth end inside it and thus the pair.
        run_cmd("ip", &["netns", "delete", &ns]).await?;
    }
    for link in sandbox_links(name).await? {
        // A veth vanishes on its own once its peer's namespace is gone, which
        // may happen between listing and deleting.
        if let Err(err) = run_cmd("ip", &["link", "delete", "dev", &link]).await
            && link_exists(&link).await
        {
            return Err(err);
        }
    }
    for args in sandbox_rules(name).await? {
        let mut full = vec!["-w"];
        full.extend(args.iter().map(String::as_str));
        run_cmd("iptables", &full).await?;
    }
    Ok(())
}

/// The `-D …` argument lists of this sandbox's iptables rules present now.
pub async fn sandbox_rules(name: &str) -> Result<Vec<Vec<String>>> {
    let out = run_cmd_output("iptables", &["-w", "-S", "FORWARD"]).await?;
    Ok(rules_to_delete(name, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            name: "test-a".into(),
            octet: 42,
        }
    }

    #[test]
    fn names_should_fit_ifnamsiz() {
        let l = layout();
        assert!(l.bridge().len() <= 15);
        assert!(l.veth(Role::Worker, 150).len() <= 15);
        assert_eq!(l.bridge(), format!("bsn-{}", short_hash("test-a")));
        assert_eq!(l.netns("manager1"), "bosun-test-a-manager1");
    }

    #[test]
    fn addresses_should_follow_role_and_index() {
        let l = layout();
        assert_eq!(l.gateway(), Ipv4Addr::new(10, 213, 42, 1));
        assert_eq!(l.node_ip(Role::Manager, 1), Ipv4Addr::new(10, 213, 42, 11));
        assert_eq!(l.node_ip(Role::Worker, 2), Ipv4Addr::new(10, 213, 42, 102));
        assert_eq!(l.subnet(), "10.213.42.0/24");
    }

    #[test]
    fn subnet_octet_should_be_stable_and_valid() {
        for name in ["bosun", "a", "t-quorum", "x-1234567890"] {
            let o = preferred_octet(name);
            assert!((1..=254).contains(&o));
            assert_eq!(o, preferred_octet(name));
            let all = octet_candidates(name);
            assert_eq!(all.len(), 254);
            assert_eq!(all[0], o);
            let mut sorted = all.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 254);
            assert!(!sorted.contains(&0) && !sorted.contains(&255));
        }
        assert_ne!(short_hash("a"), short_hash("b"));
    }

    #[test]
    fn hostnames_should_be_one_per_node_unique_and_valid() {
        let h = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert!(validate_hostnames(&h(&["swarm1", "swarm2", "lb-1.lan"]), 2, 1).is_ok());
        let err = |v: &[&str], m, w| validate_hostnames(&h(v), m, w).unwrap_err().to_string();
        assert!(err(&["a", "b"], 3, 0).contains("2 given for 3 nodes"));
        assert!(err(&["a", "a"], 2, 0).contains("`a` is given twice"));
        assert!(err(&["Swarm1"], 1, 0).contains("not a hostname"));
        assert!(err(&["-x"], 1, 0).contains("not a hostname"));
    }

    #[test]
    fn names_should_be_validated() {
        assert!(validate_name("bosun").is_ok());
        assert!(validate_name("t-1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("-a").is_err());
        assert!(validate_name("A").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"a".repeat(25)).is_err());
    }

    #[test]
    fn node_names_should_round_trip() {
        assert_eq!(node_name(Role::Manager, 3), "manager3");
        assert_eq!(parse_node_name("manager3"), Some((Role::Manager, 3)));
        assert_eq!(parse_node_name("worker12"), Some((Role::Worker, 12)));
        assert_eq!(parse_node_name("worker"), None);
        assert_eq!(parse_node_name("worker01"), None);
        assert_eq!(parse_node_name("manager1x"), None);
    }

    #[test]
    fn netns_match_should_not_claim_other_sandboxes() {
        assert!(is_sandbox_netns("a", "bosun-a-manager1"));
        assert!(is_sandbox_netns("a", "bosun-a-worker10"));
        assert!(!is_sandbox_netns("a", "bosun-a-manager1-manager1"));
        assert!(!is_sandbox_netns("a", "bosun-ab-manager1"));
        assert!(!is_sandbox_netns("a", "bosun-a-other"));
    }

    #[test]
    fn rules_to_delete_should_pick_only_own_comment() {
        let out = "-P FORWARD DROP\n\
            -A FORWARD -j DOCKER-USER\n\
            -A FORWARD -i bsn-aaaaaa -o bsn-aaaaaa -m comment --comment bosun-sandbox:a -j ACCEPT\n\
            -A FORWARD -i bsn-bbbbbb -o bsn-bbbbbb -m comment --comment bosun-sandbox:ab -j ACCEPT\n\
            -A FORWARD -i bsn-cccccc -o bsn-cccccc -m comment --comment \"bosun-sandbox:a\" -j ACCEPT\n";
        let rules = rules_to_delete("a", out);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0][0], "-D");
        assert_eq!(rules[0][1], "FORWARD");
        assert!(rules[0].contains(&"bsn-aaaaaa".to_owned()));
        assert!(
            rules[1].contains(&"bosun-sandbox:a".to_owned()),
            "{:?}",
            rules[1]
        );
    }

    #[test]
    fn octet_in_use_should_see_routes() {
        let routes = "default via 192.0.2.1 dev eth0\n10.213.7.0/24 dev bsn-x proto kernel scope link src 10.213.7.1\n";
        assert!(octet_in_use(7, routes));
        assert!(!octet_in_use(70, routes));
    }
}

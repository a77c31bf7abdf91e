//! `VipPolicy`: a keepalived VRRP virtual IP shared by a set of nodes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::net::Cidr;
use super::node_labels::check_selector;
use super::validate::{self, Cx};
use super::{Kind, NodeSelector, Object, Role, Rules, Spec, VipPolicy, check_name};
use crate::yaml::Path;

/// Longest VRRP password keepalived uses; characters beyond are ignored.
pub const MAX_PASSWORD_LEN: usize = 8;

/// A virtual IP held by one of the selected nodes at a time. bosun renders
/// one keepalived.conf per node and runs keepalived as a swarm service
/// pinned to that node (host network, `NET_ADMIN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VipPolicySpec {
    /// The virtual address with its prefix, e.g. `10.0.10.39/24` or `fd00::39/64`.
    pub address: String,
    /// Network interface on the nodes that carries the address, e.g. `ens160`.
    pub interface: String,
    /// VRRP virtual router id, 1–255, unique per L2 segment (many images
    /// default to 51: pick another).
    #[schemars(range(min = 1, max = 255))]
    pub virtual_router_id: i64,
    /// VRRP advertisement interval in seconds; the same on every node.
    /// Default 1. A fraction (e.g. `0.1`, in steps of 0.01) switches to
    /// `VRRPv3` for sub-second failover: adverts every 100 ms cost ten
    /// packets a second per node, and `VRRPv3` has no authentication.
    #[serde(default = "one_second")]
    pub advert_interval: Seconds,
    /// Which nodes take part, and their priorities. Default: the managers.
    #[serde(default)]
    pub nodes: VipNodes,
    /// Send advertisements to the other nodes' addresses instead of
    /// multicast. Default true: bosun knows every peer from the swarm, and
    /// multicast is filtered on many clouds and virtual switches.
    #[serde(default = "yes")]
    pub unicast: bool,
    /// A higher-priority node takes the address back when it returns.
    /// Default true (keepalived's default). With false (`nopreempt`),
    /// weight changes from checks no longer move the address.
    #[serde(default = "yes")]
    pub preempt: bool,
    /// VRRP authentication (PASS, at most 8 characters). Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<VipAuth>,
    /// Health checks (`vrrp_script`s); a failing check adds its weight to the
    /// node's priority, or with weight 0 puts the node in FAULT state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<VipCheck>,
    /// keepalived image. Default `bosun/keepalived:2.2`.
    #[serde(default = "default_image")]
    pub image: String,
}

/// Seconds, possibly fractional.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Seconds(#[schemars(range(min = 0.01))] pub f64);

// Validation refuses what is not a positive finite number, so equality on
// the manifest's value is total where it matters.
impl Eq for Seconds {}

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl VipPolicySpec {
    /// The address, when it parses.
    #[must_use]
    pub fn cidr(&self) -> Option<Cidr> {
        Cidr::parse(&self.address).ok()
    }

    /// `VRRPv3`, for an advertisement interval that is not a whole number of
    /// seconds (keepalived's `VRRPv2` counts whole seconds only).
    #[must_use]
    pub fn vrrp3(&self) -> bool {
        self.advert_interval.0.fract() != 0.0
    }

    /// The VRRP password, read where the policy says: `auth.passwordFile`
    /// through `confine` (never outside the source root), or
    /// `auth.passwordEnv` from `env`. `Ok(None)` without `auth`. The error
    /// names the file or variable, never the value.
    pub fn password(
        &self,
        confine: &crate::source::Confinement,
        env: &BTreeMap<String, String>,
    ) -> Result<Option<String>, String> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        if let Some(file) = &auth.password_file {
            let inside = confine
                .check(file)
                .map_err(|e| format!("auth.passwordFile {}: {e}", file.display()))?;
            let text = std::fs::read_to_string(&inside).map_err(|e| {
                format!("auth.passwordFile {}: cannot read it: {e}", file.display())
            })?;
            return Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()));
        }
        match &auth.password_env {
            Some(var) => env
                .get(var)
                .cloned()
                .map(Some)
                .ok_or_else(|| format!("auth.passwordEnv: the variable {var} is not set")),
            None => Ok(None),
        }
    }

    /// The interface carrying the address on `hostname`.
    #[must_use]
    pub fn interface_of(&self, hostname: &str) -> &str {
        self.nodes
            .interfaces
            .get(hostname)
            .map_or(self.interface.as_str(), String::as_str)
    }
}

/// The nodes sharing the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VipNodes {
    /// Which nodes run keepalived. Default `{role: manager}`.
    #[serde(default = "managers")]
    pub selector: NodeSelector,
    /// Priorities (1–254, distinct) by hostname; the highest holds the
    /// address. Selected nodes not listed get priorities below the lowest
    /// listed one, in hostname order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub priorities: BTreeMap<String, i64>,
    /// Interfaces by hostname, where a node's differs from `interface`
    /// (e.g. `{swarm3: eno1}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interfaces: BTreeMap<String, String>,
}

impl Default for VipNodes {
    fn default() -> Self {
        VipNodes {
            selector: managers(),
            priorities: BTreeMap::new(),
            interfaces: BTreeMap::new(),
        }
    }
}

/// Where the VRRP password comes from (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VipAuth {
    /// A file holding the password (trailing newline ignored), relative to
    /// this manifest or absolute. Keep it out of git (e.g. git-crypt, sops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// An environment variable of the bosun process holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

/// A keepalived health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VipCheck {
    /// Name, unique within the policy.
    pub name: String,
    /// What to check: `docker` (dockerd answers), `http` (`url` answers 2xx),
    /// `tcp` (`host`+`port` or `address` accepts connections), `script`.
    #[serde(rename = "type")]
    pub kind: CheckType,
    /// `http`: the URL to GET, e.g. `http://127.0.0.1:8080/ping` (Traefik).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `tcp`: host to connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `tcp`: port to connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `tcp`: `host:port` in one field, instead of `host` and `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `script`: command run inside the keepalived container; exit 0 is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Seconds between runs. Default 2.
    #[serde(default = "two")]
    #[schemars(range(min = 1))]
    pub interval: i64,
    /// Added to the priority while the check fails (negative) or passes
    /// (positive), −253..253. Default 0: failure puts the node in FAULT.
    #[serde(default)]
    #[schemars(range(min = -253, max = 253))]
    pub weight: i64,
    /// Consecutive failures before the check counts as failed. Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub fall: i64,
    /// Consecutive successes before the check counts as passing. Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub rise: i64,
}

/// The kind of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    /// dockerd answers on its socket.
    Docker,
    /// An HTTP GET of `url` returns 2xx.
    Http,
    /// A TCP connection to `host`:`port` (or `address`) succeeds.
    Tcp,
    /// `script` exits 0.
    Script,
}

fn one() -> i64 {
    1
}

fn one_second() -> Seconds {
    Seconds(1.0)
}

fn two() -> i64 {
    2
}

fn yes() -> bool {
    true
}

fn managers() -> NodeSelector {
    NodeSelector {
        role: Some(Role::Manager),
        ..NodeSelector::default()
    }
}

fn default_image() -> String {
    "bosun/keepalived:2.2".into()
}

impl Spec for VipPolicySpec {
    const KIND: Kind = Kind::VipPolicy;
    const NAME: &'static str = "VipPolicy";
    const FILE_STEM: &'static str = "vip-policy";
    const DESCRIPTION: &'static str = "A keepalived VRRP virtual IP shared by a set of nodes, run by bosun as one swarm service per node.";
}

impl Rules for VipPolicySpec {
    fn check(obj: &Object<Self>, cx: &mut Cx) {
        let spec = &obj.spec;
        if let Err(e) = check_name(obj.name(), true) {
            cx.error(obj, "metadata.name", e);
        }
        match Cidr::parse(&spec.address) {
            Err(e) => cx.error(
                obj,
                "spec.address",
                format!("must be address/prefix like 10.0.10.39/24: {e}"),
            ),
            Ok(c)
                if c.prefix + 1 < c.max_prefix()
                    && (c.is_network() || Some(c.addr) == c.broadcast()) =>
            {
                cx.error(
                    obj,
                    "spec.address",
                    format!(
                        "{} is the network or broadcast address of its prefix",
                        c.addr
                    ),
                );
            }
            Ok(_) => {}
        }
        check_interface(obj, Path::parse("spec.interface"), &spec.interface, cx);
        for (host, iface) in &spec.nodes.interfaces {
            check_interface(
                obj,
                Path::parse("spec.nodes.interfaces").key(host),
                iface,
                cx,
            );
        }
        let vrid = spec.virtual_router_id;
        if !(1..=255).contains(&vrid) {
            cx.error(
                obj,
                "spec.virtualRouterId",
                format!("must be between 1 and 255, got {vrid}"),
            );
        } else if vrid == 51 {
            cx.warning(
            obj,
            "spec.virtualRouterId",
            "51 is the default of many keepalived images and collides easily on a shared L2; pick another",
        );
        }
        check_advert_interval(obj, cx);
        check_selector(
            obj,
            &Path::parse("spec.nodes.selector"),
            &spec.nodes.selector,
            cx,
        );
        let mut seen: HashMap<i64, &str> = HashMap::new();
        for (host, prio) in &spec.nodes.priorities {
            let path = Path::parse("spec.nodes.priorities").key(host);
            if !(1..=254).contains(prio) {
                cx.error(
                obj,
                path,
                format!("priority of `{host}` must be between 1 and 254 (255 is the address owner's), got {prio}"),
            );
                continue;
            }
            if let Some(first) = seen.insert(*prio, host) {
                cx.error(
                obj,
                path,
                format!("priority {prio} of `{host}` is also the priority of `{first}`; priorities must be distinct"),
            );
            }
        }
        if let Some(auth) = &spec.auth {
            check_auth(obj, auth, cx);
        }
        check_checks(obj, cx);
        let listed: Vec<(&str, i64)> = spec
            .nodes
            .priorities
            .iter()
            .filter(|(_, p)| (1..=254).contains(*p))
            .map(|(h, p)| (h.as_str(), *p))
            .collect();
        for (field, message) in weight_analysis(spec, &listed) {
            cx.warning(obj, Path::parse(&field), message);
        }
        if !spec.preempt && spec.checks.iter().any(|c| c.weight != 0) {
            cx.warning(
            obj,
            "spec.preempt",
            "with preempt: false (nopreempt) weight changes from checks do not move the address",
        );
        }
        if spec.image.trim().is_empty() {
            cx.error(
                obj,
                "spec.image",
                "must not be empty (default `bosun/keepalived:2.2`)",
            );
        }
    }
}

fn check_interface(obj: &VipPolicy, path: Path, iface: &str, cx: &mut Cx) {
    if iface.is_empty()
        || iface.len() > 15
        || iface.contains(|c: char| c.is_whitespace() || c == '/' || c == ':')
    {
        cx.error(
            obj,
            path,
            format!(
                "`{iface}` is not a valid interface name (1–15 characters, no spaces, `/` or `:`)"
            ),
        );
    }
}

/// keepalived's limits: `VRRPv2` whole seconds 1–255; `VRRPv3` centiseconds up
/// to 40.95 s, and no authentication.
fn check_advert_interval(obj: &VipPolicy, cx: &mut Cx) {
    let spec = &obj.spec;
    let secs = spec.advert_interval.0;
    let path = "spec.advertInterval";
    if !secs.is_finite() || secs <= 0.0 {
        cx.error(
            obj,
            path,
            format!("must be greater than 0 seconds, got {secs}"),
        );
    } else if !spec.vrrp3() {
        if secs > 255.0 {
            cx.error(
                obj,
                path,
                format!("must be at most 255 seconds, got {secs}"),
            );
        }
    } else if secs > 40.95 || ((secs * 100.0).round() - secs * 100.0).abs() > 1e-9 {
        cx.error(
            obj,
            path,
            format!("a fractional interval (VRRPv3) is counted in hundredths of a second up to 40.95, got {secs}"),
        );
    } else if spec.auth.is_some() {
        cx.error(
            obj,
            "spec.auth",
            format!("VRRPv3 (the fractional advertInterval {secs}) has no authentication: remove `auth`, or use whole seconds"),
        );
    }
}

fn check_auth(obj: &VipPolicy, auth: &VipAuth, cx: &mut Cx) {
    let too_long = |len: usize| {
        format!(
            "the password has {len} characters but keepalived uses only the first {MAX_PASSWORD_LEN}; use at most {MAX_PASSWORD_LEN}"
        )
    };
    match (&auth.password_file, &auth.password_env) {
        (Some(_), Some(_)) => cx.error(
            obj,
            "spec.auth",
            "give either `passwordFile` or `passwordEnv`, not both",
        ),
        (None, None) => cx.error(obj, "spec.auth", "needs `passwordFile` or `passwordEnv`"),
        (Some(file), None) => {
            let path = Path::parse("spec.auth.passwordFile");
            if let Some((abs, display)) =
                cx.referenced_file(obj, path.clone(), file, "password file")
            {
                match std::fs::read(&abs) {
                    Err(e) => cx.error(
                        obj,
                        path,
                        format!("cannot read password file `{display}`: {e}"),
                    ),
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes);
                        let password = text.trim_end_matches(['\n', '\r']);
                        let len = password.chars().count();
                        if len == 0 {
                            cx.error(obj, path, format!("password file `{display}` is empty"));
                        } else if len > MAX_PASSWORD_LEN {
                            cx.error(obj, path, too_long(len));
                        }
                    }
                }
            }
        }
        (None, Some(var)) => {
            let path = Path::parse("spec.auth.passwordEnv");
            if validate::is_env_name(var) {
                match cx.env(var) {
                    None => cx.warning(
                        obj,
                        path,
                        format!("environment variable `{var}` is not set here; it must be set where bosun runs"),
                    ),
                    Some(p) if p.is_empty() => cx.error(obj, path, format!("environment variable `{var}` is empty")),
                    Some(p) if p.chars().count() > MAX_PASSWORD_LEN => cx.error(obj, path, too_long(p.chars().count())),
                    Some(_) => {}
                }
            } else {
                cx.error(
                    obj,
                    path,
                    format!("`{var}` is not a valid environment variable name"),
                );
            }
        }
    }
}

fn check_checks(obj: &VipPolicy, cx: &mut Cx) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, check) in obj.spec.checks.iter().enumerate() {
        let base = Path::parse("spec.checks").index(i);
        if let Err(e) = check_name(&check.name, false) {
            cx.error(obj, base.key("name"), e);
        } else if let Some(first) = names.insert(&check.name, i) {
            cx.error(
                obj,
                base.key("name"),
                format!(
                    "check name `{}` is already used by spec.checks[{first}]",
                    check.name
                ),
            );
        }
        let given = [
            ("url", check.url.is_some()),
            ("host", check.host.is_some()),
            ("port", check.port.is_some()),
            ("address", check.address.is_some()),
            ("script", check.script.is_some()),
        ];
        let allowed: &[&str] = match check.kind {
            CheckType::Docker => &[],
            CheckType::Http => &["url"],
            CheckType::Tcp => &["host", "port", "address"],
            CheckType::Script => &["script"],
        };
        let type_name = serde_json::to_value(check.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        for (field, present) in given {
            if present && !allowed.contains(&field) {
                cx.error(
                    obj,
                    base.key(field),
                    format!("`{field}` does not apply to a `{type_name}` check"),
                );
            }
        }
        match check.kind {
            CheckType::Docker => {}
            CheckType::Http => match check.url.as_deref() {
                None => cx.error(obj, base.key("type"), "an http check needs `url`"),
                Some(u)
                    if !(u.starts_with("http://") || u.starts_with("https://"))
                        || u.len() <= "http://".len() =>
                {
                    cx.error(
                        obj,
                        base.key("url"),
                        format!("`{u}` is not an http:// or https:// URL"),
                    );
                }
                Some(_) => {}
            },
            CheckType::Tcp => match (&check.host, check.port, &check.address) {
                (Some(_), Some(_), None) => {}
                (None, None, Some(addr)) => {
                    let ok = addr.rsplit_once(':').is_some_and(|(h, p)| {
                        !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)
                    });
                    if !ok {
                        cx.error(
                            obj,
                            base.key("address"),
                            format!("`{addr}` is not `host:port`"),
                        );
                    }
                }
                (_, _, Some(_)) => cx.error(
                    obj,
                    base.key("address"),
                    "give either `address` or `host` and `port`, not both",
                ),
                _ => cx.error(
                    obj,
                    base.key("type"),
                    "a tcp check needs `host` and `port` (or `address: host:port`)",
                ),
            },
            CheckType::Script => {
                if check.script.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    cx.error(obj, base.key("type"), "a script check needs `script`");
                }
            }
        }
        if check.port == Some(0) {
            cx.error(obj, base.key("port"), "must be between 1 and 65535");
        }
        if check.interval < 1 {
            cx.error(
                obj,
                base.key("interval"),
                format!("must be greater than 0 seconds, got {}", check.interval),
            );
        }
        if !(-253..=253).contains(&check.weight) {
            cx.error(
                obj,
                base.key("weight"),
                format!("must be between -253 and 253, got {}", check.weight),
            );
        }
        if check.fall < 1 {
            cx.error(
                obj,
                base.key("fall"),
                format!("must be at least 1, got {}", check.fall),
            );
        }
        if check.rise < 1 {
            cx.error(
                obj,
                base.key("rise"),
                format!("must be at least 1, got {}", check.rise),
            );
        }
    }
}

/// Checks whose failure on the node that holds the address cannot move it:
/// `(field, message with the numbers and a fix)`. `nodes` are
/// `(hostname, base priority)`; the holder is the node with the highest
/// priority when every check passes (keepalived adds a positive weight
/// while its check passes, a negative one while it fails; weight 0 puts a
/// failing node in FAULT, which always moves the address).
#[must_use]
pub fn weight_analysis(spec: &VipPolicySpec, nodes: &[(&str, i64)]) -> Vec<(String, String)> {
    let healthy = |base: i64, checks: &[VipCheck]| -> i64 {
        base + checks.iter().map(|c| c.weight.max(0)).sum::<i64>()
    };
    let mut out = Vec::new();
    if nodes.len() < 2 || !spec.preempt {
        return out;
    }
    let mut ranked: Vec<(&str, i64)> = nodes
        .iter()
        .map(|(h, p)| (*h, healthy(*p, &spec.checks)))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let (holder, top) = ranked[0];
    let (next, _) = ranked[1];
    let base = |host: &str| nodes.iter().find(|(h, _)| *h == host).map_or(0, |n| n.1);
    // With `checks` as they are but check `i`'s weight `w`: the holder's
    // priority while `i` fails, and the next node's while all pass.
    let when_failing = |i: usize, w: i64| -> (i64, i64) {
        let mut checks = spec.checks.clone();
        checks[i].weight = w;
        let failed = healthy(base(holder), &checks) - w.max(0) + w.min(0);
        (failed, healthy(base(next), &checks))
    };
    for (i, check) in spec.checks.iter().enumerate() {
        if check.weight == 0 {
            continue;
        }
        let (failed, other) = when_failing(i, check.weight);
        if failed < other {
            continue;
        }
        let fix = (1..=253)
            .map(|w| if check.weight > 0 { w } else { -w })
            .find(|&w| {
                let (f, o) = when_failing(i, w);
                f < o
            })
            .map_or_else(
                || "use weight 0: a failing check then puts the node in FAULT".to_string(),
                |w| format!("use weight {w} or beyond, or weight 0 (a failing check then puts the node in FAULT)"),
            );
        out.push((
            format!("spec.checks[{i}].weight"),
            format!(
                "when `{}` fails on {holder} (priority {top} while healthy) its priority is {failed}, not below {next}'s {other}: the address stays on {holder}; {fix}",
                check.name
            ),
        ));
    }
    out
}

//! `Network`: a swarm-scoped network, created before the stacks that use it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::net::Cidr;
use super::validate::Cx;
use super::{Kind, Object, Rules, Spec, check_name};
use crate::yaml::Path;

/// A swarm-scoped network. Stacks use it as an `external` network; bosun
/// creates it before any stack and removes it (when pruned) after them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Network driver. Default `overlay`, the only driver that spans nodes;
    /// local drivers (`macvlan`, `bridge`) are created with swarm scope.
    #[serde(default = "default_driver")]
    pub driver: String,
    /// Allow standalone containers (`docker run --network`) to attach.
    /// Default false.
    #[serde(default)]
    pub attachable: bool,
    /// No route to the outside world. Default false.
    #[serde(default)]
    pub internal: bool,
    /// Encrypt overlay traffic between nodes (`IPsec`; the `encrypted` driver
    /// option). Default false.
    #[serde(default)]
    pub encrypted: bool,
    /// This network replaces the swarm's ingress (routing mesh) network. At
    /// most one per folder; overlay only, never attachable. Default false.
    #[serde(default)]
    pub ingress: bool,
    /// Enable IPv6 on the network. Default false.
    #[serde(default, rename = "enableIPv6")]
    pub enable_ipv6: bool,
    /// Driver options, strings to strings (quote numbers), e.g.
    /// `com.docker.network.driver.mtu: "1200"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// IP address management; without it Docker picks a free subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
}

/// IP address management of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ipam {
    /// IPAM driver. Default `default`.
    #[serde(default = "default_ipam_driver")]
    pub driver: String,
    /// Address pools of the network.
    #[serde(default)]
    pub config: Vec<IpamConfig>,
    /// IPAM driver options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// One address pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpamConfig {
    /// Subnet in CIDR form with host bits clear, e.g. `10.11.0.0/16`.
    pub subnet: String,
    /// Gateway address inside the subnet. Default: Docker picks the first host address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Sub-range (CIDR inside the subnet) containers get addresses from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            driver: default_driver(),
            attachable: false,
            internal: false,
            encrypted: false,
            ingress: false,
            enable_ipv6: false,
            options: BTreeMap::new(),
            ipam: None,
        }
    }
}

fn default_driver() -> String {
    "overlay".into()
}

fn default_ipam_driver() -> String {
    "default".into()
}

impl NetworkSpec {
    /// The subnets that parse, with their index in `ipam.config`.
    #[must_use]
    pub fn subnets(&self) -> Vec<(usize, Cidr)> {
        self.ipam
            .iter()
            .flat_map(|ipam| ipam.config.iter().enumerate())
            .filter_map(|(i, c)| Cidr::parse(&c.subnet).ok().map(|s| (i, s)))
            .collect()
    }
}

impl Spec for NetworkSpec {
    const KIND: Kind = Kind::Network;
    const NAME: &'static str = "Network";
    const FILE_STEM: &'static str = "network";
    const DESCRIPTION: &'static str = "A swarm-scoped network, created before any stack that uses it; `ingress: true` replaces the swarm's ingress network.";
}

impl Rules for NetworkSpec {
    fn check(obj: &Object<Self>, cx: &mut Cx) {
        let spec = &obj.spec;
        if let Err(e) = check_name(obj.name(), false) {
            cx.error(obj, "metadata.name", e);
        }
        super::precheck::network(obj, cx);
        if spec.driver.trim().is_empty() {
            cx.error(obj, "spec.driver", "must not be empty (default `overlay`)");
        }
        if spec.ingress {
            if spec.driver != "overlay" {
                cx.error(
                    obj,
                    "spec.ingress",
                    format!(
                        "an ingress network must use the overlay driver, not `{}`",
                        spec.driver
                    ),
                );
            }
            if spec.attachable {
                cx.error(
                    obj,
                    "spec.attachable",
                    "an ingress network cannot be attachable",
                );
            }
        }
        if spec.encrypted && spec.driver != "overlay" {
            cx.error(
                obj,
                "spec.encrypted",
                format!("encryption needs the overlay driver, not `{}`", spec.driver),
            );
        }
        for key in spec.options.keys() {
            if key.trim().is_empty() {
                cx.error(obj, "spec.options", "option names must not be empty");
            }
        }
        let Some(ipam) = &spec.ipam else { return };
        for (i, config) in ipam.config.iter().enumerate() {
            let base = Path::parse("spec.ipam.config").index(i);
            let subnet = match Cidr::parse(&config.subnet) {
                Ok(s) if !s.is_network() => {
                    cx.error(
                        obj,
                        base.key("subnet"),
                        format!(
                            "subnet `{}` has host bits set; did you mean `{}/{}`?",
                            config.subnet,
                            s.network(),
                            s.prefix
                        ),
                    );
                    continue;
                }
                Ok(s) => s,
                Err(e) => {
                    cx.error(obj, base.key("subnet"), format!("invalid subnet: {e}"));
                    continue;
                }
            };
            if subnet.addr.is_ipv6() && !spec.enable_ipv6 {
                cx.error(
                    obj,
                    base.key("subnet"),
                    format!("IPv6 subnet `{subnet}` needs `enableIPv6: true`"),
                );
            }
            if let Some(gw) = &config.gateway {
                match gw.parse::<IpAddr>() {
                    Err(_) => cx.error(
                        obj,
                        base.key("gateway"),
                        format!("gateway `{gw}` is not an IP address (write it without a prefix)"),
                    ),
                    Ok(ip) if !subnet.contains(ip) => cx.error(
                        obj,
                        base.key("gateway"),
                        format!("gateway {ip} is outside subnet {subnet}"),
                    ),
                    Ok(ip) if ip == subnet.addr || Some(ip) == subnet.broadcast() => cx.error(
                        obj,
                        base.key("gateway"),
                        format!("gateway {ip} is the network or broadcast address of {subnet}"),
                    ),
                    Ok(_) => {}
                }
            }
            if let Some(range) = &config.ip_range {
                match Cidr::parse(range) {
                    Err(e) => cx.error(obj, base.key("ipRange"), format!("invalid ipRange: {e}")),
                    Ok(r) if !subnet.contains_cidr(&r) => cx.error(
                        obj,
                        base.key("ipRange"),
                        format!("ipRange {r} is not inside subnet {subnet}"),
                    ),
                    Ok(_) => {}
                }
            }
            for (j, other) in ipam.config.iter().enumerate().take(i) {
                if let Ok(o) = Cidr::parse(&other.subnet)
                    && o.overlaps(&subnet)
                {
                    cx.error(
                        obj,
                        base.key("subnet"),
                        format!("subnet {subnet} overlaps spec.ipam.config[{j}].subnet {o}"),
                    );
                }
            }
        }
    }
}

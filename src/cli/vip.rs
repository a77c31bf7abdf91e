//! `bosun vip render|check|status`: the keepalived configurations of a
//! folder's `VipPolicy` manifests, one health check, who holds each VIP.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Error, Exit};
use crate::manifest;
use crate::source::Confinement;
use crate::vip::{self, NodeFacts};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print each node's keepalived.conf (the password masked).
    Render(RenderArgs),
    /// One health check, as keepalived runs it: exit 0 healthy, 1 not.
    Check(CheckArgs),
    /// Which node holds each VIP and every node's VRRP state, from the
    /// keepalived services' logs (`DOCKER_HOST`, like the docker CLI).
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// `text` or `json`.
    #[arg(long, value_enum, default_value = "text")]
    pub output: super::plan::Output,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Folder of manifests.
    pub dir: PathBuf,
    /// Only this node's configuration, as the bare file.
    #[arg(long)]
    pub node: Option<String>,
    /// `HOSTNAME=ADDRESS` of a node (repeatable): render for these nodes,
    /// without asking a swarm (a machine with no swarm yet). The policies'
    /// selectors are not applied to them.
    #[arg(long = "address", value_name = "HOSTNAME=ADDRESS")]
    pub addresses: Vec<String>,
    /// Print the VRRP password instead of `********`.
    #[arg(long)]
    pub show_password: bool,
    /// The checker's path inside the keepalived container.
    #[arg(long, default_value = vip::CHECKER)]
    pub checker: String,
}

/// Run `bosun vip …`.
pub fn run(args: &Args, allow: &[PathBuf]) -> super::Result {
    match &args.command {
        Command::Render(r) => render(r, allow),
        Command::Check(c) => check(c),
        Command::Status(s) => status(s),
    }
}

fn status(args: &StatusArgs) -> super::Result {
    let rt = super::plan::runtime()?;
    let policies = rt.block_on(async {
        let (client, snapshot) = super::plan::connect_and_observe().await?;
        anyhow::Ok(vip::status::of_swarm(&client, &snapshot).await)
    })?;
    if args.output == super::plan::Output::Json {
        let json = serde_json::to_string_pretty(&policies).map_err(anyhow::Error::new)?;
        crate::outln!("{json}")?;
        return Ok(Exit::Success);
    }
    if policies.is_empty() {
        crate::outln!("no keepalived services of a VipPolicy in this swarm")?;
    }
    for p in &policies {
        let holder = p.held();
        crate::outln!("{} {}: {holder}", p.policy, p.address)?;
        for n in &p.nodes {
            let since = n
                .since
                .as_deref()
                .map(|s| format!(" since {s}"))
                .unwrap_or_default();
            let error = n
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            crate::outln!("  {:<20} {:<8}{since}{error}", n.hostname, n.state.as_str())?;
        }
    }
    Ok(Exit::Success)
}

fn render(args: &RenderArgs, allow: &[PathBuf]) -> super::Result {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let confine = Confinement::new(&args.dir).allow(allow);
    let desired = manifest::load_confined(&args.dir, &env, &confine)
        .map_err(|d| Error::Invalid(format!("{d}\ninvalid manifests: nothing rendered")))?;
    if desired.vip_policies.is_empty() {
        return Err(Error::Invalid(format!(
            "no VipPolicy in {}",
            args.dir.display()
        )));
    }
    let given = given_nodes(&args.addresses)?;
    let nodes = if given.is_empty() {
        Some(swarm_nodes()?)
    } else {
        None
    };
    let mut printed = 0;
    for policy in &desired.vip_policies {
        let spec = &policy.spec;
        let members = match &nodes {
            Some(nodes) => vip::members(spec, nodes),
            None => vip::with_priorities(
                spec,
                given
                    .iter()
                    .map(|(h, a)| (h.clone(), String::new(), a.clone())),
            ),
        };
        let password = spec
            .password(&confine, &env)
            .map_err(|e| Error::Invalid(format!("VipPolicy/{}: {e}", policy.name())))?;
        let rendered = vip::render(
            policy.name(),
            spec,
            &members,
            vip::Options {
                password: password.as_deref(),
                checker: &args.checker,
            },
        );
        for r in rendered {
            if args.node.as_ref().is_some_and(|n| *n != r.hostname) {
                continue;
            }
            let text = if args.show_password {
                r.config.clone()
            } else {
                vip::mask(&r.config)
            };
            if args.node.is_none() {
                crate::outln!(
                    "# ---- VipPolicy/{} on {} (priority {}) ----",
                    policy.name(),
                    r.hostname,
                    r.priority
                )?;
            }
            crate::out!("{text}")?;
            printed += 1;
        }
    }
    if printed == 0 {
        return Err(Error::Invalid(match &args.node {
            Some(n) => format!("no VipPolicy selects the node `{n}`"),
            None => "no node is selected by the VipPolicy manifests".to_string(),
        }));
    }
    Ok(Exit::Success)
}

/// `HOSTNAME=ADDRESS` pairs.
fn given_nodes(pairs: &[String]) -> Result<Vec<(String, String)>, Error> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((h, a)) if !h.is_empty() && a.parse::<std::net::IpAddr>().is_ok() => {
                Ok((h.to_string(), a.to_string()))
            }
            _ => Err(Error::Invalid(format!(
                "--address `{p}`: give HOSTNAME=ADDRESS, e.g. swarm1=10.0.10.31"
            ))),
        })
        .collect()
}

/// The swarm's nodes, as the policies select them.
fn swarm_nodes() -> Result<Vec<NodeFacts>, Error> {
    let rt = super::plan::runtime()?;
    let (_, snapshot) = rt.block_on(super::plan::connect_and_observe())?;
    Ok(snapshot.nodes.iter().filter_map(NodeFacts::of).collect())
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub what: Check,
    /// Give up after this long.
    #[arg(long, global = true, default_value = "2s", value_parser = super::run::duration)]
    pub timeout: std::time::Duration,
}

/// What `bosun vip check` checks (keepalived runs it as a `vrrp_script`:
/// exit 0 healthy, 1 not).
#[derive(Debug, clap::Subcommand)]
pub enum Check {
    /// dockerd answers `GET /_ping` on its socket.
    Docker {
        #[arg(long, default_value = "/var/run/docker.sock")]
        socket: PathBuf,
    },
    /// An HTTP GET of URL (http://) answers 2xx, or `--status`.
    Http {
        url: String,
        #[arg(long)]
        status: Option<u16>,
    },
    /// A TCP connection to HOST:PORT succeeds.
    Tcp { address: String },
}

fn check(args: &CheckArgs) -> super::Result {
    match crate::vip::check::run(&args.what.as_probe(), args.timeout) {
        Ok(()) => Ok(Exit::Success),
        Err(why) => {
            crate::errln!("unhealthy: {why}")?;
            Ok(Exit::Differences)
        }
    }
}

impl Check {
    fn as_probe(&self) -> crate::vip::check::Probe {
        use crate::vip::check::Probe;
        match self {
            Check::Docker { socket } => Probe::Docker(socket.clone()),
            Check::Http { url, status } => Probe::Http {
                url: url.clone(),
                status: *status,
            },
            Check::Tcp { address } => Probe::Tcp(address.clone()),
        }
    }
}

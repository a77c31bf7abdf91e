//! `bosun vip render`: the keepalived configurations of a folder's
//! `VipPolicy` manifests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Error, Exit};
use crate::manifest::{self, VipPolicySpec};
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
    }
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
        let password = password(spec, &confine, &env)?;
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

/// The policy's password, read where validation found it.
fn password(
    spec: &VipPolicySpec,
    confine: &Confinement,
    env: &BTreeMap<String, String>,
) -> Result<Option<String>, Error> {
    let Some(auth) = &spec.auth else {
        return Ok(None);
    };
    if let Some(file) = &auth.password_file {
        let path: &Path = file;
        let inside = confine
            .check(path)
            .map_err(|e| Error::Invalid(format!("password file: {e}")))?;
        let text = std::fs::read_to_string(&inside)
            .with_context(|| format!("cannot read the password file {}", path.display()))?;
        return Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(auth
        .password_env
        .as_ref()
        .and_then(|var| env.get(var).cloned()))
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

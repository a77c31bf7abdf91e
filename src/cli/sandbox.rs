//! `bosun sandbox`: a real multi-node swarm on this host, one dockerd per node.
//!
//! Each invocation is separate (`up`, then `kill`, then `down` from another
//! shell): the state lives under `/run/bosun-sandbox/<name>/`.

use anyhow::Context as _;
use clap::Subcommand;

use super::Exit;
use crate::sandbox::{self, Config, Sandbox};

/// Arguments of `bosun sandbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: SandboxCommand,
}

/// Sandbox name shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct NameArg {
    /// Sandbox name (several sandboxes with different names can coexist).
    #[arg(long, default_value = sandbox::DEFAULT_NAME, env = "BOSUN_SANDBOX")]
    pub name: String,
}

/// A node of a sandbox plus the sandbox name.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArg {
    /// Node: its hostname, or manager1…N, worker1…M.
    pub node: String,
    #[command(flatten)]
    pub name: NameArg,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start the nodes and form the swarm.
    Up {
        /// Number of managers.
        #[arg(long, default_value_t = 3)]
        managers: u32,
        /// Number of workers.
        #[arg(long, default_value_t = 0)]
        workers: u32,
        /// Keep a half-started sandbox (for its logs) when up fails.
        #[arg(long)]
        keep_on_failure: bool,
        /// The nodes' hostnames, managers first (e.g. swarm1,swarm2,swarm3),
        /// so manifests written for a real cluster run unchanged.
        #[arg(long, value_delimiter = ',')]
        hostnames: Vec<String>,
        #[command(flatten)]
        name: NameArg,
    },
    /// Stop every node and remove all traces (processes, namespaces, mounts, bridge, iptables rules).
    Down(NameArg),
    /// SIGKILL a node's daemon, containerd and containers and take its link down (a crash).
    Kill(NodeArg),
    /// Start a killed node again with the same data, its link up; it rejoins the swarm.
    Start(NodeArg),
    /// Take a node's link down; its processes keep running (a cut cable).
    Cut(NodeArg),
    /// Bring a cut node's link up again.
    Mend(NodeArg),
    /// Show daemons and the swarm's node list.
    Status(NameArg),
    /// Print `export DOCKER_HOST=…` for a node (use with eval).
    Env(NodeArg),
    /// Build the busybox test image (bosun/busybox:latest) into every node.
    Image(NameArg),
}

/// Run `bosun sandbox`.
pub fn run(args: &Args) -> super::Result {
    Ok(super::plan::runtime()?.block_on(run_async(&args.command))?)
}

async fn run_async(command: &SandboxCommand) -> anyhow::Result<Exit> {
    // Everything but reading state needs root and the tools; say what is
    // missing before half-doing anything.
    if !matches!(command, SandboxCommand::Status(_) | SandboxCommand::Env(_)) {
        let report = sandbox::preflight::check();
        if !report.is_ok() {
            return Err(sandbox::Error::PreflightFailed(report).into());
        }
    }
    match command {
        SandboxCommand::Up {
            managers,
            workers,
            keep_on_failure,
            hostnames,
            name,
        } => {
            let config = Config::new(&name.name)
                .managers(*managers)
                .workers(*workers)
                .hostnames(hostnames.clone())
                .keep_on_failure(*keep_on_failure);
            let sandbox = Sandbox::up(config)
                .await
                .with_context(|| format!("sandbox {:?} did not come up", name.name))?;
            crate::out!("{}", sandbox.status().await)?;
            let first = sandbox.managers().remove(0);
            let flag = if name.name == sandbox::DEFAULT_NAME {
                String::new()
            } else {
                format!(" --name {}", name.name)
            };
            crate::outln!("\nuse it with: eval \"$(bosun sandbox env {first}{flag})\"")?;
        }
        SandboxCommand::Down(name) => {
            sandbox::teardown(std::path::Path::new(sandbox::DEFAULT_ROOT), &name.name).await?;
            crate::outln!("sandbox {} removed", name.name)?;
        }
        SandboxCommand::Kill(node) => {
            Sandbox::open(&node.name.name)?.kill(&node.node).await?;
            crate::outln!("killed {}", node.node)?;
        }
        SandboxCommand::Start(node) => {
            Sandbox::open(&node.name.name)?.start(&node.node).await?;
            crate::outln!("started {}", node.node)?;
        }
        SandboxCommand::Cut(node) => {
            Sandbox::open(&node.name.name)?.cut(&node.node).await?;
            crate::outln!("cut {}", node.node)?;
        }
        SandboxCommand::Mend(node) => {
            Sandbox::open(&node.name.name)?.mend(&node.node).await?;
            crate::outln!("mended {}", node.node)?;
        }
        SandboxCommand::Status(name) => {
            crate::out!("{}", Sandbox::open(&name.name)?.status().await)?;
        }
        SandboxCommand::Env(node) => {
            let host = Sandbox::open(&node.name.name)?.docker_host(&node.node)?;
            crate::outln!("export DOCKER_HOST={host}")?;
        }
        SandboxCommand::Image(name) => {
            let sandbox = Sandbox::open(&name.name)?;
            let image = sandbox.build_image().await?;
            crate::outln!("{image} imported into {}", sandbox.nodes().join(", "))?;
        }
    }
    Ok(Exit::Success)
}

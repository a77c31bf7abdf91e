//! Command-line interface: clap definitions and one module per command.
//!
//! Each command module exposes `Args` (clap) and `run(args) -> Result<ExitCode>`;
//! `main` prints any error chain and exits 2.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub mod plan;
pub mod reconcile;
pub mod run;
pub mod sandbox;
pub mod schema;
pub mod validate;

/// GitOps operator for Docker Swarm.
#[derive(Debug, Parser)]
#[command(name = "bosun", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "BOSUN_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a folder of manifests (exit 0 valid, 2 invalid).
    Validate(validate::Args),
    /// Show what `reconcile` would change (exit 0 in sync, 1 differences, 2 error).
    Plan(plan::Args),
    /// Make the swarm equal to the manifests, once (exit 0 converged, 2 error).
    Reconcile(reconcile::Args),
    /// Keep the swarm equal to a folder or a git repository, until stopped.
    Run(Box<run::Args>),
    /// Write (or check) the JSON Schemas of every manifest kind.
    Schema(schema::Args),
    /// A real multi-node swarm on this host, one dockerd per node.
    Sandbox(sandbox::Args),
}

/// Run the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Reconcile(args) => reconcile::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Sandbox(args) => sandbox::run(&args),
    }
}

/// Install the global tracing subscriber (stderr, `RUST_LOG` filter, default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

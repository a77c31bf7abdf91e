//! Command-line interface: clap definitions and one module per command.
//!
//! Each command module exposes `Args` (clap) and `run(args) -> Result<ExitCode>`;
//! `main` prints any error chain and exits 2.

use std::path::PathBuf;
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
    /// Also read files below DIR, outside the source root (validate, plan,
    /// reconcile, run). Repeatable; `BOSUN_ALLOW_PATH` takes a
    /// colon-separated list, like `PATH`.
    #[arg(
        long = "allow-path",
        value_name = "DIR",
        global = true,
        env = "BOSUN_ALLOW_PATH",
        value_delimiter = ':'
    )]
    pub allow_path: Vec<PathBuf>,
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
        Command::Validate(args) => validate::run(&args, &cli.allow_path),
        Command::Schema(args) => schema::run(&args),
        Command::Plan(args) => plan::run(&args, &cli.allow_path),
        Command::Reconcile(args) => reconcile::run(&args, &cli.allow_path),
        Command::Run(args) => run::run(&args, &cli.allow_path),
        Command::Sandbox(args) => sandbox::run(&args),
    }
}

/// Install the global tracing subscriber (stderr, `RUST_LOG` filter, default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = colour_logs(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Whether log lines carry ANSI colours: only on a terminal, and never with
/// a non-empty `NO_COLOR` (<https://no-color.org>). tracing-subscriber
/// colours by default whatever stderr is, which put escape codes into
/// `docker service logs` of the bosun stack, journald and log files.
fn colour_logs(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::colour_logs;

    #[test]
    fn logs_should_be_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour_logs(true, None));
        assert!(colour_logs(true, Some(OsStr::new(""))));
        assert!(!colour_logs(true, Some(OsStr::new("1"))));
        assert!(!colour_logs(false, None));
    }
}

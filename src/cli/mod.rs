//! Command-line interface: clap definitions and one module per command.
//!
//! Each command module exposes `Args` (clap) and `run(args) -> Result<Exit,
//! Error>`; [`Exit::code`] and [`Error::code`] are the one place exit codes
//! are chosen, and `main` prints an error once ([`Error::report`]): each
//! message adds only its own context, its causes follow it.
//!
//! Commands write through [`out!`](crate::out) and [`err!`](crate::err),
//! never `println!`: Rust ignores SIGPIPE, so `println!` into a closed pipe
//! (`bosun plan DIR | head -1`) panics. These drop what a closed pipe no
//! longer reads and the command ends with its own exit code.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub mod plan;
pub mod reconcile;
pub mod run;
pub mod sandbox;
pub mod schema;
pub mod validate;
pub mod vip;

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
    /// Virtual IPs: render the keepalived configurations of `VipPolicy`.
    Vip(vip::Args),
}

/// `print!` to stdout, returning `io::Result<()>`; output nobody reads any
/// more (a closed pipe) is dropped, not an error.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_to(&mut ::std::io::stdout().lock(), format_args!($($arg)*))
    };
}

/// `println!` to stdout, like [`out!`](crate::out).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out!("{}\n", format_args!($($arg)*))
    };
}

/// `eprintln!` to stderr, like [`err!`](crate::err).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::err!("{}\n", format_args!($($arg)*))
    };
}

/// `eprint!` that tolerates a closed stderr like [`out!`](crate::out).
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::write_to(&mut ::std::io::stderr().lock(), format_args!($($arg)*))
    };
}

/// Write and flush `args`; a broken pipe (the reader went away) is not an
/// error: the text is dropped and the command goes on to its exit code.
#[doc(hidden)]
pub fn write_to(w: &mut impl Write, args: fmt::Arguments<'_>) -> io::Result<()> {
    match w.write_fmt(args).and_then(|()| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// How a command ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; for `plan`, the swarm equals the manifests.
    Success,
    /// `plan` found differences (printed).
    Differences,
    /// A second signal cancelled `bosun run`'s pass.
    Aborted,
}

impl Exit {
    /// The process exit code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Differences => 1,
            Exit::Aborted => 130,
        }
    }
}

/// How a command failed. Every failure exits 2.
#[derive(Debug)]
pub enum Error {
    /// Invalid input; the diagnostics, printed as they are.
    Invalid(String),
    /// The failure is already in the command's output (a plan's errors).
    Reported,
    /// An error, printed as `error: ` and its chain of causes.
    Failed(anyhow::Error),
}

impl Error {
    /// The process exit code.
    #[must_use]
    pub fn code(&self) -> u8 {
        2
    }

    /// Print the failure to stderr, once.
    pub fn report(&self) {
        // A stderr that cannot be written leaves only the exit code.
        let _ = match self {
            Error::Invalid(diagnostics) => crate::errln!("{diagnostics}"),
            Error::Reported => Ok(()),
            Error::Failed(e) => crate::errln!("error: {e:#}"),
        };
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Error::Failed(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Failed(e.into())
    }
}

/// What a command returns.
pub type Result<T = Exit, E = Error> = std::result::Result<T, E>;

/// Run the parsed command.
pub fn run(cli: Cli) -> Result {
    match cli.command {
        Command::Validate(args) => validate::run(&args, &cli.allow_path),
        Command::Schema(args) => schema::run(&args),
        Command::Plan(args) => plan::run(&args, &cli.allow_path),
        Command::Reconcile(args) => reconcile::run(&args, &cli.allow_path),
        Command::Run(args) => run::run(&args, &cli.allow_path),
        Command::Sandbox(args) => sandbox::run(&args),
        Command::Vip(args) => vip::run(&args, &cli.allow_path),
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
    use std::io::{self, Write};

    use super::{colour_logs, write_to};

    /// A writer whose reader has gone away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer that fails for another reason.
    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writing_into_a_closed_pipe_is_not_an_error_but_other_write_errors_are() {
        assert!(write_to(&mut ClosedPipe, format_args!("plan\n")).is_ok());
        assert!(write_to(&mut Full, format_args!("plan\n")).is_err());
    }

    #[test]
    fn logs_should_be_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour_logs(true, None));
        assert!(colour_logs(true, Some(OsStr::new(""))));
        assert!(!colour_logs(true, Some(OsStr::new("1"))));
        assert!(!colour_logs(false, None));
    }
}

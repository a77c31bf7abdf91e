//! The `bosun` binary: parse arguments, set up logging, run; exit codes
//! come from `bosun::cli::Exit::code` and `bosun::cli::Error::code`.
//!
//! Exit codes: 0 success, 1 "differences found" (plan), 2 error or invalid input.
//! Output into a closed pipe is dropped; the command keeps its exit code.

use std::process::ExitCode;

use clap::Parser;

/// A pass allocates and frees a great many small values (YAML nodes, JSON
/// specs): mimalloc 2 does that with about a quarter less CPU than glibc's
/// malloc (`bosun plan` of 500 services). Without transparent huge pages
/// (`no_thp`): with them a short run faults in and clears 2 MiB pages and
/// its RSS doubles (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = bosun::cli::Cli::parse();
    bosun::cli::init_tracing(cli.log_format);
    ExitCode::from(match bosun::cli::run(cli) {
        Ok(exit) => exit.code(),
        Err(err) => {
            err.report();
            err.code()
        }
    })
}

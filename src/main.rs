//! The `bosun` binary: parse arguments, set up logging, run, map to exit codes.
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
    match bosun::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A stderr that cannot be written leaves only the exit code.
            let _ = bosun::errln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

//! The `bosun` binary: parse arguments, set up logging, run, map to exit codes.
//!
//! Exit codes: 0 success, 1 "differences found" (plan), 2 error or invalid input.

use std::process::ExitCode;

use clap::Parser;

/// A pass allocates and frees a great many small values (YAML nodes, JSON
/// specs): mimalloc does that in about a third less time than glibc's
/// malloc and does not grow per-thread arenas (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = bosun::cli::Cli::parse();
    bosun::cli::init_tracing(cli.log_format);
    match bosun::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

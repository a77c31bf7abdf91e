//! The `bosun` binary: parse arguments, set up logging, run, map to exit codes.
//!
//! Exit codes: 0 success, 1 "differences found" (plan), 2 error or invalid input.

use std::process::ExitCode;

use clap::Parser;

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

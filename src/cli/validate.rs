//! `bosun validate` (placeholder until implemented).

use std::process::ExitCode;

/// Arguments of `bosun validate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `bosun validate`.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

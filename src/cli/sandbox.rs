//! `bosun sandbox` (placeholder until implemented).

use std::process::ExitCode;

/// Arguments of `bosun sandbox`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `bosun sandbox`.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

//! `bosun schema` (placeholder until implemented).

use std::process::ExitCode;

/// Arguments of `bosun schema`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `bosun schema`.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

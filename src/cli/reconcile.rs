//! `bosun reconcile --once DIR`: make the swarm equal to the manifests,
//! once, then check that it is.
//!
//! Load, build, observe, plan, apply; then observe and plan again: the
//! verification pass must be empty. Exit codes: 0 converged (the summary is
//! printed), 2 error (what failed is printed). Whatever was applied is a
//! step towards the manifests, so a rerun finishes the job.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::plan::{connect_and_observe, desired, runtime};
use crate::apply;
use crate::plan;
use crate::swarm;

/// Arguments of `bosun reconcile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One pass, then exit (required: the long-running loop is `bosun run`).
    #[arg(long)]
    pub once: bool,
    /// Folder of manifests.
    pub dir: PathBuf,
    /// Do not remove objects bosun owns and no longer wants.
    #[arg(long)]
    pub no_prune: bool,
    /// Do not wait for services to converge, whatever the stacks' `wait`.
    #[arg(long)]
    pub no_wait: bool,
    /// Actions of one phase applied at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
}

/// Run `bosun reconcile`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.once,
        "`bosun reconcile` needs `--once` (one pass, then exit); to keep the swarm \
         converged continuously use `bosun run`"
    );
    let Some(state) = desired(&args.dir) else {
        return Ok(ExitCode::from(2));
    };
    let options = plan::Options::default().prune(!args.no_prune);
    let apply_options = apply::Options::default()
        .concurrency(usize::from(args.concurrency))
        .wait(!args.no_wait);
    let color = std::io::stdout().is_terminal();
    runtime()?.block_on(async {
        let (client, snapshot) = connect_and_observe().await?;
        let plan = plan::plan(&state, &snapshot, &options);
        if !plan.actions.is_empty() || !plan.errors.is_empty() {
            print!("{}", plan.render_text(color));
        }
        let applied = apply::apply(&client, &plan, &state, &snapshot, &apply_options).await;
        let report = match &applied {
            Ok(r) => r,
            Err(e) => e.report(),
        };
        if let Err(e) = &applied {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        let after = swarm::observe(&client)
            .await
            .context("cannot read the swarm's state after applying")?;
        let verify = plan::plan(&state, &after, &options);
        if !verify.is_empty() {
            eprintln!(
                "error: the swarm does not match the manifests after applying; still to do:\n{}",
                verify.render_text(false)
            );
            return Ok(ExitCode::from(2));
        }
        println!("converged: {}", report.summary());
        Ok(ExitCode::SUCCESS)
    })
}

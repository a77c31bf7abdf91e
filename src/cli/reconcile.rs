//! `bosun reconcile --once DIR`: make the swarm equal to the manifests,
//! once, then check that it is.
//!
//! Load, build, observe, plan, apply; then observe and plan again: the
//! verification pass must be empty. Exit codes: 0 converged (the summary is
//! printed), 2 error (what failed is printed). Whatever was applied is a
//! step towards the manifests, so a rerun finishes the job.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::plan::{desired_and_observed, runtime};
use super::{Error, Exit};
use crate::apply::{self, Report};
use crate::controller::pass::{self, PassOptions};
use crate::controller::status::PassResult;

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
    /// Scope of this bosun: objects it creates carry `dev.bosun.scope=NAME`,
    /// and it never touches objects of another scope (several bosun
    /// instances, one per folder or team, on one swarm). Default: none.
    #[arg(long, env = "BOSUN_SCOPE")]
    pub scope: Option<String>,
    /// Do not wait for services to converge, whatever the stacks' `wait`.
    #[arg(long)]
    pub no_wait: bool,
    /// Actions of one phase applied at the same time.
    #[arg(long, default_value_t = apply::DEFAULT_CONCURRENCY as u16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
}

/// Run `bosun reconcile`; files are read inside the folder and below `allow`.
pub fn run(args: &Args, allow: &[PathBuf]) -> super::Result {
    if !args.once {
        return Err(anyhow::anyhow!(
            "`bosun reconcile` needs `--once` (one pass, then exit); to keep the swarm \
             converged continuously use `bosun run`"
        )
        .into());
    }
    let opts = PassOptions::default().prune(!args.no_prune).apply(
        apply::Options::default()
            .concurrency(usize::from(args.concurrency))
            .wait(!args.no_wait),
    );
    let color = std::io::stdout().is_terminal();
    runtime()?.block_on(async {
        let (state, client, snapshot) =
            desired_and_observed(&args.dir, allow, args.scope.as_deref()).await?;
        let out = pass::enforce_from(&client, &state, snapshot, &opts).await;
        if let Some(plan) = &out.plan
            && (!plan.actions.is_empty() || !plan.errors.is_empty())
        {
            crate::out!("{}", plan.render_text(color))?;
        }
        if out.result == PassResult::Success {
            let summary = out.report.as_ref().map(Report::summary).unwrap_or_default();
            crate::outln!("converged: {summary}")?;
            return Ok(Exit::Success);
        }
        Err(match out.error {
            Some(e) => Error::Failed(anyhow::anyhow!(e)),
            // The plan's errors, printed with it.
            None => Error::Reported,
        })
    })
}

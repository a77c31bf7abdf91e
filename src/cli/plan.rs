//! `bosun plan DIR`: what `reconcile` would change, without changing it.
//!
//! Exit codes: 0 the swarm equals the manifests, 1 differences (printed),
//! 2 error (invalid manifests, plan errors, daemon unreachable).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Error, Exit};
use crate::controller::rollouts;
use crate::manifest;
use crate::plan::{self, DesiredState};
use crate::source::Confinement;
use crate::swarm::{self, Api, Client};

/// Arguments of `bosun plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of manifests.
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Do not plan removals of objects bosun owns and no longer wants.
    #[arg(long)]
    pub no_prune: bool,
    /// Scope of this bosun: objects it creates carry `dev.bosun.scope=NAME`,
    /// and it never touches objects of another scope (several bosun
    /// instances, one per folder or team, on one swarm). Default: none.
    #[arg(long, env = "BOSUN_SCOPE")]
    pub scope: Option<String>,
}

/// How a plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A readable diff (colours on a terminal).
    Text,
    /// The plan as JSON.
    Json,
}

/// Load and validate the manifests (files read inside `dir` and below
/// `allow`) and build the desired state; warnings are printed.
pub(crate) fn desired(
    dir: &Path,
    allow: &[PathBuf],
    scope: Option<&str>,
) -> Result<DesiredState, Error> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let confine = Confinement::new(dir).allow(allow);
    let desired = match manifest::load_confined(dir, &env, &confine) {
        Ok(d) => d,
        Err(diagnostics) => {
            return Err(Error::Invalid(format!(
                "{diagnostics}\ninvalid manifests: nothing planned"
            )));
        }
    };
    for warning in &desired.warnings {
        // Nowhere to report a stderr that cannot be written.
        let _ = crate::errln!("{warning}");
    }
    let state = DesiredState::build(&desired, &env).map_err(anyhow::Error::new)?;
    Ok(state.with_scope(scope))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Connect like the docker CLI (`DOCKER_HOST`, …) and take a snapshot.
pub(crate) async fn connect_and_observe() -> anyhow::Result<(Client, swarm::Snapshot)> {
    // Its error names the daemon's address: no context to add.
    let client = Client::connect().await?;
    let snapshot = observe_manager(&client, client.host()).await?;
    Ok((client, snapshot))
}

/// The objects of the swarm `api` manages. `/info` is asked only when a
/// list fails, to say why in swarm terms (a worker, no swarm, no leader):
/// it is among the daemon's slowest answers, and a plan does not read it.
pub(crate) async fn observe_manager(api: &impl Api, host: &str) -> anyhow::Result<swarm::Snapshot> {
    let failed = match swarm::observe_objects(api).await {
        Ok(snapshot) => return Ok(snapshot),
        Err(e) => e,
    };
    if let Ok(info) = api.info().await {
        let info = swarm::Info::from_owned(info);
        anyhow::ensure!(
            info.control_available,
            "the Docker daemon at {host} is not a swarm manager (Swarm.LocalNodeState: {:?}{}); \
             point DOCKER_HOST at a manager",
            info.local_node_state,
            if info.error.is_empty() {
                String::new()
            } else {
                format!(", error: {}", info.error)
            }
        );
    }
    Err(anyhow::Error::new(failed).context("cannot read the swarm's state"))
}

/// [`desired`] and [`connect_and_observe`] at the same time: the manifests
/// load on a blocking thread while the daemon answers. Invalid manifests win
/// (their diagnostics, the daemon's answer not awaited), so
/// `plan` and `reconcile` of a broken folder fail the same way with or
/// without a daemon.
pub(crate) async fn desired_and_observed(
    dir: &Path,
    allow: &[PathBuf],
    scope: Option<&str>,
) -> Result<(DesiredState, Client, swarm::Snapshot), Error> {
    let (dir, allow, scope) = (dir.to_path_buf(), allow.to_vec(), scope.map(str::to_string));
    let start = std::time::Instant::now();
    let loading = tokio::task::spawn_blocking(move || {
        let state = desired(&dir, &allow, scope.as_deref());
        tracing::debug!(elapsed = ?start.elapsed(), "manifests loaded");
        state
    });
    let observing = tokio::spawn(async move {
        let observed = connect_and_observe().await;
        tracing::debug!(elapsed = ?start.elapsed(), "swarm observed");
        observed
    });
    let state = match loading.await.context("loading the manifests")? {
        Ok(state) => state,
        Err(invalid) => {
            observing.abort();
            return Err(invalid);
        }
    };
    let (client, snapshot) = observing.await.context("reading the swarm")??;
    Ok((state, client, snapshot))
}

/// Run `bosun plan`; files are read inside the folder and below `allow`.
pub fn run(args: &Args, allow: &[PathBuf]) -> super::Result {
    let rt = runtime()?;
    let (state, client, snapshot) = rt.block_on(desired_and_observed(
        &args.dir,
        allow,
        args.scope.as_deref(),
    ))?;
    // Rollouts still in progress (or failed) hold their dependents back, as
    // in `bosun run`; the plan says so.
    let (holds, rollouts) = rt.block_on(rollouts::look(&client, &state, &snapshot));
    let mut plan = plan::plan(
        &state,
        &snapshot,
        &plan::Options::default().prune(!args.no_prune).holds(holds),
    );
    plan.rollouts = rollouts;
    if !state.vips.is_empty() {
        plan.vips = rt.block_on(crate::vip::status::of_swarm(&client, &snapshot));
    }
    match args.output {
        Output::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&plan.to_json()).context("render the plan")?
        )?,
        Output::Text => crate::out!("{}", plan.render_text(std::io::stdout().is_terminal()))?,
    }
    if !plan.errors.is_empty() {
        return Err(Error::Reported);
    }
    Ok(if plan.is_empty() {
        Exit::Success
    } else {
        Exit::Differences
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::swarm::{Fake, Kind, Method, fake};

    fn infos(api: &Fake) -> usize {
        api.calls()
            .iter()
            .filter(|c| c.method == Method::Info)
            .count()
    }

    #[tokio::test]
    async fn a_manager_is_observed_without_asking_for_info() {
        let api = Fake::single_node();
        let snap = observe_manager(&api, "unix:///fake")
            .await
            .expect("observed");
        assert_eq!(snap.nodes.len(), 1);
        assert_eq!(infos(&api), 0, "{:?}", api.calls());
    }

    #[tokio::test]
    async fn a_worker_is_named_as_such() {
        let api = Fake::single_node();
        api.set_info(json!({"Swarm": {"LocalNodeState": "active", "ControlAvailable": false}}));
        let refusal = fake::response(
            "GET",
            "/v1.41/nodes",
            503,
            "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.",
        );
        api.fail(Method::List, Some(Kind::Node), 1, refusal);
        let err = observe_manager(&api, "tcp://worker1:2375")
            .await
            .expect_err("a worker");
        let text = format!("{err:#}");
        assert!(
            text.contains("tcp://worker1:2375 is not a swarm manager")
                && text.contains("point DOCKER_HOST at a manager"),
            "{text}"
        );
        assert_eq!(infos(&api), 1);
    }

    #[tokio::test]
    async fn a_manager_without_quorum_reports_the_daemons_error() {
        let api = Fake::single_node();
        api.fail(Method::List, Some(Kind::Service), 1, fake::no_leader());
        let err = observe_manager(&api, "unix:///fake")
            .await
            .expect_err("no leader");
        let text = format!("{err:#}");
        assert!(
            text.contains("cannot read the swarm's state")
                && text.contains("does not have a leader"),
            "{text}"
        );
    }
}

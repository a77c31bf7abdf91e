//! Waiting until a stack's services have converged.
//!
//! A service has converged when
//!
//! * its `UpdateStatus.State` is absent or `completed` (`updating`: not
//!   yet; `paused`, `rollback_started`, `rollback_paused`,
//!   `rollback_completed`: failed — a rollback is never a success), and
//! * its tasks of the current spec (dockerd's `_up-to-date` task filter,
//!   what `docker service create --detach=false` uses) that should run are
//!   all `running` — swarm keeps a task `starting` until its healthcheck
//!   passes — and there are exactly `Replicas` of them; a global service
//!   needs every task it has scheduled running, and at least one while
//!   some node is ready and active. Jobs are not waited for.
//!
//! Each poll costs two requests per stack (services by owner label, tasks
//! of the waited services), whatever the number of services.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::compose::LABEL_OWNER;
use crate::manifest::ObjectRef;
use crate::swarm::{Api, Filters, Kind, Task};

/// What the last poll saw of one service.
enum State {
    Ready,
    Pending(String),
    Failed(String),
}

/// How a stack's rollout stands after one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Every service waited for has converged.
    Ready,
    /// Not yet: `web_app: 1/3 tasks running[; last task error: "…"]`.
    Pending(String),
    /// It cannot converge by waiting: a rollback, a paused update, a
    /// service that disappeared.
    Failed(String),
}

/// The services of one stack's rollout, looked at poll by poll: two
/// requests per look whatever the number of services (services by owner
/// label, tasks of the services), plus one per pending service when its
/// last task error is asked for.
#[derive(Debug, Clone)]
pub struct Watch {
    by_owner: Filters,
    tasks_filter: Filters,
    /// `(name, id)`.
    services: Vec<(String, String)>,
    ready_nodes: Option<usize>,
}

impl Watch {
    /// Watch `services` (`(name, id)`) of the stack owned by `owner`.
    #[must_use]
    pub fn new(owner: &ObjectRef, services: &[(String, String)]) -> Self {
        let by_owner = Filters::none().with("label", &format!("{LABEL_OWNER}={owner}"));
        let mut tasks_filter = Filters::none()
            .with("desired-state", "running")
            .with("_up-to-date", "true");
        for (_, id) in services {
            tasks_filter = tasks_filter.with("service", id);
        }
        Watch {
            by_owner,
            tasks_filter,
            services: services.to_vec(),
            ready_nodes: None,
        }
    }

    /// Look once; with `last_errors`, a pending service's message names
    /// its most recent task error (`No such image: …`).
    pub async fn poll<A: Api>(&mut self, api: &A, last_errors: bool) -> Progress {
        let states = poll_once(
            api,
            &self.by_owner,
            &self.tasks_filter,
            &self.services,
            &mut self.ready_nodes,
        )
        .await;
        let mut pending = Vec::new();
        let mut failed = Vec::new();
        for (i, state) in states.into_iter().enumerate() {
            match state {
                State::Ready => {}
                State::Pending(why) => pending.push((i, why)),
                State::Failed(why) => failed.push(why),
            }
        }
        if !failed.is_empty() {
            return Progress::Failed(failed.join("; "));
        }
        if pending.is_empty() {
            return Progress::Ready;
        }
        let mut out = Vec::new();
        for (i, why) in pending {
            let (name, id) = &self.services[i];
            let last = if last_errors {
                last_task_error(api, id).await
            } else {
                None
            };
            out.push(match last {
                Some(e) => format!("{name}: {why}; last task error: {e:?}"),
                None => format!("{name}: {why}"),
            });
        }
        Progress::Pending(out.join("; "))
    }
}

/// Wait until every service of `services` (`(name, id)`) of the stack owned
/// by `owner` has converged, or fail naming what was not ready.
pub(super) async fn wait<A: Api>(
    api: &A,
    owner: &ObjectRef,
    services: &[(String, String)],
    timeout: Duration,
    interval: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut watch = Watch::new(owner, services);
    loop {
        let late = tokio::time::Instant::now() >= deadline;
        match watch.poll(api, late).await {
            Progress::Ready => return Ok(()),
            Progress::Failed(why) => return Err(why),
            Progress::Pending(why) if late => {
                return Err(not_converged(timeout, &why));
            }
            Progress::Pending(_) => tokio::time::sleep(interval).await,
        }
    }
}

/// Why a rollout failed at its deadline: `not converged after 5m: …`.
#[must_use]
pub fn not_converged(timeout: Duration, why: &str) -> String {
    format!("not converged after {}: {why}", humanize(timeout))
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else if s > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

async fn poll_once<A: Api>(
    api: &A,
    by_owner: &Filters,
    tasks_filter: &Filters,
    services: &[(String, String)],
    ready_nodes: &mut Option<usize>,
) -> Vec<State> {
    let pending_all = |why: String| {
        services
            .iter()
            .map(|_| State::Pending(why.clone()))
            .collect::<Vec<_>>()
    };
    let (listed, tasks) = match futures::try_join!(
        api.list(Kind::Service, by_owner),
        api.list(Kind::Task, tasks_filter)
    ) {
        Ok(x) => x,
        Err(e) => return pending_all(format!("cannot read its state: {e}")),
    };
    let listed: BTreeMap<&str, &Value> = listed
        .iter()
        .filter_map(|s| Some((s.get("ID")?.as_str()?, s)))
        .collect();
    let tasks: Vec<Task> = tasks.iter().map(Task::from_json).collect();
    let mut out = Vec::with_capacity(services.len());
    for (name, id) in services {
        let Some(svc) = listed.get(id.as_str()) else {
            out.push(State::Failed(format!("{name}: the service disappeared")));
            continue;
        };
        let update = svc
            .pointer("/UpdateStatus/State")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let message = svc
            .pointer("/UpdateStatus/Message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match update {
            "" | "completed" => {}
            "updating" => {
                out.push(State::Pending("update in progress".into()));
                continue;
            }
            other => {
                let what = if other.starts_with("rollback") {
                    format!("update failed and swarm rolled it back ({other})")
                } else {
                    format!("update {other}")
                };
                out.push(State::Failed(format!("{name}: {what}: {message}")));
                continue;
            }
        }
        let mine: Vec<&Task> = tasks.iter().filter(|t| t.service_id == *id).collect();
        let running = mine.iter().filter(|t| t.state == "running").count();
        let mode = svc.pointer("/Spec/Mode").cloned().unwrap_or(Value::Null);
        let want = if let Some(r) = mode.get("Replicated") {
            r.get("Replicas").and_then(Value::as_u64).unwrap_or(1) as usize
        } else if mode.get("Global").is_some() {
            let nodes = if let Some(n) = ready_nodes {
                *n
            } else {
                let n = count_ready_nodes(api).await;
                *ready_nodes = Some(n);
                n
            };
            if nodes > 0 { mine.len().max(1) } else { 0 }
        } else {
            // Jobs run to completion: nothing to wait for here.
            out.push(State::Ready);
            continue;
        };
        if running == want && mine.len() == want {
            out.push(State::Ready);
        } else {
            out.push(State::Pending(format!("{running}/{want} tasks running")));
        }
    }
    out
}

async fn count_ready_nodes<A: Api>(api: &A) -> usize {
    api.list(Kind::Node, &Filters::none())
        .await
        .map_or(1, |nodes| {
            nodes
                .iter()
                .filter(|n| {
                    n.pointer("/Status/State").and_then(Value::as_str) == Some("ready")
                        && n.pointer("/Spec/Availability").and_then(Value::as_str) == Some("active")
                })
                .count()
        })
}

/// The most recent task error (or non-running status message) of a service.
async fn last_task_error<A: Api>(api: &A, id: &str) -> Option<String> {
    let tasks = api
        .list(Kind::Task, &Filters::none().with("service", id))
        .await
        .ok()?;
    // Errors first (newest wins), else the newest status message.
    let mut with_error: Vec<(bool, &str, String)> = tasks
        .iter()
        .filter_map(|t| {
            let when = t
                .pointer("/Status/Timestamp")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let task = Task::from_json(t);
            if let Some(e) = task.error {
                return Some((true, when, e));
            }
            (task.state != "running" && !task.message.is_empty())
                .then(|| (false, when, format!("{}: {}", task.state, task.message)))
        })
        .collect();
    with_error.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    with_error.pop().map(|(_, _, e)| e)
}

//! Running one action: the API calls, retries, 409 adoption, and the waits
//! for networks to appear or disappear.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::Options;
use crate::compose::{LABEL_MANAGED_BY, LABEL_OWNER};
use crate::plan::Action;
use crate::swarm::settle::{self, Check, Schedule};
use crate::swarm::{self, Api, Filters, Kind, retry};

/// An [`Api`] that counts the write calls made through it (attempts) that
/// reached the daemon: a refused connection is no write.
pub(super) struct Counted<'a, A> {
    pub api: &'a A,
    pub writes: AtomicUsize,
}

impl<'a, A: Api> Counted<'a, A> {
    pub fn new(api: &'a A) -> Self {
        Counted {
            api,
            writes: AtomicUsize::new(0),
        }
    }

    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }

    fn count<T>(&self, res: swarm::Result<T>) -> swarm::Result<T> {
        if !matches!(res, Err(swarm::Error::ConnectFailed { .. })) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        res
    }
}

impl<A: Api> Api for Counted<'_, A> {
    async fn info(&self) -> swarm::Result<Value> {
        self.api.info().await
    }
    async fn list(&self, kind: Kind, filters: &Filters) -> swarm::Result<Vec<Value>> {
        self.api.list(kind, filters).await
    }
    async fn inspect(&self, kind: Kind, id: &str) -> swarm::Result<Value> {
        self.api.inspect(kind, id).await
    }
    async fn create(&self, kind: Kind, body: &Value) -> swarm::Result<String> {
        self.count(self.api.create(kind, body).await)
    }
    async fn update(&self, kind: Kind, id: &str, version: u64, body: &Value) -> swarm::Result<()> {
        self.count(self.api.update(kind, id, version, body).await)
    }
    async fn remove(&self, kind: Kind, id: &str) -> swarm::Result<()> {
        self.count(self.api.remove(kind, id).await)
    }
    async fn service_logs(&self, id: &str, tail: usize) -> swarm::Result<String> {
        self.api.service_logs(id, tail).await
    }
}

/// Why one action failed: the message names the object (`create service
/// app_web: HTTP 400: …`).
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub message: String,
    /// The swarm has no leader: nothing else can succeed.
    pub no_leader: bool,
    /// The daemon could not be reached, retries included: the next action
    /// would only wait through the same retries.
    pub unreachable: bool,
}

impl Failure {
    fn api(what: &str, e: &swarm::Error) -> Self {
        let detail = match e {
            swarm::Error::ResponseFailed {
                status, message, ..
            } => format!("HTTP {status}: {}", message.trim()),
            other => other.to_string(),
        };
        Failure {
            message: format!("{what}: {detail}"),
            no_leader: e.is_no_leader(),
            unreachable: matches!(e, swarm::Error::ConnectFailed { .. }),
        }
    }

    pub fn other(what: &str, message: &str) -> Self {
        Failure {
            message: format!("{what}: {message}"),
            no_leader: false,
            unreachable: false,
        }
    }
}

/// What a successful action leaves behind.
#[derive(Debug, Clone, Default)]
pub(super) struct Done {
    /// The created object's ID (creates only).
    pub id: Option<String>,
    /// A create answered 409 and the existing object is bosun's own, for
    /// the same owner: a previous attempt created it.
    pub adopted: bool,
}

/// `create service app_web`.
pub(super) fn describe(action: &Action) -> String {
    let verb = match action.verb() {
        crate::plan::Verb::Create => "create",
        crate::plan::Verb::Update => "update",
        crate::plan::Verb::Remove => "remove",
    };
    format!("{verb} {} {}", action.kind(), action.name())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, Failure> {
    serde_json::to_value(v).map_err(|e| Failure::other("serialize", &e.to_string()))
}

/// Run one action. `body` is the request body with IDs already filled in
/// (creates and service updates); other actions carry what they need.
pub(super) async fn run<A: Api>(
    api: &Counted<'_, A>,
    action: &Action,
    body: Option<Value>,
    opts: &Options,
) -> Result<Done, Failure> {
    let what = describe(action);
    let kind = action.kind();
    match action {
        Action::CreateNetwork { .. }
        | Action::CreateConfig { .. }
        | Action::CreateSecret { .. }
        | Action::CreateService { .. } => {
            let body = match body {
                Some(b) => b,
                None => match action {
                    Action::CreateNetwork { body, .. } => to_json(body)?,
                    Action::CreateConfig { body, .. } => to_json(body)?,
                    Action::CreateSecret { body, .. } => to_json(body)?,
                    Action::CreateService { body, .. } => to_json(body)?,
                    _ => Value::Null,
                },
            };
            let done = create(api, kind, action, &body, opts).await?;
            if kind == Kind::Network
                && let Some(id) = &done.id
            {
                network_visible(api, id, opts)
                    .await
                    .map_err(|m| Failure::other(&what, &m))?;
            }
            Ok(done)
        }
        Action::UpdateService { id, version, .. } => {
            let Some(desired) = body else {
                return Err(Failure::other(&what, "no spec to send"));
            };
            let force = desired
                .pointer("/TaskTemplate/ForceUpdate")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            retry::update_spec(
                api,
                &opts.retry,
                kind,
                id,
                Some((*version, Value::Null)),
                |current| {
                    // After "update out of sequence" the current spec is
                    // re-read: ForceUpdate must still not go down.
                    let theirs = current
                        .pointer("/TaskTemplate/ForceUpdate")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let mut spec = desired.clone();
                    if theirs > force {
                        spec["TaskTemplate"]["ForceUpdate"] = json!(theirs);
                    }
                    Some(spec)
                },
            )
            .await
            .map_err(|e| Failure::api(&what, &e))?;
            Ok(Done::default())
        }
        Action::UpdateNode {
            id, version, spec, ..
        } => {
            let mut first = true;
            retry::update_spec(
                api,
                &opts.retry,
                kind,
                id,
                Some((*version, Value::Null)),
                |current| {
                    if std::mem::take(&mut first) {
                        return Some(spec.clone());
                    }
                    // Someone else wrote the node meanwhile: keep their
                    // spec, set ours on top.
                    let mut merged = current.clone();
                    for field in ["Labels", "Availability"] {
                        if let Some(v) = spec.get(field) {
                            merged[field] = v.clone();
                        }
                    }
                    Some(merged)
                },
            )
            .await
            .map_err(|e| Failure::api(&what, &e))?;
            Ok(Done::default())
        }
        Action::RemoveNetwork { id, .. }
        | Action::RemoveConfig { id, .. }
        | Action::RemoveSecret { id, .. }
        | Action::RemoveService { id, .. } => {
            remove(api, kind, id, opts, &what).await?;
            if kind == Kind::Service {
                tasks_gone(api, id, opts)
                    .await
                    .map_err(|m| Failure::other(&what, &m))?;
            }
            if kind == Kind::Network {
                network_gone(api, action.name(), opts)
                    .await
                    .map_err(|m| Failure::other(&what, &m))?;
            }
            Ok(Done::default())
        }
    }
}

fn labels_of(kind: Kind, v: &Value) -> BTreeMap<String, String> {
    let l = if kind == Kind::Network {
        v.get("Labels")
    } else {
        v.pointer("/Spec/Labels")
    };
    l.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn id_of(v: &Value) -> Option<String> {
    v.get("ID")
        .or_else(|| v.get("Id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Create with retries; a 409 is success only when the existing object is
/// bosun's, for the same owner (a previous attempt whose response was lost).
async fn create<A: Api>(
    api: &Counted<'_, A>,
    kind: Kind,
    action: &Action,
    body: &Value,
    opts: &Options,
) -> Result<Done, Failure> {
    let what = describe(action);
    match retry::retry(&opts.retry, |_| api.create(kind, body)).await {
        Ok(id) => Ok(Done {
            id: Some(id),
            adopted: false,
        }),
        Err(e) if e.status() == Some(409) => {
            let existing = retry::retry(&opts.retry, |_| api.inspect(kind, action.name()))
                .await
                .map_err(|inspect| {
                    Failure::other(
                        &what,
                        &format!("{e}; and reading the existing object failed: {inspect}"),
                    )
                })?;
            let labels = labels_of(kind, &existing);
            let ours = labels.get(LABEL_MANAGED_BY).is_some_and(|v| v == "bosun")
                && crate::plan::owner_of(&labels).as_ref() == action.owners().first();
            if ours {
                tracing::info!("already exists with bosun's labels for this owner: done");
                Ok(Done {
                    id: id_of(&existing),
                    adopted: true,
                })
            } else {
                let managed = labels.get(LABEL_MANAGED_BY).is_some_and(|v| v == "bosun");
                let whose = match labels.get(LABEL_OWNER) {
                    Some(owner) if managed => format!("it belongs to {owner}"),
                    _ => "it is not managed by bosun".to_string(),
                };
                let mut f = Failure::api(&what, &e);
                f.message = format!("{} ({whose})", f.message);
                Err(f)
            }
        }
        Err(e) => Err(Failure::api(&what, &e)),
    }
}

/// Whether a removal failed because tasks or services still hold the
/// object (they are shutting down: it frees itself shortly).
fn in_use(e: &swarm::Error) -> bool {
    let m = e.message();
    matches!(e.status(), Some(400 | 403 | 409 | 500))
        && (m.contains("in use") || m.contains("active endpoints"))
}

/// How long a wait of apply may take, and how often it looks.
fn schedule(opts: &Options, timeout: Duration) -> Schedule {
    Schedule::new(timeout, opts.poll_interval)
}

/// Remove with retries; a 404 is done. "In use" can only mean a removal of
/// another pass (or of a user) whose tasks are still shutting down — this
/// pass waits for the tasks of the services it removes before it removes
/// what they used (see [`tasks_gone`]) — so it is awaited through
/// [`settle::until`] for at most `opts.removal_timeout`.
async fn remove<A: Api>(
    api: &Counted<'_, A>,
    kind: Kind,
    id: &str,
    opts: &Options,
    what: &str,
) -> Result<(), Failure> {
    let awaited = format!("{kind} {id} to be free of tasks and removed");
    settle::until(awaited, schedule(opts, opts.removal_timeout), || async {
        match retry::retry(&opts.retry, |_| api.remove(kind, id)).await {
            Ok(()) => Check::Done(Ok(())),
            Err(e) if e.is_not_found() => Check::Done(Ok(())),
            Err(e) if in_use(&e) => Check::Pending(e.message().trim().to_string()),
            Err(e) => Check::Done(Err(e)),
        }
    })
    .await
    .map_err(|t| Failure::other(what, &t.to_string()))?
    .map_err(|e| Failure::api(what, &e))
}

/// Wait until no task of the removed service `id` is left. Swarm answers
/// the `DELETE` at once and shuts the tasks down afterwards; until they are
/// gone they hold the service's networks, configs and secrets (a removal
/// fails "in use", and a removed overlay network stays listed on the node
/// that ran the task), so the prune phases after this one wait for it.
///
/// All tasks are listed and matched by `ServiceID`: the daemon's `service`
/// task filter resolves the service first, and answers 404 once it is
/// removed.
async fn tasks_gone<A: Api>(api: &Counted<'_, A>, id: &str, opts: &Options) -> Result<(), String> {
    let all = Filters::none();
    let what = format!("the tasks of removed service {id} to be gone");
    settle::until(what, schedule(opts, opts.removal_timeout), || async {
        match api.list(Kind::Task, &all).await {
            Ok(tasks) => {
                let left = tasks
                    .iter()
                    .filter(|t| t.get("ServiceID").and_then(Value::as_str) == Some(id))
                    .count();
                Check::from_bool(left == 0, || format!("{left} task(s) left"))
            }
            Err(e) => Check::Pending(format!("listing tasks failed: {e}")),
        }
    })
    .await
    .map_err(|t| t.to_string())
}

/// Wait until the manager shows the new network with its driver (dockerd
/// briefly reports `Driver: ""` for a network it has not set up yet).
async fn network_visible<A: Api>(
    api: &Counted<'_, A>,
    id: &str,
    opts: &Options,
) -> Result<(), String> {
    let what = format!("network {id} to be set up on the manager");
    settle::until(what, schedule(opts, opts.network_timeout), || async {
        match api.inspect(Kind::Network, id).await {
            Ok(n) => Check::from_bool(
                n.get("Driver")
                    .and_then(Value::as_str)
                    .is_some_and(|d| !d.is_empty()),
                || "listed without a driver yet".to_string(),
            ),
            Err(e) => Check::Pending(format!("inspect failed: {e}")),
        }
    })
    .await
    .map_err(|t| format!("created, but {t}"))
}

/// Wait until a removed network's name is really gone from the list
/// (removal is asynchronous: the list can show the name after the ID
/// answers 404, and a create of the same name would conflict, the next plan
/// would see it again).
async fn network_gone<A: Api>(
    api: &Counted<'_, A>,
    name: &str,
    opts: &Options,
) -> Result<(), String> {
    // The daemon's name filter matches substrings: compare exact names.
    let filters = Filters::none().with("name", name);
    let what = format!("network {name} to leave the list");
    settle::until(what, schedule(opts, opts.network_timeout), || async {
        match api.list(Kind::Network, &filters).await {
            Ok(nets) => Check::from_bool(
                !nets
                    .iter()
                    .any(|n| n.get("Name").and_then(Value::as_str) == Some(name)),
                || "still listed".to_string(),
            ),
            Err(e) => Check::Pending(format!("listing networks failed: {e}")),
        }
    })
    .await
    .map_err(|t| format!("removed, but {t}"))
}

//! An in-memory swarm for fast controller and apply tests.
//!
//! [`Fake`] implements [`Api`] with the daemon's semantics where bosun relies
//! on them (each checked against dockerd 20.10, API 1.41):
//!
//! - objects get generated IDs and a version index, bumped on every write
//!   (one cluster-wide counter, like raft's);
//! - an update at a stale version fails with HTTP 500 "rpc error: code =
//!   Unknown desc = update out of sequence";
//! - a duplicate name fails with HTTP 409;
//! - config/secret updates may change labels only (HTTP 400 "only updates to
//!   Labels are allowed" when the name or data differ; other fields are
//!   ignored, as swarmkit copies only the labels);
//! - removing a network, config or secret a service uses fails with 400;
//! - secrets read back without `Data`; networks have no update route (404).
//!
//! Every call is recorded in order ([`Fake::calls`]), and calls can be
//! scripted to fail ([`Fake::fail`]) to test retries.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};

use super::{Api, Error, Filters, Kind, Result};

/// The API operation of a recorded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    Info,
    List,
    Inspect,
    Create,
    Update,
    Remove,
}

impl Method {
    /// Create, update and remove.
    #[must_use]
    pub fn is_write(self) -> bool {
        matches!(self, Method::Create | Method::Update | Method::Remove)
    }
}

/// One recorded call: what, on which kind, on which object (the ID or name
/// the caller passed; for a successful create, the new ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub kind: Option<Kind>,
    pub id: Option<String>,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.method)?;
        if let Some(k) = self.kind {
            write!(f, " {k}")?;
        }
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        Ok(())
    }
}

/// A scripted failure: skip `skip` matching calls, then fail `times`.
#[derive(Debug, Clone)]
struct Script {
    method: Method,
    kind: Option<Kind>,
    skip: usize,
    times: usize,
    error: Error,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<Kind, Vec<Value>>,
    info: Value,
    next_id: u64,
    index: u64,
    calls: Vec<Call>,
    scripts: Vec<Script>,
    /// Task lists a removed service's tasks survive (0: removed at once).
    linger: usize,
    /// Tasks of removed services still shutting down: `(task ID, task
    /// lists left, networks the service used)`.
    lingering: Vec<(String, usize, Vec<String>)>,
    /// Service logs by service name ([`Fake::set_logs`]).
    logs: BTreeMap<String, String>,
}

/// An in-memory, scripted stand-in for a swarm manager.
#[derive(Debug, Default)]
pub struct Fake {
    state: Mutex<State>,
}

/// A daemon-like error response.
#[must_use]
pub fn response(method: &str, path: &str, status: u16, message: &str) -> Error {
    Error::ResponseFailed {
        method: method.to_string(),
        path: path.to_string(),
        status,
        message: message.to_string(),
    }
}

/// The error a manager returns once quorum is lost.
#[must_use]
pub fn no_leader() -> Error {
    response(
        "POST",
        "/",
        500,
        "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.",
    )
}

/// The error of an update at a stale version index.
#[must_use]
pub fn out_of_sequence() -> Error {
    response(
        "POST",
        "/",
        500,
        "rpc error: code = Unknown desc = update out of sequence",
    )
}

/// A transport failure (daemon unreachable).
#[must_use]
pub fn connect_failed() -> Error {
    Error::ConnectFailed {
        host: "fake".to_string(),
        message: "connection refused".to_string(),
    }
}

impl Fake {
    /// An empty fake: no objects, an inactive `/info`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A single-node swarm: an active manager `manager1` (leader), the
    /// `ingress` overlay network and the local `bridge`, `host`, `none`.
    #[must_use]
    pub fn single_node() -> Self {
        let fake = Fake::new();
        let node = fake.seed(
            Kind::Node,
            json!({
                "Spec": {"Role": "manager", "Availability": "active", "Labels": {}},
                "Description": {"Hostname": "manager1"},
                "Status": {"State": "ready", "Addr": "10.0.0.2"},
                "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "10.0.0.2:2377"}
            }),
        );
        fake.seed(
            Kind::Network,
            json!({"Name": "ingress", "Driver": "overlay", "Scope": "swarm", "Ingress": true,
                   "Labels": {}, "IPAM": {"Config": [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]}}),
        );
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            fake.seed(
                Kind::Network,
                json!({"Name": name, "Driver": driver, "Scope": "local", "Labels": {}}),
            );
        }
        fake.set_info(json!({
            "Name": "manager1",
            "Swarm": {"NodeID": node, "LocalNodeState": "active", "ControlAvailable": true,
                      "Error": "", "Nodes": 1, "Managers": 1, "Cluster": {"ID": "fakecluster"}}
        }));
        fake
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Let a removed service's tasks live on for `lists` task lists, holding
    /// the service's networks ("in use by task"), as the daemon's tasks do
    /// while they shut down.
    pub fn linger_tasks(&self, lists: usize) {
        self.lock().linger = lists;
    }

    /// Set what `info()` returns.
    pub fn set_info(&self, info: Value) {
        self.lock().info = info;
    }

    /// Insert an object as the daemon would return it (list/inspect JSON);
    /// `ID`/`Id` and `Version` are generated when missing. Returns the ID.
    /// Tasks and nodes can only be put in this way.
    pub fn seed(&self, kind: Kind, mut object: Value) -> String {
        let mut st = self.lock();
        let id_key = if kind == Kind::Network { "Id" } else { "ID" };
        let id = match object.get(id_key).and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => st.new_id(kind),
        };
        let index = st.bump();
        if let Some(obj) = object.as_object_mut() {
            obj.insert(id_key.to_string(), json!(id));
            if kind != Kind::Network && !obj.contains_key("Version") {
                obj.insert("Version".to_string(), json!({"Index": index}));
            }
        }
        st.objects.entry(kind).or_default().push(object);
        id
    }

    /// The stored JSON of an object, by ID or name, as inspect returns it.
    #[must_use]
    pub fn get(&self, kind: Kind, id_or_name: &str) -> Option<Value> {
        let st = self.lock();
        st.find(kind, id_or_name)
            .map(|i| readback(kind, &st.objects[&kind][i]))
    }

    /// Set a top-level field of a stored object (`UpdateStatus`, …), as
    /// the daemon's orchestrator would; no call is recorded and the version
    /// does not change. Returns whether the object exists.
    pub fn set_field(&self, kind: Kind, id_or_name: &str, field: &str, value: Value) -> bool {
        let mut st = self.lock();
        let Some(i) = st.find(kind, id_or_name) else {
            return false;
        };
        match st.objects.get_mut(&kind).and_then(|o| o.get_mut(i)) {
            Some(obj) => {
                obj[field] = value;
                true
            }
            None => false,
        }
    }

    /// Forget every object of `kind` (the tasks swarm replaced, say); no
    /// call is recorded.
    pub fn clear(&self, kind: Kind) {
        self.lock().objects.remove(&kind);
    }

    /// What `service_logs` answers for the service named `service` (lines
    /// led by RFC 3339 timestamps, as the daemon sends them).
    pub fn set_logs(&self, service: &str, text: &str) {
        self.lock()
            .logs
            .insert(service.to_string(), text.to_string());
    }

    /// Every call so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Forget the recorded calls (e.g. after seeding through the API).
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// How many create/update/remove calls were made (failed ones included).
    #[must_use]
    pub fn writes(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method.is_write())
            .count()
    }

    /// Fail the `nth` (1-based) next call of `method` on `kind` (`None`:
    /// any kind) with `error`. The call is recorded but changes nothing.
    pub fn fail(&self, method: Method, kind: Option<Kind>, nth: usize, error: Error) {
        self.fail_times(method, kind, nth, 1, error);
    }

    /// Fail `times` consecutive matching calls, starting at the `nth` next.
    pub fn fail_times(
        &self,
        method: Method,
        kind: Option<Kind>,
        nth: usize,
        times: usize,
        error: Error,
    ) {
        self.lock().scripts.push(Script {
            method,
            kind,
            skip: nth.saturating_sub(1),
            times,
            error,
        });
    }

    /// Record a call and apply scripted failures.
    fn enter(&self, method: Method, kind: Option<Kind>, id: Option<&str>) -> Result<()> {
        let mut st = self.lock();
        st.calls.push(Call {
            method,
            kind,
            id: id.map(str::to_string),
        });
        let mut failure = None;
        for s in &mut st.scripts {
            if s.method != method || s.times == 0 || (s.kind.is_some() && s.kind != kind) {
                continue;
            }
            if s.skip > 0 {
                s.skip -= 1;
            } else if failure.is_none() {
                s.times -= 1;
                failure = Some(s.error.clone());
            }
        }
        st.scripts.retain(|s| s.times > 0);
        failure.map_or(Ok(()), Err)
    }
}

fn path(kind: Kind, rest: &str) -> String {
    format!("/{}{rest}", kind.collection())
}

fn not_found(kind: Kind, method: &str, id: &str) -> Error {
    response(
        method,
        &path(kind, &format!("/{id}")),
        404,
        &format!("{kind} {id} not found"),
    )
}

fn page_not_found(method: &str, p: &str) -> Error {
    response(method, p, 404, "page not found")
}

fn name_of(kind: Kind, v: &Value) -> &str {
    let name = if kind == Kind::Network {
        v.get("Name")
    } else if kind == Kind::Node {
        v.pointer("/Description/Hostname")
    } else {
        v.pointer("/Spec/Name")
    };
    name.and_then(Value::as_str).unwrap_or_default()
}

fn id_of(v: &Value) -> &str {
    v.get("ID")
        .or_else(|| v.get("Id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn labels_of(kind: Kind, v: &Value) -> Option<&serde_json::Map<String, Value>> {
    let l = if kind == Kind::Network {
        v.get("Labels")
    } else {
        v.pointer("/Spec/Labels")
    };
    l.and_then(Value::as_object)
}

/// What inspect/list return for a stored object (secrets hide their data).
fn readback(kind: Kind, v: &Value) -> Value {
    let mut v = v.clone();
    if kind == Kind::Secret
        && let Some(spec) = v.get_mut("Spec").and_then(Value::as_object_mut)
    {
        spec.remove("Data");
    }
    v
}

/// Does one filter value match the object? (`None`: unknown filter key.)
fn matches(kind: Kind, v: &Value, key: &str, want: &str) -> Option<bool> {
    Some(match key {
        "label" | "node.label" => {
            let labels = if key == "node.label" {
                v.pointer("/Spec/Labels").and_then(Value::as_object)
            } else {
                labels_of(kind, v)
            };
            let (k, val) = match want.split_once('=') {
                Some((k, val)) => (k, Some(val)),
                None => (want, None),
            };
            labels
                .and_then(|l| l.get(k))
                .is_some_and(|have| val.is_none_or(|val| have.as_str() == Some(val)))
        }
        "name" if kind == Kind::Network => name_of(kind, v).contains(want),
        "name" => name_of(kind, v).starts_with(want),
        "id" => id_of(v).starts_with(want),
        "role" if kind == Kind::Node => {
            v.pointer("/Spec/Role").and_then(Value::as_str) == Some(want)
        }
        "driver" if kind == Kind::Network => v.get("Driver").and_then(Value::as_str) == Some(want),
        "scope" if kind == Kind::Network => v.get("Scope").and_then(Value::as_str) == Some(want),
        "desired-state" if kind == Kind::Task => {
            v.get("DesiredState").and_then(Value::as_str) == Some(want)
        }
        "service" if kind == Kind::Task => {
            v.get("ServiceID").and_then(Value::as_str) == Some(want)
                || v.get("ServiceName").and_then(Value::as_str) == Some(want)
        }
        "node" if kind == Kind::Task => v.get("NodeID").and_then(Value::as_str) == Some(want),
        // dockerd's hidden filter (tasks of the service's current spec): a
        // fake task is always current unless it says otherwise.
        "_up-to-date" if kind == Kind::Task => v.get("Stale").is_none(),
        _ => return None,
    })
}

/// Networks, configs or secrets a service spec refers to (IDs or names).
fn references(spec: &Value, kind: Kind) -> Vec<String> {
    let strs = |arr: Option<&Value>, keys: &[&str]| -> Vec<String> {
        arr.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|item| {
                keys.iter()
                    .filter_map(|k| item.get(*k).and_then(Value::as_str).map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    match kind {
        Kind::Network => {
            let mut v = strs(spec.pointer("/TaskTemplate/Networks"), &["Target"]);
            v.extend(strs(spec.get("Networks"), &["Target"]));
            v
        }
        Kind::Config => strs(
            spec.pointer("/TaskTemplate/ContainerSpec/Configs"),
            &["ConfigID", "ConfigName"],
        ),
        Kind::Secret => strs(
            spec.pointer("/TaskTemplate/ContainerSpec/Secrets"),
            &["SecretID", "SecretName"],
        ),
        _ => Vec::new(),
    }
}

impl State {
    /// One task list more: lingering tasks whose time is up are deleted.
    fn shut_down_lingering_tasks(&mut self) {
        let mut done = Vec::new();
        self.lingering.retain_mut(|(id, left, _)| {
            *left -= 1;
            if *left == 0 {
                done.push(id.clone());
            }
            *left > 0
        });
        if let Some(tasks) = self.objects.get_mut(&Kind::Task) {
            tasks.retain(|t| !done.iter().any(|d| d == id_of(t)));
        }
    }

    fn new_id(&mut self, kind: Kind) -> String {
        self.next_id += 1;
        format!(
            "{kind}{:0>width$}",
            self.next_id,
            width = 25 - kind.to_string().len()
        )
    }

    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// Index of the object with this ID, or else this name.
    fn find(&self, kind: Kind, id_or_name: &str) -> Option<usize> {
        let objs = self.objects.get(&kind)?;
        objs.iter()
            .position(|o| id_of(o) == id_or_name)
            .or_else(|| objs.iter().position(|o| name_of(kind, o) == id_or_name))
    }

    /// The name of a service using `kind` object `v`, if any.
    fn used_by(&self, kind: Kind, v: &Value) -> Option<String> {
        let (id, name) = (id_of(v), name_of(kind, v));
        self.objects.get(&Kind::Service)?.iter().find_map(|svc| {
            let spec = svc.get("Spec").unwrap_or(&Value::Null);
            references(spec, kind)
                .iter()
                .any(|r| r == id || r == name)
                .then(|| name_of(Kind::Service, svc).to_string())
        })
    }

    fn create(&mut self, kind: Kind, body: &Value) -> Result<String> {
        let p = path(kind, "/create");
        let bad = |msg: &str| response("POST", &p, 400, msg);
        if matches!(kind, Kind::Node | Kind::Task) {
            return Err(page_not_found("POST", &p));
        }
        let name = body.get("Name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() && kind != Kind::Service {
            return Err(bad(&format!(
                "rpc error: code = InvalidArgument desc = {kind} name is required"
            )));
        }
        if !name.is_empty()
            && self
                .find(kind, name)
                .is_some_and(|i| name_of(kind, &self.objects[&kind][i]) == name)
        {
            let message = match kind {
                Kind::Network => format!("network with name {name} already exists"),
                Kind::Service => format!(
                    "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service {name} already exists"
                ),
                _ => format!("rpc error: code = AlreadyExists desc = {kind} {name} already exists"),
            };
            return Err(response("POST", &p, 409, &message));
        }
        let id = self.new_id(kind);
        let index = self.bump();
        let object = if kind == Kind::Network {
            let driver = body
                .get("Driver")
                .and_then(Value::as_str)
                .unwrap_or("bridge");
            let scope = if driver == "overlay" {
                "swarm"
            } else {
                "local"
            };
            json!({
                "Name": name, "Id": id, "Scope": scope, "Driver": driver,
                "EnableIPv6": body.get("EnableIPv6").cloned().unwrap_or(json!(false)),
                "IPAM": body.get("IPAM").cloned().unwrap_or(json!({"Driver": "default", "Options": null, "Config": []})),
                "Internal": body.get("Internal").cloned().unwrap_or(json!(false)),
                "Attachable": body.get("Attachable").cloned().unwrap_or(json!(false)),
                "Ingress": body.get("Ingress").cloned().unwrap_or(json!(false)),
                "Options": body.get("Options").cloned().unwrap_or(json!({})),
                "Labels": body.get("Labels").cloned().unwrap_or(json!({})),
            })
        } else {
            let mut spec = body.clone();
            if let Some(obj) = spec.as_object_mut() {
                obj.entry("Labels").or_insert(json!({}));
            }
            let mut o = json!({"ID": id, "Version": {"Index": index}, "Spec": spec});
            if kind == Kind::Service {
                o["Endpoint"] = json!({"Spec": {}});
            }
            o
        };
        self.objects.entry(kind).or_default().push(object);
        Ok(id)
    }

    fn update(&mut self, kind: Kind, id: &str, version: u64, body: &Value) -> Result<()> {
        let p = path(kind, &format!("/{id}/update"));
        if matches!(kind, Kind::Network | Kind::Task) {
            return Err(page_not_found("POST", &p));
        }
        let i = self
            .find(kind, id)
            .ok_or_else(|| not_found(kind, "POST", id))?;
        let current = &self.objects[&kind][i];
        let have = current
            .pointer("/Version/Index")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        if have != version {
            let mut e = out_of_sequence();
            if let Error::ResponseFailed { path, .. } = &mut e {
                path.clone_from(&p);
            }
            return Err(e);
        }
        let old_spec = current.get("Spec").cloned().unwrap_or(Value::Null);
        let new_spec = if matches!(kind, Kind::Config | Kind::Secret) {
            let same_name = body.get("Name") == old_spec.get("Name");
            let data = body.get("Data").filter(|d| !d.is_null());
            let same_data = kind == Kind::Secret && data.is_none()
                || data.is_none_or(|d| Some(d) == old_spec.get("Data"));
            if !same_name || !same_data {
                return Err(response(
                    "POST",
                    &p,
                    400,
                    "rpc error: code = InvalidArgument desc = only updates to Labels are allowed",
                ));
            }
            let mut spec = old_spec.clone();
            spec["Labels"] = body.get("Labels").cloned().unwrap_or(json!({}));
            spec
        } else {
            let mut spec = body.clone();
            if kind == Kind::Service
                && let Some(obj) = spec.as_object_mut()
            {
                obj.entry("Labels").or_insert(json!({}));
            }
            spec
        };
        let index = self.bump();
        let obj = &mut self.objects.get_mut(&kind).into_iter().flatten().nth(i);
        if let Some(obj) = obj {
            if kind == Kind::Service {
                obj["PreviousSpec"] = old_spec;
            }
            obj["Spec"] = new_spec;
            obj["Version"] = json!({"Index": index});
        }
        Ok(())
    }

    fn remove(&mut self, kind: Kind, id: &str) -> Result<()> {
        let p = path(kind, &format!("/{id}"));
        if kind == Kind::Task {
            return Err(page_not_found("DELETE", &p));
        }
        let i = self
            .find(kind, id)
            .ok_or_else(|| not_found(kind, "DELETE", id))?;
        let obj = &self.objects[&kind][i];
        if let Some(service) = self.used_by(kind, obj) {
            let name = name_of(kind, obj);
            let message = match kind {
                Kind::Network => format!(
                    "rpc error: code = FailedPrecondition desc = network {} is in use by service {service}",
                    id_of(obj)
                ),
                _ => format!(
                    "rpc error: code = InvalidArgument desc = {kind} '{name}' is in use by the following service: {service}"
                ),
            };
            return Err(response("DELETE", &p, 400, &message));
        }
        if kind == Kind::Network
            && let Some((task, ..)) = self.lingering.iter().find(|(_, _, nets)| {
                nets.iter()
                    .any(|n| n == id_of(obj) || n == name_of(kind, obj))
            })
        {
            let message = format!(
                "rpc error: code = FailedPrecondition desc = network {} is in use by task {task}",
                id_of(obj)
            );
            return Err(response("DELETE", &p, 400, &message));
        }
        let removed = self.objects.get_mut(&kind).map(|objs| objs.remove(i));
        if kind == Kind::Service
            && let Some(svc) = removed
        {
            // The daemon shuts a removed service's tasks down and deletes
            // them afterwards (after `linger` task lists in the fake).
            let spec = svc.get("Spec").unwrap_or(&Value::Null);
            let networks = references(spec, Kind::Network);
            let linger = self.linger;
            let tasks = self.objects.entry(Kind::Task).or_default();
            let (theirs, others): (Vec<Value>, Vec<Value>) = std::mem::take(tasks)
                .into_iter()
                .partition(|t| t.get("ServiceID").and_then(Value::as_str) == Some(id_of(&svc)));
            *tasks = others;
            if linger > 0 {
                for mut t in theirs {
                    t["DesiredState"] = json!("remove");
                    let id = id_of(&t).to_string();
                    tasks.push(t);
                    self.lingering.push((id, linger, networks.clone()));
                }
            }
        }
        Ok(())
    }
}

impl Api for Fake {
    async fn service_logs(&self, id: &str, tail: usize) -> Result<String> {
        let st = self.lock();
        let Some(i) = st.find(Kind::Service, id) else {
            let message = format!("service {id} not found");
            return Err(response("GET", &path(Kind::Service, id), 404, &message));
        };
        let name = name_of(Kind::Service, &st.objects[&Kind::Service][i]);
        let text = st.logs.get(name).cloned().unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let kept = &lines[lines.len().saturating_sub(tail)..];
        Ok(kept.iter().fold(String::new(), |mut out, l| {
            out.push_str(l);
            out.push('\n');
            out
        }))
    }

    async fn info(&self) -> Result<Value> {
        self.enter(Method::Info, None, None)?;
        Ok(self.lock().info.clone())
    }

    async fn list(&self, kind: Kind, filters: &Filters) -> Result<Vec<Value>> {
        self.enter(Method::List, Some(kind), None)?;
        let mut st = self.lock();
        if kind == Kind::Task {
            st.shut_down_lingering_tasks();
            // dockerd resolves the `service` filter first: a removed
            // service's tasks cannot be listed by it.
            for want in filters.0.get("service").into_iter().flatten() {
                if st.find(Kind::Service, want).is_none() {
                    let message = format!("service {want} not found");
                    return Err(response("GET", &path(kind, ""), 404, &message));
                }
            }
        }
        let mut out = Vec::new();
        for v in st.objects.get(&kind).into_iter().flatten() {
            let mut keep = true;
            for (key, wants) in &filters.0 {
                // Values of one key are alternatives; keys must all match
                // (labels: every value must match, as in dockerd).
                let mut any = false;
                let mut all = true;
                for want in wants {
                    let m = matches(kind, v, key, want).ok_or_else(|| {
                        response(
                            "GET",
                            &path(kind, ""),
                            400,
                            &format!("Invalid filter '{key}'"),
                        )
                    })?;
                    any |= m;
                    all &= m;
                }
                keep &= if key.ends_with("label") { all } else { any };
            }
            if keep {
                out.push(readback(kind, v));
            }
        }
        Ok(out)
    }

    async fn inspect(&self, kind: Kind, id: &str) -> Result<Value> {
        self.enter(Method::Inspect, Some(kind), Some(id))?;
        let st = self.lock();
        st.find(kind, id)
            .map(|i| readback(kind, &st.objects[&kind][i]))
            .ok_or_else(|| not_found(kind, "GET", id))
    }

    async fn create(&self, kind: Kind, body: &Value) -> Result<String> {
        self.enter(Method::Create, Some(kind), None)?;
        let mut st = self.lock();
        let id = st.create(kind, body)?;
        if let Some(call) = st.calls.last_mut() {
            call.id = Some(id.clone());
        }
        Ok(id)
    }

    async fn update(&self, kind: Kind, id: &str, version: u64, body: &Value) -> Result<()> {
        self.enter(Method::Update, Some(kind), Some(id))?;
        self.lock().update(kind, id, version, body)
    }

    async fn remove(&self, kind: Kind, id: &str) -> Result<()> {
        self.enter(Method::Remove, Some(kind), Some(id))?;
        self.lock().remove(kind, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::observe;

    fn svc(name: &str) -> Value {
        json!({"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}}})
    }

    fn version(v: &Value) -> u64 {
        v.pointer("/Version/Index")
            .and_then(Value::as_u64)
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn updates_bump_the_version_and_stale_versions_are_out_of_sequence() {
        let fake = Fake::single_node();
        let id = fake.create(Kind::Service, &svc("web")).await;
        let id = id.unwrap_or_default();
        let v1 = version(&fake.inspect(Kind::Service, &id).await.unwrap_or_default());
        assert!(
            fake.update(Kind::Service, &id, v1, &svc("web"))
                .await
                .is_ok()
        );
        let after = fake.inspect(Kind::Service, "web").await.unwrap_or_default();
        assert!(version(&after) > v1);
        assert_eq!(after.pointer("/PreviousSpec/Name"), Some(&json!("web")));
        let err = fake.update(Kind::Service, &id, v1, &svc("web")).await.err();
        let err = err.unwrap_or_else(connect_failed);
        assert!(err.is_out_of_sequence(), "{err}");
        assert_eq!(err.status(), Some(500));
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn duplicate_names_conflict_with_409() {
        let fake = Fake::new();
        assert!(fake.create(Kind::Service, &svc("web")).await.is_ok());
        let err = fake.create(Kind::Service, &svc("web")).await.err();
        assert_eq!(err.and_then(|e| e.status()), Some(409));
        let net = json!({"Name": "proxy", "Driver": "overlay"});
        assert!(fake.create(Kind::Network, &net).await.is_ok());
        let err = fake.create(Kind::Network, &net).await.err();
        assert_eq!(err.and_then(|e| e.status()), Some(409));
    }

    #[tokio::test]
    async fn configs_and_secrets_accept_label_changes_only() {
        let fake = Fake::new();
        let body = json!({"Name": "app_conf-1", "Data": "aGk="});
        let id = fake.create(Kind::Config, &body).await.unwrap_or_default();
        let v = version(&fake.inspect(Kind::Config, &id).await.unwrap_or_default());
        let changed = json!({"Name": "app_conf-1", "Data": "aGo="});
        let err = fake.update(Kind::Config, &id, v, &changed).await.err();
        let err = err.unwrap_or_else(connect_failed);
        assert_eq!(err.status(), Some(400));
        assert!(err.message().contains("only updates to Labels are allowed"));
        let relabel = json!({"Name": "app_conf-1", "Data": "aGk=", "Labels": {"lease": "a"}});
        assert!(fake.update(Kind::Config, &id, v, &relabel).await.is_ok());
        let got = fake.get(Kind::Config, &id).unwrap_or_default();
        assert_eq!(got.pointer("/Spec/Labels/lease"), Some(&json!("a")));
        assert_eq!(got.pointer("/Spec/Data"), Some(&json!("aGk=")));

        let sid = fake
            .create(Kind::Secret, &json!({"Name": "pw", "Data": "c2VjcmV0"}))
            .await
            .unwrap_or_default();
        let secret = fake.inspect(Kind::Secret, &sid).await.unwrap_or_default();
        assert_eq!(
            secret.pointer("/Spec/Data"),
            None,
            "secrets hide their data"
        );
        let relabel = json!({"Name": "pw", "Labels": {"x": "y"}});
        assert!(
            fake.update(Kind::Secret, &sid, version(&secret), &relabel)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn objects_in_use_by_a_service_cannot_be_removed() {
        let fake = Fake::single_node();
        let net = fake
            .create(
                Kind::Network,
                &json!({"Name": "proxy", "Driver": "overlay"}),
            )
            .await
            .unwrap_or_default();
        let conf = fake
            .create(Kind::Config, &json!({"Name": "c", "Data": ""}))
            .await
            .unwrap_or_default();
        let mut spec = svc("web");
        spec["TaskTemplate"]["Networks"] = json!([{"Target": net}]);
        spec["TaskTemplate"]["ContainerSpec"]["Configs"] =
            json!([{"ConfigID": conf, "ConfigName": "c"}]);
        let svc_id = fake.create(Kind::Service, &spec).await.unwrap_or_default();
        for (kind, id) in [(Kind::Network, &net), (Kind::Config, &conf)] {
            let err = fake
                .remove(kind, id)
                .await
                .err()
                .unwrap_or_else(connect_failed);
            assert_eq!(err.status(), Some(400), "{kind}");
            assert!(err.message().contains("in use"), "{err}");
        }
        assert!(fake.remove(Kind::Service, &svc_id).await.is_ok());
        assert!(fake.remove(Kind::Network, "proxy").await.is_ok());
        assert!(fake.remove(Kind::Config, &conf).await.is_ok());
        let err = fake.remove(Kind::Config, &conf).await.err();
        assert!(err.is_some_and(|e| e.is_not_found()));
    }

    #[tokio::test]
    async fn calls_are_recorded_in_order_and_writes_counted() {
        let fake = Fake::single_node();
        let snap = observe(&fake).await;
        assert!(snap.is_ok_and(|s| s.network("ingress").is_some_and(|n| n.ingress)));
        assert_eq!(fake.calls().len(), 7);
        assert_eq!(fake.writes(), 0);
        fake.clear_calls();
        let id = fake
            .create(Kind::Service, &svc("web"))
            .await
            .unwrap_or_default();
        let _ = fake.inspect(Kind::Service, &id).await;
        let _ = fake.remove(Kind::Service, &id).await;
        let calls: Vec<String> = fake.calls().iter().map(ToString::to_string).collect();
        assert_eq!(
            calls,
            [
                format!("Create service {id}"),
                format!("Inspect service {id}"),
                format!("Remove service {id}")
            ]
        );
        assert_eq!(fake.writes(), 2);
    }

    #[tokio::test]
    async fn scripted_failures_hit_the_nth_matching_call_only() {
        let fake = Fake::new();
        fake.fail(Method::Create, Some(Kind::Service), 2, no_leader());
        assert!(
            fake.create(Kind::Config, &json!({"Name": "c"}))
                .await
                .is_ok()
        );
        assert!(fake.create(Kind::Service, &svc("a")).await.is_ok());
        let err = fake.create(Kind::Service, &svc("b")).await.err();
        assert!(err.is_some_and(|e| e.is_no_leader() && !e.is_transient()));
        assert!(
            fake.get(Kind::Service, "b").is_none(),
            "a failed call changes nothing"
        );
        assert!(fake.create(Kind::Service, &svc("b")).await.is_ok());
        assert_eq!(fake.calls().len(), 4);
    }

    #[tokio::test]
    async fn list_filters_work_like_the_daemons() {
        let fake = Fake::single_node();
        let mut a = svc("app_web");
        a["Labels"] = json!({"dev.bosun.managed-by": "bosun", "tier": "front"});
        let mut b = svc("app_db");
        b["Labels"] = json!({"dev.bosun.managed-by": "bosun"});
        let _ = fake.create(Kind::Service, &a).await;
        let _ = fake.create(Kind::Service, &b).await;
        let _ = fake.create(Kind::Service, &svc("other")).await;
        let names = |v: Vec<Value>| -> Vec<String> {
            v.iter()
                .map(|o| name_of(Kind::Service, o).to_string())
                .collect()
        };
        let managed = Filters::none().with("label", "dev.bosun.managed-by=bosun");
        let got = fake.list(Kind::Service, &managed).await.unwrap_or_default();
        assert_eq!(names(got), ["app_web", "app_db"]);
        let both = managed.clone().with("label", "tier");
        let got = fake.list(Kind::Service, &both).await.unwrap_or_default();
        assert_eq!(names(got), ["app_web"]);
        let prefix = Filters::none().with("name", "app_");
        assert_eq!(
            fake.list(Kind::Service, &prefix)
                .await
                .map(|v| v.len())
                .ok(),
            Some(2)
        );
        let bogus = Filters::none().with("bogus", "x");
        let err = fake.list(Kind::Service, &bogus).await.err();
        assert_eq!(err.and_then(|e| e.status()), Some(400));
        let managers = Filters::none().with("role", "manager");
        assert_eq!(
            fake.list(Kind::Node, &managers).await.map(|v| v.len()).ok(),
            Some(1)
        );
    }

    #[tokio::test]
    async fn nodes_update_their_spec_with_the_version_index() {
        let fake = Fake::single_node();
        let node = fake
            .inspect(Kind::Node, "manager1")
            .await
            .unwrap_or_default();
        let id = id_of(&node).to_string();
        let mut spec = node.get("Spec").cloned().unwrap_or_default();
        spec["Labels"] = json!({"rack": "a"});
        assert!(
            fake.update(Kind::Node, &id, version(&node), &spec)
                .await
                .is_ok()
        );
        let snap = observe(&fake).await.unwrap_or_default();
        let n = snap.node_by_hostname("manager1");
        assert_eq!(
            n.map(|n| n.meta.labels.get("rack").cloned()),
            Some(Some("a".into()))
        );
        let err = fake.create(Kind::Node, &json!({})).await.err();
        assert!(err.is_some_and(|e| e.is_not_found()));
    }
}

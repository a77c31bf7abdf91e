//! What one pass sees of the swarm: typed identity and state, raw specs.

use std::collections::BTreeMap;

use serde_json::Value;

/// Identity of a swarm object: ID, version index, name and labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub id: String,
    /// `Version.Index`, needed for updates (optimistic concurrency).
    pub version: u64,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A service, config or secret: identity plus its `Spec` exactly as the
/// daemon returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub meta: Meta,
    pub spec: Value,
    /// Services only: `UpdateStatus.State` (`updating`, `completed`,
    /// `rollback_completed`, `paused`, …) when an update has run.
    pub update_state: Option<String>,
}

/// A network as `GET /networks` returns it (networks have no `Spec`).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub meta: Meta,
    pub driver: String,
    /// `swarm` for overlay networks, `local` for bridge/host/none.
    pub scope: String,
    pub ingress: bool,
    /// The whole inspect body.
    pub raw: Value,
}

/// `ManagerStatus` of a manager node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerStatus {
    pub leader: bool,
    /// `reachable`, `unreachable` or `unknown`.
    pub reachability: String,
    pub addr: String,
}

/// A node: identity (name = hostname), role, state and its raw `Spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub meta: Meta,
    pub hostname: String,
    /// `manager` or `worker` (from the spec).
    pub role: String,
    /// `active`, `pause` or `drain` (from the spec).
    pub availability: String,
    /// `Status.State`: `ready`, `down`, `unknown`, `disconnected`.
    pub state: String,
    pub addr: String,
    pub manager: Option<ManagerStatus>,
    pub spec: Value,
}

/// A task, reduced to what waits and status need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    pub service_id: String,
    pub node_id: String,
    pub slot: Option<u64>,
    pub desired_state: String,
    /// `Status.State`: `new` … `running`, `complete`, `failed`, `rejected`, …
    pub state: String,
    pub message: String,
    pub error: Option<String>,
}

/// The `Swarm` part of `GET /info`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    pub node_id: String,
    /// `active`, `inactive`, `pending`, `error`, `locked`.
    pub local_node_state: String,
    pub control_available: bool,
    /// `Swarm.Error`, e.g. the "does not have a leader" text on quorum loss.
    pub error: String,
    pub nodes: u64,
    pub managers: u64,
    pub cluster_id: String,
    pub raw: Value,
}

/// One pass's view of the swarm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub info: Info,
    pub nodes: Vec<Node>,
    pub networks: Vec<Network>,
    pub services: Vec<Object>,
    pub configs: Vec<Object>,
    pub secrets: Vec<Object>,
    pub tasks: Vec<Task>,
}

fn s(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn labels(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn id(v: &Value) -> String {
    let id = s(v, "/ID");
    if id.is_empty() { s(v, "/Id") } else { id }
}

fn version(v: &Value) -> u64 {
    v.pointer("/Version/Index")
        .and_then(Value::as_u64)
        .unwrap_or_default()
}

impl Object {
    /// Read a service, config or secret from its inspect/list JSON.
    #[must_use]
    pub fn from_json(v: &Value) -> Self {
        Self::from_owned(v.clone())
    }

    /// [`Object::from_json`], taking the JSON (its `Spec` moves, not copies).
    #[must_use]
    pub fn from_owned(mut v: Value) -> Self {
        let update_state = v
            .pointer("/UpdateStatus/State")
            .and_then(Value::as_str)
            .map(str::to_string);
        let (id, version) = (id(&v), version(&v));
        let spec = v.get_mut("Spec").map_or(Value::Null, Value::take);
        Object {
            meta: Meta {
                id,
                version,
                name: s(&spec, "/Name"),
                labels: labels(spec.get("Labels")),
            },
            spec,
            update_state,
        }
    }
}

impl Network {
    /// Read a network from its list/inspect JSON.
    #[must_use]
    pub fn from_json(v: &Value) -> Self {
        Self::from_owned(v.clone())
    }

    /// [`Network::from_json`], taking the JSON.
    #[must_use]
    pub fn from_owned(v: Value) -> Self {
        Network {
            meta: Meta {
                id: id(&v),
                version: 0,
                name: s(&v, "/Name"),
                labels: labels(v.get("Labels")),
            },
            driver: s(&v, "/Driver"),
            scope: s(&v, "/Scope"),
            ingress: v.get("Ingress").and_then(Value::as_bool).unwrap_or(false),
            raw: v,
        }
    }
}

impl Node {
    /// Read a node from its list/inspect JSON.
    #[must_use]
    pub fn from_json(v: &Value) -> Self {
        let spec = v.get("Spec").cloned().unwrap_or(Value::Null);
        let manager = v
            .get("ManagerStatus")
            .filter(|m| m.is_object())
            .map(|m| ManagerStatus {
                leader: m.get("Leader").and_then(Value::as_bool).unwrap_or(false),
                reachability: s(m, "/Reachability"),
                addr: s(m, "/Addr"),
            });
        let hostname = s(v, "/Description/Hostname");
        Node {
            meta: Meta {
                id: id(v),
                version: version(v),
                name: hostname.clone(),
                labels: labels(spec.get("Labels")),
            },
            hostname,
            role: s(&spec, "/Role"),
            availability: s(&spec, "/Availability"),
            state: s(v, "/Status/State"),
            addr: s(v, "/Status/Addr"),
            manager,
            spec,
        }
    }
}

impl Task {
    /// Read a task from its list JSON.
    #[must_use]
    pub fn from_json(v: &Value) -> Self {
        let err = s(v, "/Status/Err");
        Task {
            id: id(v),
            service_id: s(v, "/ServiceID"),
            node_id: s(v, "/NodeID"),
            slot: v.get("Slot").and_then(Value::as_u64),
            desired_state: s(v, "/DesiredState"),
            state: s(v, "/Status/State"),
            message: s(v, "/Status/Message"),
            error: (!err.is_empty()).then_some(err),
        }
    }
}

impl Info {
    /// Read the swarm part of `GET /info`.
    #[must_use]
    pub fn from_json(v: &Value) -> Self {
        Self::from_owned(v.clone())
    }

    /// [`Info::from_json`], taking the JSON.
    #[must_use]
    pub fn from_owned(v: Value) -> Self {
        let null = Value::Null;
        let sw = v.get("Swarm").unwrap_or(&null);
        Info {
            node_id: s(sw, "/NodeID"),
            local_node_state: s(sw, "/LocalNodeState"),
            control_available: sw
                .get("ControlAvailable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            error: s(sw, "/Error"),
            nodes: sw.get("Nodes").and_then(Value::as_u64).unwrap_or_default(),
            managers: sw
                .get("Managers")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            cluster_id: s(sw, "/Cluster/ID"),
            raw: v,
        }
    }
}

impl Snapshot {
    /// Build a snapshot from the raw list results.
    #[must_use]
    pub fn from_json(
        info: &Value,
        nodes: &[Value],
        networks: &[Value],
        services: &[Value],
        configs: &[Value],
        secrets: &[Value],
        tasks: &[Value],
    ) -> Self {
        Self::from_owned(
            info.clone(),
            nodes,
            networks.to_vec(),
            services.to_vec(),
            configs.to_vec(),
            secrets.to_vec(),
            tasks,
        )
    }

    /// [`Snapshot::from_json`], taking the list results (their specs move
    /// into the snapshot: a pass over 500 services does not copy them).
    #[must_use]
    pub fn from_owned(
        info: Value,
        nodes: &[Value],
        networks: Vec<Value>,
        services: Vec<Value>,
        configs: Vec<Value>,
        secrets: Vec<Value>,
        tasks: &[Value],
    ) -> Self {
        Snapshot {
            info: Info::from_owned(info),
            nodes: nodes.iter().map(Node::from_json).collect(),
            networks: networks.into_iter().map(Network::from_owned).collect(),
            services: services.into_iter().map(Object::from_owned).collect(),
            configs: configs.into_iter().map(Object::from_owned).collect(),
            secrets: secrets.into_iter().map(Object::from_owned).collect(),
            tasks: tasks.iter().map(Task::from_json).collect(),
        }
    }

    /// The service named `name`.
    #[must_use]
    pub fn service(&self, name: &str) -> Option<&Object> {
        self.services.iter().find(|o| o.meta.name == name)
    }

    /// The swarm-scoped network named `name` (local networks such as
    /// `host` and `bridge` are matched too, for external references).
    #[must_use]
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks
            .iter()
            .filter(|n| n.meta.name == name)
            .max_by_key(|n| n.scope == "swarm")
    }

    /// The node with this hostname.
    #[must_use]
    pub fn node_by_hostname(&self, hostname: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.hostname == hostname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn services_keep_the_daemons_healthcheck_field() {
        let v = json!({
            "ID": "s1", "Version": {"Index": 42},
            "Spec": {"Name": "app_web", "Labels": {"a": "b"},
                     "TaskTemplate": {"ContainerSpec": {"Image": "x", "Healthcheck": {"Test": ["CMD", "true"]}}}},
            "UpdateStatus": {"State": "rollback_completed"}
        });
        let o = Object::from_json(&v);
        assert_eq!(o.meta.id, "s1");
        assert_eq!(o.meta.version, 42);
        assert_eq!(o.meta.name, "app_web");
        assert_eq!(o.meta.labels["a"], "b");
        assert_eq!(o.update_state.as_deref(), Some("rollback_completed"));
        assert_eq!(
            o.spec
                .pointer("/TaskTemplate/ContainerSpec/Healthcheck/Test/1"),
            Some(&json!("true"))
        );
    }

    #[test]
    fn nodes_read_role_state_and_leadership() {
        let v = json!({
            "ID": "n1", "Version": {"Index": 7},
            "Spec": {"Role": "manager", "Availability": "active", "Labels": {"rack": "a"}},
            "Description": {"Hostname": "manager1"},
            "Status": {"State": "ready", "Addr": "10.0.0.2"},
            "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "10.0.0.2:2377"}
        });
        let n = Node::from_json(&v);
        assert_eq!(n.hostname, "manager1");
        assert_eq!(n.role, "manager");
        assert_eq!(n.state, "ready");
        assert_eq!(n.meta.labels["rack"], "a");
        assert!(n.manager.as_ref().is_some_and(|m| m.leader));
    }

    #[test]
    fn info_reads_the_no_leader_error() {
        let v = json!({"Swarm": {"NodeID": "n1", "LocalNodeState": "active", "ControlAvailable": true,
            "Error": "rpc error: The swarm does not have a leader.", "Nodes": 3, "Managers": 3}});
        let i = Info::from_json(&v);
        assert!(i.control_available);
        assert!(i.error.contains("does not have a leader"));
        assert_eq!(i.managers, 3);
    }

    #[test]
    fn network_lookup_prefers_the_swarm_scoped_one() {
        let nets = [
            json!({"Id": "a", "Name": "proxy", "Scope": "local", "Driver": "bridge"}),
            json!({"Id": "b", "Name": "proxy", "Scope": "swarm", "Driver": "overlay"}),
        ];
        let snap = Snapshot::from_json(&json!({}), &[], &nets, &[], &[], &[], &[]);
        assert_eq!(snap.network("proxy").map(|n| n.meta.id.as_str()), Some("b"));
    }
}

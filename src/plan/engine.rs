//! [`plan()`]: desired state against one snapshot, into ordered actions.
//!
//! # Decisions
//!
//! * **Networks cannot change in place.** A managed network that differs
//!   from its manifest is planned as `RemoveNetwork` + `CreateNetwork` only
//!   when no service in the swarm is attached to it (for the ingress
//!   network: no service publishes a port in ingress mode). Otherwise the
//!   plan carries an error naming the services and the differing fields and
//!   leaves the network alone: detaching running services is a decision for
//!   a person. A `Network` with `ingress: true` replaces the swarm's current
//!   ingress network (usually docker's unlabelled `ingress`, of the same
//!   name or another) on the same terms.
//! * **`ForceUpdate` only goes up.** An update carries `max(desired,
//!   observed)`; lowering it would itself roll the service. It counts as a
//!   change only when the desired value is higher.
//! * **Superseded config and secret versions** (same `<stack>_<name>`, older
//!   content hash) are removed after the services moved to the new version,
//!   with or without `prune`: they are bosun's own by-products. Nothing
//!   older is kept.
//! * **Removal is deferred while in use.** A config, secret or network that
//!   a service still uses after the plan (an unmanaged service, one of a
//!   suspended stack) is not removed; the plan warns instead.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::desired::{DesiredStack, DesiredState};
use super::{Action, Change, Names, Options, Plan, Problem, diff, nodes, normalize};
use crate::compose::api::{NetworkCreate, ServiceSpec};
use crate::compose::{LABEL_MANAGED_BY, LABEL_OWNER};
use crate::manifest::{self, ObjectRef};
use crate::swarm::{self, Kind, Snapshot};

/// Whether this bosun (its scope) manages an object with these labels:
/// objects of another scope are as foreign as unmanaged ones.
fn managed(labels: &BTreeMap<String, String>, scope: Option<&str>) -> bool {
    labels.get(LABEL_MANAGED_BY).is_some_and(|v| v == "bosun")
        && labels.get(super::LABEL_SCOPE).map(String::as_str) == scope
}

/// The manifest named by an object's `dev.bosun.owner` label: the one
/// place the label is read back. A label that does not parse names no
/// manifest, so nothing is ever pruned for it.
#[must_use]
pub fn owner_of(labels: &BTreeMap<String, String>) -> Option<ObjectRef> {
    labels.get(LABEL_OWNER)?.parse().ok()
}

fn conflict(kind: Kind, name: &str, owner: &ObjectRef) -> Problem {
    Problem {
        kind,
        name: name.to_string(),
        owner: Some(owner.clone()),
        message: format!(
            "a {kind} named `{name}` already exists and is not managed by this bosun (it has \
             no `{LABEL_MANAGED_BY}=bosun` label, or another `dev.bosun.scope`); bosun will not \
             touch it. Remove or rename it, or rename the object in the manifests"
        ),
    }
}

/// Create `body`; `changes` say why when it replaces a network that
/// differs from its manifest.
fn create_network(owner: ObjectRef, body: &NetworkCreate, changes: Vec<Change>) -> Action {
    Action::CreateNetwork {
        name: body.name.clone(),
        owner,
        body: body.clone(),
        changes,
    }
}

/// `<stack>_<name>` of a content-hashed `<stack>_<name>-<hash8>`.
fn unhashed(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((base, hash)) if hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            base
        }
        _ => name,
    }
}

/// What a service spec refers to, by name.
#[derive(Default)]
struct Uses {
    networks: BTreeSet<String>,
    configs: BTreeSet<String>,
    secrets: BTreeSet<String>,
    /// Services publishing a port through the ingress network.
    ingress: bool,
}

impl Uses {
    fn add(&mut self, spec: &Value, names: &Names) {
        let strings = |ptr: &str, key: &str| -> Vec<String> {
            spec.pointer(ptr)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.get(key).and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        for t in strings("/TaskTemplate/Networks", "Target") {
            let name = names.networks.get(&t).cloned().unwrap_or(t);
            self.networks.insert(name);
        }
        self.configs
            .extend(strings("/TaskTemplate/ContainerSpec/Configs", "ConfigName"));
        self.secrets
            .extend(strings("/TaskTemplate/ContainerSpec/Secrets", "SecretName"));
        if let Some(Value::String(c)) =
            spec.pointer("/TaskTemplate/ContainerSpec/Privileges/CredentialSpec/Config")
        {
            self.configs
                .insert(names.configs.get(c).cloned().unwrap_or_else(|| c.clone()));
        }
        let ports = spec
            .pointer("/EndpointSpec/Ports")
            .and_then(Value::as_array);
        if ports.is_some_and(|ps| {
            ps.iter().any(|p| {
                matches!(
                    p.get("PublishMode").and_then(Value::as_str),
                    None | Some("" | "ingress")
                )
            })
        }) {
            self.ingress = true;
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Every desired network: `Network` manifests, then stack networks in
/// deploy order.
fn desired_networks(desired: &DesiredState) -> Vec<(ObjectRef, &NetworkCreate)> {
    let mut out: Vec<(ObjectRef, &NetworkCreate)> = desired
        .networks
        .iter()
        .map(|n| (n.owner.clone(), &n.body))
        .collect();
    for s in &desired.stacks {
        out.extend(s.objects.networks.iter().map(|n| (s.owner(), n)));
    }
    out
}

struct Cx<'a> {
    desired: &'a DesiredState,
    snap: &'a Snapshot,
    /// The snapshot's services by name (a plan over 500 services looks each
    /// one up; a scan per lookup was most of a no-op plan's time).
    services_by_name: BTreeMap<&'a str, &'a swarm::Object>,
    names: Names,
    options: Options,
    plan: Plan,
}

/// Plan the actions that make `snapshot` equal to `desired` (see the module
/// docs of [`crate::plan`] for order and ownership rules).
#[must_use]
pub fn plan(desired: &DesiredState, snapshot: &Snapshot, options: &Options) -> Plan {
    let desired = &*super::vip::with_vips(desired, snapshot);
    let mut services_by_name = BTreeMap::new();
    for o in &snapshot.services {
        services_by_name.entry(o.meta.name.as_str()).or_insert(o);
    }
    let mut cx = Cx {
        desired,
        snap: snapshot,
        services_by_name,
        names: Names::of(snapshot),
        options: options.clone(),
        plan: Plan::default(),
    };
    cx.networks();
    cx.configs_and_secrets();
    cx.plan.actions.extend(nodes::plan(
        &desired.node_rules,
        snapshot,
        desired.scope.as_deref(),
    ));
    for stack in &desired.stacks {
        cx.services(stack);
    }
    cx.check_external();
    cx.prune();
    cx.defer();
    cx.plan.warnings.extend(vip_preflight(desired, snapshot));
    cx.plan
}

impl<'a> Cx<'a> {
    /// Move what must wait for a rollout (see [`super::Holds`]) from the
    /// actions to the deferred ones: every action of a stack that depends
    /// on a stack still converging (or on a stack deferred so), and the
    /// service updates of a stack whose rollout of this revision failed.
    fn defer(&mut self) {
        let holds = &self.options.holds;
        if holds.is_empty() {
            return;
        }
        let has_actions = |actions: &[Action], name: &str| {
            actions
                .iter()
                .any(|a| a.stack().is_some_and(|s| s.name == name))
        };
        let mut waits: BTreeMap<&str, String> = BTreeMap::new();
        for stack in &self.desired.stacks {
            let dep = stack
                .after
                .iter()
                .find(|d| holds.waiting.contains_key(d.as_str()) || waits.contains_key(d.as_str()));
            if let Some(dep) = dep
                && has_actions(&self.plan.actions, &stack.name)
            {
                let why = holds
                    .waiting
                    .get(dep)
                    .filter(|w| !w.is_empty())
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default();
                waits.insert(
                    &stack.name,
                    format!("waiting for Stack/{dep} to converge{why}"),
                );
            }
        }
        let actions = std::mem::take(&mut self.plan.actions);
        for action in actions {
            let stack = action.stack().map(|s| s.name.as_str());
            let reason = stack.and_then(|s| {
                waits.get(s).cloned().or_else(|| {
                    matches!(action, Action::UpdateService { .. })
                        .then(|| holds.held.get(s).cloned())
                        .flatten()
                })
            });
            match reason {
                Some(reason) => self.plan.deferred.push(super::Deferred { action, reason }),
                None => self.plan.actions.push(action),
            }
        }
    }

    fn error(&mut self, kind: Kind, name: &str, owner: &ObjectRef, message: String) {
        self.plan.errors.push(Problem {
            kind,
            name: name.to_string(),
            owner: Some(owner.clone()),
            message,
        });
    }

    fn warn(&mut self, kind: Kind, name: &str, owner: &ObjectRef, message: String) {
        self.plan.warnings.push(Problem {
            kind,
            name: name.to_string(),
            owner: Some(owner.clone()),
            message,
        });
    }

    /// Names of services attached to the network (by ID or name).
    fn services_using_network(&self, net: &swarm::Network) -> Vec<String> {
        self.snap
            .services
            .iter()
            .filter(|s| {
                let mut uses = Uses::default();
                uses.add(&s.spec, &self.names);
                uses.networks.contains(&net.meta.name) || (net.ingress && uses.ingress)
            })
            .map(|s| s.meta.name.clone())
            .collect()
    }

    fn networks(&mut self) {
        let mut seen = BTreeSet::new();
        let desired = self.desired;
        let snap = self.snap;
        for (owner, body) in desired_networks(desired) {
            if !seen.insert(body.name.clone()) {
                continue;
            }
            let Some(obs) = snap.network(&body.name) else {
                if body.ingress && !self.replace_ingress(&owner, body) {
                    continue;
                }
                self.plan
                    .actions
                    .push(create_network(owner, body, Vec::new()));
                continue;
            };
            if !managed(&obs.meta.labels, self.desired.scope.as_deref()) {
                // Swarm's own ingress network (usually `ingress`) is
                // replaced by an ingress manifest of the same name too.
                if body.ingress && obs.ingress {
                    if self.replace_ingress(&owner, body) {
                        self.plan
                            .actions
                            .push(create_network(owner, body, Vec::new()));
                    }
                    continue;
                }
                self.plan
                    .errors
                    .push(conflict(Kind::Network, &body.name, &owner));
                continue;
            }
            let want_json = to_json(body);
            let want_ipam = want_json.pointer("/IPAM/Config");
            let want = normalize::network(&want_json, want_ipam);
            let have = normalize::network(&obs.raw, want_ipam);
            let changes = diff(&have, &want);
            if changes.is_empty() {
                continue;
            }
            let users = self.services_using_network(obs);
            if users.is_empty() {
                self.plan.actions.push(Action::RemoveNetwork {
                    name: body.name.clone(),
                    owner: owner.clone(),
                    id: obs.meta.id.clone(),
                    reason:
                        "differs from its manifest; networks cannot be updated, it is re-created"
                            .into(),
                });
                self.plan.actions.push(create_network(owner, body, changes));
            } else {
                let fields: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
                self.error(
                    Kind::Network,
                    &body.name,
                    &owner,
                    format!(
                        "differs from its manifest ({}) but swarm networks cannot be updated in \
                         place, and services use it ({}); remove those services (or detach them \
                         from the network) and rerun, or revert the manifest",
                        fields.join(", "),
                        users.join(", ")
                    ),
                );
            }
        }
    }

    /// Before creating an ingress network, remove the current ingress
    /// network of another name, when nothing publishes through it. Returns
    /// whether the create can go ahead.
    fn replace_ingress(&mut self, owner: &ObjectRef, body: &NetworkCreate) -> bool {
        let Some(old) = self.snap.networks.iter().find(|n| n.ingress) else {
            return true;
        };
        let users = self.services_using_network(old);
        if users.is_empty() {
            self.plan.actions.push(Action::RemoveNetwork {
                name: old.meta.name.clone(),
                owner: owner.clone(),
                id: old.meta.id.clone(),
                reason: format!("replaced by the ingress network `{}`", body.name),
            });
            true
        } else {
            self.error(
                Kind::Network,
                &body.name,
                owner,
                format!(
                    "cannot replace the ingress network `{}`: services publish ports through it ({}); \
                     remove their published ports or the services, then rerun",
                    old.meta.name,
                    users.join(", ")
                ),
            );
            false
        }
    }

    fn configs_and_secrets(&mut self) {
        let (desired, snap) = (self.desired, self.snap);
        for stack in &desired.stacks {
            let owner = stack.owner();
            for c in &stack.objects.configs {
                self.content_named(Kind::Config, &c.name, &owner, &snap.configs, || {
                    Action::CreateConfig {
                        name: c.name.clone(),
                        owner: owner.clone(),
                        body: c.clone(),
                    }
                });
            }
            for s in &stack.objects.secrets {
                self.content_named(Kind::Secret, &s.name, &owner, &snap.secrets, || {
                    Action::CreateSecret {
                        name: s.name.clone(),
                        owner: owner.clone(),
                        body: s.clone(),
                    }
                });
            }
        }
    }

    /// A config or secret: created when missing, a conflict when the name
    /// is taken by an object this bosun does not manage, else left alone
    /// (content-hashed name: same name, same content).
    fn content_named(
        &mut self,
        kind: Kind,
        name: &str,
        owner: &ObjectRef,
        observed: &[swarm::Object],
        create: impl FnOnce() -> Action,
    ) {
        match observed.iter().find(|o| o.meta.name == name) {
            None => self.plan.actions.push(create()),
            Some(o) if !managed(&o.meta.labels, self.desired.scope.as_deref()) => {
                self.plan.errors.push(conflict(kind, name, owner));
            }
            Some(_) => {}
        }
    }

    fn services(&mut self, stack: &DesiredStack) {
        let owner = stack.owner();
        for svc in &stack.objects.services {
            let Some(obs) = self.services_by_name.get(svc.name.as_str()).copied() else {
                self.plan.actions.push(Action::CreateService {
                    name: svc.name.clone(),
                    owner: owner.clone(),
                    body: svc.clone(),
                });
                continue;
            };
            if !managed(&obs.meta.labels, self.desired.scope.as_deref()) {
                self.plan
                    .errors
                    .push(conflict(Kind::Service, &svc.name, &owner));
                continue;
            }
            if let Some((spec, changes)) = self.service_update(svc, obs) {
                self.plan.actions.push(Action::UpdateService {
                    name: svc.name.clone(),
                    owner: owner.clone(),
                    id: obs.meta.id.clone(),
                    version: obs.meta.version,
                    spec,
                    changes,
                });
            }
        }
    }

    /// The spec to send and the changes, when the observed service differs.
    fn service_update(
        &self,
        svc: &ServiceSpec,
        obs: &swarm::Object,
    ) -> Option<(ServiceSpec, Vec<Change>)> {
        let want = normalize::service_owned(to_json(svc), &self.names);
        let have = normalize::service(&obs.spec, &self.names);
        let mut changes = diff(&have, &want);
        let observed_force = obs
            .spec
            .pointer("/TaskTemplate/ForceUpdate")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if svc.task_template.force_update > observed_force {
            changes.push(Change {
                path: "TaskTemplate.ForceUpdate".into(),
                old: Some(observed_force.into()),
                new: Some(svc.task_template.force_update.into()),
            });
        }
        if changes.is_empty() {
            return None;
        }
        let mut spec = svc.clone();
        spec.task_template.force_update = spec.task_template.force_update.max(observed_force);
        Some((spec, changes))
    }

    /// External networks, configs and secrets that neither exist nor are
    /// created by the plan: services using them would fail to deploy.
    fn check_external(&mut self) {
        let created: BTreeSet<String> = desired_networks(self.desired)
            .into_iter()
            .map(|(_, n)| n.name.clone())
            .collect();
        let mut missing = Vec::new();
        for stack in &self.desired.stacks {
            let owner = stack.owner();
            for n in &stack.objects.external_networks {
                if !created.contains(n) && self.snap.network(n).is_none() {
                    missing.push((Kind::Network, n.clone(), owner.clone()));
                }
            }
            for c in &stack.objects.external_configs {
                if !self.snap.configs.iter().any(|o| o.meta.name == *c) {
                    missing.push((Kind::Config, c.clone(), owner.clone()));
                }
            }
            for s in &stack.objects.external_secrets {
                if !self.snap.secrets.iter().any(|o| o.meta.name == *s) {
                    missing.push((Kind::Secret, s.clone(), owner.clone()));
                }
            }
        }
        for (kind, name, owner) in missing {
            let hint = if kind == Kind::Network {
                "; declare it as a `Network` manifest, or create it"
            } else {
                "; create it (`docker {kind} create`) before deploying"
            };
            self.error(
                kind,
                &name,
                &owner,
                format!("is declared external but does not exist{hint}"),
            );
        }
    }

    /// Whether an object owned by `owner` (and not desired) goes away, and
    /// why. `superseded` is set for an older version of a content-hashed
    /// config or secret that the stack still has.
    fn removal(&self, owner: &ObjectRef, superseded: Option<&str>) -> Option<String> {
        let name = owner.name.as_str();
        match owner.kind {
            manifest::Kind::Stack => match self.desired.stack_manifests.get(name) {
                Some(true) => None,
                Some(false) => {
                    if let Some(new) = superseded {
                        return Some(format!("superseded by `{new}`"));
                    }
                    let prune = self.desired.stack(name).is_some_and(|s| s.prune);
                    (self.options.prune && prune)
                        .then(|| format!("no longer in the compose files of {owner}"))
                }
                None => self.options.prune.then(|| format!("{owner} was deleted")),
            },
            manifest::Kind::VipPolicy => {
                if !self.desired.vips.iter().any(|v| v.owner == *owner) {
                    return self.options.prune.then(|| format!("{owner} was deleted"));
                }
                // A policy that selects no node now keeps what runs.
                self.desired.stacks.iter().find(|s| s.owner() == *owner)?;
                Some(match superseded {
                    Some(new) => format!("superseded by `{new}`"),
                    None => format!("{owner} no longer selects this node"),
                })
            }
            manifest::Kind::Network => (self.options.prune
                && !self.desired.networks.iter().any(|n| n.owner == *owner))
            .then(|| format!("{owner} was deleted")),
            _ => None,
        }
    }

    /// Remove what bosun owns and no longer wants: services first, then the
    /// configs, secrets and networks no service left after the plan uses.
    fn prune(&mut self) {
        let desired_services: BTreeSet<&str> = self
            .desired
            .stacks
            .iter()
            .flat_map(|s| s.objects.services.iter().map(|x| x.name.as_str()))
            .collect();
        let removed = self.removed_services(&desired_services);
        let uses = self.uses_after(&desired_services, &removed);
        for (s, owner, reason) in removed {
            self.plan.actions.push(Action::RemoveService {
                name: s.meta.name.clone(),
                owner,
                id: s.meta.id.clone(),
                reason,
            });
        }
        self.prune_hashed(&uses);
        self.prune_networks(&uses);
    }

    /// Managed services that go away, with their owner and why: those of
    /// deleted stacks first, then the others in reverse deploy order.
    fn removed_services(
        &self,
        desired: &BTreeSet<&str>,
    ) -> Vec<(&'a swarm::Object, ObjectRef, String)> {
        let snap = self.snap;
        let rank = |owner: &ObjectRef| {
            self.desired
                .stacks
                .iter()
                .position(|s| s.owner() == *owner)
                .map_or(0, |i| self.desired.stacks.len() - i)
        };
        let mut removed = Vec::new();
        for s in &snap.services {
            if desired.contains(s.meta.name.as_str())
                || !managed(&s.meta.labels, self.desired.scope.as_deref())
            {
                continue;
            }
            let Some(owner) = owner_of(&s.meta.labels) else {
                continue;
            };
            if let Some(reason) = self.removal(&owner, None) {
                removed.push((rank(&owner), s, owner, reason));
            }
        }
        removed.sort_by(|a, b| (a.0, &a.1.meta.name).cmp(&(b.0, &b.1.meta.name)));
        removed
            .into_iter()
            .map(|(_, s, owner, reason)| (s, owner, reason))
            .collect()
    }

    /// What the services left after the plan use: the desired ones, and the
    /// live ones the plan neither replaces nor removes.
    fn uses_after(
        &self,
        desired: &BTreeSet<&str>,
        removed: &[(&swarm::Object, ObjectRef, String)],
    ) -> Uses {
        let removed_ids: BTreeSet<&str> =
            removed.iter().map(|(s, _, _)| s.meta.id.as_str()).collect();
        let mut uses = Uses::default();
        for stack in &self.desired.stacks {
            for svc in &stack.objects.services {
                uses.add(&to_json(svc), &Names::default());
            }
        }
        for s in &self.snap.services {
            if !desired.contains(s.meta.name.as_str()) && !removed_ids.contains(s.meta.id.as_str())
            {
                uses.add(&s.spec, &self.names);
            }
        }
        uses
    }

    /// Configs and secrets (content-hashed names) that go away: an older
    /// version the stack has replaced, or one its stack no longer wants;
    /// one a service still uses stays, with a warning.
    fn prune_hashed(&mut self, uses: &Uses) {
        let stacks = &self.desired.stacks;
        let desired_configs: BTreeMap<&str, &str> = stacks
            .iter()
            .flat_map(|s| s.objects.configs.iter())
            .map(|c| (unhashed(&c.name), c.name.as_str()))
            .collect();
        let desired_secrets: BTreeMap<&str, &str> = stacks
            .iter()
            .flat_map(|s| s.objects.secrets.iter())
            .map(|c| (unhashed(&c.name), c.name.as_str()))
            .collect();
        let snap = self.snap;
        for (kind, observed, wanted, used) in [
            (Kind::Config, &snap.configs, &desired_configs, &uses.configs),
            (Kind::Secret, &snap.secrets, &desired_secrets, &uses.secrets),
        ] {
            let mut list: Vec<&swarm::Object> = observed.iter().collect();
            list.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
            for o in list {
                let name = o.meta.name.as_str();
                if !managed(&o.meta.labels, self.desired.scope.as_deref())
                    || wanted.values().any(|w| *w == name)
                {
                    continue;
                }
                let Some(owner) = owner_of(&o.meta.labels) else {
                    continue;
                };
                let superseded = wanted
                    .get(unhashed(name))
                    .filter(|_| unhashed(name) != name)
                    .copied();
                let Some(reason) = self.removal(&owner, superseded) else {
                    continue;
                };
                if used.contains(name) {
                    self.warn(
                        kind,
                        name,
                        &owner,
                        format!("not removed ({reason}): a service still uses it"),
                    );
                    continue;
                }
                let (name, id) = (name.to_string(), o.meta.id.clone());
                self.plan.actions.push(match kind {
                    Kind::Config => Action::RemoveConfig {
                        name,
                        owner,
                        id,
                        reason,
                    },
                    _ => Action::RemoveSecret {
                        name,
                        owner,
                        id,
                        reason,
                    },
                });
            }
        }
    }

    /// Managed networks nothing wants: stack networks before `Network`
    /// manifests' networks; one a service still uses stays, with a warning.
    fn prune_networks(&mut self, uses: &Uses) {
        let desired_networks: BTreeSet<String> = desired_networks(self.desired)
            .into_iter()
            .map(|(_, n)| n.name.clone())
            .collect();
        let snap = self.snap;
        let mut nets: Vec<(&swarm::Network, ObjectRef)> = snap
            .networks
            .iter()
            .filter(|n| {
                managed(&n.meta.labels, self.desired.scope.as_deref())
                    && !desired_networks.contains(&n.meta.name)
            })
            .filter_map(|n| Some((n, owner_of(&n.meta.labels)?)))
            .collect();
        nets.sort_by_key(|(n, owner)| (owner.kind == manifest::Kind::Network, n.meta.name.clone()));
        for (n, owner) in nets {
            let Some(reason) = self.removal(&owner, None) else {
                continue;
            };
            if uses.networks.contains(&n.meta.name) {
                self.warn(
                    Kind::Network,
                    &n.meta.name,
                    &owner,
                    format!("not removed ({reason}): a service still uses it"),
                );
                continue;
            }
            self.plan.actions.push(Action::RemoveNetwork {
                name: n.meta.name.clone(),
                owner,
                id: n.meta.id.clone(),
                reason,
            });
        }
    }
}

/// What the live nodes show about each `VipPolicy` (warnings): no node or
/// one node selected, a check whose failure cannot move the address with
/// the priorities the nodes get, a node whose swarm address is outside the
/// address's prefix.
fn vip_preflight(desired: &DesiredState, snapshot: &Snapshot) -> Vec<Problem> {
    let facts = super::vip::node_facts(desired, snapshot);
    let mut out = Vec::new();
    for v in &desired.vips {
        let (owner, spec) = (&v.owner, &v.spec);
        let members = crate::vip::members(spec, &facts);
        let warn = |name: &str, message: String| Problem {
            kind: Kind::Node,
            name: name.to_string(),
            owner: Some(owner.clone()),
            message,
        };
        match members.as_slice() {
            [] => {
                out.push(warn(
                    "-",
                    "selects no node: nobody holds the address; fix spec.nodes.selector".into(),
                ));
                continue;
            }
            [only] => out.push(warn(
                &only.hostname,
                "is the only node selected: the address has nowhere to fail over to; select two or more".into(),
            )),
            _ => {}
        }
        let prios: Vec<(&str, i64)> = members
            .iter()
            .map(|m| (m.hostname.as_str(), m.priority))
            .collect();
        let holder = prios
            .iter()
            .max_by_key(|(_, p)| *p)
            .map_or("-", |(h, _)| *h);
        for (field, message) in manifest::weight_analysis(spec, &prios) {
            out.push(warn(holder, format!("{field}: {message}")));
        }
        if let Some(cidr) = spec.cidr() {
            for m in members.iter().filter(|m| !m.addr.is_empty()) {
                let inside = m.addr.parse().is_ok_and(|ip| cidr.contains(ip));
                if !inside {
                    out.push(warn(
                        &m.hostname,
                        format!(
                            "its swarm address {} is outside {} (the address's prefix): check that {} on {} is on that subnet, or fix spec.address",
                            m.addr,
                            spec.address,
                            spec.interface_of(&m.hostname),
                            m.hostname
                        ),
                    ));
                }
            }
        }
    }
    out
}

//! The desired swarm objects of one revision, built from the manifests.

use std::collections::{BTreeMap, BTreeSet};

use crate::compose::api::{Ipam, IpamConfig, NetworkCreate, PlacementPreference, SpreadOver};
use crate::compose::{self, LABEL_MANAGED_BY, LABEL_OWNER, LABEL_SPEC_HASH, StackObjects};
use crate::manifest::{self, Availability, NodeSelector, ObjectRef, PlacementPolicy, glob_match};

use super::{Error, Result};

/// A network bosun creates for a `Network` manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredNetwork {
    /// `Network/<name>`.
    pub owner: ObjectRef,
    /// The create body, bosun's labels included.
    pub body: NetworkCreate,
}

/// A stack that is reconciled (not suspended): its swarm objects converted
/// like `docker stack deploy`, with bosun's labels, content-hashed config
/// and secret names, and the placement policies that select its services.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredStack {
    pub name: String,
    /// The manifest owning the stack's objects when it is not `Stack/<name>`
    /// (a `VipPolicy`'s keepalived services, stack `vip-<policy>`).
    pub owned_by: Option<ObjectRef>,
    /// The manifest's `prune`.
    pub prune: bool,
    /// Stacks that must be deployed first: `dependsOn`, and the stacks that
    /// create networks this one uses as external.
    pub after: Vec<String>,
    /// The manifest's `wait`: how long apply waits for the stack's services
    /// to converge, `None` when waiting is disabled.
    pub wait: Option<std::time::Duration>,
    pub objects: StackObjects,
}

impl DesiredStack {
    /// `Stack/<name>`, or the manifest in [`DesiredStack::owned_by`].
    #[must_use]
    pub fn owner(&self) -> ObjectRef {
        self.owned_by
            .clone()
            .unwrap_or_else(|| ObjectRef::new(manifest::Kind::Stack, &self.name))
    }

    /// A VIP policy's keepalived services: rolled one node at a time.
    #[must_use]
    pub fn is_vip(&self) -> bool {
        self.owned_by
            .as_ref()
            .is_some_and(|o| o.kind == manifest::Kind::VipPolicy)
    }
}

#[cfg(test)]
impl DesiredState {
    /// The desired state of manifests given as `(file, text)`; panics with
    /// the diagnostics when they are invalid (tests).
    pub(crate) fn of_files(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let m = manifest::load(dir.path()).unwrap_or_else(|d| panic!("invalid manifests:\n{d}"));
        DesiredState::build(&m, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// One `NodeLabels` rule; resolved against the observed nodes by the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRule {
    /// `NodeLabels/<name>`.
    pub owner: ObjectRef,
    pub selector: NodeSelector,
    pub labels: BTreeMap<String, String>,
    pub availability: Option<Availability>,
}

/// Everything one revision wants in the swarm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    /// Networks of `Network` manifests, by name.
    pub networks: Vec<DesiredNetwork>,
    /// Stacks that are not suspended, in deploy order.
    pub stacks: Vec<DesiredStack>,
    /// Every `Stack` manifest by name, `true` when suspended: their objects
    /// are neither changed nor pruned.
    pub stack_manifests: BTreeMap<String, bool>,
    /// `NodeLabels` rules in manifest (name) order, rules in file order.
    pub node_rules: Vec<NodeRule>,
    /// The instance scope ([`super::LABEL_SCOPE`]), `None` for the default.
    pub scope: Option<String>,
    /// `VipPolicy` manifests with their passwords: their keepalived
    /// services depend on the live nodes, so the plan makes them
    /// ([`super::vip::with_vips`]).
    pub vips: Vec<super::vip::DesiredVip>,
}

impl DesiredState {
    /// Put every object of this desired state in `scope` (see
    /// [`super::LABEL_SCOPE`]); `None` or an empty name is the default scope.
    #[must_use]
    pub fn with_scope(mut self, scope: Option<&str>) -> Self {
        let Some(scope) = scope.filter(|s| !s.is_empty()) else {
            return self;
        };
        let label = (super::LABEL_SCOPE.to_string(), scope.to_string());
        for n in &mut self.networks {
            n.body.labels.insert(label.0.clone(), label.1.clone());
        }
        for st in &mut self.stacks {
            let o = &mut st.objects;
            for n in &mut o.networks {
                n.labels.insert(label.0.clone(), label.1.clone());
            }
            for c in &mut o.configs {
                c.labels.insert(label.0.clone(), label.1.clone());
            }
            for s in &mut o.secrets {
                s.labels.insert(label.0.clone(), label.1.clone());
            }
            for s in &mut o.services {
                s.labels.insert(label.0.clone(), label.1.clone());
            }
        }
        self.scope = Some(scope.to_string());
        self
    }

    /// Convert every stack that is not suspended (with `process_env` as the
    /// lowest-precedence interpolation variables), apply the placement
    /// policies, build the `Network` manifests' create bodies, and read the
    /// VIP policies' passwords (`process_env` holds `auth.passwordEnv`).
    pub fn build(
        desired: &manifest::Desired,
        process_env: &BTreeMap<String, String>,
    ) -> Result<DesiredState> {
        let mut state = DesiredState::default();
        let mut networks: Vec<&manifest::Network> = desired.networks.iter().collect();
        networks.sort_by(|a, b| a.name().cmp(b.name()));
        state.networks = networks.into_iter().map(network).collect();

        let mut policies: Vec<&PlacementPolicy> = desired.placement_policies.iter().collect();
        policies.sort_by(|a, b| a.name().cmp(b.name()));

        let mut stacks = Vec::new();
        for stack in desired.stack_order() {
            state
                .stack_manifests
                .insert(stack.name().to_string(), stack.spec.suspend);
            if stack.spec.suspend {
                tracing::debug!(stack = stack.name(), "suspended: not reconciled");
                continue;
            }
            let objects = match desired.converted.get(stack.name()) {
                Some(c) if c.env == *process_env => c.objects.clone(),
                _ => stack
                    .convert(process_env, &desired.confinement)
                    .map_err(|diagnostics| Error::ConvertFailed {
                        stack: stack.name().to_string(),
                        file: stack.source.to_string(),
                        diagnostics,
                    })?,
            };
            let owner = stack.id().to_string();
            let mut objects = compose::bosunify(objects, &owner);
            apply_placement(&mut objects, stack.name(), &policies);
            let after = stack
                .spec
                .dependencies()
                .into_iter()
                .filter(|d| d.kind == manifest::Kind::Stack)
                .map(|d| d.name)
                .collect();
            stacks.push(DesiredStack {
                name: stack.name().to_string(),
                owned_by: None,
                prune: stack.spec.prune,
                after,
                wait: stack
                    .spec
                    .wait
                    .enabled
                    .then(|| stack.spec.wait.timeout.get()),
                objects,
            });
        }
        add_network_dependencies(&mut stacks);
        state.stacks = deploy_order(stacks);

        let mut node_labels: Vec<&manifest::NodeLabels> = desired.node_labels.iter().collect();
        node_labels.sort_by(|a, b| a.name().cmp(b.name()));
        for nl in node_labels {
            for rule in &nl.spec.rules {
                state.node_rules.push(NodeRule {
                    owner: nl.id(),
                    selector: rule.selector.clone(),
                    labels: rule.labels.clone(),
                    availability: rule.availability,
                });
            }
        }
        state.vips = super::vip::read(desired, process_env)?;
        Ok(state)
    }

    /// The stack named `name`, when reconciled.
    #[must_use]
    pub fn stack(&self, name: &str) -> Option<&DesiredStack> {
        self.stacks.iter().find(|s| s.name == name)
    }
}

/// The create body of a `Network` manifest, with bosun's labels.
fn network(n: &manifest::Network) -> DesiredNetwork {
    let spec = &n.spec;
    let mut options = spec.options.clone();
    if spec.encrypted {
        options.insert("encrypted".into(), String::new());
    }
    let ipam = spec.ipam.as_ref().map(|i| Ipam {
        driver: i.driver.clone(),
        options: (!i.options.is_empty()).then(|| i.options.clone()),
        config: Some(
            i.config
                .iter()
                .map(|c| IpamConfig {
                    subnet: c.subnet.clone(),
                    ip_range: c.ip_range.clone().unwrap_or_default(),
                    gateway: c.gateway.clone().unwrap_or_default(),
                    aux_addresses: BTreeMap::new(),
                })
                .collect(),
        ),
    });
    let mut body = NetworkCreate {
        name: n.name().to_string(),
        check_duplicate: Some(true),
        driver: spec.driver.clone(),
        scope: "swarm".into(),
        enable_ipv6: spec.enable_ipv6.then_some(true),
        ipam,
        internal: spec.internal,
        attachable: spec.attachable,
        ingress: spec.ingress,
        options: (!options.is_empty()).then_some(options),
        labels: n.metadata.labels.clone(),
        ..NetworkCreate::default()
    };
    let owner = n.id();
    let hash = compose::spec_hash(&body);
    body.labels.insert(LABEL_MANAGED_BY.into(), "bosun".into());
    body.labels.insert(LABEL_OWNER.into(), owner.to_string());
    body.labels.insert(LABEL_SPEC_HASH.into(), hash);
    DesiredNetwork { owner, body }
}

/// Add each policy that selects a service to its placement: constraints
/// and preferences appended when not already there (preferences and max
/// replicas only for replicated services: swarm ignores them otherwise),
/// `maxReplicasPerNode` set. Policies apply in name order, so a later one
/// wins on `maxReplicasPerNode`.
fn apply_placement(objs: &mut StackObjects, stack: &str, policies: &[&PlacementPolicy]) {
    for svc in &mut objs.services {
        for policy in policies {
            let sel = &policy.spec.selector;
            let selected = (sel.stacks.is_empty() || sel.stacks.iter().any(|s| s == stack))
                && (sel.services.is_empty()
                    || sel.services.iter().any(|g| glob_match(g, &svc.name)))
                && sel.labels.iter().all(|(k, v)| svc.labels.get(k) == Some(v));
            if !selected {
                continue;
            }
            let replicated = svc.mode.replicated.is_some();
            let placement = svc
                .task_template
                .placement
                .get_or_insert_with(Default::default);
            for c in &policy.spec.constraints {
                if !placement.constraints.contains(c) {
                    placement.constraints.push(c.clone());
                }
            }
            if replicated {
                for p in &policy.spec.preferences {
                    let pref = PlacementPreference {
                        spread: Some(SpreadOver {
                            spread_descriptor: p.spread.clone(),
                        }),
                    };
                    if !placement.preferences.contains(&pref) {
                        placement.preferences.push(pref);
                    }
                }
                if let Some(max) = policy.spec.max_replicas_per_node {
                    placement.max_replicas = max;
                }
            }
        }
    }
}

/// A stack that uses as external a network another stack creates comes
/// after that stack.
fn add_network_dependencies(stacks: &mut [DesiredStack]) {
    let creators: BTreeMap<String, String> = stacks
        .iter()
        .flat_map(|s| {
            s.objects
                .networks
                .iter()
                .map(move |n| (n.name.clone(), s.name.clone()))
        })
        .collect();
    for s in stacks.iter_mut() {
        for ext in &s.objects.external_networks {
            if let Some(creator) = creators.get(ext)
                && *creator != s.name
                && !s.after.contains(creator)
            {
                s.after.push(creator.clone());
            }
        }
    }
}

/// Stable topological order: repeatedly the first stack (in the given
/// order) whose dependencies are placed. Dependencies on stacks that are
/// not reconciled (suspended) are satisfied; a cycle (validation rejects
/// explicit ones) keeps the given order.
fn deploy_order(mut pending: Vec<DesiredStack>) -> Vec<DesiredStack> {
    let known: BTreeSet<String> = pending.iter().map(|s| s.name.clone()).collect();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|s| {
                s.after
                    .iter()
                    .all(|d| placed.contains(d) || !known.contains(d))
            })
            .unwrap_or(0);
        let s = pending.remove(ready);
        placed.insert(s.name.clone());
        out.push(s);
    }
    out
}

//! Requests the daemon would refuse, found from the manifests alone.
//!
//! Swarm refuses some requests outright (swarmkit's `controlapi`): names
//! that are not DNS labels, config and secret data at or over a size limit,
//! a service whose configs (or secrets) share a target, a published port
//! that is already taken. bosun applies a revision object by object, so a
//! refusal met while applying leaves the objects before it in place: a
//! half-applied swarm. Each rule here mirrors one of the daemon's, with the
//! limits measured against dockerd 20.10 (README, "Up-front checks"), and
//! runs at validation, so `plan` and `reconcile` stop before touching
//! anything.
//!
//! Compose findings point into the compose file that defines the field (the
//! last of a stack's files that has it), or into the manifest for inline
//! compose; config and secret contents are never shown, only their sizes.

use std::collections::BTreeMap;

use super::validate::Cx;
use super::{Diagnostic, Network, Severity, Stack};
use crate::compose::{self, StackObjects, model};
use crate::yaml::{Node, Path, Pos};

/// Config data must be shorter than this (swarmkit `MaxConfigSize`, 1000 KiB).
pub const MAX_CONFIG_BYTES: usize = 1000 * 1024;
/// Secret data must be shorter than this (swarmkit `MaxSecretSize`, 500 KiB).
pub const MAX_SECRET_BYTES: usize = 500 * 1024;
/// Service and network names are DNS labels: at most this long.
pub const MAX_DNS_NAME: usize = 63;
/// Config and secret names are at most this long.
pub const MAX_FILE_OBJECT_NAME: usize = 64;

/// Why swarm refuses `name` as a service or network name, if it does
/// (`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`, at most 63 characters).
fn dns_name(name: &str, what: &str) -> Option<String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if !ok {
        return Some(format!(
            "swarm refuses the {what} name `{name}`: it must be a DNS label (letters, digits, \
             `-` and `_`, starting and ending with a letter or digit; no dots)"
        ));
    }
    (name.len() > MAX_DNS_NAME).then(|| {
        format!(
            "swarm refuses the {what} name `{name}`: it is {} characters, at most {MAX_DNS_NAME} are allowed",
            name.len()
        )
    })
}

/// Why swarm refuses `name` as a config or secret name, if it does
/// (`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`, at most 64 characters).
fn file_object_name(name: &str, what: &str) -> Option<String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Some(format!(
            "swarm refuses the {what} name `{name}`: use letters, digits, `-`, `_` and `.`, \
             starting and ending with a letter or digit"
        ));
    }
    (name.len() > MAX_FILE_OBJECT_NAME).then(|| {
        format!(
            "swarm refuses the {what} name `{name}` (bosun's `<name>-<hash8>`): it is {} \
             characters, at most {MAX_FILE_OBJECT_NAME} are allowed; shorten the stack or {what} name",
            name.len()
        )
    })
}

/// A `Network` manifest's name as swarm checks it (the manifest rules allow
/// dots, which swarm refuses in network names).
pub(crate) fn network(obj: &Network, cx: &mut Cx) {
    if super::check_name(obj.name(), false).is_err() {
        return;
    }
    if let Some(why) = dns_name(obj.name(), "network") {
        cx.error(obj, "metadata.name", why);
    }
}

/// One published port of a service, where it was written.
pub(crate) struct Published {
    /// The service's swarm name (`<stack>_<service>`).
    service: String,
    port: u32,
    protocol: String,
    ingress: bool,
    place: Place,
}

/// Where a finding points.
#[derive(Clone)]
struct Place {
    file: String,
    pos: Pos,
    path: Path,
    object: String,
}

impl Place {
    fn diagnostic(&self, severity: Severity, message: String) -> Diagnostic {
        Diagnostic {
            severity,
            file: self.file.clone(),
            pos: Some(self.pos),
            object: Some(self.object.clone()),
            path: (!self.path.is_empty()).then(|| self.path.clone()),
            message,
        }
    }

    fn line(&self) -> String {
        format!("{}:{}", self.file, self.pos.line)
    }
}

/// A stack's compose documents, to find where a field is written.
pub(crate) struct Sources {
    /// (file as shown, document, path of the document in that file).
    docs: Vec<(String, Node, Path)>,
    object: String,
}

impl Sources {
    pub(crate) fn new(obj: &Stack, docs: Vec<(String, Node, Path)>) -> Self {
        Sources {
            docs,
            object: obj.id().to_string(),
        }
    }

    /// The place of `path` in the last document that has it, else `origin`.
    fn place(&self, path: &Path, origin: &model::Origin) -> Place {
        for (file, doc, prefix) in self.docs.iter().rev() {
            if doc.lookup(&path.0).is_some() {
                return self.at(file, doc, prefix, path);
            }
        }
        self.origin(path, origin)
    }

    /// The place of the item of the sequence at `seq` that `pick` picks.
    fn item(&self, seq: &Path, origin: &model::Origin, pick: impl Fn(&Node) -> bool) -> Place {
        for (file, doc, prefix) in self.docs.iter().rev() {
            let Some(crate::yaml::Value::Seq(items)) = doc.lookup(&seq.0).map(|n| &n.value) else {
                continue;
            };
            if let Some(i) = items.iter().position(&pick) {
                return self.at(file, doc, prefix, &seq.index(i));
            }
        }
        self.place(seq, origin)
    }

    fn at(&self, file: &str, doc: &Node, prefix: &Path, path: &Path) -> Place {
        let mut full = prefix.clone();
        full.0.extend(path.0.iter().cloned());
        Place {
            file: file.to_string(),
            pos: doc.pos_of(&path.0),
            path: full,
            object: self.object.clone(),
        }
    }

    fn origin(&self, path: &Path, origin: &model::Origin) -> Place {
        Place {
            file: origin.file.clone(),
            pos: origin.pos,
            path: path.clone(),
            object: self.object.clone(),
        }
    }
}

/// What `docker stack deploy` names a top-level compose object `key`.
fn scoped(ns: &str, key: &str, name: &str) -> String {
    if name.is_empty() {
        format!("{ns}_{key}")
    } else {
        name.to_string()
    }
}

/// The checks of one converted stack. Published ports are collected into
/// `ports` for [`ports`], which compares them across every stack.
pub(crate) fn stack(
    obj: &Stack,
    project: &compose::Project,
    objects: &StackObjects,
    sources: &Sources,
    ports: &mut Vec<Published>,
    cx: &mut Cx,
) {
    let ns = obj.name();
    for s in &project.services {
        let services = Path::root().key("services").key(&s.name);
        if let Some(why) = dns_name(&format!("{ns}_{}", s.name), "service") {
            cx.push(
                sources
                    .place(&services, &s.origin)
                    .diagnostic(Severity::Error, why),
            );
        }
        file_targets(s, &services, sources, cx);
        published(s, &services, ns, sources, ports, cx);
    }
    network_names(obj, project, objects, sources, cx);
    file_objects(ns, project, objects, sources, cx);
}

/// Stack networks (not external ones, which must already exist).
fn network_names(
    obj: &Stack,
    project: &compose::Project,
    objects: &StackObjects,
    sources: &Sources,
    cx: &mut Cx,
) {
    let ns = obj.name();
    for n in &objects.networks {
        let Some(why) = dns_name(&n.name, "network") else {
            continue;
        };
        let declared = project
            .networks
            .iter()
            .find(|(key, decl)| scoped(ns, key, &decl.name) == n.name);
        match declared {
            Some((key, decl)) => {
                let mut path = Path::root().key("networks").key(key);
                if !decl.name.is_empty() {
                    path = path.key("name");
                }
                cx.push(
                    sources
                        .place(&path, &decl.origin)
                        .diagnostic(Severity::Error, why),
                );
            }
            // The implicit `<stack>_default`: the stack's name is too long.
            None => cx.error(obj, "metadata.name", why),
        }
    }
}

/// Config and secret names after bosun's naming, and their sizes.
fn file_objects(
    ns: &str,
    project: &compose::Project,
    objects: &StackObjects,
    sources: &Sources,
    cx: &mut Cx,
) {
    let kinds: [(&str, &BTreeMap<String, model::FileObject>, usize); 2] = [
        ("config", &project.configs, MAX_CONFIG_BYTES),
        ("secret", &project.secrets, MAX_SECRET_BYTES),
    ];
    for (kind, declared, limit) in kinds {
        for (key, decl) in declared.iter().filter(|(_, d)| !d.external) {
            let name = scoped(ns, key, &decl.name);
            let converted = if kind == "config" {
                objects
                    .configs
                    .iter()
                    .find(|c| c.name == name)
                    .map(|c| (&c.data, c.templating.as_ref(), false))
            } else {
                objects
                    .secrets
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| (&s.data, s.templating.as_ref(), s.driver.is_some()))
            };
            let Some((data, templating, driver)) = converted else {
                continue;
            };
            let top = Path::root().key(&format!("{kind}s")).key(key);
            let hashed = compose::hashed_name(&name, data, templating.map(|t| t.name.as_str()));
            if let Some(why) = file_object_name(&hashed, kind) {
                let path = if decl.name.is_empty() {
                    top.clone()
                } else {
                    top.key("name")
                };
                cx.push(
                    sources
                        .place(&path, &decl.origin)
                        .diagnostic(Severity::Error, why),
                );
            }
            // A secret from a driver has no data here; the driver holds it.
            if driver {
                continue;
            }
            let why = if data.is_empty() {
                Some(format!(
                    "{kind} `{key}` is empty; swarm refuses a {kind} without data"
                ))
            } else if data.len() >= limit {
                Some(format!(
                    "{kind} `{key}` is {} bytes; swarm refuses {kind}s of {limit} bytes ({} KiB) or more",
                    data.len(),
                    limit / 1024
                ))
            } else {
                None
            };
            if let Some(why) = why {
                let path = if decl.file.is_empty() {
                    top.clone()
                } else {
                    top.key("file")
                };
                cx.push(
                    sources
                        .place(&path, &decl.origin)
                        .diagnostic(Severity::Error, why),
                );
            }
        }
    }
}

/// Whether a service's `configs:`/`secrets:` entry (short or long syntax)
/// references `source`.
fn references(item: &Node, source: &str) -> bool {
    item.as_str() == Some(source) || item.get("source").and_then(Node::as_str) == Some(source)
}

/// Two configs (or two secrets) of one service at the same target: swarm
/// refuses the same target string; the same file written two ways (`app`
/// and `/app` for a config) is only warned about, the daemon accepts it.
fn file_targets(s: &model::Service, services: &Path, sources: &Sources, cx: &mut Cx) {
    let kinds: [(&str, &[model::FileRef], &str); 2] = [
        ("config", &s.configs, "/"),
        ("secret", &s.secrets, "/run/secrets/"),
    ];
    for (kind, refs, dir) in kinds {
        let seq = services.key(&format!("{kind}s"));
        let mut seen: Vec<(&str, String, &str)> = Vec::new();
        for r in refs {
            let target = if r.target.is_empty() {
                r.source.as_str()
            } else {
                r.target.as_str()
            };
            let resolved = if target.starts_with('/') {
                target.to_string()
            } else {
                format!("{dir}{target}")
            };
            let clash = seen
                .iter()
                .find(|(t, res, _)| *t == target || *res == resolved);
            if let Some((first_target, _, first)) = clash {
                let place = sources.item(&seq, &s.origin, |item| references(item, &r.source));
                let d = if *first_target == target {
                    place.diagnostic(
                        Severity::Error,
                        format!(
                            "{kind} `{}` has the target `{target}` of {kind} `{first}`; swarm refuses a service whose {kind}s share a target",
                            r.source
                        ),
                    )
                } else {
                    place.diagnostic(
                        Severity::Warning,
                        format!(
                            "{kind} `{}` (target `{target}`) and {kind} `{first}` (target `{first_target}`) are both mounted at `{resolved}`",
                            r.source
                        ),
                    )
                };
                cx.push(d);
            } else {
                seen.push((target, resolved, &r.source));
            }
        }
    }
}

/// A service's published ports: one port and protocol twice in a service is
/// refused; the rest is collected for [`ports`].
fn published(
    s: &model::Service,
    services: &Path,
    ns: &str,
    sources: &Sources,
    ports: &mut Vec<Published>,
    cx: &mut Cx,
) {
    let place = sources.place(&services.key("ports"), &s.origin);
    let service = format!("{ns}_{}", s.name);
    let mut mine: Vec<Published> = Vec::new();
    for p in s.ports.iter().filter(|p| p.published > 0) {
        let protocol = if p.protocol.is_empty() {
            "tcp".to_string()
        } else {
            p.protocol.to_ascii_lowercase()
        };
        if mine
            .iter()
            .any(|m| m.port == p.published && m.protocol == protocol)
        {
            cx.push(place.diagnostic(
                Severity::Error,
                format!(
                    "port {}/{protocol} is published twice by this service; swarm refuses duplicate published ports",
                    p.published
                ),
            ));
            continue;
        }
        mine.push(Published {
            service: service.clone(),
            port: p.published,
            protocol,
            ingress: p.mode.is_empty() || p.mode.eq_ignore_ascii_case("ingress"),
            place: place.clone(),
        });
    }
    ports.extend(mine);
}

/// Published ports across services of every stack: a port and protocol
/// published in ingress mode is the swarm's, on every node, so no other
/// service may publish it in either mode. Host-mode ports may repeat:
/// the scheduler places such tasks on different nodes (a task that finds
/// no free node stays pending, which is not a refusal).
pub(crate) fn ports(ports: &[Published], cx: &mut Cx) {
    for (i, p) in ports.iter().enumerate() {
        let taken = ports[..i].iter().find(|q| {
            q.service != p.service
                && q.port == p.port
                && q.protocol == p.protocol
                && (q.ingress || p.ingress)
        });
        if let Some(q) = taken {
            let (mode, theirs) = if q.ingress {
                ("ingress", "")
            } else {
                (
                    "host",
                    "; an ingress port cannot share a number with a host-mode one",
                )
            };
            cx.push(p.place.diagnostic(
                Severity::Error,
                format!(
                    "port {}/{} is already published by service `{}` ({mode} mode, {}){theirs}; swarm refuses the second service",
                    p.port,
                    p.protocol,
                    q.service,
                    q.place.line()
                ),
            ));
        }
    }
}

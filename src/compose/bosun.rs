//! bosun's deliberate additions to docker's stack objects (see the module
//! docs of [`crate::compose`]).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::StackObjects;

/// Marks objects bosun owns; prune only touches objects with it.
pub const LABEL_MANAGED_BY: &str = "dev.bosun.managed-by";
/// `<Kind>/<name>` of the manifest object that owns the swarm object.
pub const LABEL_OWNER: &str = "dev.bosun.owner";
/// Hash of the docker-identical desired body, for drift detection.
pub const LABEL_SPEC_HASH: &str = "dev.bosun.spec-hash";

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// SHA-256 (first 16 hex digits) of a body's JSON: the value of
/// [`LABEL_SPEC_HASH`].
pub fn spec_hash<T: Serialize>(body: &T) -> String {
    let json = serde_json::to_vec(body).unwrap_or_default();
    hex(&Sha256::digest(&json))[..16].to_string()
}

fn content_hash(data: &[u8], templating: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(data);
    if let Some(t) = templating {
        h.update(b"\0templating=");
        h.update(t.as_bytes());
    }
    hex(&h.finalize())[..8].to_string()
}

/// The name bosun gives a stack config or secret called `name` (after
/// docker's naming) with this content: `<name>-<hash8>`.
#[must_use]
pub fn hashed_name(name: &str, data: &[u8], templating: Option<&str>) -> String {
    format!("{name}-{}", content_hash(data, templating))
}

fn own(labels: &mut BTreeMap<String, String>, owner: &str, hash: String) {
    labels.insert(LABEL_MANAGED_BY.into(), "bosun".into());
    labels.insert(LABEL_OWNER.into(), owner.into());
    labels.insert(LABEL_SPEC_HASH.into(), hash);
}

/// Apply bosun's differences to docker-identical objects: ownership and
/// spec-hash labels on everything, and content-hashed names
/// (`<name>-<hash8>`) for the stack's configs and secrets, with the services'
/// references renamed. `owner` is `<Kind>/<name>`, e.g. `Stack/traefik`.
#[must_use]
pub fn bosunify(mut objs: StackObjects, owner: &str) -> StackObjects {
    let mut renamed_configs = BTreeMap::new();
    for c in &mut objs.configs {
        let new = hashed_name(
            &c.name,
            &c.data,
            c.templating.as_ref().map(|t| t.name.as_str()),
        );
        renamed_configs.insert(c.name.clone(), new.clone());
        c.name = new;
        let h = spec_hash(&*c);
        own(&mut c.labels, owner, h);
    }
    let mut renamed_secrets = BTreeMap::new();
    for s in &mut objs.secrets {
        let new = hashed_name(
            &s.name,
            &s.data,
            s.templating.as_ref().map(|t| t.name.as_str()),
        );
        renamed_secrets.insert(s.name.clone(), new.clone());
        s.name = new;
        let h = spec_hash(&*s);
        own(&mut s.labels, owner, h);
    }
    for n in &mut objs.networks {
        let h = spec_hash(&*n);
        own(&mut n.labels, owner, h);
    }
    for svc in &mut objs.services {
        if let Some(cs) = svc.task_template.container_spec.as_mut() {
            for r in &mut cs.configs {
                if let Some(new) = renamed_configs.get(&r.config_name) {
                    r.config_name.clone_from(new);
                }
            }
            for r in &mut cs.secrets {
                if let Some(new) = renamed_secrets.get(&r.secret_name) {
                    r.secret_name.clone_from(new);
                }
            }
            if let Some(cred) = cs
                .privileges
                .as_mut()
                .and_then(|p| p.credential_spec.as_mut())
                && let Some(new) = renamed_configs.get(&cred.config)
            {
                cred.config.clone_from(new);
            }
        }
        let h = spec_hash(&*svc);
        own(&mut svc.labels, owner, h);
    }
    objs
}

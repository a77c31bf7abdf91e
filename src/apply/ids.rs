//! Config and secret IDs of service bodies, by name.
//!
//! The plan refers to configs and secrets by name (`ConfigName`,
//! `SecretName`, and a config name in `CredentialSpec.Config`); the daemon
//! wants their IDs. Names are looked up among the snapshot's objects and
//! those created in this pass.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::swarm::Snapshot;

/// Name → ID of configs and secrets.
#[derive(Debug, Clone, Default)]
pub(super) struct Ids {
    pub configs: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
}

impl Ids {
    pub fn of(snapshot: &Snapshot) -> Self {
        let table = |objs: &[crate::swarm::Object]| {
            objs.iter()
                .map(|o| (o.meta.name.clone(), o.meta.id.clone()))
                .collect()
        };
        Ids {
            configs: table(&snapshot.configs),
            secrets: table(&snapshot.secrets),
        }
    }

    /// Fill `SecretID`, `ConfigID` and `CredentialSpec.Config` of a service
    /// spec; the error names what is missing.
    pub fn fill(&self, spec: &mut Value) -> Result<(), String> {
        let Some(cs) = spec.pointer_mut("/TaskTemplate/ContainerSpec") else {
            return Ok(());
        };
        for (list, id_key, name_key, table, kind) in [
            ("Secrets", "SecretID", "SecretName", &self.secrets, "secret"),
            ("Configs", "ConfigID", "ConfigName", &self.configs, "config"),
        ] {
            let Some(Value::Array(refs)) = cs.get_mut(list) else {
                continue;
            };
            for r in refs {
                let name = r
                    .get(name_key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let id = table
                    .get(&name)
                    .ok_or_else(|| format!("{kind} `{name}` does not exist"))?;
                r[id_key] = json!(id);
            }
        }
        if let Some(c) = cs.pointer_mut("/Privileges/CredentialSpec/Config") {
            if let Some(name) = c.as_str().filter(|s| !s.is_empty()) {
                // Already an ID (a config whose name is its ID) stays.
                let id = self
                    .configs
                    .get(name)
                    .or_else(|| self.configs.values().find(|id| *id == name))
                    .ok_or_else(|| format!("config `{name}` does not exist"))?;
                *c = json!(id);
            }
        }
        Ok(())
    }
}

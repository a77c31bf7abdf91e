//! Parts shared by every kind: metadata, node selectors, names, label keys.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Identity of a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// Name of the object, unique per kind. For a `Stack` it is the stack
    /// namespace (`<stack>_<service>`), for a `Network` the swarm network name.
    /// Letters, digits, `_`, `.` and `-`, starting with a letter or digit, at
    /// most 63 characters (`Stack` and `VipPolicy` names become parts of
    /// service names and may not contain `.`).
    pub name: String,
    /// Labels of the manifest. A `Network` carries them as its network
    /// labels; other kinds keep them in the manifest only (label a stack's
    /// services, configs and secrets with the compose file's `labels` and
    /// `deploy.labels`). Numbers and booleans are taken as strings.
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "string_map_schema")]
    pub labels: BTreeMap<String, String>,
}

/// A swarm node role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A manager node (raft member).
    Manager,
    /// A worker node.
    Worker,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        })
    }
}

/// Picks swarm nodes. Every condition given must hold (all of them); at
/// least one must be given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeSelector {
    /// Node hostname as `docker node ls` shows it; `*` matches any run of characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Node id (the full id or a unique prefix of at least 12 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Node role: `manager` or `worker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Node labels the node must already carry, with these values.
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "string_map_schema")]
    pub labels: BTreeMap<String, String>,
}

impl NodeSelector {
    /// Whether no condition is given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.hostname.is_none()
            && self.id.is_none()
            && self.role.is_none()
            && self.labels.is_empty()
    }

    /// Whether a node with these properties is selected.
    #[must_use]
    pub fn matches(
        &self,
        hostname: &str,
        id: &str,
        role: Role,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.hostname
            .as_deref()
            .is_none_or(|h| glob_match(h, hostname))
            && self
                .id
                .as_deref()
                .is_none_or(|want| id == want || (want.len() >= 12 && id.starts_with(want)))
            && self.role.is_none_or(|r| r == role)
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Shell-style match where `*` stands for any run of characters (and `?` for
/// one character); everything else matches itself.
#[must_use]
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Deserialize a mapping whose values may be strings, numbers or booleans
/// (like compose's labels and environment), keeping them as strings.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error;
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => String::new(),
                other => {
                    return Err(D::Error::custom(format!(
                        "value of `{k}` must be a string, number or boolean, got {}",
                        json_type(&other)
                    )));
                }
            };
            Ok((k, v))
        })
        .collect()
}

pub(crate) fn string_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
    })
}

/// A JSON value's type in words, for messages.
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Longest object name accepted.
pub const MAX_NAME_LEN: usize = 63;

/// Check a docker object name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`); with `dns`, the
/// stricter swarm service-name rule (`[a-zA-Z0-9]([-_]*[a-zA-Z0-9]+)*`: no dots,
/// no leading or trailing `-`/`_`) for names that become parts of service names.
pub fn check_name(name: &str, dns: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("`{name}` is longer than {MAX_NAME_LEN} characters"));
    }
    let first_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric());
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-') || (!dns && c == '.'));
    let last_ok = !dns || name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if first_ok && chars_ok && last_ok {
        return Ok(());
    }
    if dns {
        Err(format!(
            "`{name}` is not a valid name: use letters, digits, `-` and `_`, starting and ending \
             with a letter or digit (it becomes part of swarm service names)"
        ))
    } else {
        Err(format!(
            "`{name}` is not a valid name: use letters, digits, `_`, `.` and `-`, starting with a letter or digit"
        ))
    }
}

/// Label-key prefixes bosun keeps for its own bookkeeping.
pub const RESERVED_LABEL_PREFIX: &str = "dev.bosun.";

/// Check a label key: letters, digits, `.`, `-`, `_` and `/`, starting and
/// ending with a letter or digit; bosun's own prefix is reserved.
pub fn check_label_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("label key must not be empty".into());
    }
    let ok = key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.ends_with(|c: char| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
    if !ok {
        return Err(format!(
            "label key `{key}` is not valid: use letters, digits, `.`, `-`, `_` and `/`, starting and ending with a letter or digit"
        ));
    }
    if key.starts_with(RESERVED_LABEL_PREFIX) {
        return Err(format!(
            "label key `{key}` uses the prefix `{RESERVED_LABEL_PREFIX}`, which bosun keeps for its own labels"
        ));
    }
    Ok(())
}

/// The closest of `candidates` to `word`, if one is close enough to suggest.
#[must_use]
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    let word_n = norm(word);
    candidates
        .into_iter()
        .filter_map(|c| {
            if norm(c) == word_n {
                return Some((0, c));
            }
            let dist = strsim::damerau_levenshtein(&word_n, &norm(c));
            let limit = (word.len().max(c.len()) / 3).max(1);
            (dist <= limit).then_some((dist, c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_match("app_web*", "app_web_1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("sw?rm*", "swarm1"));
        assert!(!glob_match("app_web*", "app_api"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn names_follow_docker_rules() {
        assert!(check_name("traefik-public", true).is_ok());
        assert!(check_name("my.net", false).is_ok());
        assert!(check_name("my.net", true).is_err());
        assert!(check_name("", false).is_err());
        assert!(check_name("-x", false).is_err());
        assert!(check_name("x_", true).is_err());
        assert!(check_name("has space", false).is_err());
        assert!(check_name(&"a".repeat(64), false).is_err());
    }

    #[test]
    fn label_keys_are_checked_and_bosun_prefix_is_reserved() {
        assert!(check_label_key("com.example.rack").is_ok());
        assert!(check_label_key("rack").is_ok());
        assert!(check_label_key("dev.bosun.owner").is_err());
        assert!(check_label_key("bad key").is_err());
        assert!(check_label_key("a=b").is_err());
        assert!(check_label_key("").is_err());
    }

    #[test]
    fn suggestions_are_close_or_absent() {
        let c = ["composeFiles", "compose", "envFiles", "dependsOn"];
        assert_eq!(did_you_mean("composeFile", c), Some("composeFiles"));
        assert_eq!(did_you_mean("compose_files", c), Some("composeFiles"));
        assert_eq!(did_you_mean("depends_on", c), Some("dependsOn"));
        assert_eq!(did_you_mean("zzzzzz", c), None);
    }

    #[test]
    fn selectors_and_all_their_conditions() {
        let sel = NodeSelector {
            hostname: Some("swarm*".into()),
            role: Some(Role::Manager),
            ..NodeSelector::default()
        };
        let labels = BTreeMap::new();
        assert!(sel.matches("swarm1", "abc", Role::Manager, &labels));
        assert!(!sel.matches("swarm1", "abc", Role::Worker, &labels));
        assert!(!sel.matches("node1", "abc", Role::Manager, &labels));
        assert!(NodeSelector::default().is_empty());
    }
}

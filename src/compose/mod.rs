//! Compose files to swarm objects, with `docker stack deploy` parity.
//!
//! bosun must create exactly what `docker stack deploy` (docker CLI 28,
//! API 1.41) creates for the same compose files, so this module follows
//! docker/cli's `compose/loader`, `compose/template`, `compose/schema` and
//! `compose/convert` step by step rather than a compose-spec library:
//!
//! 1. **Parse** each file as YAML (anchors, aliases, `<<` merge keys; the
//!    first document only, like `yaml.Unmarshal`), typing scalars the way
//!    gopkg.in/yaml.v3 does ([`tree`]): plain `0400` is 256, `0:0` and `yes`
//!    are strings, plain `2001-12-14` is a `time.Time` that prints as
//!    `2001-12-14 00:00:00 +0000 UTC` in environment values and labels.
//! 2. **Check** forbidden keys (`extends`, `volumes_from`, `cpu_shares`…)
//!    and collect the "Ignoring unsupported options" / "Ignoring deprecated
//!    options" warnings from the raw document.
//! 3. **Interpolate** every string ([`interpolate`]) with the variables the
//!    caller passes, casting typed fields back (replicas, ports, booleans).
//! 4. **Validate** against docker's v3 schema rules ([`schema`]), every
//!    violation with file, line and key.
//! 5. **Load** the typed model ([`model`]): shell-split commands, short
//!    ports/volumes, durations, byte sizes, env files, absolute bind paths.
//! 6. **Merge** several files like `-c a.yml -c b.yml` ([`merge`]).
//! 7. **Convert** ([`convert()`]) to the request bodies of
//!    `/services/create`, `/networks/create`, `/secrets/create`,
//!    `/configs/create` ([`api`]): names `<stack>_<name>` (or `name:`),
//!    namespace and image labels, `<stack>_default`, aliases, sorting.
//!
//! # Variables
//!
//! [`LoadOptions::env`] is the whole interpolation environment; docker uses
//! the process environment. bosun builds it, first match winning, from the
//! Stack manifest's `env`, then its `envFiles` (in order), then the process
//! environment. Bare `KEY` lines in `env_file`s and empty `environment`
//! entries are filled from the same map, as docker does with its env.
//!
//! # Deliberate differences from docker
//!
//! [`convert()`] alone is docker-identical. [`bosunify`] then applies what
//! bosun adds on purpose, each listed in the README:
//!
//! * every object carries `dev.bosun.managed-by=bosun` and
//!   `dev.bosun.owner=Stack/<name>` (prune only touches these);
//! * every object carries `dev.bosun.spec-hash`, a SHA-256 (first 16 hex
//!   digits) of its docker-identical body, for drift detection;
//! * stack configs and secrets are named `<stack>_<name>-<hash8>` (hash of
//!   their content and templating), and the services' `ConfigName` /
//!   `SecretName` references follow, so a content change rolls the services
//!   instead of failing on an immutable object.
//!
//! Where docker's behaviour is a bug we keep the result but warn: a
//! required-variable error followed by another variable in the same string
//! is ignored by docker (the value becomes empty); bosun does the same and
//! adds a warning. Older `3.x` files are validated with the 3.13 rules (a
//! superset).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub mod api;
mod bosun;
mod convert;
pub mod interpolate;
mod load;
mod merge;
pub mod model;
pub mod parse;
pub mod schema;
pub mod tree;

pub use bosun::{LABEL_MANAGED_BY, LABEL_OWNER, LABEL_SPEC_HASH, bosunify, hashed_name, spec_hash};
pub use convert::{LABEL_IMAGE, LABEL_NAMESPACE, StackObjects, convert};
pub use model::Project;

use crate::source::Confinement;
use tree::{Tree, Val};

/// How to load compose files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Directory relative paths resolve against (docker: the first compose
    /// file's directory).
    pub working_dir: PathBuf,
    /// The interpolation environment (see the module docs for precedence).
    pub env: BTreeMap<String, String>,
    /// What `~` in bind sources expands to; `HOME` from `env` when `None`.
    pub home_dir: Option<PathBuf>,
}

impl LoadOptions {
    #[must_use]
    pub fn new(working_dir: impl Into<PathBuf>) -> Self {
        LoadOptions {
            working_dir: working_dir.into(),
            ..LoadOptions::default()
        }
    }

    /// Replace the whole interpolation environment.
    #[must_use]
    pub fn env(mut self, env: BTreeMap<String, String>) -> Self {
        self.env = env;
        self
    }

    /// Set one variable.
    #[must_use]
    pub fn var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    #[must_use]
    pub fn home_dir(mut self, home: impl Into<PathBuf>) -> Self {
        self.home_dir = Some(home.into());
        self
    }

    #[must_use]
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = dir.into();
        self
    }
}

/// One problem in the input: where, which key, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub file: String,
    /// 1-based; 0 when the problem has no position (an unreadable file).
    pub line: usize,
    pub column: usize,
    /// Key path such as `services.web.deploy.replicas` (may be empty).
    pub path: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// Invalid compose input: every problem found, in file and line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub issues: Vec<Issue>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl Error {
    fn one(file: &str, pos: crate::yaml::Pos, path: &str, message: impl Into<String>) -> Self {
        Error {
            issues: vec![Issue {
                file: file.to_string(),
                line: pos.line,
                column: pos.column,
                path: path.to_string(),
                message: message.into(),
            }],
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Service keys docker refuses outright.
const FORBIDDEN: &[(&str, &str)] = &[
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("extends", "Support for `extends` is not implemented yet."),
    ("mem_limit", "Set resource limits using deploy.resources"),
    (
        "memswap_limit",
        "Set resource limits using deploy.resources",
    ),
    (
        "volume_driver",
        "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.",
    ),
    (
        "volumes_from",
        "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.",
    ),
];

/// Service keys swarm ignores (docker prints "Ignoring unsupported options").
const UNSUPPORTED: &[&str] = &[
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
];

const DEPRECATED: &[(&str, &str)] = &[
    (
        "container_name",
        "Setting the container name is not supported.",
    ),
    (
        "expose",
        "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
    ),
];

const VERSIONS: &[&str] = &[
    "3.0", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12",
    "3.13",
];

/// Load and merge compose files (read from disk), like
/// `docker stack deploy -c a.yml -c b.yml`.
pub fn load(files: &[PathBuf], opts: &LoadOptions) -> Result<Project> {
    let mut sources = Vec::new();
    let mut issues = Vec::new();
    for f in files {
        match std::fs::read_to_string(f) {
            Ok(text) => sources.push((f.display().to_string(), text)),
            Err(e) => issues.push(Issue {
                file: f.display().to_string(),
                line: 0,
                column: 0,
                path: String::new(),
                message: format!("cannot read compose file: {e}"),
            }),
        }
    }
    if !issues.is_empty() {
        return Err(Error { issues });
    }
    load_sources(&sources, opts)
}

/// Load one compose file given as text; `name` is used in messages.
pub fn load_str(name: &str, text: &str, opts: &LoadOptions) -> Result<Project> {
    load_sources(&[(name.to_string(), text.to_string())], opts)
}

/// Load several (name, text) sources and merge them in order.
pub fn load_sources(sources: &[(String, String)], opts: &LoadOptions) -> Result<Project> {
    load_sources_in(sources, opts, None)
}

/// [`load_sources`], reading `env_file`s and (at [`convert()`]) config and
/// secret `file`s only when they resolve inside `confine`; a `file` that
/// resolves elsewhere is an error at its line.
pub fn load_sources_confined(
    sources: &[(String, String)],
    opts: &LoadOptions,
    confine: &Confinement,
) -> Result<Project> {
    load_sources_in(sources, opts, Some(confine))
}

fn load_sources_in(
    sources: &[(String, String)],
    opts: &LoadOptions,
    confine: Option<&Confinement>,
) -> Result<Project> {
    let mut nodes = Vec::new();
    let mut issues = Vec::new();
    for (name, text) in sources {
        match parse_document(name, text) {
            Ok(node) => nodes.push((name.clone(), node)),
            Err(e) => issues.extend(e.issues),
        }
    }
    if !issues.is_empty() {
        return Err(Error { issues });
    }
    load_nodes_in(&nodes, opts, confine)
}

/// Load several already-parsed (name, document) sources and merge them in
/// order. Positions are those of the nodes, so an inline compose document
/// inside a manifest reports the manifest's own lines.
pub fn load_nodes(sources: &[(String, crate::yaml::Node)], opts: &LoadOptions) -> Result<Project> {
    load_nodes_in(sources, opts, None)
}

/// [`load_nodes`] with reads confined like [`load_sources_confined`].
pub fn load_nodes_confined(
    sources: &[(String, crate::yaml::Node)],
    opts: &LoadOptions,
    confine: &Confinement,
) -> Result<Project> {
    load_nodes_in(sources, opts, Some(confine))
}

fn load_nodes_in(
    sources: &[(String, crate::yaml::Node)],
    opts: &LoadOptions,
    confine: Option<&Confinement>,
) -> Result<Project> {
    if sources.is_empty() {
        return Err(Error::one(
            "",
            crate::yaml::Pos::default(),
            "",
            "No files specified",
        ));
    }
    let mut issues = Vec::new();
    let mut warnings = Vec::new();
    let mut unsupported: BTreeSet<&str> = BTreeSet::new();
    let mut deprecated: BTreeMap<&str, &str> = BTreeMap::new();
    let mut projects = Vec::new();
    let mut first_version: Option<String> = None;
    let working_dir = opts.working_dir.display().to_string();
    let home = opts.home_dir.as_ref().map(|h| h.display().to_string());
    for (name, node) in sources {
        let mut doc = match document_tree(name, node) {
            Ok(d) => d,
            Err(e) => {
                issues.extend(e.issues);
                continue;
            }
        };
        let version = match doc.get("version").and_then(|v| v.val.go_string()) {
            Some(v) if !v.is_empty() && v != "3" => v,
            _ => "3.13".to_string(),
        };
        let version_pos = doc
            .entries()
            .and_then(|e| e.iter().find(|e| e.key == "version"))
            .map_or(doc.pos, |e| e.key_pos);
        if let Some(first) = &first_version {
            if *first != version {
                issues.push(issue(
                    name,
                    version_pos,
                    "version",
                    format!("version mismatched between two composefiles : {first} and {version}"),
                ));
                continue;
            }
        } else {
            first_version = Some(version.clone());
        }
        if !VERSIONS.contains(&version.as_str()) {
            issues.push(issue(
                name,
                version_pos,
                "version",
                format!("unsupported Compose file version: {version}"),
            ));
            continue;
        }
        // Forbidden, unsupported and deprecated keys, from the raw document.
        let mut forbidden = Vec::new();
        if let Some(services) = doc.get("services").and_then(Tree::entries) {
            for svc in services {
                for e in svc.value.entries().unwrap_or_default() {
                    if let Some((k, why)) = FORBIDDEN.iter().find(|(k, _)| *k == e.key) {
                        forbidden.push((
                            e.key_pos,
                            format!("services.{}.{k}", svc.key),
                            format!("{k}: {why}"),
                        ));
                    }
                    if let Some(k) = UNSUPPORTED.iter().find(|k| **k == e.key) {
                        unsupported.insert(k);
                    }
                    if let Some((k, why)) = DEPRECATED.iter().find(|(k, _)| *k == e.key) {
                        deprecated.insert(k, why);
                    }
                }
            }
        }
        if !forbidden.is_empty() {
            for (pos, path, msg) in forbidden {
                issues.push(issue(
                    name,
                    pos,
                    &path,
                    format!("Compose file contains unsupported options: {msg}"),
                ));
            }
            continue;
        }
        let mut problems = Vec::new();
        interpolate::interpolate_tree(&mut doc, &opts.env, &mut problems, &mut warnings);
        if !problems.is_empty() {
            for p in problems {
                issues.push(issue(name, p.pos, &p.path.join("."), p.message));
            }
            continue;
        }
        let violations = schema::validate(&doc);
        if !violations.is_empty() {
            for v in violations {
                issues.push(issue(name, v.pos, &v.path, v.message));
            }
            continue;
        }
        let mut ld = load::Ld {
            file: name,
            version: &version,
            working_dir: &working_dir,
            home: home.as_deref(),
            env: &opts.env,
            confine,
            issues: Vec::new(),
            warnings: Vec::new(),
        };
        let project = load::load_file(&mut ld, &doc);
        issues.extend(ld.issues);
        warnings.extend(ld.warnings);
        projects.push(project);
    }
    if !issues.is_empty() {
        issues.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        return Err(Error { issues });
    }
    let mut iter = projects.into_iter();
    let Some(mut project) = iter.next() else {
        return Err(Error::one(
            "",
            crate::yaml::Pos::default(),
            "",
            "No files specified",
        ));
    };
    for over in iter {
        merge::merge(&mut project, over);
    }
    project.confinement = confine.cloned();
    for s in &project.services {
        if s.image.is_empty() {
            issues.push(Issue {
                file: s.origin.file.clone(),
                line: s.origin.pos.line,
                column: s.origin.pos.column,
                path: format!("services.{}.image", s.name),
                message: format!(
                    "invalid image reference for service {}: no image specified",
                    s.name
                ),
            });
        } else if let Err(e) = parse::normalize_image(&s.image) {
            issues.push(Issue {
                file: s.origin.file.clone(),
                line: s.origin.pos.line,
                column: s.origin.pos.column,
                path: format!("services.{}.image", s.name),
                message: format!("invalid image reference for service {}: {e}", s.name),
            });
        }
    }
    if !issues.is_empty() {
        return Err(Error { issues });
    }
    if !unsupported.is_empty() {
        warnings.push(format!(
            "Ignoring unsupported options: {}",
            unsupported.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if !deprecated.is_empty() {
        let lines: Vec<String> = deprecated
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        warnings.push(format!(
            "Ignoring deprecated options:\n\n{}",
            lines.join("\n\n")
        ));
    }
    project.warnings = warnings;
    Ok(project)
}

fn issue(file: &str, pos: crate::yaml::Pos, path: &str, message: String) -> Issue {
    Issue {
        file: file.to_string(),
        line: pos.line,
        column: pos.column,
        path: path.to_string(),
        message,
    }
}

/// YAML text to the typed tree of its first document, merge keys applied.
fn parse_document(name: &str, text: &str) -> Result<crate::yaml::Node> {
    let docs = crate::yaml::parse(text).map_err(|e| Error::one(name, e.pos, "", e.message))?;
    docs.into_iter().next().ok_or_else(|| {
        Error::one(
            name,
            crate::yaml::Pos::default(),
            "",
            "top-level object must be a mapping",
        )
    })
}

fn document_tree(name: &str, node: &crate::yaml::Node) -> Result<Tree> {
    let mut node = node.clone();
    node.apply_merge()
        .map_err(|e| Error::one(name, e.pos, "", e.message))?;
    let tree = Tree::from_node(&node);
    if !matches!(tree.val, Val::Map(_)) {
        return Err(Error::one(
            name,
            tree.pos,
            "",
            "top-level object must be a mapping",
        ));
    }
    Ok(tree)
}

/// The directory docker uses as working dir for a compose file path.
#[must_use]
pub fn default_working_dir(file: &Path) -> PathBuf {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    abs.parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

#[cfg(test)]
mod tests;

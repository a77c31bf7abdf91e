//! `Stack`: compose files deployed like `docker stack deploy`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{string_map, string_map_schema};
use super::precheck;
use super::validate::{self, Cx};
use super::{Diagnostic, Duration, Kind, Object, ObjectRef, Rules, Spec, Stack, check_name};
use crate::compose;
use crate::source::{Confinement, Escape};
use crate::yaml::Path;

/// A stack: one or more compose files (or inline compose), deployed under the
/// stack's name exactly as `docker stack deploy` would, plus bosun's
/// ownership labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StackSpec {
    /// Compose files, relative to this manifest (or absolute), merged in
    /// order like `docker stack deploy -c a.yml -c b.yml`. Exactly one of
    /// `composeFiles` and `compose` is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose_files: Vec<PathBuf>,
    /// An inline compose file (a mapping with `services`, …) instead of
    /// `composeFiles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<BTreeMap<String, serde_json::Value>>,
    /// Variables for `${VAR}` interpolation in the compose files; they win
    /// over `envFiles`. Numbers and booleans are taken as strings.
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "string_map_schema")]
    pub env: BTreeMap<String, String>,
    /// Env files (`KEY=value` lines, `#` comments) for interpolation, relative
    /// to this manifest; later files win over earlier ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<PathBuf>,
    /// Objects deployed (and converged, with `wait`) before this stack:
    /// `Network/<name>` or `Stack/<name>`. Networks the compose files use as
    /// external are implicit dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Remove services, configs and secrets of this stack (that bosun owns)
    /// when they disappear from the compose files. Default true.
    #[serde(default = "yes")]
    pub prune: bool,
    /// Wait until the stack's services are converged and healthy before
    /// dependents are deployed; a rollback counts as failure. Default enabled
    /// with a 5m timeout.
    #[serde(default)]
    pub wait: Wait,
    /// When to resolve image tags to digests through the registry
    /// (`docker stack deploy --resolve-image`). Default `changed`: only when
    /// a service's image changed, so periodic resyncs do not query the
    /// registry or roll services when a tag moves.
    #[serde(default)]
    pub resolve_image: ResolveImage,
    /// The stack must survive the loss of any one node: bosun warns about
    /// replicated services with fewer than 2 replicas or without a spread
    /// over nodes. Default false.
    #[serde(default)]
    pub ha: bool,
    /// Stop reconciling this stack: nothing is created, updated or pruned,
    /// and what runs keeps running. Default false.
    #[serde(default)]
    pub suspend: bool,
}

/// Health gating of a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Wait {
    /// Wait for convergence and health. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Give up (and report the stack failed) after this long. Default `5m`.
    #[serde(default = "five_minutes")]
    pub timeout: Duration,
}

impl Default for Wait {
    fn default() -> Self {
        Wait {
            enabled: true,
            timeout: five_minutes(),
        }
    }
}

/// When image tags are resolved to digests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResolveImage {
    /// Never query the registry; services run the tag as written.
    Never,
    /// Query the registry only for services whose image changed.
    #[default]
    Changed,
    /// Query the registry on every deploy (docker's CLI default).
    Always,
}

fn yes() -> bool {
    true
}

fn five_minutes() -> Duration {
    Duration::from_mins(5)
}

impl StackSpec {
    /// The `dependsOn` entries that parse.
    #[must_use]
    pub fn dependencies(&self) -> Vec<ObjectRef> {
        self.depends_on
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect()
    }
}

impl Spec for StackSpec {
    const KIND: Kind = Kind::Stack;
    const NAME: &'static str = "Stack";
    const FILE_STEM: &'static str = "stack";
    const DESCRIPTION: &'static str = "A stack deployed like `docker stack deploy`: compose files merged in order (or inline compose), interpolated with env and env files, ordered by dependsOn.";
}

impl Rules for StackSpec {
    fn check(obj: &Object<Self>, cx: &mut Cx) {
        let spec = &obj.spec;
        if let Err(e) = check_name(obj.name(), true) {
            cx.error(obj, "metadata.name", e);
        }
        match (spec.compose_files.is_empty(), &spec.compose) {
            (false, Some(_)) => cx.error(
                obj,
                "spec.compose",
                "give either `composeFiles` or `compose`, not both",
            ),
            (true, None) => cx.error(
                obj,
                "spec",
                "needs `composeFiles` (a list of files) or an inline `compose`",
            ),
            (true, Some(compose)) => validate::check_compose_inline(obj, compose, cx),
            (false, None) => {}
        }
        for (i, file) in spec.compose_files.iter().enumerate() {
            let path = Path::parse("spec.composeFiles").index(i);
            if let Some(found) = cx.referenced_file(obj, path, file, "compose file") {
                validate::check_compose_file(&found.0, &found.1, cx);
            }
        }
        for key in spec.env.keys() {
            if !validate::is_env_name(key) {
                cx.error(
                obj,
                Path::parse("spec.env").key(key),
                format!("`{key}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"),
            );
            }
        }
        for (i, file) in spec.env_files.iter().enumerate() {
            let path = Path::parse("spec.envFiles").index(i);
            if let Some(found) = cx.referenced_file(obj, path, file, "env file") {
                validate::check_env_file(&found.0, &found.1, cx);
            }
        }
        for (i, dep) in spec.depends_on.iter().enumerate() {
            let path = Path::parse("spec.dependsOn").index(i);
            match dep.parse::<ObjectRef>() {
                Err(e) => cx.error(obj, path, e),
                Ok(r) if !matches!(r.kind, Kind::Network | Kind::Stack) => cx.error(
                    obj,
                    path,
                    format!("`{dep}`: a stack can depend on a Network or a Stack only"),
                ),
                Ok(r) if r.kind == Kind::Stack && r.name == obj.name() => {
                    cx.error(
                        obj,
                        path,
                        format!("`{dep}`: a stack cannot depend on itself"),
                    );
                }
                Ok(_) => {}
            }
        }
        if spec.wait.enabled && spec.wait.timeout.get().is_zero() {
            cx.error(
                obj,
                "spec.wait.timeout",
                "must be longer than 0 when waiting is enabled",
            );
        }
    }
}

/// How a path is shown in messages: relative to the current directory when
/// it lies below it, else as given.
fn shown(path: &std::path::Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            path.strip_prefix(cwd)
                .ok()
                .map(std::path::Path::to_path_buf)
        })
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// `file` resolved inside `confine`, or why not (for messages).
fn confined(confine: &Confinement, file: &std::path::Path) -> Result<PathBuf, String> {
    confine.check(file).map_err(|e| match e {
        Escape::Outside { .. } => format!("\"{}\" {e}", file.display()),
        Escape::Unresolved { .. } => e.to_string(),
    })
}

impl Stack {
    /// The interpolation environment of this stack's compose files, first
    /// match winning: the manifest's `env`, then its `envFiles` (a later file
    /// wins over an earlier one), then `process` (bosun's own environment).
    /// Paths must be resolved (as [`super::load`] leaves them); each file is
    /// read only when it resolves inside `confine`.
    pub fn compose_env(
        &self,
        process: &BTreeMap<String, String>,
        confine: &Confinement,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut env = process.clone();
        for file in &self.spec.env_files {
            let text = confined(confine, file)
                .and_then(|real| std::fs::read_to_string(real).map_err(|e| e.to_string()))
                .map_err(|e| format!("{}: cannot read env file: {e}", shown(file)))?;
            for (_, key, value) in validate::env_lines(&text) {
                if let Some(value) = value {
                    env.insert(key.to_string(), value.to_string());
                }
            }
        }
        env.extend(self.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(env)
    }

    /// Load this stack's compose (its files merged in order, or the inline
    /// `compose`) exactly as `docker stack deploy` would, with
    /// [`Stack::compose_env`]. Relative paths in compose files resolve
    /// against the first file's directory, as docker does; inline compose
    /// resolves against the manifest's directory. Every file (compose files,
    /// env files, their `env_file`s and config and secret `file`s) is read
    /// only when it resolves inside `confine`.
    pub fn load_compose(
        &self,
        process: &BTreeMap<String, String>,
        confine: &Confinement,
    ) -> Result<compose::Project, compose::Error> {
        let env = self
            .compose_env(process, confine)
            .map_err(|message| compose::Error {
                issues: vec![compose::Issue {
                    file: self.source.display.clone(),
                    line: 0,
                    column: 0,
                    path: String::new(),
                    message,
                }],
            })?;
        let home = env.get("HOME").map(PathBuf::from);
        if let Some(first) = self.spec.compose_files.first() {
            let mut opts = compose::LoadOptions::new(compose::default_working_dir(first)).env(env);
            opts.home_dir = home;
            let mut sources = Vec::new();
            let mut issues = Vec::new();
            for file in &self.spec.compose_files {
                let text = confined(confine, file)
                    .and_then(|real| std::fs::read_to_string(real).map_err(|e| e.to_string()));
                match text {
                    Ok(text) => sources.push((shown(file), text)),
                    Err(e) => issues.push(compose::Issue {
                        file: shown(file),
                        line: 0,
                        column: 0,
                        path: String::new(),
                        message: format!("cannot read compose file: {e}"),
                    }),
                }
            }
            if !issues.is_empty() {
                return Err(compose::Error { issues });
            }
            return compose::load_sources_confined(&sources, &opts, confine);
        }
        let dir = self
            .source
            .file
            .parent()
            .map_or_else(|| PathBuf::from("/"), std::path::Path::to_path_buf);
        let mut opts = compose::LoadOptions::new(dir).env(env);
        opts.home_dir = home;
        let node = self
            .node
            .lookup(&Path::parse("spec.compose").0)
            .cloned()
            .unwrap_or_else(|| crate::yaml::Node::scalar("", self.source.pos));
        compose::load_nodes_confined(&[(self.source.display.clone(), node)], &opts, confine)
    }

    /// Load and convert this stack's compose into the swarm objects `docker
    /// stack deploy` would create, namespaced by the stack's name.
    pub fn convert(
        &self,
        process: &BTreeMap<String, String>,
        confine: &Confinement,
    ) -> Result<compose::StackObjects, compose::Error> {
        let project = self.load_compose(process, confine)?;
        compose::convert(&project, self.name())
    }
}

/// Load and convert a stack's compose as a deploy would, turning every
/// compose problem into a diagnostic and docker's warnings (unset variables,
/// ignored options) into warnings. Returns the converted objects when it
/// converts.
pub(crate) fn check_compose(
    obj: &Stack,
    ports: &mut Vec<precheck::Published>,
    cx: &mut Cx,
) -> Option<compose::StackObjects> {
    let id = obj.id().to_string();
    let report = |cx: &mut Cx, err: compose::Error| {
        for issue in err.issues {
            let mut d = Diagnostic::error(issue.file, issue.message).object(id.clone());
            if issue.line > 0 {
                d = d.at(crate::yaml::Pos {
                    line: issue.line,
                    column: issue.column,
                });
            }
            cx.push(d);
        }
    };
    let project = match obj.load_compose(cx.env_map(), cx.confine) {
        Ok(p) => p,
        Err(e) => {
            report(cx, e);
            return None;
        }
    };
    for w in project.warnings() {
        cx.push(Diagnostic::warning(obj.source.display.clone(), w.clone()).object(id.clone()));
    }
    match compose::convert(&project, obj.name()) {
        Ok(objects) => {
            let sources = precheck::Sources::new(obj, obj.compose_documents());
            precheck::stack(obj, &project, &objects, &sources, ports, cx);
            Some(objects)
        }
        Err(e) => {
            report(cx, e);
            None
        }
    }
}

impl Stack {
    /// This stack's compose documents as written (merge keys applied), each
    /// with the file diagnostics name and its path in that file: the
    /// compose files (an unreadable one is left out), or the manifest's
    /// inline `spec.compose`.
    fn compose_documents(&self) -> Vec<(String, crate::yaml::Node, Path)> {
        if self.spec.compose_files.is_empty() {
            let path = Path::parse("spec.compose");
            return self
                .node
                .lookup(&path.0)
                .map(|node| (self.source.display.clone(), node.clone(), path))
                .into_iter()
                .collect();
        }
        self.spec
            .compose_files
            .iter()
            .filter_map(|file| {
                let text = std::fs::read_to_string(file).ok()?;
                let mut doc = crate::yaml::parse(&text).ok()?.into_iter().next()?;
                doc.apply_merge().ok()?;
                Some((shown(file), doc, Path::root()))
            })
            .collect()
    }
}

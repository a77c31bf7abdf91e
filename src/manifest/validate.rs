//! Rules: the context per-kind checks report into, referenced files, and the
//! checks across the whole set (duplicates, `dependsOn`, cycles, unique
//! router ids, one ingress network, one cluster policy).

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path as FsPath, PathBuf};

use super::{
    Diagnostic, ForKind, Kind, Network, NodeLabels, Object, ObjectRef, Rules, Set, Severity, Spec,
    Stack, VipPolicy, did_you_mean,
};
use crate::source::{Confinement, Escape};
use crate::yaml::{self, Path};

/// Where checks report to, and what they may look up.
pub(crate) struct Cx<'a> {
    pub(crate) out: Vec<Diagnostic>,
    env: &'a BTreeMap<String, String>,
    /// Where referenced files may be read from.
    pub(crate) confine: &'a Confinement,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(env: &'a BTreeMap<String, String>, confine: &'a Confinement) -> Self {
        Cx {
            out: Vec::new(),
            env,
            confine,
        }
    }

    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.out.push(d);
    }

    pub(crate) fn error<S: Spec>(
        &mut self,
        obj: &Object<S>,
        path: impl Into<Path>,
        message: impl Into<String>,
    ) {
        self.out
            .push(obj.diagnostic(Severity::Error, path, message));
    }

    pub(crate) fn warning<S: Spec>(
        &mut self,
        obj: &Object<S>,
        path: impl Into<Path>,
        message: impl Into<String>,
    ) {
        self.out
            .push(obj.diagnostic(Severity::Warning, path, message));
    }

    /// An environment variable of the bosun process.
    pub(crate) fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    /// The whole environment of the bosun process (compose interpolation).
    pub(crate) fn env_map(&self) -> &BTreeMap<String, String> {
        self.env
    }

    /// Resolve a file named in a manifest (relative to the manifest, or
    /// absolute) and check that it exists inside the confinement. Returns
    /// its resolved path (symlinks followed: read this one) and the name
    /// diagnostics use for it.
    pub(crate) fn referenced_file<S: Spec>(
        &mut self,
        obj: &Object<S>,
        path: Path,
        file: &FsPath,
        what: &str,
    ) -> Option<(PathBuf, String)> {
        if file.as_os_str().is_empty() {
            self.error(obj, path, format!("{what} path must not be empty"));
            return None;
        }
        let (abs, display) = resolve(&obj.source, file);
        let why = match self.confine.check(&abs) {
            Ok(real) if real.is_file() => return Some((real, display)),
            Ok(_) => "is a directory",
            Err(e @ Escape::Outside { .. }) => {
                self.error(obj, path, format!("\"{}\" {e}", file.display()));
                return None;
            }
            Err(Escape::Unresolved { .. }) => "not found",
        };
        self.error(
            obj,
            path,
            format!("{what} `{display}` {why} (resolved to {})", abs.display()),
        );
        None
    }
}

/// The absolute path and the display name of `file` named in a manifest.
pub(crate) fn resolve(source: &super::Source, file: &FsPath) -> (PathBuf, String) {
    if file.is_absolute() {
        return (normalize(file), file.display().to_string());
    }
    let abs_dir = source.file.parent().unwrap_or(FsPath::new("/"));
    let shown_dir = FsPath::new(&source.display)
        .parent()
        .unwrap_or(FsPath::new(""));
    (
        normalize(&abs_dir.join(file)),
        normalize(&shown_dir.join(file)).display().to_string(),
    )
}

/// Remove `.` and resolve `..` lexically (without touching the filesystem).
pub(crate) fn normalize(path: &FsPath) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                let last = out.components().next_back();
                match last {
                    Some(Component::Normal(_)) => {
                        out.pop();
                    }
                    Some(Component::RootDir | Component::Prefix(_)) => {}
                    _ => out.push(".."),
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Whether `name` is a valid environment variable name.
pub(crate) fn is_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Check one compose file a `Stack` references.
///
/// This is the call site of the compose model: today it only requires a
/// single YAML document that is a mapping (with `<<` merges that resolve);
/// when `compose::load` lands, call it here and turn its errors into
/// diagnostics of `display` (they carry their own line and field).
pub(crate) fn check_compose_file(abs: &FsPath, display: &str, cx: &mut Cx) {
    let text = match std::fs::read(abs) {
        Err(e) => {
            cx.push(Diagnostic::error(
                display,
                format!("cannot read compose file: {e}"),
            ));
            return;
        }
        Ok(bytes) => {
            let Ok(text) = String::from_utf8(bytes) else {
                cx.push(Diagnostic::error(
                    display,
                    "compose file is not valid UTF-8",
                ));
                return;
            };
            text
        }
    };
    let docs = match yaml::parse(&text) {
        Ok(docs) => docs,
        Err(e) => {
            cx.push(
                Diagnostic::error(
                    display,
                    format!("invalid YAML in compose file: {}", e.message),
                )
                .at(e.pos),
            );
            return;
        }
    };
    let mut docs = docs.into_iter().filter(|d| !d.is_null());
    let Some(mut doc) = docs.next() else {
        cx.push(Diagnostic::error(display, "compose file is empty"));
        return;
    };
    if let Some(extra) = docs.next() {
        cx.push(
            Diagnostic::error(
                display,
                "a compose file holds one YAML document; found another here",
            )
            .at(extra.pos),
        );
    }
    if doc.as_map().is_none() {
        cx.push(
            Diagnostic::error(
                display,
                "a compose file must be a mapping (with `services:`)",
            )
            .at(doc.pos),
        );
        return;
    }
    if let Err(e) = doc.apply_merge() {
        cx.push(Diagnostic::error(display, e.message).at(e.pos));
    }
}

/// Check an inline `compose:` of a `Stack` (the same call site as
/// [`check_compose_file`], for compose written in the manifest).
pub(crate) fn check_compose_inline(
    obj: &Stack,
    compose: &BTreeMap<String, serde_json::Value>,
    cx: &mut Cx,
) {
    if compose.is_empty() {
        cx.error(obj, "spec.compose", "inline compose is empty");
    }
}

/// Check an env file: `KEY=value` lines (or a bare `KEY`), `#` comments,
/// optional `export`. Never echoes a line: values may be secrets.
pub(crate) fn check_env_file(abs: &FsPath, display: &str, cx: &mut Cx) {
    let text = match std::fs::read(abs) {
        Err(e) => {
            cx.push(Diagnostic::error(
                display,
                format!("cannot read env file: {e}"),
            ));
            return;
        }
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
    };
    for (line, key, _) in env_lines(&text) {
        if !is_env_name(key) {
            cx.push(
                Diagnostic::error(
                    display,
                    "expected `KEY=value` with KEY made of letters, digits and `_` (not starting with a digit)",
                )
                .at(yaml::Pos { line, column: 1 }),
            );
        }
    }
}

/// The `KEY=value` lines of an env file: 1-based line number, key, value.
/// Blank lines and `#` comments are skipped, an `export ` prefix is allowed,
/// a value wrapped in matching single or double quotes loses them, and a
/// bare `KEY` has no value.
pub(crate) fn env_lines(text: &str) -> Vec<(usize, &str, Option<&str>)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim_end(), Some(unquote(v.trim()))),
            None => (line, None),
        };
        out.push((i + 1, key, value));
    }
    out
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// Two objects of a kind with one name.
struct Duplicates<'a, 'c, 'x>(&'a Set, &'c mut Cx<'x>);

impl ForKind for Duplicates<'_, '_, '_> {
    type Out = ();
    fn call<S: Rules>(self) {
        duplicates(S::in_set(self.0), self.1);
    }
}

/// The rules that span manifests.
pub(crate) fn check_set(set: &Set, cx: &mut Cx) {
    for kind in Kind::ALL {
        kind.with(Duplicates(set, cx));
    }
    if let Some((first, rest)) = set.cluster_policies.split_first() {
        for other in rest {
            cx.error(
                other,
                "metadata.name",
                format!(
                    "only one ClusterPolicy is allowed; {} is already defined at {}",
                    first.id(),
                    first.place(&Path::parse("metadata.name"))
                ),
            );
        }
    }
    networks(&set.networks, cx);
    dependencies(set, cx);
    cycles(&set.stacks, cx);
    vips(&set.vip_policies, cx);
    node_label_conflicts(&set.node_labels, cx);
    for policy in &set.placement_policies {
        for (i, stack) in policy.spec.selector.stacks.iter().enumerate() {
            if !stack.is_empty() && !set.stacks.iter().any(|s| s.name() == stack) {
                cx.warning(
                    policy,
                    Path::parse("spec.selector.stacks").index(i),
                    format!("no Stack named `{stack}` in this folder; the policy applies only if such a stack exists in the swarm"),
                );
            }
        }
    }
}

fn duplicates<S: Spec>(objects: &[Object<S>], cx: &mut Cx) {
    let mut seen: HashMap<&str, &Object<S>> = HashMap::new();
    for obj in objects {
        if let Some(first) = seen.get(obj.name()) {
            cx.error(
                obj,
                "metadata.name",
                format!(
                    "duplicate name: {} is also defined at {}",
                    obj.id(),
                    first.place(&Path::parse("metadata.name"))
                ),
            );
        } else {
            seen.insert(obj.name(), obj);
        }
    }
}

fn networks(networks: &[Network], cx: &mut Cx) {
    let mut ingress: Option<&Network> = None;
    for net in networks.iter().filter(|n| n.spec.ingress) {
        match ingress {
            None => ingress = Some(net),
            Some(first) => cx.error(
                net,
                "spec.ingress",
                format!(
                    "a swarm has one ingress network; {} at {} is already ingress",
                    first.id(),
                    first.place(&Path::parse("spec.ingress"))
                ),
            ),
        }
    }
    for (i, net) in networks.iter().enumerate() {
        for (ci, subnet) in net.spec.subnets() {
            for other in &networks[..i] {
                if other.name() == net.name() {
                    continue;
                }
                for (oi, o) in other.spec.subnets() {
                    if o.overlaps(&subnet) {
                        let opath = Path::parse("spec.ipam.config").index(oi).key("subnet");
                        cx.error(
                            net,
                            Path::parse("spec.ipam.config").index(ci).key("subnet"),
                            format!(
                                "subnet {subnet} overlaps subnet {o} of {} at {}",
                                other.id(),
                                other.place(&opath)
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn dependencies(set: &Set, cx: &mut Cx) {
    for stack in &set.stacks {
        for (i, dep) in stack.spec.depends_on.iter().enumerate() {
            let Ok(r) = dep.parse::<ObjectRef>() else {
                continue;
            };
            let names: Vec<&str> = match r.kind {
                Kind::Network => set.networks.iter().map(Object::name).collect(),
                Kind::Stack => set.stacks.iter().map(Object::name).collect(),
                _ => continue,
            };
            if !names.contains(&r.name.as_str()) {
                let hint = did_you_mean(&r.name, names.iter().copied())
                    .map(|n| format!("; did you mean `{}/{n}`?", r.kind))
                    .unwrap_or_default();
                cx.error(
                    stack,
                    Path::parse("spec.dependsOn").index(i),
                    format!(
                        "dangling dependency `{dep}`: no {} named `{}` in this folder{hint}",
                        r.kind, r.name
                    ),
                );
            }
        }
    }
}

/// Edges between stacks by index: `edges[a]` lists `(b, i)` where
/// `spec.dependsOn[i]` of stack `a` names stack `b`.
fn stack_edges(stacks: &[Stack]) -> Vec<Vec<(usize, usize)>> {
    let index: HashMap<&str, usize> = stacks
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name(), i))
        .collect();
    stacks
        .iter()
        .enumerate()
        .map(|(a, s)| {
            s.spec
                .depends_on
                .iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    let r: ObjectRef = d.parse().ok()?;
                    let b = *index.get(r.name.as_str())?;
                    (r.kind == Kind::Stack && b != a).then_some((b, i))
                })
                .collect()
        })
        .collect()
}

fn cycles(stacks: &[Stack], cx: &mut Cx) {
    let edges = stack_edges(stacks);
    let mut color = vec![0u8; stacks.len()];
    let mut found: Vec<Vec<usize>> = Vec::new();
    for start in 0..stacks.len() {
        if color[start] != 0 {
            continue;
        }
        color[start] = 1;
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(top) = path.last_mut() {
            let (v, next) = *top;
            if let Some(&(w, _)) = edges[v].get(next) {
                top.1 += 1;
                match color[w] {
                    0 => {
                        color[w] = 1;
                        path.push((w, 0));
                    }
                    1 => {
                        if let Some(at) = path.iter().position(|(x, _)| *x == w) {
                            let mut cycle: Vec<usize> =
                                path[at..].iter().map(|(x, _)| *x).collect();
                            if let Some(min_at) = cycle
                                .iter()
                                .enumerate()
                                .min_by_key(|(_, x)| **x)
                                .map(|(i, _)| i)
                            {
                                cycle.rotate_left(min_at);
                            }
                            if !found.contains(&cycle) {
                                found.push(cycle);
                            }
                        }
                    }
                    _ => {}
                }
            } else {
                color[v] = 2;
                path.pop();
            }
        }
    }
    for cycle in found {
        let mut names: Vec<String> = cycle.iter().map(|i| stacks[*i].id().to_string()).collect();
        names.push(stacks[cycle[0]].id().to_string());
        let first = &stacks[cycle[0]];
        let second = cycle.get(1).copied().unwrap_or(cycle[0]);
        let entry = edges[cycle[0]]
            .iter()
            .find(|(b, _)| *b == second)
            .map_or(0, |(_, i)| *i);
        cx.error(
            first,
            Path::parse("spec.dependsOn").index(entry),
            format!("dependency cycle: {}", names.join(" -> ")),
        );
    }
}

/// Stacks after their dependencies, otherwise in name order.
pub(crate) fn stack_order(stacks: &[Stack]) -> Vec<&Stack> {
    let edges = stack_edges(stacks);
    let mut by_name: Vec<usize> = (0..stacks.len()).collect();
    by_name.sort_by(|a, b| stacks[*a].name().cmp(stacks[*b].name()));
    let mut done = vec![false; stacks.len()];
    let mut order = Vec::with_capacity(stacks.len());
    while order.len() < stacks.len() {
        let ready = by_name
            .iter()
            .copied()
            .find(|&i| !done[i] && edges[i].iter().all(|(d, _)| done[*d]))
            // A cycle (only in unvalidated input): take the next by name.
            .or_else(|| by_name.iter().copied().find(|&i| !done[i]));
        let Some(i) = ready else { break };
        done[i] = true;
        order.push(&stacks[i]);
    }
    order
}

fn vips(vips: &[VipPolicy], cx: &mut Cx) {
    for (i, vip) in vips.iter().enumerate() {
        for other in &vips[..i] {
            if other.name() == vip.name() {
                continue;
            }
            if other.spec.interface == vip.spec.interface
                && other.spec.virtual_router_id == vip.spec.virtual_router_id
            {
                cx.error(
                    vip,
                    "spec.virtualRouterId",
                    format!(
                        "virtual router id {} on interface {} is already used by {} at {}",
                        vip.spec.virtual_router_id,
                        vip.spec.interface,
                        other.id(),
                        other.place(&Path::parse("spec.virtualRouterId"))
                    ),
                );
            }
            if let (Some(a), Some(b)) = (vip.spec.cidr(), other.spec.cidr())
                && a.addr == b.addr
            {
                cx.error(
                    vip,
                    "spec.address",
                    format!(
                        "address {} is also the address of {} at {}",
                        a.addr,
                        other.id(),
                        other.place(&Path::parse("spec.address"))
                    ),
                );
            }
        }
    }
}

fn node_label_conflicts(objects: &[NodeLabels], cx: &mut Cx) {
    let mut seen: Vec<(&NodeLabels, usize)> = Vec::new();
    for obj in objects {
        for (i, rule) in obj.spec.rules.iter().enumerate() {
            for (other, j) in &seen {
                let theirs = &other.spec.rules[*j];
                if theirs.selector != rule.selector {
                    continue;
                }
                for (key, value) in &rule.labels {
                    if let Some(v) = theirs.labels.get(key)
                        && v != value
                    {
                        cx.error(
                                obj,
                                Path::parse("spec.rules").index(i).key("labels").key(key),
                                format!(
                                    "label `{key}` is set to `{value}` here and to `{v}` by {} at {} for the same selector",
                                    other.id(),
                                    other.place(&Path::parse("spec.rules").index(*j).key("labels").key(key))
                                ),
                            );
                    }
                }
            }
            seen.push((obj, i));
        }
    }
}

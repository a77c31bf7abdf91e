//! Reading a folder into typed manifests.
//!
//! Every `.yaml`/`.yml` file below the folder (hidden directories skipped) is
//! parsed; a file is a manifest file when one of its documents has an
//! `apiVersion` under `bosun.dev/` (or names a bosun kind with a missing or
//! bosun-looking `apiVersion`, so a typo is reported, not ignored). Other YAML
//! (compose files) is read only when a manifest references it.
//!
//! Each document goes through: merge keys, `apiVersion`/`kind`, unknown
//! fields (all of them, from the kind's JSON Schema, with suggestions), then
//! typed deserialization (the first type error of the document), then the
//! kind's rules. The set's rules run last.

use std::path::{Path as FsPath, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::meta::json_type;
use super::validate::{self, Cx};
use super::{
    API_GROUP, API_VERSION, Desired, Diagnostic, Diagnostics, ForKind, Kind, Metadata, Object,
    Rules, Set, Source, Spec, did_you_mean, schema,
};
use crate::source::{Confinement, Escape};
use crate::yaml::{self, Node, Path};

/// Load and validate every manifest under `dir`, reading environment
/// variables (`auth.passwordEnv`) from the process. Files are read only
/// inside `dir` ([`load_confined`] to say otherwise).
pub fn load(dir: &FsPath) -> Result<Desired, Diagnostics> {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    load_with(dir, &env)
}

/// [`load`] with environment lookups answered by `env`.
pub fn load_with(
    dir: &FsPath,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<Desired, Diagnostics> {
    load_confined(dir, env, &Confinement::new(dir))
}

/// [`load_with`], reading files (manifests, compose files, env files,
/// config and secret contents, password files) only where `confine` allows:
/// a file that resolves elsewhere is an error of the field that names it,
/// and the whole set is invalid.
pub fn load_confined(
    dir: &FsPath,
    env: &std::collections::BTreeMap<String, String>,
    confine: &Confinement,
) -> Result<Desired, Diagnostics> {
    let shown = dir.display().to_string();
    let fail = |message: String| Err(Diagnostics(vec![Diagnostic::error(shown.clone(), message)]));
    let root = match std::path::absolute(dir) {
        Ok(p) => validate::normalize(&p),
        Err(e) => return fail(format!("cannot resolve path: {e}")),
    };
    if !root.is_dir() {
        return fail(if root.exists() {
            "not a directory".into()
        } else {
            "no such directory".into()
        });
    }
    if let Err(e @ Escape::Outside { .. }) = confine.check(&root) {
        return fail(format!("the manifest folder {e}"));
    }
    let mut cx = Cx::new(env, confine);
    let mut files = Vec::new();
    walk(&root, FsPath::new(""), &shown, &mut files, &mut cx);
    files.sort();

    let mut set = Set::default();
    for rel in &files {
        let display = FsPath::new(&shown).join(rel).display().to_string();
        load_file(&root.join(rel), &display, &mut set, &mut cx);
    }
    if set.is_empty() && !cx.out.iter().any(Diagnostic::is_error) {
        cx.push(Diagnostic::error(
            shown,
            format!("no bosun manifests found (YAML files with `apiVersion: {API_VERSION}`)"),
        ));
    }
    set.check_each(&mut cx);
    validate::check_set(&set, &mut cx);
    let mut desired = set.into_desired(root, confine.clone());
    absolutize(&mut desired);
    // Compose files are loaded and converted only for stacks whose manifest
    // is sound (a missing file would only repeat itself here).
    let mut published = Vec::new();
    for stack in &desired.stacks {
        let id = stack.id().to_string();
        let broken = cx
            .out
            .iter()
            .any(|d| d.is_error() && d.object.as_deref() == Some(id.as_str()));
        if !broken
            && let Some(objects) = super::stack::check_compose(stack, &mut published, &mut cx)
        {
            desired.converted.insert(
                stack.name().to_string(),
                super::ConvertedStack {
                    env: env.clone(),
                    objects,
                },
            );
        }
    }
    super::precheck::ports(&published, &mut cx);
    let mut diags = Diagnostics(cx.out);
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    desired.warnings = diags.0;
    Ok(desired)
}

/// Collect YAML files below `dir` (relative paths), skipping hidden entries
/// and not following symlinked directories (no loops). A symlinked file is
/// collected when it resolves inside the confinement, and is an error when
/// it resolves outside.
fn walk(dir: &FsPath, rel: &FsPath, shown: &str, out: &mut Vec<PathBuf>, cx: &mut Cx) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            let name = FsPath::new(shown).join(rel).display().to_string();
            cx.push(Diagnostic::error(
                name,
                format!("cannot read directory: {e}"),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name_str) = name.to_str() else {
            continue;
        };
        if name_str.starts_with('.') {
            continue;
        }
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let child_rel = rel.join(&name);
        if file_type.is_dir() {
            walk(&entry.path(), &child_rel, shown, out, cx);
        } else if is_yaml_name(name_str) && file_type.is_file() {
            out.push(child_rel);
        } else if is_yaml_name(name_str) && file_type.is_symlink() {
            match cx.confine.check(&entry.path()) {
                Ok(target) if target.is_file() => out.push(child_rel),
                Err(e @ Escape::Outside { .. }) => {
                    let name = FsPath::new(shown).join(&child_rel).display().to_string();
                    let link = std::fs::read_link(entry.path()).unwrap_or_default();
                    cx.push(Diagnostic::error(
                        name,
                        format!("symlink to \"{}\" {e}", link.display()),
                    ));
                }
                // Dangling or a directory: not a manifest file.
                Ok(_) | Err(Escape::Unresolved { .. }) => {}
            }
        }
    }
}

/// Whether a file name ends in `.yaml` or `.yml` (any case).
fn is_yaml_name(name: &str) -> bool {
    FsPath::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Whether raw text looks like a bosun manifest (for files that do not parse).
fn mentions_bosun(text: &str) -> bool {
    text.lines()
        .any(|l| l.contains("apiVersion") && l.contains(API_GROUP))
}

/// Whether a parsed document is (meant to be) a bosun manifest.
fn is_manifest_doc(doc: &Node) -> bool {
    let api = doc.get("apiVersion").and_then(Node::as_str);
    if api.is_some_and(|a| a.starts_with(API_GROUP)) {
        return true;
    }
    let bosun_kind = doc
        .get("kind")
        .and_then(Node::as_str)
        .is_some_and(|k| Kind::ALL.iter().any(|kind| kind.as_str() == k));
    bosun_kind && api.is_none_or(|a| a.contains("bosun"))
}

fn load_file(abs: &FsPath, display: &str, set: &mut Set, cx: &mut Cx) {
    // Checked again at the read: the walk saw a regular file or a symlink
    // inside, but either may have been swapped since.
    let real = match cx.confine.check(abs) {
        Ok(real) => real,
        Err(e @ Escape::Outside { .. }) => {
            cx.push(Diagnostic::error(display, format!("manifest file {e}")));
            return;
        }
        Err(Escape::Unresolved { source }) => {
            cx.push(Diagnostic::error(
                display,
                format!("cannot read file: {source}"),
            ));
            return;
        }
    };
    let bytes = match std::fs::read(real) {
        Ok(b) => b,
        Err(e) => {
            cx.push(Diagnostic::error(display, format!("cannot read file: {e}")));
            return;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            if mentions_bosun(&String::from_utf8_lossy(e.as_bytes())) {
                cx.push(Diagnostic::error(
                    display,
                    "manifest file is not valid UTF-8",
                ));
            }
            return;
        }
    };
    let docs = match yaml::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            if mentions_bosun(&text) {
                cx.push(
                    Diagnostic::error(display, format!("invalid YAML: {}", e.message)).at(e.pos),
                );
            }
            return;
        }
    };
    if !docs.iter().any(is_manifest_doc) {
        return;
    }
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let source = Source {
            file: abs.to_path_buf(),
            display: display.to_string(),
            document: index,
            pos: doc.pos,
        };
        load_document(doc, source, set, cx);
    }
}

fn load_document(mut doc: Node, source: Source, set: &mut Set, cx: &mut Cx) {
    let at = |pos, message: String| Diagnostic::error(source.display.clone(), message).at(pos);
    if doc.as_map().is_none() {
        cx.push(at(
            doc.pos,
            "a manifest must be a mapping with `apiVersion`, `kind`, `metadata` and `spec`; every document of a manifest file must be a manifest".into(),
        ));
        return;
    }
    if let Err(e) = doc.apply_merge() {
        cx.push(at(e.pos, e.message));
        return;
    }
    let mut ok = true;
    match doc.get_entry("apiVersion") {
        None => {
            cx.push(at(
                doc.pos,
                format!("missing field `apiVersion` (expected `{API_VERSION}`)"),
            ));
            ok = false;
        }
        Some((key, value)) if value.as_str() != Some(API_VERSION) => {
            let shown = value.as_str().map_or_else(
                || json_type(&value.to_json()).to_string(),
                |s| format!("`{s}`"),
            );
            cx.push(
                at(
                    key.pos,
                    format!(
                        "unsupported apiVersion {shown}; this bosun understands `{API_VERSION}`"
                    ),
                )
                .path(Path::parse("apiVersion")),
            );
            ok = false;
        }
        Some(_) => {}
    }
    let kind = match doc.get_entry("kind") {
        None => {
            cx.push(at(doc.pos, "missing field `kind`".into()));
            None
        }
        Some((key, value)) => match value.as_str().map(str::parse::<Kind>) {
            Some(Ok(kind)) => Some(kind),
            Some(Err(e)) => {
                cx.push(at(key.pos, e).path(Path::parse("kind")));
                None
            }
            None => {
                cx.push(at(key.pos, "`kind` must be a string".into()).path(Path::parse("kind")));
                None
            }
        },
    };
    if let Some(kind) = kind.filter(|_| ok) {
        kind.with(Typed {
            doc,
            source,
            set,
            cx,
        });
    }
}

/// A document of a known kind, deserialized into its spec type and added
/// to the set.
struct Typed<'a, 'c, 'x> {
    doc: Node,
    source: Source,
    set: &'a mut Set,
    cx: &'c mut Cx<'x>,
}

impl ForKind for Typed<'_, '_, '_> {
    type Out = ();
    fn call<S: Rules>(self) {
        if let Some(obj) = typed::<S>(self.doc, self.source, self.cx) {
            self.set.add(obj);
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document<S> {
    #[allow(dead_code)]
    api_version: IgnoredAny,
    #[allow(dead_code)]
    kind: IgnoredAny,
    metadata: Metadata,
    spec: S,
}

/// Most type errors reported per document.
const MAX_TYPE_ERRORS: usize = 16;

fn typed<S: Spec>(doc: Node, source: Source, cx: &mut Cx) -> Option<Object<S>> {
    let mut json = doc.to_json();
    let object = json
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .map(|name| format!("{}/{name}", S::KIND));
    let diag = |path: Path, message: String| {
        let mut d = Diagnostic::error(source.display.clone(), message)
            .at(doc.pos_of(&path.0))
            .path(path);
        d.object.clone_from(&object);
        d
    };
    let root = schema::cached(S::KIND);
    let mut unknown = Vec::new();
    unknown_fields(root, root, &mut json, &Path::root(), &mut unknown);
    // An object with unknown fields is reported but not checked further:
    // its rules would only repeat the typo ("needs composeFiles").
    let mut failed = !unknown.is_empty();
    for (path, message) in unknown {
        cx.push(diag(path, message));
    }
    // Deserialization stops at the first type error; to report the others
    // too, drop the offending field and try again (a few times). An object
    // with any error is not returned, so its rules never see the holes.
    let mut removed: Vec<(Path, String)> = Vec::new();
    for _ in 0..MAX_TYPE_ERRORS {
        match serde_path_to_error::deserialize::<_, Document<S>>(&json) {
            Ok(d) if !failed => {
                return Some(Object {
                    metadata: d.metadata,
                    spec: d.spec,
                    source,
                    node: doc,
                });
            }
            Ok(_) => return None,
            Err(e) => {
                let path = Path::from_serde(e.path());
                let message = e.inner().to_string();
                let caused_by_removal = removed.iter().find(|(parent, key)| {
                    *parent == path && message == format!("missing field `{key}`")
                });
                if let Some((parent, key)) = caused_by_removal {
                    // A required field was dropped: put a stand-in of the
                    // right shape back (its error is already reported).
                    let field = parent.key(key);
                    let stand_in = schema_at(root, &field.0).map(|s| placeholder(root, s, 0));
                    let map = json
                        .pointer_mut(&pointer(parent))
                        .and_then(Value::as_object_mut);
                    match (map, stand_in) {
                        (Some(map), Some(v)) if !map.contains_key(key) => {
                            map.insert(key.clone(), v);
                            continue;
                        }
                        _ => return None,
                    }
                }
                failed = true;
                let value = json.pointer(&pointer(&path));
                cx.push(diag(path.clone(), explain(&message, value)));
                // Remove the innermost mapping entry on the path.
                let at = path
                    .0
                    .iter()
                    .rposition(|s| matches!(s, yaml::Segment::Key(_)))?;
                let parent = Path(path.0[..at].to_vec());
                let yaml::Segment::Key(key) = &path.0[at] else {
                    return None;
                };
                let map = json
                    .pointer_mut(&pointer(&parent))
                    .and_then(Value::as_object_mut);
                map.and_then(|m| m.remove(key))?;
                removed.push((parent, key.clone()));
            }
        }
    }
    None
}

/// A JSON pointer for a field path.
fn pointer(path: &Path) -> String {
    path.0
        .iter()
        .map(|s| match s {
            yaml::Segment::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            yaml::Segment::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// Make serde's messages more helpful: suggestions for enum values, quoting
/// hints for numbers where strings are wanted.
fn explain(message: &str, value: Option<&Value>) -> String {
    if let Some(rest) = message.strip_prefix("unknown variant `")
        && let Some((got, expected)) = rest.split_once("`, expected ")
    {
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        if let Some(close) = did_you_mean(got, candidates.iter().copied()) {
            return format!("unknown value `{got}`, did you mean `{close}`? (expected {expected})");
        }
        return format!("unknown value `{got}`, expected {expected}");
    }
    if message.contains("expected a string")
        && let Some(v @ (Value::Number(_) | Value::Bool(_))) = value
    {
        return format!("{message}; quote it: \"{v}\"");
    }
    message
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected i64", "expected an integer")
        .replace("expected u16", "expected a port number (1-65535)")
}

/// Resolve a schema's `$ref` (and single-entry `allOf` wrappers) against the root.
fn resolve_ref<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..16 {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let target = r.strip_prefix('#').and_then(|p| root.pointer(p));
            match target {
                Some(t) => schema = t,
                None => return schema,
            }
        } else if let Some([only]) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            schema = only;
        } else {
            return schema;
        }
    }
    schema
}

/// The object schema to use for a value of `json`'s shape.
fn pick<'a>(root: &'a Value, schema: &'a Value, want: &str) -> &'a Value {
    let mut schema = resolve_ref(root, schema);
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array)
            && let Some(s) = options
                .iter()
                .map(|o| resolve_ref(root, o))
                .find(|o| o.get(want).is_some())
        {
            schema = s;
        }
    }
    schema
}

/// The schema of the field at `path` (keys and indices) below `root`.
fn schema_at<'a>(root: &'a Value, path: &[yaml::Segment]) -> Option<&'a Value> {
    let mut schema = root;
    for seg in path {
        schema = match seg {
            yaml::Segment::Key(k) => {
                let s = pick(root, schema, "properties");
                s.get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))?
            }
            yaml::Segment::Index(_) => pick(root, schema, "items").get("items")?,
        };
    }
    Some(resolve_ref(root, schema))
}

/// A minimal value that deserializes as `schema` describes (a stand-in for
/// a required field whose bad value was dropped).
fn placeholder(root: &Value, schema: &Value, depth: usize) -> Value {
    let schema = resolve_ref(root, schema);
    if depth > 16 {
        return Value::Null;
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|o| o.first())
        {
            return placeholder(root, first, depth + 1);
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "null",
    };
    match ty {
        "string"
            if schema.get("pattern").and_then(Value::as_str) == Some(super::duration::PATTERN) =>
        {
            "1s".into()
        }
        "string" => Value::String(String::new()),
        "integer" | "number" => schema.get("minimum").cloned().unwrap_or_else(|| 0.into()),
        "boolean" => Value::Bool(false),
        "array" => Value::Array(Vec::new()),
        "object" => {
            let mut map = serde_json::Map::new();
            let props = schema.get("properties");
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(name), Some(prop)) = (
                    name.as_str(),
                    props.and_then(|p| name.as_str().and_then(|n| p.get(n))),
                ) {
                    map.insert(name.to_string(), placeholder(root, prop, depth + 1));
                }
            }
            Value::Object(map)
        }
        _ => Value::Null,
    }
}

/// Find unknown mapping keys (against `additionalProperties: false`),
/// record them with a suggestion, and remove them so deserialization can go
/// on to report type errors.
fn unknown_fields(
    root: &Value,
    schema: &Value,
    json: &mut Value,
    path: &Path,
    out: &mut Vec<(Path, String)>,
) {
    let mut schema = resolve_ref(root, schema);
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let want = if json.is_object() {
                "properties"
            } else {
                "items"
            };
            if let Some(s) = options
                .iter()
                .map(|o| resolve_ref(root, o))
                .find(|o| o.get(want).is_some())
            {
                schema = s;
            }
        }
    }
    match json {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = path.key(&key);
                if let Some(prop) = props.and_then(|p| p.get(&key)) {
                    if let Some(child) = map.get_mut(&key) {
                        unknown_fields(root, prop, child, &child_path, out);
                    }
                } else if closed {
                    let known: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let message = match did_you_mean(&key, known.iter().copied()) {
                        Some(close) => format!("unknown field `{key}`, did you mean `{close}`?"),
                        None if known.is_empty() => format!("unknown field `{key}`"),
                        None => format!(
                            "unknown field `{key}`; expected one of {}",
                            known
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    out.push((child_path, message));
                    map.remove(&key);
                } else if let Some(add) = additional
                    && let Some(child) = map.get_mut(&key)
                {
                    unknown_fields(root, add, child, &child_path, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    unknown_fields(root, item_schema, item, &path.index(i), out);
                }
            }
        }
        _ => {}
    }
}

/// Make every file path in the specs absolute (relative to its manifest).
fn absolutize(desired: &mut Desired) {
    for stack in &mut desired.stacks {
        let source = stack.source.clone();
        for f in stack
            .spec
            .compose_files
            .iter_mut()
            .chain(stack.spec.env_files.iter_mut())
        {
            *f = validate::resolve(&source, f).0;
        }
    }
    for vip in &mut desired.vip_policies {
        let source = vip.source.clone();
        if let Some(f) = vip
            .spec
            .auth
            .as_mut()
            .and_then(|a| a.password_file.as_mut())
        {
            *f = validate::resolve(&source, f).0;
        }
    }
}

//! JSON Schemas of the manifest kinds, generated from the Rust types.
//!
//! `crds/<kind>.schema.json` holds one schema per kind and
//! `crds/bosun.schema.json` one for any manifest (dispatching on `kind`), for
//! editors: `# yaml-language-server: $schema=../crds/bosun.schema.json`.
//! Draft 7, the draft editors support best. The loader uses the same schemas
//! to find unknown fields, so they cannot drift from what is accepted.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::{API_VERSION, ForKind, Kind, Metadata, Rules, Spec};

/// File name of the combined schema.
pub const COMBINED: &str = "bosun.schema.json";

/// Writing or reading the schema folder failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The folder could not be created.
    #[error("cannot create {}", path.display())]
    CreateDirFailed {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A schema file could not be written.
    #[error("cannot write {}", path.display())]
    WriteFailed {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The folder could not be listed.
    #[error("cannot read {}", path.display())]
    ReadDirFailed {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn generator() -> SchemaGenerator {
    SchemaSettings::draft07().into_generator()
}

fn object_schema<S: Spec>(generator: &mut SchemaGenerator) -> Value {
    let kind = S::KIND;
    let metadata = generator.subschema_for::<Metadata>().to_value();
    let spec = generator.subschema_for::<S>().to_value();
    json!({
        "title": kind.as_str(),
        "description": kind.description(),
        "type": "object",
        "additionalProperties": false,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {
                "description": "API version of bosun manifests.",
                "type": "string",
                "const": API_VERSION,
            },
            "kind": {"type": "string", "const": kind.as_str()},
            "metadata": metadata,
            "spec": spec,
        },
    })
}

fn object_schema_of(kind: Kind, generator: &mut SchemaGenerator) -> Value {
    struct Of<'a>(&'a mut SchemaGenerator);
    impl ForKind for Of<'_> {
        type Out = Value;
        fn call<S: Rules>(self) -> Value {
            object_schema::<S>(self.0)
        }
    }
    kind.with(Of(generator))
}

fn meta_schema() -> Value {
    Value::String("http://json-schema.org/draft-07/schema#".into())
}

/// The standalone schema of one kind.
#[must_use]
pub fn kind_schema(kind: Kind) -> Value {
    let mut generator = generator();
    let mut root = object_schema_of(kind, &mut generator);
    let definitions = generator.take_definitions(true);
    if let Value::Object(map) = &mut root {
        map.insert("$schema".into(), meta_schema());
        map.insert("definitions".into(), Value::Object(definitions));
    }
    root
}

/// The schema of any bosun manifest: `oneOf` the kinds, told apart by `kind`.
#[must_use]
pub fn combined_schema() -> Value {
    let mut generator = generator();
    let kinds: Vec<(Kind, Value)> = Kind::ALL
        .into_iter()
        .map(|k| (k, object_schema_of(k, &mut generator)))
        .collect();
    let mut definitions = generator.take_definitions(true);
    for (kind, schema) in kinds {
        definitions.insert(kind.as_str().into(), schema);
    }
    json!({
        "$schema": meta_schema(),
        "title": "bosun manifest",
        "description": "Any bosun manifest (apiVersion bosun.dev/v1alpha1); the `kind` picks the schema.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"type": "string", "const": API_VERSION},
            "kind": {"type": "string", "enum": Kind::ALL.map(Kind::as_str)},
        },
        "oneOf": Kind::ALL.map(|k| json!({"$ref": format!("#/definitions/{k}")})),
        "definitions": definitions,
    })
}

/// The kind's schema, generated once per process (the loader's copy).
pub(crate) fn cached(kind: Kind) -> &'static Value {
    static SCHEMAS: OnceLock<Vec<Value>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| Kind::ALL.into_iter().map(kind_schema).collect());
    let i = Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default();
    &all[i]
}

/// Every schema file: name and content (pretty JSON, trailing newline).
#[must_use]
pub fn files() -> Vec<(String, String)> {
    let render = |v: &Value| {
        let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
        text.push('\n');
        text
    };
    let mut out: Vec<(String, String)> = Kind::ALL
        .into_iter()
        .map(|k| {
            (
                format!("{}.schema.json", k.file_stem()),
                render(&kind_schema(k)),
            )
        })
        .collect();
    out.push((COMBINED.into(), render(&combined_schema())));
    out
}

/// Write every schema file into `dir` (created if needed); returns the
/// files whose content changed.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| Error::CreateDirFailed {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (name, content) in files() {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(content.as_str()) {
            continue;
        }
        std::fs::write(&path, content).map_err(|source| Error::WriteFailed {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Why a schema file in the folder is stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The file should exist and does not.
    Missing(PathBuf),
    /// The file differs from what the types generate.
    Differs(PathBuf),
    /// A `*.schema.json` file no kind generates.
    Unexpected(PathBuf),
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Missing(p) => write!(f, "{} is missing", p.display()),
            Stale::Differs(p) => write!(f, "{} is stale", p.display()),
            Stale::Unexpected(p) => {
                write!(f, "{} is not generated by bosun (remove it)", p.display())
            }
        }
    }
}

/// Compare `dir` with what the types generate; empty when up to date.
pub fn check(dir: &Path) -> Result<Vec<Stale>> {
    let files = files();
    let mut stale = Vec::new();
    for (name, content) in &files {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Err(_) if !path.exists() => stale.push(Stale::Missing(path)),
            Ok(existing) if existing == *content => {}
            _ => stale.push(Stale::Differs(path)),
        }
    }
    if dir.is_dir() {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::ReadDirFailed {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut extra: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".schema.json") && !files.iter().any(|(f, _)| f == n))
            .map(|n| dir.join(n))
            .collect();
        extra.sort();
        stale.extend(extra.into_iter().map(Stale::Unexpected));
    }
    Ok(stale)
}

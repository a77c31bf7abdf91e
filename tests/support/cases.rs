//! Conformance cases: which compose files to deploy, with which environment,
//! external objects and working directory.
//!
//! Two sources:
//! * `tests/compose/*.yml` (bosun's own files) and `tests/compose/invalid/*.yml`
//!   (files docker rejects). Each may carry header lines
//!   `# conformance: env NAME=value; external network NAME; external secret NAME;
//!   external config NAME; with OTHER.yml` — `with` adds `-c OTHER.yml` after the
//!   file (merge order); files named `*.override*.yml` are only used that way.
//!   The working directory is `tests/compose/`.
//! * `../shared/corpus/*.yml`: variables from `corpus/prepare.env`; a scratch tree
//!   built from `corpus/support/<stem>/` with the file in `<scratch>/stack/`, the
//!   working directory (exactly like `corpus/tools/run_oracle.py`).
//!
//! External networks/secrets/configs are the header's plus those the file itself
//! declares `external` (same rule as the oracle's `externals()`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value as Yaml;

/// Networks that exist on every node and must never be created or removed.
pub const LOCAL_NETWORKS: [&str; 3] = ["host", "bridge", "none"];

#[derive(Debug, Default, Clone)]
pub struct Externals {
    pub networks: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
    pub configs: BTreeSet<String>,
}

#[derive(Debug)]
pub struct Case {
    /// `compose/NN-topic.yml`, `compose/invalid/x.yml` or `corpus/<file>.yml`.
    pub name: String,
    /// Stack namespace, unique per process.
    pub namespace: String,
    /// Compose files in `-c` order (absolute).
    pub files: Vec<PathBuf>,
    /// Working directory of both the CLI and bosun's loader.
    pub workdir: PathBuf,
    /// Variables of this case (on top of the base environment).
    pub env: BTreeMap<String, String>,
    pub externals: Externals,
    /// Kept in `compose/invalid/`: docker must reject it, and so must bosun.
    pub expect_reject: bool,
    /// Global resources the case uses (ports, non-namespaced names): cases
    /// sharing a key never run at the same time.
    pub keys: BTreeSet<String>,
    /// Stack networks whose definition sets `ipam.config` (others get a
    /// daemon-allocated subnet, which differs between deploys).
    pub ipam_requested: BTreeSet<String>,
    /// Scratch tree of a corpus case, removed on drop.
    pub scratch: Option<tempfile::TempDir>,
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn corpus_dir() -> PathBuf {
    manifest_dir()
        .parent()
        .expect("manifest dir has a parent")
        .join("shared/corpus")
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "yml" || e == "yaml"));
    v.sort();
    v
}

/// Every case, in a stable order. `filter` keeps names containing it.
pub fn discover(prefix: &str, filter: Option<&str>) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let own = manifest_dir().join("tests/compose");
    for (sub, tag, reject) in [("", 'o', false), ("invalid", 'i', true)] {
        let dir = if sub.is_empty() {
            own.clone()
        } else {
            own.join(sub)
        };
        let mut index = 0;
        for f in yml_files(&dir) {
            let file_name = f
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if file_name.contains(".override") {
                continue;
            }
            index += 1;
            let name = if sub.is_empty() {
                format!("compose/{file_name}")
            } else {
                format!("compose/{sub}/{file_name}")
            };
            if filter.is_some_and(|flt| !name.contains(flt)) {
                continue;
            }
            let header = Header::parse(&f)?;
            let mut files = vec![f.clone()];
            files.extend(header.with.iter().map(|w| dir.join(w)));
            cases.push(Case::new(
                name,
                format!("{prefix}{tag}{index}"),
                files,
                dir.clone(),
                header.env,
                header.externals,
                reject,
            )?);
        }
    }
    let corpus = corpus_dir();
    if !corpus.is_dir() {
        return Err(format!("corpus directory {} is missing", corpus.display()));
    }
    let prepared = prepare_env(&corpus.join("prepare.env"))?;
    for (i, f) in yml_files(&corpus).into_iter().enumerate() {
        let file_name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let name = format!("corpus/{file_name}");
        if filter.is_some_and(|flt| !name.contains(flt)) {
            continue;
        }
        let stem = file_name.trim_end_matches(".yml").to_string();
        let scratch = tempfile::Builder::new()
            .prefix(&format!("bosun-cf-{stem}-"))
            .tempdir()
            .map_err(|e| format!("scratch dir for {name}: {e}"))?;
        let support = corpus.join("support").join(&stem);
        if support.is_dir() {
            super::copy_tree(&support, scratch.path())
                .map_err(|e| format!("copy {}: {e}", support.display()))?;
        }
        let stack_dir = scratch.path().join("stack");
        std::fs::create_dir_all(&stack_dir).map_err(|e| e.to_string())?;
        let target = stack_dir.join(&file_name);
        std::fs::copy(&f, &target).map_err(|e| format!("copy {}: {e}", f.display()))?;
        let mut case = Case::new(
            name,
            format!("{prefix}c{}", i + 1),
            vec![target],
            stack_dir,
            prepared.clone(),
            Externals::default(),
            false,
        )?;
        case.scratch = Some(scratch);
        cases.push(case);
    }
    Ok(cases)
}

impl Case {
    fn new(
        name: String,
        namespace: String,
        files: Vec<PathBuf>,
        workdir: PathBuf,
        env: BTreeMap<String, String>,
        mut externals: Externals,
        expect_reject: bool,
    ) -> Result<Case, String> {
        let mut keys = BTreeSet::new();
        let mut ipam_requested = BTreeSet::new();
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            // Files docker cannot parse still make a case (both must reject them).
            if let Ok(mut doc) = serde_norway::from_str::<Yaml>(&text) {
                let _ = doc.apply_merge();
                scan(
                    &doc,
                    &namespace,
                    &mut externals,
                    &mut keys,
                    &mut ipam_requested,
                );
            }
        }
        for n in externals
            .networks
            .iter()
            .filter(|n| !LOCAL_NETWORKS.contains(&n.as_str()))
        {
            keys.insert(format!("network:{n}"));
        }
        for n in &externals.secrets {
            keys.insert(format!("secret:{n}"));
        }
        for n in &externals.configs {
            keys.insert(format!("config:{n}"));
        }
        Ok(Case {
            name,
            namespace,
            files,
            workdir,
            env,
            externals,
            expect_reject,
            keys,
            ipam_requested,
            scratch: None,
        })
    }
}

/// `# conformance: ...` header lines of one of our own files.
#[derive(Debug, Default)]
struct Header {
    env: BTreeMap<String, String>,
    externals: Externals,
    with: Vec<String>,
}

impl Header {
    fn parse(file: &Path) -> Result<Header, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut h = Header::default();
        for (n, line) in text.lines().enumerate() {
            let Some(rest) = line.strip_prefix("# conformance:") else {
                continue;
            };
            for item in rest.split(';').map(str::trim).filter(|i| !i.is_empty()) {
                let bad = || {
                    format!(
                        "{}:{}: unknown conformance header item {item:?}",
                        file.display(),
                        n + 1
                    )
                };
                if let Some(kv) = item.strip_prefix("env ") {
                    let (k, v) = kv.split_once('=').ok_or_else(bad)?;
                    h.env.insert(k.trim().to_string(), v.to_string());
                } else if let Some(f) = item.strip_prefix("with ") {
                    h.with.push(f.trim().to_string());
                } else if let Some(x) = item.strip_prefix("external ") {
                    let (kind, name) = x.split_once(' ').ok_or_else(bad)?;
                    let set = match kind {
                        "network" => &mut h.externals.networks,
                        "secret" => &mut h.externals.secrets,
                        "config" => &mut h.externals.configs,
                        _ => return Err(bad()),
                    };
                    set.insert(name.trim().to_string());
                } else {
                    return Err(bad());
                }
            }
        }
        Ok(h)
    }
}

/// `export NAME=value` / `export NAME='value'` / `export NAME="value"`
/// lines, as the oracle reads them.
pub fn prepare_env(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut env = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("export ") else {
            continue;
        };
        let Some((k, v)) = rest.split_once('=') else {
            continue;
        };
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
            .unwrap_or(v);
        env.insert(k.to_string(), v.to_string());
    }
    Ok(env)
}

fn as_str(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// External object names (the oracle's rule) and conflict keys of one file.
fn scan(
    doc: &Yaml,
    ns: &str,
    ext: &mut Externals,
    keys: &mut BTreeSet<String>,
    ipam: &mut BTreeSet<String>,
) {
    for (kind, set) in [
        ("networks", &mut ext.networks),
        ("secrets", &mut ext.secrets),
        ("configs", &mut ext.configs),
        ("volumes", &mut BTreeSet::new()),
    ] {
        let Some(Yaml::Mapping(m)) = doc.get(kind) else {
            continue;
        };
        for (k, v) in m {
            let Some(key) = as_str(k) else { continue };
            let explicit = v.get("name").and_then(as_str);
            if kind == "networks"
                && v.get("ipam")
                    .and_then(|i| i.get("config"))
                    .is_some_and(|c| !c.is_null())
            {
                ipam.insert(explicit.clone().unwrap_or_else(|| format!("{ns}_{key}")));
            }
            match v.get("external") {
                Some(Yaml::Bool(true)) => {
                    set.insert(explicit.unwrap_or(key));
                }
                Some(e @ Yaml::Mapping(_)) => {
                    set.insert(e.get("name").and_then(as_str).or(explicit).unwrap_or(key));
                }
                _ => {
                    if let Some(n) = explicit {
                        keys.insert(format!("{}:{n}", kind.trim_end_matches('s')));
                    }
                }
            }
        }
    }
    let Some(Yaml::Mapping(services)) = doc.get("services") else {
        return;
    };
    for svc in services.values() {
        let Some(Yaml::Sequence(ports)) = svc.get("ports") else {
            continue;
        };
        for p in ports {
            let published = match p {
                Yaml::Mapping(_) => p.get("published").and_then(as_str),
                other => as_str(other).and_then(|s| {
                    let s = s.split('/').next().unwrap_or_default().to_string();
                    let fields: Vec<&str> = s.split(':').collect();
                    (fields.len() >= 2).then(|| fields[fields.len() - 2].to_string())
                }),
            };
            let Some(published) = published else { continue };
            match published
                .split_once('-')
                .map(|(a, b)| (a.parse::<u32>(), b.parse::<u32>()))
            {
                Some((Ok(a), Ok(b))) if b >= a && b - a < 1000 => {
                    keys.extend((a..=b).map(|n| format!("port:{n}")));
                }
                _ => {
                    keys.insert(format!("port:{published}"));
                }
            }
        }
    }
}

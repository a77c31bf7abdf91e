//! From the validated, interpolated tree of one file to the typed model: the
//! transforms docker/cli's loader applies through mapstructure hooks
//! (`transformShellCommand`, `transformMappingOrList`, ports, volumes,
//! sizes, durations…), then `resolveEnvironment` (env files) and
//! `resolveVolumePaths` (relative and `~` bind sources).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Issue;
use super::model::{
    CredentialSpec, Deploy, FileObject, FileRef, Healthcheck, Limits, Logging, Network, Origin,
    Placement, PortConfig, Project, Reservations, Resources, RestartPolicy, Service,
    ServiceNetwork, ServiceVolume, Ulimit, UpdateConfig, Volume, VolumeOptions,
};
use super::parse;
use super::tree::{Tree, Val, go_float};
use crate::source::{Confinement, Escape};
use crate::yaml::Pos;

/// Loading context for one file.
pub struct Ld<'a> {
    pub file: &'a str,
    pub version: &'a str,
    pub working_dir: &'a str,
    pub home: Option<&'a str>,
    pub env: &'a BTreeMap<String, String>,
    /// Where `env_file`s and config and secret `file`s may be read from.
    pub confine: Option<&'a Confinement>,
    pub issues: Vec<Issue>,
    pub warnings: Vec<String>,
}

impl Ld<'_> {
    fn err(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.issues.push(Issue {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn origin(&self, pos: Pos) -> Origin {
        Origin {
            file: self.file.to_string(),
            pos,
        }
    }
}

/// `fmt.Sprint` of a scalar; empty for null.
fn text(t: &Tree) -> String {
    t.val.go_string().unwrap_or_default()
}

fn strings(t: &Tree) -> Vec<String> {
    match &t.val {
        Val::Seq(items) => items.iter().map(text).collect(),
        Val::Null => Vec::new(),
        _ => vec![text(t)],
    }
}

/// `transformMappingOrList` with `allowNil = false` (labels, sysctls):
/// null values and bare list keys become `""`.
fn mapping(t: &Tree, sep: char) -> BTreeMap<String, String> {
    match &t.val {
        Val::Map(entries) => entries
            .iter()
            .map(|e| (e.key.clone(), text(&e.value)))
            .collect(),
        Val::Seq(items) => items
            .iter()
            .map(|i| {
                let s = text(i);
                match s.split_once(sep) {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (s, String::new()),
                }
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// `MappingWithEquals` (environment): null values and bare keys stay unset.
fn mapping_with_nil(t: &Tree) -> BTreeMap<String, Option<String>> {
    match &t.val {
        Val::Map(entries) => entries
            .iter()
            .map(|e| (e.key.clone(), e.value.val.go_string()))
            .collect(),
        Val::Seq(items) => items
            .iter()
            .map(|i| {
                let s = text(i);
                match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (s, None),
                }
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn string_map(t: &Tree) -> BTreeMap<String, String> {
    match &t.val {
        Val::Map(entries) => entries
            .iter()
            .map(|e| (e.key.clone(), text(&e.value)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn opt_string_map(t: Option<&Tree>) -> Option<BTreeMap<String, String>> {
    t.filter(|t| !t.is_null()).map(string_map)
}

fn boolean(t: &Tree) -> bool {
    matches!(t.val, Val::Bool(true))
}

/// Round a number through Go's `float32`, as its JSON form reads back.
fn f32_round(f: f64) -> f64 {
    let short = format!("{}", f as f32);
    short.parse().unwrap_or(f)
}

impl Ld<'_> {
    fn uint(&mut self, t: &Tree, path: &str) -> Option<u64> {
        match t.val {
            Val::Int(i) if i >= 0 => Some(i as u64),
            Val::Float(f) if f >= 0.0 && f.fract() == 0.0 => Some(f as u64),
            Val::Null => None,
            _ => {
                self.err(
                    t.pos,
                    path,
                    format!("{path}: cannot parse {} as an unsigned integer", text(t)),
                );
                None
            }
        }
    }

    fn int(t: &Tree) -> i64 {
        match t.val {
            Val::Int(i) => i,
            Val::Float(f) => f as i64,
            _ => 0,
        }
    }

    fn duration(&mut self, t: Option<&Tree>, path: &str) -> Option<i64> {
        let t = t?;
        match &t.val {
            Val::Str(s) => match parse::go_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.err(t.pos, path, format!("{path}: {e}"));
                    None
                }
            },
            Val::Null => None,
            _ => {
                self.err(
                    t.pos,
                    path,
                    format!("{path}: invalid type {} for duration", t.type_name()),
                );
                None
            }
        }
    }

    fn size(&mut self, t: Option<&Tree>, path: &str) -> i64 {
        let Some(t) = t else { return 0 };
        match &t.val {
            Val::Int(i) => *i,
            Val::Str(s) => match parse::ram_in_bytes(s) {
                Ok(v) => v,
                Err(e) => {
                    self.err(t.pos, path, format!("{path}: {e}"));
                    0
                }
            },
            _ => 0,
        }
    }

    fn shell(&mut self, t: &Tree, path: &str) -> Vec<String> {
        match &t.val {
            Val::Str(s) => match parse::shlex(s) {
                Ok(words) => words,
                Err(e) => {
                    self.err(t.pos, path, format!("{path}: {e}"));
                    Vec::new()
                }
            },
            _ => strings(t),
        }
    }
}

/// Load the sections of one file into a project (not yet merged).
pub fn load_file(ld: &mut Ld<'_>, doc: &Tree) -> Project {
    let mut p = Project {
        version: ld.version.to_string(),
        ..Project::default()
    };
    if let Some(services) = doc.get("services").and_then(Tree::entries) {
        for e in services {
            let svc = load_service(ld, &e.key, e.key_pos, &e.value);
            p.services.push(svc);
        }
        p.services.sort_by(|a, b| a.name.cmp(&b.name));
    }
    if let Some(nets) = doc.get("networks").and_then(Tree::entries) {
        for e in nets {
            let n = load_network(ld, &e.key, e.key_pos, &e.value);
            p.networks.insert(e.key.clone(), n);
        }
    }
    if let Some(vols) = doc.get("volumes").and_then(Tree::entries) {
        for e in vols {
            let v = load_volume(ld, &e.key, e.key_pos, &e.value);
            p.volumes.insert(e.key.clone(), v);
        }
    }
    for (section, kind) in [("secrets", "secret"), ("configs", "config")] {
        if let Some(objs) = doc.get(section).and_then(Tree::entries) {
            for e in objs {
                let o = load_file_object(ld, kind, &e.key, e.key_pos, &e.value);
                if section == "secrets" {
                    p.secrets.insert(e.key.clone(), o);
                } else {
                    p.configs.insert(e.key.clone(), o);
                }
            }
        }
    }
    p
}

fn version_at_least(version: &str, min: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|x| x.parse().unwrap_or(0)).collect() };
    let (a, b) = (parse(version), parse(min));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x > y;
        }
    }
    true
}

/// `external:` as docker reads it: `(external, external.name)`.
fn external(t: Option<&Tree>) -> (bool, String) {
    match t.map(|t| &t.val) {
        Some(Val::Bool(b)) => (*b, String::new()),
        Some(Val::Map(_)) => (
            true,
            t.and_then(|t| t.get("name")).map(text).unwrap_or_default(),
        ),
        _ => (false, String::new()),
    }
}

fn load_network(ld: &mut Ld<'_>, name: &str, pos: Pos, t: &Tree) -> Network {
    let path = format!("networks.{name}");
    let (ext, ext_name) = external(t.get("external"));
    let mut n = Network {
        origin: ld.origin(pos),
        name: t.get("name").map(text).unwrap_or_default(),
        driver: t.get("driver").map(text).unwrap_or_default(),
        driver_opts: opt_string_map(t.get("driver_opts")),
        external: ext,
        internal: t.get("internal").is_some_and(boolean),
        attachable: t.get("attachable").is_some_and(boolean),
        labels: t.get("labels").map(|l| mapping(l, '=')).unwrap_or_default(),
        ..Network::default()
    };
    if let Some(ipam) = t.get("ipam") {
        n.ipam_driver = ipam.get("driver").map(text).unwrap_or_default();
        if let Some(Val::Seq(cfgs)) = ipam.get("config").map(|c| &c.val) {
            n.ipam_subnets = cfgs
                .iter()
                .map(|c| c.get("subnet").map(text).unwrap_or_default())
                .collect();
        }
    }
    if n.external {
        if !ext_name.is_empty() {
            if !n.name.is_empty() {
                ld.err(
                    pos,
                    &path,
                    format!("network {name}: network.external.name and network.name conflict; only use network.name"),
                );
            }
            if version_at_least(ld.version, "3.5") {
                ld.warnings.push(format!(
                    "network {name}: network.external.name is deprecated in favor of network.name"
                ));
            }
            n.name = ext_name;
        } else if n.name.is_empty() {
            n.name = name.to_string();
        }
    }
    n
}

fn load_volume(ld: &mut Ld<'_>, name: &str, pos: Pos, t: &Tree) -> Volume {
    let path = format!("volumes.{name}");
    let (ext, ext_name) = external(t.get("external"));
    let mut v = Volume {
        origin: ld.origin(pos),
        name: t.get("name").map(text).unwrap_or_default(),
        driver: t.get("driver").map(text).unwrap_or_default(),
        driver_opts: opt_string_map(t.get("driver_opts")),
        external: ext,
        labels: t.get("labels").map(|l| mapping(l, '=')).unwrap_or_default(),
    };
    if v.external {
        let conflict = if !v.driver.is_empty() {
            Some("driver")
        } else if v.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
            Some("driver_opts")
        } else if !v.labels.is_empty() {
            Some("labels")
        } else {
            None
        };
        if let Some(key) = conflict {
            ld.err(
                pos,
                &path,
                format!("conflicting parameters \"external\" and \"{key}\" specified for volume \"{name}\""),
            );
        } else if !ext_name.is_empty() {
            if !v.name.is_empty() {
                ld.err(
                    pos,
                    &path,
                    format!("volume {name}: volume.external.name and volume.name conflict; only use volume.name"),
                );
            }
            if version_at_least(ld.version, "3.4") {
                ld.warnings.push(format!(
                    "volume {name}: volume.external.name is deprecated in favor of volume.name"
                ));
            }
            v.name = ext_name;
        } else if v.name.is_empty() {
            v.name = name.to_string();
        }
    }
    v
}

fn load_file_object(ld: &mut Ld<'_>, kind: &str, name: &str, pos: Pos, t: &Tree) -> FileObject {
    let path = format!("{kind}s.{name}");
    let (ext, ext_name) = external(t.get("external"));
    let mut o = FileObject {
        origin: ld.origin(pos),
        name: t.get("name").map(text).unwrap_or_default(),
        file: t.get("file").map(text).unwrap_or_default(),
        external: ext,
        labels: t.get("labels").map(|l| mapping(l, '=')).unwrap_or_default(),
        driver: t.get("driver").map(text).unwrap_or_default(),
        driver_opts: opt_string_map(t.get("driver_opts")),
        template_driver: t.get("template_driver").map(text).unwrap_or_default(),
    };
    if o.external {
        if !ext_name.is_empty() {
            if !o.name.is_empty() {
                ld.err(
                    pos,
                    &path,
                    format!("{kind} {name}: {kind}.external.name and {kind}.name conflict; only use {kind}.name"),
                );
            }
            if version_at_least(ld.version, "3.5") {
                ld.warnings.push(format!(
                    "{kind} {name}: {kind}.external.name is deprecated in favor of {kind}.name"
                ));
            }
            o.name = ext_name;
        } else if o.name.is_empty() {
            o.name = name.to_string();
        }
    } else if !o.driver.is_empty() {
        if !o.file.is_empty() {
            ld.err(
                pos,
                &path,
                format!(
                    "{kind} {name}: {kind}.driver and {kind}.file conflict; only use {kind}.driver"
                ),
            );
        }
    } else {
        let written = std::mem::take(&mut o.file);
        o.file = parse::abs_path(ld.working_dir, &written);
        if let Some(confine) = ld.confine
            && let Err(e @ Escape::Outside { .. }) = confine.check(Path::new(&o.file))
        {
            let at = t.get("file").map_or(pos, |f| f.pos);
            let field = format!("{path}.file");
            ld.err(at, &field, format!("{field}: \"{written}\" {e}"));
        }
    }
    o
}

#[allow(clippy::cast_precision_loss)] // a ratio: small integers
fn load_update_config(ld: &mut Ld<'_>, t: Option<&Tree>, path: &str) -> Option<UpdateConfig> {
    let t = t.filter(|t| !t.is_null())?;
    Some(UpdateConfig {
        parallelism: t
            .get("parallelism")
            .and_then(|p| ld.uint(p, &format!("{path}.parallelism"))),
        delay: ld
            .duration(t.get("delay"), &format!("{path}.delay"))
            .unwrap_or(0),
        failure_action: t.get("failure_action").map(text).unwrap_or_default(),
        monitor: ld
            .duration(t.get("monitor"), &format!("{path}.monitor"))
            .unwrap_or(0),
        max_failure_ratio: t.get("max_failure_ratio").map_or(0.0, |m| match m.val {
            Val::Int(i) => f32_round(i as f64),
            Val::Float(f) => f32_round(f),
            _ => 0.0,
        }),
        order: t.get("order").map(text).unwrap_or_default(),
    })
}

fn load_deploy(ld: &mut Ld<'_>, t: Option<&Tree>, path: &str) -> Deploy {
    let Some(t) = t.filter(|t| !t.is_null()) else {
        return Deploy::default();
    };
    let mut d = Deploy {
        mode: t.get("mode").map(text).unwrap_or_default(),
        endpoint_mode: t.get("endpoint_mode").map(text).unwrap_or_default(),
        labels: t.get("labels").map(|l| mapping(l, '=')).unwrap_or_default(),
        ..Deploy::default()
    };
    d.replicas = t
        .get("replicas")
        .and_then(|r| ld.uint(r, &format!("{path}.replicas")));
    d.update_config =
        load_update_config(ld, t.get("update_config"), &format!("{path}.update_config"));
    d.rollback_config = load_update_config(
        ld,
        t.get("rollback_config"),
        &format!("{path}.rollback_config"),
    );
    if let Some(r) = t.get("resources") {
        let rpath = format!("{path}.resources");
        let mut res = Resources::default();
        if let Some(l) = r.get("limits").filter(|l| !l.is_null()) {
            res.limits = Some(Limits {
                cpus: l.get("cpus").map(text).unwrap_or_default(),
                memory: ld.size(l.get("memory"), &format!("{rpath}.limits.memory")),
                pids: l.get("pids").map_or(0, Ld::int),
            });
        }
        if let Some(l) = r.get("reservations").filter(|l| !l.is_null()) {
            let generic = match l.get("generic_resources").map(|g| &g.val) {
                Some(Val::Seq(items)) => items
                    .iter()
                    .map(|i| {
                        i.get("discrete_resource_spec")
                            .filter(|d| !d.is_null())
                            .map(|d| {
                                (
                                    d.get("kind").map(text).unwrap_or_default(),
                                    d.get("value").map_or(0, Ld::int),
                                )
                            })
                    })
                    .collect(),
                _ => Vec::new(),
            };
            res.reservations = Some(Reservations {
                cpus: l.get("cpus").map(text).unwrap_or_default(),
                memory: ld.size(l.get("memory"), &format!("{rpath}.reservations.memory")),
                generic_resources: generic,
            });
        }
        d.resources = res;
    }
    if let Some(r) = t.get("restart_policy").filter(|r| !r.is_null()) {
        let rpath = format!("{path}.restart_policy");
        d.restart_policy = Some(RestartPolicy {
            condition: r.get("condition").map(text).unwrap_or_default(),
            delay: ld.duration(r.get("delay"), &format!("{rpath}.delay")),
            max_attempts: r
                .get("max_attempts")
                .and_then(|m| ld.uint(m, &format!("{rpath}.max_attempts"))),
            window: ld.duration(r.get("window"), &format!("{rpath}.window")),
        });
    }
    if let Some(p) = t.get("placement").filter(|p| !p.is_null()) {
        d.placement = Placement {
            constraints: p.get("constraints").map(strings).unwrap_or_default(),
            preferences: match p.get("preferences").map(|x| &x.val) {
                Some(Val::Seq(items)) => items
                    .iter()
                    .map(|i| i.get("spread").map(text).unwrap_or_default())
                    .collect(),
                _ => Vec::new(),
            },
            max_replicas: p
                .get("max_replicas_per_node")
                .and_then(|m| ld.uint(m, &format!("{path}.placement.max_replicas_per_node")))
                .unwrap_or(0),
        };
    }
    d
}

fn file_refs(ld: &mut Ld<'_>, t: Option<&Tree>, path: &str) -> Vec<FileRef> {
    let Some(Val::Seq(items)) = t.map(|t| &t.val) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match &item.val {
            Val::Map(_) => FileRef {
                source: item.get("source").map(text).unwrap_or_default(),
                target: item.get("target").map(text).unwrap_or_default(),
                uid: item.get("uid").map(text).unwrap_or_default(),
                gid: item.get("gid").map(text).unwrap_or_default(),
                mode: item
                    .get("mode")
                    .and_then(|m| ld.uint(m, &format!("{path}[{i}].mode")))
                    .map(|m| m as u32),
            },
            _ => FileRef {
                source: text(item),
                ..FileRef::default()
            },
        })
        .collect()
}

fn load_ports(ld: &mut Ld<'_>, t: Option<&Tree>, path: &str) -> Vec<PortConfig> {
    let Some(Val::Seq(items)) = t.map(|t| &t.val) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let spec = match &item.val {
            Val::Map(_) => {
                out.push(PortConfig {
                    mode: item.get("mode").map(text).unwrap_or_default(),
                    target: item.get("target").map_or(0, Ld::int) as u32,
                    published: item.get("published").map_or(0, Ld::int) as u32,
                    protocol: item.get("protocol").map(text).unwrap_or_default(),
                });
                continue;
            }
            Val::Float(f) => go_float(*f),
            _ => text(item),
        };
        match parse::short_ports(&spec, &mut ld.warnings) {
            Ok(ports) => out.extend(ports),
            Err(e) => ld.err(
                item.pos,
                &format!("{path}[{i}]"),
                format!("{path}[{i}]: {e}"),
            ),
        }
    }
    out
}

fn load_volumes(ld: &mut Ld<'_>, t: Option<&Tree>, path: &str) -> Vec<ServiceVolume> {
    let Some(Val::Seq(items)) = t.map(|t| &t.val) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ipath = format!("{path}[{i}]");
        let mut v = match &item.val {
            Val::Map(_) => ServiceVolume {
                kind: item.get("type").map(text).unwrap_or_default(),
                source: item.get("source").map(text).unwrap_or_default(),
                target: item.get("target").map(text).unwrap_or_default(),
                read_only: item.get("read_only").is_some_and(boolean),
                consistency: item.get("consistency").map(text).unwrap_or_default(),
                bind: item
                    .get("bind")
                    .filter(|b| !b.is_null())
                    .map(|b| b.get("propagation").map(text).unwrap_or_default()),
                volume: item
                    .get("volume")
                    .filter(|b| !b.is_null())
                    .map(|b| VolumeOptions {
                        nocopy: b.get("nocopy").is_some_and(boolean),
                        subpath: b.get("subpath").map(text).unwrap_or_default(),
                    }),
                tmpfs: item
                    .get("tmpfs")
                    .filter(|b| !b.is_null())
                    .map(|b| b.get("size").map_or(0, Ld::int)),
                image: item
                    .get("image")
                    .filter(|b| !b.is_null())
                    .map(|b| b.get("subpath").map(text).unwrap_or_default()),
                cluster: item.get("cluster").is_some_and(|b| !b.is_null()),
            },
            _ => match parse::short_volume(&text(item)) {
                Ok(s) => ServiceVolume {
                    kind: s.kind,
                    source: s.source,
                    target: s.target,
                    read_only: s.read_only,
                    bind: s.propagation,
                    volume: s.nocopy.then(|| VolumeOptions {
                        nocopy: true,
                        subpath: String::new(),
                    }),
                    ..ServiceVolume::default()
                },
                Err(e) => {
                    ld.err(item.pos, &ipath, format!("{ipath}: {e}"));
                    continue;
                }
            },
        };
        if v.kind == "bind" {
            if v.source.is_empty() {
                ld.err(
                    item.pos,
                    &ipath,
                    "invalid mount config for type \"bind\": field Source must not be empty",
                );
                continue;
            }
            if v.source.starts_with('~') {
                let home = ld
                    .home
                    .map(str::to_string)
                    .or_else(|| ld.env.get("HOME").cloned());
                match home {
                    Some(h) => v.source = v.source.replacen('~', &h, 1),
                    None => ld
                        .warnings
                        .push("cannot expand '~', because the environment lacks HOME".to_string()),
                }
            }
            if !v.source.starts_with('/') && !is_windows_abs(&v.source) {
                v.source = parse::abs_path(ld.working_dir, &v.source);
            }
        }
        out.push(v);
    }
    out
}

fn is_windows_abs(p: &str) -> bool {
    let b = p.as_bytes();
    p.starts_with("\\\\")
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && matches!(b[2], b'\\' | b'/'))
}

#[allow(clippy::many_single_char_names)]
fn load_service(ld: &mut Ld<'_>, name: &str, pos: Pos, t: &Tree) -> Service {
    let path = format!("services.{name}");
    let p = |k: &str| format!("{path}.{k}");
    let get_text = |k: &str| t.get(k).map(text).unwrap_or_default();
    let mut s = Service {
        name: name.to_string(),
        origin: ld.origin(pos),
        cap_add: t.get("cap_add").map(strings).unwrap_or_default(),
        cap_drop: t.get("cap_drop").map(strings).unwrap_or_default(),
        hostname: get_text("hostname"),
        image: get_text("image"),
        isolation: get_text("isolation"),
        restart: get_text("restart"),
        stop_signal: get_text("stop_signal"),
        user: get_text("user"),
        working_dir: get_text("working_dir"),
        read_only: t.get("read_only").is_some_and(boolean),
        stdin_open: t.get("stdin_open").is_some_and(boolean),
        tty: t.get("tty").is_some_and(boolean),
        init: t.get("init").and_then(|i| match i.val {
            Val::Bool(b) => Some(b),
            _ => None,
        }),
        oom_score_adj: t.get("oom_score_adj").map_or(0, Ld::int),
        dns: t.get("dns").map(strings),
        dns_search: t.get("dns_search").map(strings),
        env_file: t.get("env_file").map(strings).unwrap_or_default(),
        labels: t.get("labels").map(|l| mapping(l, '=')).unwrap_or_default(),
        sysctls: t
            .get("sysctls")
            .map(|l| mapping(l, '='))
            .unwrap_or_default(),
        tmpfs: t.get("tmpfs").map(strings).unwrap_or_default(),
        ..Service::default()
    };
    // mapstructure refuses a `time.Time` (an unquoted timestamp) for a plain
    // string field.
    for (key, field) in [
        ("hostname", "Hostname"),
        ("image", "Image"),
        ("isolation", "Isolation"),
        ("restart", "Restart"),
        ("stop_signal", "StopSignal"),
        ("user", "User"),
        ("working_dir", "WorkingDir"),
    ] {
        if let Some(v) = t.get(key)
            && let Val::Time(ts) = &v.val
        {
            ld.err(
                    v.pos,
                    &p(key),
                    format!(
                        "'{field}' expected type 'string', got unconvertible type 'time.Time', value: '{ts}'"
                    ),
                );
        }
    }
    if let Some(c) = t.get("command") {
        s.command = ld.shell(c, &p("command"));
    }
    if let Some(c) = t.get("entrypoint") {
        s.entrypoint = ld.shell(c, &p("entrypoint"));
    }
    s.configs = file_refs(ld, t.get("configs"), &p("configs"));
    s.secrets = file_refs(ld, t.get("secrets"), &p("secrets"));
    if let Some(c) = t.get("credential_spec") {
        s.credential_spec = CredentialSpec {
            config: c.get("config").map(text).unwrap_or_default(),
            file: c.get("file").map(text).unwrap_or_default(),
            registry: c.get("registry").map(text).unwrap_or_default(),
        };
    }
    s.deploy = load_deploy(ld, t.get("deploy"), &p("deploy"));
    if let Some(h) = t.get("extra_hosts") {
        s.extra_hosts = hosts_list(h);
    }
    if let Some(h) = t.get("healthcheck").filter(|h| !h.is_null()) {
        let hp = p("healthcheck");
        s.healthcheck = Some(Healthcheck {
            test: match h.get("test").map(|x| &x.val) {
                Some(Val::Str(cmd)) => vec!["CMD-SHELL".to_string(), cmd.clone()],
                Some(_) => h.get("test").map(strings).unwrap_or_default(),
                None => Vec::new(),
            },
            timeout: ld.duration(h.get("timeout"), &format!("{hp}.timeout")),
            interval: ld.duration(h.get("interval"), &format!("{hp}.interval")),
            retries: h
                .get("retries")
                .and_then(|r| ld.uint(r, &format!("{hp}.retries"))),
            start_period: ld.duration(h.get("start_period"), &format!("{hp}.start_period")),
            start_interval: ld.duration(h.get("start_interval"), &format!("{hp}.start_interval")),
            disable: h.get("disable").is_some_and(boolean),
        });
    }
    if let Some(l) = t.get("logging").filter(|l| !l.is_null()) {
        s.logging = Some(Logging {
            driver: l.get("driver").map(text).unwrap_or_default(),
            options: l.get("options").map(string_map).unwrap_or_default(),
        });
    }
    match t.get("networks").map(|n| &n.val) {
        Some(Val::Seq(items)) => {
            for i in items {
                s.networks.insert(text(i), None);
            }
        }
        Some(Val::Map(entries)) => {
            for e in entries {
                let cfg = (!e.value.is_null()).then(|| ServiceNetwork {
                    aliases: e.value.get("aliases").map(strings).unwrap_or_default(),
                    driver_opts: e
                        .value
                        .get("driver_opts")
                        .map(string_map)
                        .unwrap_or_default(),
                    ipv4_address: e.value.get("ipv4_address").map(text).unwrap_or_default(),
                    ipv6_address: e.value.get("ipv6_address").map(text).unwrap_or_default(),
                });
                s.networks.insert(e.key.clone(), cfg);
            }
        }
        _ => {}
    }
    s.ports = load_ports(ld, t.get("ports"), &p("ports"));
    s.stop_grace_period = ld.duration(t.get("stop_grace_period"), &p("stop_grace_period"));
    if let Some(Val::Map(entries)) = t.get("ulimits").map(|u| &u.val) {
        for e in entries {
            let u = match &e.value.val {
                Val::Map(_) => Ulimit {
                    single: 0,
                    soft: e.value.get("soft").map_or(0, Ld::int),
                    hard: e.value.get("hard").map_or(0, Ld::int),
                },
                _ => Ulimit {
                    single: Ld::int(&e.value),
                    soft: 0,
                    hard: 0,
                },
            };
            s.ulimits.insert(e.key.clone(), u);
        }
    }
    s.volumes = load_volumes(ld, t.get("volumes"), &p("volumes"));
    // resolveEnvironment: env files first, then `environment`; unset or empty
    // values are taken from the interpolation environment when it has them.
    let mut environment = BTreeMap::new();
    if !s.env_file.is_empty() {
        let mut vars: BTreeMap<String, Option<String>> = BTreeMap::new();
        let env_pos = t.get("env_file").map_or(pos, |e| e.pos);
        for f in &s.env_file {
            let file = parse::abs_path(ld.working_dir, f);
            let real = match ld.confine.map(|c| c.check(Path::new(&file))) {
                None => Ok(PathBuf::from(&file)),
                Some(Ok(real)) => Ok(real),
                Some(Err(e @ Escape::Outside { .. })) => {
                    let field = p("env_file");
                    ld.err(env_pos, &field, format!("{field}: \"{f}\" {e}"));
                    continue;
                }
                Some(Err(Escape::Unresolved { source })) => Err(source),
            };
            match real.and_then(std::fs::read) {
                Ok(bytes) => match parse_env_file(&bytes, ld.env) {
                    Ok(lines) => {
                        for l in lines {
                            match l.split_once('=') {
                                Some((k, v)) => vars.insert(k.to_string(), Some(v.to_string())),
                                None => vars.insert(l, None),
                            };
                        }
                    }
                    Err(e) => ld.err(
                        env_pos,
                        &p("env_file"),
                        format!("invalid env file ({file}): {e}"),
                    ),
                },
                Err(e) => ld.err(env_pos, &p("env_file"), format!("open {file}: {e}")),
            }
        }
        update_environment(&mut environment, vars, ld.env);
    }
    if let Some(e) = t.get("environment") {
        update_environment(&mut environment, mapping_with_nil(e), ld.env);
    }
    s.environment = environment;
    s
}

fn update_environment(
    environment: &mut BTreeMap<String, Option<String>>,
    vars: BTreeMap<String, Option<String>>,
    env: &BTreeMap<String, String>,
) {
    for (k, v) in vars {
        let from_env = env.get(&k);
        let empty = v.as_deref().is_none_or(str::is_empty);
        if empty && from_env.is_some() {
            environment.insert(k, from_env.cloned());
        } else {
            environment.insert(k, v);
        }
    }
}

/// docker's `kvfile.Parse`: `KEY=value` lines; a bare `KEY` takes its value
/// from the environment, or is dropped.
pub fn parse_env_file(bytes: &[u8], env: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid utf8 bytes: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = match line.split_once('=') {
            Some((k, _)) => (k, true),
            None => (line, false),
        };
        if key.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        if key.contains([' ', '\t']) {
            return Err(format!("variable '{key}' contains whitespaces"));
        }
        if has_value {
            out.push(line.to_string());
        } else if let Some(v) = env.get(line) {
            out.push(format!("{key}={v}"));
        }
    }
    Ok(out)
}

/// docker's `transformHostsList`: `host:ip` entries (map form sorted),
/// brackets removed from IPv6 addresses.
fn hosts_list(t: &Tree) -> Vec<String> {
    let raw: Vec<String> = match &t.val {
        Val::Map(entries) => {
            let mut v: Vec<String> = entries
                .iter()
                .filter(|e| !e.value.is_null())
                .map(|e| format!("{}:{}", e.key, text(&e.value)))
                .collect();
            v.sort();
            v
        }
        Val::Seq(items) => items
            .iter()
            .filter_map(|i| {
                let s = text(i);
                if let Some((k, v)) = s.split_once('=') {
                    Some(format!("{k}:{v}"))
                } else {
                    s.split_once(':').map(|(k, v)| format!("{k}:{v}"))
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(|hip| {
            let (host, ip) = hip.split_once(':').unwrap_or((&hip, ""));
            let ip = if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
                &ip[1..ip.len() - 1]
            } else {
                ip
            };
            format!("{host}:{ip}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_parse_like_kvfile() {
        let env: BTreeMap<String, String> = [("FROM_ENV".to_string(), "x".to_string())].into();
        let lines =
            parse_env_file(b"# c\n\nA=1\n  B=two words\nFROM_ENV\nMISSING\n", &env).unwrap();
        assert_eq!(lines, vec!["A=1", "B=two words", "FROM_ENV=x"]);
        assert!(parse_env_file(b"=x\n", &env).is_err());
        assert!(parse_env_file(b"A B=x\n", &env).is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("3.13", "3.5"));
        assert!(!version_at_least("3.4", "3.5"));
        assert!(version_at_least("3.5", "3.5"));
    }

    #[test]
    fn float32_ratios_read_back_short() {
        assert!((f32_round(0.2) - 0.2).abs() < f64::EPSILON);
        assert!((f32_round(0.5) - 0.5).abs() < f64::EPSILON);
    }
}

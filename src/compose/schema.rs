//! The rules of docker's compose v3 JSON schema (`config_schema_v3.13.json`,
//! the newest, which docker/cli uses when `version` is absent or `"3"`),
//! written as Rust data. Messages follow docker's wording
//! (`services.db Additional property profiles is not allowed`,
//! `services.web.deploy.replicas must be a integer`), but every violation is
//! reported, each with its line, instead of docker's single "most specific" one.
//!
//! Older `3.x` versions are checked with the same (3.13) rules, which accept a
//! superset of what they accept.

use std::sync::LazyLock;

use super::parse;
use super::tree::{Tree, Val};
use crate::yaml::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Num,
    Bool,
    Null,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "integer",
            Ty::Num => "number",
            Ty::Bool => "boolean",
            Ty::Null => "null",
        }
    }

    fn matches(self, t: &Tree) -> bool {
        match (self, &t.val) {
            (Ty::Str, Val::Str(_) | Val::Time(_))
            | (Ty::Int, Val::Int(_))
            | (Ty::Num, Val::Int(_) | Val::Float(_))
            | (Ty::Bool, Val::Bool(_))
            | (Ty::Null, Val::Null) => true,
            (Ty::Int, Val::Float(f)) => f.fract() == 0.0,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Duration,
    Ports,
    Expose,
}

/// A schema node.
enum S {
    Any,
    Types(&'static [Ty], Option<Format>),
    Obj(Obj),
    Arr { items: Box<S>, unique: bool },
    OneOf(Vec<S>),
    Enum(&'static [&'static str]),
}

struct Obj {
    props: Vec<(&'static str, S)>,
    /// Schema for keys matching a pattern: `.+` style (any key) or names.
    pattern: Option<(KeyPattern, Box<S>)>,
    additional: bool,
    nullable: bool,
    extensions: bool,
    required: &'static [&'static str],
}

#[derive(Clone, Copy)]
enum KeyPattern {
    Any,
    Name,
    Lower,
}

impl KeyPattern {
    fn matches(self, k: &str) -> bool {
        match self {
            KeyPattern::Any => !k.is_empty(),
            KeyPattern::Name => {
                !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            }
            KeyPattern::Lower => !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase()),
        }
    }
}

fn t(ty: &'static [Ty]) -> S {
    S::Types(ty, None)
}
fn string() -> S {
    t(&[Ty::Str])
}
fn integer() -> S {
    t(&[Ty::Int])
}
fn number() -> S {
    t(&[Ty::Num])
}
fn boolean() -> S {
    t(&[Ty::Bool])
}
fn duration() -> S {
    S::Types(&[Ty::Str], Some(Format::Duration))
}
fn obj(props: Vec<(&'static str, S)>) -> Obj {
    Obj {
        props,
        pattern: None,
        additional: false,
        nullable: false,
        extensions: false,
        required: &[],
    }
}
fn strict(props: Vec<(&'static str, S)>) -> S {
    S::Obj(obj(props))
}
fn open(props: Vec<(&'static str, S)>) -> S {
    S::Obj(Obj {
        additional: true,
        ..obj(props)
    })
}
fn map_of(key: KeyPattern, value: S) -> S {
    S::Obj(Obj {
        pattern: Some((key, Box::new(value))),
        ..obj(vec![])
    })
}
fn arr(items: S) -> S {
    S::Arr {
        items: Box::new(items),
        unique: false,
    }
}
fn unique(items: S) -> S {
    S::Arr {
        items: Box::new(items),
        unique: true,
    }
}
fn list_of_strings() -> S {
    unique(string())
}
fn string_or_list() -> S {
    S::OneOf(vec![string(), list_of_strings()])
}
fn list_or_dict() -> S {
    S::OneOf(vec![
        map_of(KeyPattern::Any, t(&[Ty::Str, Ty::Num, Ty::Null])),
        unique(string()),
    ])
}
fn string_map() -> S {
    map_of(KeyPattern::Any, t(&[Ty::Str, Ty::Num]))
}
fn file_ref() -> S {
    S::OneOf(vec![
        string(),
        open(vec![
            ("source", string()),
            ("target", string()),
            ("uid", string()),
            ("gid", string()),
            ("mode", number()),
        ]),
    ])
}
fn update_config() -> S {
    strict(vec![
        ("parallelism", integer()),
        ("delay", duration()),
        ("failure_action", string()),
        ("monitor", duration()),
        ("max_failure_ratio", number()),
        ("order", S::Enum(&["start-first", "stop-first"])),
    ])
}
fn external() -> S {
    S::OneOf(vec![boolean(), strict(vec![("name", string())])])
}

fn deployment() -> S {
    S::Obj(Obj {
        nullable: true,
        ..obj(vec![
            ("mode", string()),
            ("endpoint_mode", string()),
            ("replicas", integer()),
            ("labels", list_or_dict()),
            ("rollback_config", update_config()),
            ("update_config", update_config()),
            (
                "resources",
                strict(vec![
                    (
                        "limits",
                        strict(vec![
                            ("cpus", string()),
                            ("memory", string()),
                            ("pids", integer()),
                        ]),
                    ),
                    (
                        "reservations",
                        strict(vec![
                            ("cpus", string()),
                            ("memory", string()),
                            (
                                "generic_resources",
                                arr(strict(vec![(
                                    "discrete_resource_spec",
                                    strict(vec![("kind", string()), ("value", number())]),
                                )])),
                            ),
                        ]),
                    ),
                ]),
            ),
            (
                "restart_policy",
                strict(vec![
                    ("condition", string()),
                    ("delay", duration()),
                    ("max_attempts", integer()),
                    ("window", duration()),
                ]),
            ),
            (
                "placement",
                strict(vec![
                    ("constraints", arr(string())),
                    ("preferences", arr(strict(vec![("spread", string())]))),
                    ("max_replicas_per_node", integer()),
                ]),
            ),
        ])
    })
}

fn service() -> S {
    let cmd = || S::OneOf(vec![string(), arr(string())]);
    S::Obj(Obj {
        extensions: true,
        ..obj(vec![
            ("deploy", deployment()),
            (
                "build",
                S::OneOf(vec![
                    string(),
                    open(vec![
                        ("context", string()),
                        ("dockerfile", string()),
                        ("args", list_or_dict()),
                        ("labels", list_or_dict()),
                        ("cache_from", list_of_strings()),
                        ("network", string()),
                        ("target", string()),
                        ("shm_size", t(&[Ty::Int, Ty::Str])),
                        ("extra_hosts", list_or_dict()),
                    ]),
                ]),
            ),
            ("cap_add", unique(string())),
            ("cap_drop", unique(string())),
            ("cgroupns_mode", string()),
            ("cgroup_parent", string()),
            ("command", cmd()),
            ("configs", arr(file_ref())),
            ("container_name", string()),
            (
                "credential_spec",
                strict(vec![
                    ("config", string()),
                    ("file", string()),
                    ("registry", string()),
                ]),
            ),
            ("depends_on", list_of_strings()),
            ("devices", unique(string())),
            ("dns", string_or_list()),
            ("dns_search", string_or_list()),
            ("domainname", string()),
            ("entrypoint", cmd()),
            ("env_file", string_or_list()),
            ("environment", list_or_dict()),
            (
                "expose",
                unique(S::Types(&[Ty::Str, Ty::Num], Some(Format::Expose))),
            ),
            ("external_links", unique(string())),
            ("extra_hosts", list_or_dict()),
            (
                "healthcheck",
                strict(vec![
                    ("disable", boolean()),
                    ("interval", duration()),
                    ("retries", number()),
                    ("test", cmd()),
                    ("timeout", duration()),
                    ("start_period", duration()),
                    ("start_interval", duration()),
                ]),
            ),
            ("hostname", string()),
            ("image", string()),
            ("init", boolean()),
            ("ipc", string()),
            ("isolation", string()),
            ("labels", list_or_dict()),
            ("links", unique(string())),
            (
                "logging",
                strict(vec![
                    ("driver", string()),
                    (
                        "options",
                        map_of(KeyPattern::Any, t(&[Ty::Str, Ty::Num, Ty::Null])),
                    ),
                ]),
            ),
            ("mac_address", string()),
            ("network_mode", string()),
            (
                "networks",
                S::OneOf(vec![
                    list_of_strings(),
                    map_of(
                        KeyPattern::Name,
                        S::OneOf(vec![
                            strict(vec![
                                ("aliases", list_of_strings()),
                                ("driver_opts", string_map()),
                                ("ipv4_address", string()),
                                ("ipv6_address", string()),
                            ]),
                            t(&[Ty::Null]),
                        ]),
                    ),
                ]),
            ),
            ("pid", t(&[Ty::Str, Ty::Null])),
            (
                "ports",
                unique(S::OneOf(vec![
                    S::Types(&[Ty::Num], Some(Format::Ports)),
                    S::Types(&[Ty::Str], Some(Format::Ports)),
                    strict(vec![
                        ("mode", string()),
                        ("target", integer()),
                        ("published", integer()),
                        ("protocol", string()),
                    ]),
                ])),
            ),
            ("privileged", boolean()),
            ("read_only", boolean()),
            ("restart", string()),
            ("security_opt", unique(string())),
            ("shm_size", t(&[Ty::Num, Ty::Str])),
            ("secrets", arr(file_ref())),
            ("sysctls", list_or_dict()),
            ("stdin_open", boolean()),
            ("stop_grace_period", duration()),
            ("stop_signal", string()),
            ("tmpfs", string_or_list()),
            ("tty", boolean()),
            (
                "ulimits",
                map_of(
                    KeyPattern::Lower,
                    S::OneOf(vec![
                        integer(),
                        S::Obj(Obj {
                            required: &["soft", "hard"],
                            ..obj(vec![("hard", integer()), ("soft", integer())])
                        }),
                    ]),
                ),
            ),
            ("oom_score_adj", integer()),
            ("user", string()),
            ("userns_mode", string()),
            (
                "volumes",
                arr(S::OneOf(vec![
                    string(),
                    S::Obj(Obj {
                        required: &["type"],
                        ..obj(vec![
                            ("type", string()),
                            ("source", string()),
                            ("target", string()),
                            ("read_only", boolean()),
                            ("consistency", string()),
                            ("bind", open(vec![("propagation", string())])),
                            ("volume", open(vec![("nocopy", boolean())])),
                            ("tmpfs", open(vec![("size", integer())])),
                        ])
                    }),
                ])),
            ),
            ("working_dir", string()),
        ])
    })
}

fn top_level() -> S {
    let section = |def: S| map_of(KeyPattern::Name, def);
    let network = S::Obj(Obj {
        nullable: true,
        extensions: true,
        ..obj(vec![
            ("name", string()),
            ("driver", string()),
            ("driver_opts", string_map()),
            (
                "ipam",
                strict(vec![
                    ("driver", string()),
                    ("config", arr(strict(vec![("subnet", string())]))),
                ]),
            ),
            ("external", external()),
            ("internal", boolean()),
            ("attachable", boolean()),
            ("labels", list_or_dict()),
        ])
    });
    let volume = S::Obj(Obj {
        nullable: true,
        extensions: true,
        ..obj(vec![
            ("name", string()),
            ("driver", string()),
            ("driver_opts", string_map()),
            ("external", external()),
            ("labels", list_or_dict()),
            ("x-cluster-spec", S::Any),
        ])
    });
    let file_obj = |secret: bool| {
        let mut props = vec![
            ("name", string()),
            ("file", string()),
            (
                "external",
                S::OneOf(vec![boolean(), open(vec![("name", string())])]),
            ),
            ("labels", list_or_dict()),
            ("template_driver", string()),
        ];
        if secret {
            props.push(("driver", string()));
            props.push(("driver_opts", string_map()));
        }
        S::Obj(Obj {
            extensions: true,
            ..obj(props)
        })
    };
    S::Obj(Obj {
        extensions: true,
        ..obj(vec![
            ("version", string()),
            ("services", section(service())),
            (
                "networks",
                S::Obj(Obj {
                    additional: true,
                    pattern: Some((KeyPattern::Name, Box::new(network))),
                    ..obj(vec![])
                }),
            ),
            ("volumes", section(volume)),
            ("secrets", section(file_obj(true))),
            ("configs", section(file_obj(false))),
        ])
    })
}

static SCHEMA: LazyLock<S> = LazyLock::new(top_level);

/// A schema violation: where, at which path, and docker's description.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

/// Check a document against the v3 rules; every violation is returned.
#[must_use]
pub fn validate(doc: &Tree) -> Vec<Violation> {
    let mut out = Vec::new();
    check(&SCHEMA, doc, doc.pos, "", &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn field(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

fn describe(types: &[Ty]) -> String {
    let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    match names.as_slice() {
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
        [] => String::new(),
    }
}

fn check(s: &S, v: &Tree, pos: Pos, path: &str, out: &mut Vec<Violation>) {
    let mut fail = |message: String| {
        out.push(Violation {
            pos,
            path: path.to_string(),
            message: format!("{} {message}", field(path)),
        });
    };
    match s {
        S::Any => {}
        S::Types(types, format) => {
            if !types.iter().any(|t| t.matches(v)) {
                fail(format!("must be a {}", describe(types)));
                return;
            }
            let Some(format) = format else { return };
            let ok = match (format, &v.val) {
                (Format::Duration, Val::Str(s)) => parse::go_duration(s).is_ok(),
                (Format::Ports, Val::Str(s)) => parse::port_spec(s).is_ok(),
                // gojsonschema sees RFC 3339 text: neither a duration nor a port.
                (Format::Duration | Format::Ports, Val::Time(_)) => false,
                (Format::Ports, Val::Int(i)) => parse::port_spec(&i.to_string()).is_ok(),
                (Format::Ports, Val::Float(f)) => {
                    parse::port_spec(&super::tree::go_float(*f)).is_ok()
                }
                _ => true,
            };
            if !ok {
                let name = match format {
                    Format::Duration => "duration",
                    Format::Ports => "ports",
                    Format::Expose => "expose",
                };
                fail(format!("Does not match format '{name}'"));
            }
        }
        S::Enum(options) => match &v.val {
            Val::Str(s) if options.contains(&s.as_str()) => {}
            Val::Str(_) | Val::Time(_) => fail(format!(
                "must be one of the following: {}",
                options
                    .iter()
                    .map(|o| format!("\"{o}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => fail("must be a string".into()),
        },
        S::Arr { items, unique } => {
            let Val::Seq(elems) = &v.val else {
                fail("must be a list".into());
                return;
            };
            for (i, e) in elems.iter().enumerate() {
                check(items, e, e.pos, &format!("{path}.{i}"), out);
            }
            if *unique {
                for (i, a) in elems.iter().enumerate() {
                    if elems[..i].iter().any(|b| same(a, b)) {
                        out.push(Violation {
                            pos: a.pos,
                            path: path.to_string(),
                            message: format!("{} array items[{i}] must be unique", field(path)),
                        });
                    }
                }
            }
        }
        S::OneOf(options) => {
            let mut best: Option<Vec<Violation>> = None;
            for o in options {
                let mut sub = Vec::new();
                check(o, v, pos, path, &mut sub);
                if sub.is_empty() {
                    return;
                }
                // Prefer the branch whose type matched: it reports deeper
                // problems, or a format the value breaks (`'ports'`).
                let type_matched = sub
                    .iter()
                    .any(|x| x.path != path || !x.message.contains("must be a"));
                if best.is_none() || type_matched {
                    best = Some(sub);
                }
            }
            match best {
                Some(b)
                    if b.iter()
                        .any(|x| x.path != path || !x.message.contains("must be a")) =>
                {
                    out.extend(b);
                }
                _ => fail(format!("must be a {}", one_of_types(options))),
            }
        }
        S::Obj(o) => {
            if v.is_null() && o.nullable {
                return;
            }
            let Some(entries) = v.entries() else {
                fail(if o.nullable {
                    "must be a mapping or null".into()
                } else {
                    "must be a mapping".into()
                });
                return;
            };
            for req in o.required {
                if !entries.iter().any(|e| e.key == *req) {
                    fail(format!("{req} is required"));
                }
            }
            for e in entries {
                let sub_path = join(path, &e.key);
                if let Some((_, ps)) = o.props.iter().find(|(k, _)| *k == e.key) {
                    check(ps, &e.value, e.key_pos, &sub_path, out);
                } else if o.extensions && e.key.starts_with("x-") {
                } else if let Some((kp, ps)) =
                    o.pattern.as_ref().filter(|(kp, _)| kp.matches(&e.key))
                {
                    let _ = kp;
                    check(ps, &e.value, e.key_pos, &sub_path, out);
                } else if !o.additional {
                    out.push(Violation {
                        pos: e.key_pos,
                        path: path.to_string(),
                        message: format!(
                            "{} Additional property {} is not allowed",
                            field(path),
                            e.key
                        ),
                    });
                }
            }
        }
    }
}

fn one_of_types(options: &[S]) -> String {
    let names: Vec<&str> = options
        .iter()
        .flat_map(|o| match o {
            S::Types(ts, _) => ts.iter().map(|t| t.name()).collect::<Vec<_>>(),
            S::Obj(_) => vec!["mapping"],
            S::Arr { .. } => vec!["list"],
            S::OneOf(_) | S::Any | S::Enum(_) => vec!["value"],
        })
        .collect();
    describe_names(&names)
}

fn describe_names(names: &[&str]) -> String {
    let mut uniq: Vec<&str> = Vec::new();
    for n in names {
        if !uniq.contains(n) {
            uniq.push(n);
        }
    }
    match uniq.as_slice() {
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
        [] => String::new(),
    }
}

#[allow(clippy::cast_precision_loss)]
fn same(a: &Tree, b: &Tree) -> bool {
    match (&a.val, &b.val) {
        (Val::Seq(x), Val::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Val::Map(x), Val::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|e| y.iter().any(|f| f.key == e.key && same(&e.value, &f.value)))
        }
        (Val::Int(x), Val::Float(y)) | (Val::Float(y), Val::Int(x)) => (*x as f64 - y).abs() == 0.0,
        (x, y) => x == y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violations(text: &str) -> Vec<Violation> {
        let mut docs = crate::yaml::parse(text).unwrap();
        validate(&Tree::from_node(&docs.remove(0)))
    }

    #[test]
    fn unknown_service_keys_are_rejected_like_docker() {
        let v = violations("services:\n  db:\n    image: x\n    profiles: [a]\n");
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "services.db Additional property profiles is not allowed"
        );
        assert_eq!(v[0].pos.line, 4);
    }

    #[test]
    fn wrong_types_and_formats_are_reported_with_positions() {
        let v = violations(
            "services:\n  web:\n    image: x\n    deploy:\n      replicas: \"2\"\n    stop_grace_period: 10\n    healthcheck:\n      interval: 10 s\n    ports:\n      - \"80:80/xtp\"\n",
        );
        let msgs: Vec<&str> = v.iter().map(|x| x.message.as_str()).collect();
        assert!(
            msgs.contains(&"services.web.deploy.replicas must be a integer"),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"services.web.stop_grace_period must be a string"),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"services.web.healthcheck.interval Does not match format 'duration'"),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m.contains("ports")), "{msgs:?}");
        assert_eq!(
            v.iter()
                .find(|x| x.path.ends_with("replicas"))
                .unwrap()
                .pos
                .line,
            5
        );
    }

    #[test]
    fn extensions_and_nulls_are_allowed_where_docker_allows_them() {
        let v = violations(
            "x-a: 1\nservices:\n  web:\n    image: x\n    x-b: 2\n    deploy:\nnetworks:\n  n:\nvolumes:\n  v:\n",
        );
        assert!(v.is_empty(), "{v:?}");
    }
}

//! Variable substitution, as docker/cli's `compose/template` and
//! `compose/interpolation` packages do it.
//!
//! The grammar is one regular expression,
//! `\$(?i:(\$)|([_a-z][_a-z0-9]*(?::?[-?][^}]*)?)|{([_a-z][_a-z0-9]*(?::?[-?][^}]*)?)}|())`,
//! applied left to right without re-scanning replacements. Consequences that
//! docker users meet (all tested below):
//!
//! * a default is never interpolated again, and the first `}` ends it:
//!   `${A:-${B:-x}}` gives `${B:-x` followed by a literal `}`;
//! * values taken from the environment are used verbatim (`$apr1$…` stays);
//! * the brace-less form takes an operator too: `$HOST-x` is `${HOST-x}`;
//! * `${VAR:+alt}` is not part of the grammar: docker reports it as an
//!   invalid interpolation format, and so do we;
//! * the substitution functions are tried in docker's order (`:-`, `-`, `:?`,
//!   `?`), so a `-` inside a `?` message makes it a default;
//! * after an error, a later variable in the same string resets docker's error
//!   variable (the failed part becomes empty). We keep that result and add a
//!   warning rather than failing where docker succeeds.
//!
//! Interpolation runs on every string scalar of the document (keys are left
//! alone). When a substitution changed a value at a typed path (replicas,
//! ports, booleans…), the result is cast back like docker's
//! `interpolateTypeCastMapping`.

use std::collections::BTreeMap;

use super::tree::{Tree, Val, go_parse_float};

/// A failed substitution: the template (or docker's message in its place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
}

/// Substitute variables in `template`. Unset variables without a default
/// become empty and are reported in `unset`.
pub fn substitute(
    template: &str,
    env: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
) -> Result<String, TemplateError> {
    let bytes = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    let mut err: Option<TemplateError> = None;
    let mut swallowed: Option<TemplateError> = None;
    let mut i = 0;
    let mut last = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&template[last..i]);
        let (consumed, action) = scan(&template[i + 1..]);
        i += 1 + consumed;
        last = i;
        match action {
            Action::Escaped => out.push('$'),
            Action::Invalid => {
                if let Some(e) = err.take() {
                    swallowed = Some(e);
                }
                err = Some(TemplateError {
                    message: format!("{template:?}"),
                });
            }
            Action::Subst(sub) => {
                let (value, e) = apply(sub, env, unset);
                if let Some(prev) = err.take() {
                    swallowed = Some(prev);
                }
                err = e;
                out.push_str(&value);
            }
        }
    }
    out.push_str(&template[last..]);
    if let Some(e) = err {
        return Err(e);
    }
    if let Some(e) = swallowed {
        unset.push(format!(
            "docker ignores this error because a later variable in the same value succeeded: {}",
            e.message
        ));
    }
    Ok(out)
}

enum Action<'a> {
    Escaped,
    Subst(&'a str),
    Invalid,
}

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_char(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// Length of `[_a-z][_a-z0-9]*(?::?[-?][^}]*)?` at the start of `s`.
fn subst_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.is_empty() || !is_name_start(b[0]) {
        return None;
    }
    let mut n = 1;
    while n < b.len() && is_name_char(b[n]) {
        n += 1;
    }
    let mut op = n;
    if op < b.len() && b[op] == b':' {
        op += 1;
    }
    if op < b.len() && (b[op] == b'-' || b[op] == b'?') {
        let mut end = op + 1;
        while end < b.len() && b[end] != b'}' {
            end += 1;
        }
        n = end;
    }
    Some(n)
}

/// Scan what follows a `$`: how many bytes it consumes and what to do.
fn scan(rest: &str) -> (usize, Action<'_>) {
    let b = rest.as_bytes();
    if b.first() == Some(&b'$') {
        return (1, Action::Escaped);
    }
    if let Some(n) = subst_len(rest) {
        return (n, Action::Subst(&rest[..n]));
    }
    if b.first() == Some(&b'{')
        && let Some(n) = subst_len(&rest[1..])
        && b.get(1 + n) == Some(&b'}')
    {
        return (n + 2, Action::Subst(&rest[1..=n]));
    }
    (0, Action::Invalid)
}

fn apply(
    sub: &str,
    env: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
) -> (String, Option<TemplateError>) {
    let lookup = |k: &str| env.get(k).map(String::as_str);
    if let Some((name, default)) = sub.split_once(":-") {
        return match lookup(name) {
            Some(v) if !v.is_empty() => (v.to_string(), None),
            _ => (default.to_string(), None),
        };
    }
    if let Some((name, default)) = sub.split_once('-') {
        return match lookup(name) {
            Some(v) => (v.to_string(), None),
            None => (default.to_string(), None),
        };
    }
    for (sep, non_empty) in [(":?", true), ("?", false)] {
        if let Some((name, msg)) = sub.split_once(sep) {
            return match lookup(name) {
                Some(v) if !non_empty || !v.is_empty() => (v.to_string(), None),
                _ => (
                    String::new(),
                    Some(TemplateError {
                        message: format!("required variable {name} is missing a value: {msg}"),
                    }),
                ),
            };
        }
    }
    if let Some(v) = lookup(sub) {
        (v.to_string(), None)
    } else {
        unset.push(sub.to_string());
        (String::new(), None)
    }
}

/// How an interpolated value at a typed path is cast back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    Int,
    Float,
    Bool,
}

/// docker's `interpolateTypeCastMapping`. `*` matches any key, `[]` a list item.
const CASTS: &[(&[&str], Cast)] = &[
    (&["services", "*", "configs", "[]", "mode"], Cast::Int),
    (&["services", "*", "secrets", "[]", "mode"], Cast::Int),
    (&["services", "*", "healthcheck", "retries"], Cast::Int),
    (&["services", "*", "healthcheck", "disable"], Cast::Bool),
    (&["services", "*", "deploy", "replicas"], Cast::Int),
    (
        &["services", "*", "deploy", "update_config", "parallelism"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "update_config",
            "max_failure_ratio",
        ],
        Cast::Float,
    ),
    (
        &["services", "*", "deploy", "rollback_config", "parallelism"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "rollback_config",
            "max_failure_ratio",
        ],
        Cast::Float,
    ),
    (
        &["services", "*", "deploy", "restart_policy", "max_attempts"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "placement",
            "max_replicas_per_node",
        ],
        Cast::Int,
    ),
    (&["services", "*", "ports", "[]", "target"], Cast::Int),
    (&["services", "*", "ports", "[]", "published"], Cast::Int),
    (&["services", "*", "ulimits", "*"], Cast::Int),
    (&["services", "*", "ulimits", "*", "hard"], Cast::Int),
    (&["services", "*", "ulimits", "*", "soft"], Cast::Int),
    (&["services", "*", "privileged"], Cast::Bool),
    (&["services", "*", "oom_score_adj"], Cast::Int),
    (&["services", "*", "read_only"], Cast::Bool),
    (&["services", "*", "stdin_open"], Cast::Bool),
    (&["services", "*", "tty"], Cast::Bool),
    (&["services", "*", "volumes", "[]", "read_only"], Cast::Bool),
    (
        &["services", "*", "volumes", "[]", "volume", "nocopy"],
        Cast::Bool,
    ),
    (&["networks", "*", "external"], Cast::Bool),
    (&["networks", "*", "internal"], Cast::Bool),
    (&["networks", "*", "attachable"], Cast::Bool),
    (&["volumes", "*", "external"], Cast::Bool),
    (&["secrets", "*", "external"], Cast::Bool),
    (&["configs", "*", "external"], Cast::Bool),
];

/// The cast for a path of keys (`[]` for list items), if any.
#[must_use]
pub fn cast_for(path: &[&str]) -> Option<Cast> {
    CASTS.iter().find_map(|(pattern, cast)| {
        (pattern.len() == path.len() && pattern.iter().zip(path).all(|(p, k)| *p == "*" || p == k))
            .then_some(*cast)
    })
}

/// Cast a substituted string like docker's `toInt` / `toFloat` / `toBoolean`.
pub fn cast(value: &str, cast: Cast) -> Result<Val, String> {
    match cast {
        Cast::Int => {
            let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("strconv.Atoi: parsing {value:?}: invalid syntax"));
            }
            value
                .parse::<i64>()
                .map(Val::Int)
                .map_err(|_| format!("strconv.Atoi: parsing {value:?}: value out of range"))
        }
        Cast::Float => go_parse_float(value)
            .map(Val::Float)
            .ok_or_else(|| format!("strconv.ParseFloat: parsing {value:?}: invalid syntax")),
        Cast::Bool => match value.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(Val::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(Val::Bool(false)),
            _ => Err(format!("invalid boolean: {value}")),
        },
    }
}

/// A problem found while interpolating, at a key path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: Vec<String>,
    pub pos: crate::yaml::Pos,
    pub message: String,
}

/// Interpolate every string of the document in place. Returns the problems
/// (errors) and the warnings (unset variables).
pub fn interpolate_tree(
    tree: &mut Tree,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) {
    let mut path = Vec::new();
    walk(tree, &mut path, env, problems, warnings);
}

fn dotted(path: &[String]) -> String {
    path.join(".")
}

fn walk(
    tree: &mut Tree,
    path: &mut Vec<String>,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) {
    match &mut tree.val {
        Val::Str(s) => {
            let mut unset = Vec::new();
            match substitute(s, env, &mut unset) {
                Err(e) => problems.push(Problem {
                    path: path.clone(),
                    pos: tree.pos,
                    message: format!(
                        "invalid interpolation format for {}: {}; you may need to escape any $ with another $",
                        dotted(path),
                        if e.message.starts_with('"') {
                            e.message
                        } else {
                            format!("{:?}", e.message)
                        }
                    ),
                }),
                Ok(new) => {
                    for u in unset {
                        if u.starts_with("docker ignores") {
                            warnings.push(format!("{} (line {}): {u}", dotted(path), tree.pos.line));
                        } else {
                            warnings.push(format!(
                                "The {u:?} variable is not set. Defaulting to a blank string. ({} line {})",
                                dotted(path),
                                tree.pos.line
                            ));
                        }
                    }
                    if new == *s {
                        return;
                    }
                    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
                    match cast_for(&keys) {
                        None => *s = new,
                        Some(c) => match cast(&new, c) {
                            Ok(v) => tree.val = v,
                            Err(e) => problems.push(Problem {
                                path: path.clone(),
                                pos: tree.pos,
                                message: format!(
                                    "error while interpolating {}: failed to cast to expected type: {e}",
                                    dotted(path)
                                ),
                            }),
                        },
                    }
                }
            }
        }
        Val::Seq(items) => {
            for item in items {
                path.push("[]".into());
                walk(item, path, env, problems, warnings);
                path.pop();
            }
        }
        Val::Map(entries) => {
            for e in entries {
                path.push(e.key.clone());
                walk(&mut e.value, path, env, problems, warnings);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn sub(t: &str, e: &BTreeMap<String, String>) -> Result<String, TemplateError> {
        substitute(t, e, &mut Vec::new())
    }

    #[test]
    fn every_form_substitutes() {
        let e = env(&[("SET", "v"), ("EMPTY", "")]);
        assert_eq!(sub("$SET", &e).unwrap(), "v");
        assert_eq!(sub("${SET}", &e).unwrap(), "v");
        assert_eq!(sub("a${SET}b", &e).unwrap(), "avb");
        assert_eq!(sub("${EMPTY:-d}", &e).unwrap(), "d");
        assert_eq!(sub("${EMPTY-d}", &e).unwrap(), "");
        assert_eq!(sub("${UNSET-d}", &e).unwrap(), "d");
        assert_eq!(sub("${UNSET:-d}", &e).unwrap(), "d");
        assert_eq!(sub("${SET:-d}", &e).unwrap(), "v");
        assert_eq!(sub("${SET:?boom}", &e).unwrap(), "v");
        assert_eq!(sub("${EMPTY?boom}", &e).unwrap(), "");
        assert_eq!(sub("$$", &e).unwrap(), "$");
        assert_eq!(sub("$${X:-y}", &e).unwrap(), "${X:-y}");
        assert_eq!(sub("${AUTH_URL:-}", &e).unwrap(), "");
    }

    #[test]
    fn unset_without_default_is_empty_and_reported() {
        let mut unset = Vec::new();
        assert_eq!(
            substitute("a${NOPE}b", &env(&[]), &mut unset).unwrap(),
            "ab"
        );
        assert_eq!(unset, vec!["NOPE".to_string()]);
    }

    #[test]
    fn required_forms_fail_with_the_variable_name() {
        let e = env(&[("EMPTY", "")]);
        let err = sub("${DOMAIN?Variable not set}", &e).unwrap_err();
        assert_eq!(
            err.message,
            "required variable DOMAIN is missing a value: Variable not set"
        );
        let err = sub("${EMPTY:?must be set}", &e).unwrap_err();
        assert!(err.message.contains("required variable EMPTY"), "{err:?}");
    }

    #[test]
    fn defaults_are_not_reinterpolated_and_the_first_brace_ends_them() {
        let e = env(&[]);
        assert_eq!(sub("${P:-$2y$05$oZcj}", &e).unwrap(), "$2y$05$oZcj");
        assert_eq!(sub("${A:-${B:-x}}", &e).unwrap(), "${B:-x}");
        assert_eq!(
            sub(r#"${P:-{{ index .Service.Labels "ns"}}}"#, &e).unwrap(),
            r#"{{ index .Service.Labels "ns"}}"#
        );
    }

    #[test]
    fn environment_values_are_not_reinterpolated() {
        let e = env(&[("H", "$apr1$89eqM5Ro$x")]);
        assert_eq!(sub("admin:${H}", &e).unwrap(), "admin:$apr1$89eqM5Ro$x");
    }

    #[test]
    fn braceless_form_takes_an_operator_to_the_end() {
        let e = env(&[("HOST", "h")]);
        assert_eq!(sub("$HOST-x.com/p", &e).unwrap(), "h");
        assert_eq!(sub("$UNSET-x.com/p", &e).unwrap(), "x.com/p");
        assert_eq!(sub("$HOST:8080", &e).unwrap(), "h:8080");
    }

    #[test]
    fn invalid_templates_fail() {
        let e = env(&[("V", "x")]);
        assert!(sub("${V:+alt}", &e).is_err());
        assert!(sub("cost 5$", &e).is_err());
        assert!(sub("${", &e).is_err());
        assert!(sub("$(cmd)", &e).is_err());
        assert!(sub("$1", &e).is_err());
    }

    #[test]
    fn a_dash_in_a_required_message_makes_it_a_default() {
        assert_eq!(sub("${D?not-set}", &env(&[])).unwrap(), "set");
    }

    #[test]
    fn casts_follow_docker() {
        assert_eq!(cast("3", Cast::Int), Ok(Val::Int(3)));
        assert!(cast("3.5", Cast::Int).is_err());
        assert_eq!(cast(".5", Cast::Float), Ok(Val::Float(0.5)));
        assert_eq!(cast("Yes", Cast::Bool), Ok(Val::Bool(true)));
        assert_eq!(cast("off", Cast::Bool), Ok(Val::Bool(false)));
        assert!(cast("maybe", Cast::Bool).is_err());
        assert_eq!(
            cast_for(&["services", "web", "deploy", "replicas"]),
            Some(Cast::Int)
        );
        assert_eq!(
            cast_for(&["services", "web", "ports", "[]", "published"]),
            Some(Cast::Int)
        );
        assert_eq!(cast_for(&["services", "web", "image"]), None);
    }

    #[test]
    fn only_changed_strings_are_cast() {
        let mut docs = crate::yaml::parse("services:\n  a:\n    deploy:\n      replicas: ${R:-3}\n  b:\n    deploy:\n      replicas: \"2\"\n").unwrap();
        let mut t = Tree::from_node(&docs.remove(0));
        let (mut p, mut w) = (Vec::new(), Vec::new());
        interpolate_tree(&mut t, &env(&[]), &mut p, &mut w);
        assert!(p.is_empty());
        let s = t.get("services").unwrap();
        assert_eq!(
            s.get("a")
                .unwrap()
                .get("deploy")
                .unwrap()
                .get("replicas")
                .unwrap()
                .val,
            Val::Int(3)
        );
        assert_eq!(
            s.get("b")
                .unwrap()
                .get("deploy")
                .unwrap()
                .get("replicas")
                .unwrap()
                .val,
            Val::Str("2".into())
        );
    }
}

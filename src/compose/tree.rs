//! The compose document as docker/cli sees it after `yaml.Unmarshal` into
//! `interface{}`: scalars typed by gopkg.in/yaml.v3's resolver (plain `0400`
//! is octal 256, `0:0` and `yes` stay strings, `08` is the float 8), with the
//! position of every node and key kept for error messages.

use crate::yaml::{self, Pos, Style};

/// A typed node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub pos: Pos,
    pub val: Val,
}

/// A mapping entry: key text, key position and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Tree,
}

/// A value typed like yaml.v3 types it for an `interface{}` target.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A plain scalar yaml.v3 resolves to a `time.Time` (`2001-12-14`,
    /// `2001-12-14T21:59:43.1-05:00`), held as Go's `Time.String()` of it.
    /// JSON-schema sees a string; `fmt.Sprint` gives this text; a typed
    /// string field refuses it.
    Time(String),
    Seq(Vec<Tree>),
    Map(Vec<Entry>),
}

impl Tree {
    /// Convert a YAML node (merge keys already applied).
    #[must_use]
    pub fn from_node(node: &yaml::Node) -> Tree {
        let val = match &node.value {
            yaml::Value::Scalar(s) => resolve(s),
            yaml::Value::Seq(items) => Val::Seq(items.iter().map(Tree::from_node).collect()),
            yaml::Value::Map(pairs) => Val::Map(
                pairs
                    .iter()
                    .map(|(k, v)| Entry {
                        key: k.as_str().map_or_else(|| "?".to_string(), str::to_string),
                        key_pos: k.pos,
                        value: Tree::from_node(v),
                    })
                    .collect(),
            ),
        };
        Tree { pos: node.pos, val }
    }

    /// The entries of a mapping, if it is one.
    #[must_use]
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.val {
            Val::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Tree> {
        self.entries()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    /// The string value, if it is a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.val {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self.val, Val::Null)
    }

    /// The name of this value's JSON-schema type, as docker's messages use it.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match &self.val {
            Val::Null => "null",
            Val::Bool(_) => "boolean",
            Val::Int(_) => "integer",
            Val::Float(f) if f.fract() == 0.0 && f.is_finite() => "integer",
            Val::Float(_) => "number",
            Val::Str(_) | Val::Time(_) => "string",
            Val::Seq(_) => "array",
            Val::Map(_) => "object",
        }
    }
}

impl Val {
    /// `fmt.Sprint(v)` of the Go value, for scalars.
    #[must_use]
    pub fn go_string(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Bool(b) => Some(b.to_string()),
            Val::Int(i) => Some(i.to_string()),
            Val::Float(f) => Some(go_float(*f)),
            Val::Str(s) | Val::Time(s) => Some(s.clone()),
            Val::Seq(_) | Val::Map(_) => Some(String::from("<complex>")),
        }
    }
}

/// Resolve a scalar the way yaml.v3 does for an `interface{}` target.
#[must_use]
pub fn resolve(s: &yaml::Scalar) -> Val {
    match s.tag.as_deref() {
        Some("str") => return Val::Str(s.text.clone()),
        Some("int") => {
            if let Some(i) = go_parse_int(&s.text.replace('_', "")) {
                return Val::Int(i);
            }
        }
        Some("float") => {
            if let Ok(f) = s.text.parse::<f64>() {
                return Val::Float(f);
            }
        }
        Some("bool") => match s.text.as_str() {
            "true" | "True" | "TRUE" => return Val::Bool(true),
            "false" | "False" | "FALSE" => return Val::Bool(false),
            _ => {}
        },
        Some("null") => return Val::Null,
        Some("timestamp") => {
            if let Some(t) = parse_timestamp(&s.text) {
                return Val::Time(t);
            }
        }
        _ => {}
    }
    if s.style != Style::Plain {
        return Val::Str(s.text.clone());
    }
    resolve_plain(&s.text)
}

/// yaml.v3's `resolve("", in)` for a plain scalar.
#[must_use]
pub fn resolve_plain(t: &str) -> Val {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Val::Null,
        "true" | "True" | "TRUE" => return Val::Bool(true),
        "false" | "False" | "FALSE" => return Val::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Val::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Val::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Val::Float(f64::NAN),
        _ => {}
    }
    let first = t.as_bytes()[0];
    if first == b'.' {
        if let Some(f) = go_parse_float(t) {
            return Val::Float(f);
        }
        return Val::Str(t.to_string());
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Val::Str(t.to_string());
    }
    if let Some(ts) = parse_timestamp(t) {
        return Val::Time(ts);
    }
    let plain = t.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Val::Int(i);
    }
    if is_yaml_float(&plain)
        && let Some(f) = go_parse_float(&plain)
    {
        return Val::Float(f);
    }
    for (prefix, neg, radix) in [
        ("0b", false, 2),
        ("-0b", true, 2),
        ("0o", false, 8),
        ("-0o", true, 8),
    ] {
        if let Some(rest) = plain.strip_prefix(prefix)
            && let Ok(v) = i64::from_str_radix(rest, radix)
            && !rest.starts_with(['+', '-'])
        {
            return Val::Int(if neg { -v } else { v });
        }
    }
    Val::Str(t.to_string())
}

/// yaml.v3's `parseTimestamp`: `YYYY-` then the first of Go layouts
/// `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`,
/// `2006-1-2 15:4:5.999999999` and `2006-1-2` that `time.Parse` accepts;
/// the result rendered by Go's `Time.String()`.
///
/// A numeric offset becomes a nameless fixed zone (`+0200 +0200`) unless it
/// equals the local zone's, which for docker's CLI in a container (and
/// here) is UTC: `Z`, `+00:00` and no offset all print `+0000 UTC`.
#[must_use]
pub fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let year: i64 = s[..4].parse().ok()?;
    let mut rest = &b[5..];
    // getnum(value, false): one digit, or two when the second is a digit.
    let num = |r: &mut &[u8]| -> Option<u32> {
        let d0 = *r.first().filter(|c| c.is_ascii_digit())?;
        let mut v = u32::from(d0 - b'0');
        *r = &r[1..];
        if let Some(d1) = r.first().filter(|c| c.is_ascii_digit()) {
            v = v * 10 + u32::from(d1 - b'0');
            *r = &r[1..];
        }
        Some(v)
    };
    let lit =
        |r: &mut &[u8], c: u8| -> Option<()> { (r.first() == Some(&c)).then(|| *r = &r[1..]) };
    let month = num(&mut rest)?;
    lit(&mut rest, b'-')?;
    let day = num(&mut rest)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in(month, year) {
        return None;
    }
    let (mut hour, mut min, mut sec, mut nanos, mut offset) = (0, 0, 0, 0u32, None);
    if !rest.is_empty() {
        let sep = rest[0];
        if !matches!(sep, b'T' | b't' | b' ') {
            return None;
        }
        rest = &rest[1..];
        hour = num(&mut rest)?;
        lit(&mut rest, b':')?;
        min = num(&mut rest)?;
        lit(&mut rest, b':')?;
        sec = num(&mut rest)?;
        if hour >= 24 || min >= 60 || sec >= 60 {
            return None;
        }
        // Optional fraction (`.` or `,`, any number of digits, 9 kept).
        if rest.len() >= 2 && matches!(rest[0], b'.' | b',') && rest[1].is_ascii_digit() {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let kept = &rest[1..=digits.min(9)];
            nanos = kept
                .iter()
                .chain(std::iter::repeat(&b'0'))
                .take(9)
                .fold(0, |n, d| n * 10 + u32::from(d - b'0'));
            rest = &rest[1 + digits..];
        }
        if sep != b' ' {
            // Z07:00: `Z`, or `±hh:mm`.
            if rest.first() == Some(&b'Z') {
                rest = &rest[1..];
                offset = Some(0);
            } else {
                if rest.len() < 6 || !matches!(rest[0], b'+' | b'-') || rest[3] != b':' {
                    return None;
                }
                let two = |x: &[u8]| -> Option<i32> {
                    x.iter()
                        .all(u8::is_ascii_digit)
                        .then(|| i32::from(x[0] - b'0') * 10 + i32::from(x[1] - b'0'))
                };
                let (h, m) = (two(&rest[1..3])?, two(&rest[4..6])?);
                if h > 24 || m > 60 {
                    return None;
                }
                let off = h * 60 + m;
                offset = Some(if rest[0] == b'-' { -off } else { off });
                rest = &rest[6..];
            }
            if !rest.is_empty() {
                return None;
            }
        } else if !rest.is_empty() {
            return None;
        }
    }
    let mut out = format!("{year:04}-{month:02}-{day:02} {hour:02}:{min:02}:{sec:02}");
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    match offset {
        None | Some(0) => out.push_str(" +0000 UTC"),
        Some(off) => {
            let sign = if off < 0 { '-' } else { '+' };
            let zone = format!("{sign}{:02}{:02}", off.abs() / 60, off.abs() % 60);
            out.push(' ');
            out.push_str(&zone);
            out.push(' ');
            out.push_str(&zone);
        }
    }
    Some(out)
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `strconv.ParseInt(s, 0, 64)`: sign, then `0x`, `0o`, `0b` or a leading `0`
/// (octal) prefix.
#[must_use]
pub fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// `strconv.ParseFloat(s, 64)` for the decimal forms compose files use.
#[must_use]
pub fn go_parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        return s.parse().ok();
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    let mant_ok = if let Some(frac) = mant.strip_prefix('.') {
        digits(frac)
    } else {
        match mant.split_once('.') {
            Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
            None => digits(mant),
        }
    };
    let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mant_ok && exp_ok
}

/// Go's `fmt.Sprint(float64)`: `%g` with the shortest representation, using
/// exponent form when the decimal exponent is < -4 or >= 6 (as strconv's
/// shortest `'g'` does).
#[must_use]
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits and decimal exponent.
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let mant = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mant}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    let s = if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else if exp + 1 >= n {
        format!("{digits}{}", "0".repeat((exp + 1 - n) as usize))
    } else {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_like_yaml_v3() {
        assert_eq!(resolve_plain("0400"), Val::Int(256));
        assert_eq!(resolve_plain("0:0"), Val::Str("0:0".into()));
        assert_eq!(resolve_plain("yes"), Val::Str("yes".into()));
        assert_eq!(resolve_plain("on"), Val::Str("on".into()));
        assert_eq!(resolve_plain("08"), Val::Float(8.0));
        assert_eq!(resolve_plain("1_000"), Val::Int(1000));
        assert_eq!(resolve_plain("0x1f"), Val::Int(31));
        assert_eq!(resolve_plain("0o17"), Val::Int(15));
        assert_eq!(resolve_plain(".5"), Val::Float(0.5));
        assert_eq!(resolve_plain("1e3"), Val::Float(1000.0));
        assert_eq!(resolve_plain("1m30s"), Val::Str("1m30s".into()));
        assert_eq!(resolve_plain("~"), Val::Null);
        assert_eq!(resolve_plain("True"), Val::Bool(true));
        assert_eq!(resolve_plain("-12"), Val::Int(-12));
    }

    #[test]
    fn timestamps_resolve_like_yaml_v3_and_print_like_go() {
        let ts = |s: &str| parse_timestamp(s);
        assert_eq!(
            ts("2001-12-14").as_deref(),
            Some("2001-12-14 00:00:00 +0000 UTC")
        );
        assert_eq!(
            ts("2001-2-3T4:5:6Z").as_deref(),
            Some("2001-02-03 04:05:06 +0000 UTC")
        );
        assert_eq!(
            ts("2001-12-14 21:59:43.1234567891").as_deref(),
            Some("2001-12-14 21:59:43.123456789 +0000 UTC")
        );
        assert_eq!(
            ts("2001-12-14T21:59:43,5+01:30").as_deref(),
            Some("2001-12-14 21:59:43.5 +0130 +0130")
        );
        assert_eq!(
            ts("2001-12-14T02:59:43+00:00").as_deref(),
            Some("2001-12-14 02:59:43 +0000 UTC")
        );
        assert_eq!(
            ts("2000-02-29").as_deref(),
            Some("2000-02-29 00:00:00 +0000 UTC")
        );
        for no in [
            "2001-02-30",
            "1900-02-29",
            "2001-12-14T21:59:43",
            "2001-12-14 21:59:43Z",
            "2001-13-01",
            "2001-12-14T24:00:00Z",
            "01-12-14",
            "2001-12-14x",
            "2001-123-1",
        ] {
            assert_eq!(ts(no), None, "{no}");
        }
        assert_eq!(
            resolve_plain("2001-12-14"),
            Val::Time("2001-12-14 00:00:00 +0000 UTC".into())
        );
        assert_eq!(resolve_plain("2001-02-30"), Val::Str("2001-02-30".into()));
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.000_01), "1e-05");
        assert_eq!(go_float(123.25), "123.25");
    }
}

//! The small parsers docker/cli borrows from Go libraries, re-implemented
//! with their exact accepted syntax: `time.ParseDuration`, go-units
//! `RAMInBytes`, go-connections `nat.ParsePortSpec`, google/shlex `Split`,
//! the compose short volume syntax, `opts.ParseCPUs`, and Go's
//! `filepath.Join`/`Clean`.

use std::fmt::Write as _;

/// `time.ParseDuration`, in nanoseconds.
pub fn go_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let err = || format!("time: invalid duration {orig:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err());
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .bytes()
            .take_while(|b| !(b.is_ascii_digit() || *b == b'.'))
            .count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {orig:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {orig:?}")),
        };
        let value: f64 = num.parse().map_err(|_| err())?;
        total += value * scale;
    }
    if total > 9.223_372_036_854_775e18 {
        return Err(err());
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

/// go-units `RAMInBytes` (binary multiples: `1k` is 1024).
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = super::tree::go_parse_float(num)
        .ok_or_else(|| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || format!("invalid suffix: '{sfx}'");
    if sfx.len() > 3 {
        return Err(bad());
    }
    let lower = sfx.to_ascii_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 {
            Err(bad())
        } else {
            Ok(size as i64)
        };
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024f64.powi(4),
        b'p' => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &lower[1..] != "ib") {
        return Err(bad());
    }
    Ok((size * mul) as i64)
}

/// `opts.ParseCPUs`: a decimal number of CPUs, in nano CPUs.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let err = || format!("failed to parse {s} as a rational number");
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err());
    }
    let frac_trim = frac.trim_end_matches('0');
    if frac_trim.len() > 9 {
        return Err("value is too precise".into());
    }
    let int_v: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| err())?
    };
    let frac_v: i64 = if frac_trim.is_empty() {
        0
    } else {
        format!("{frac_trim:0<9}").parse().map_err(|_| err())?
    };
    let v = int_v
        .checked_mul(1_000_000_000)
        .and_then(|x| x.checked_add(frac_v))
        .ok_or_else(err)?;
    Ok(if neg { -v } else { v })
}

/// One port mapping of a short port spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: String,
    /// The host port or range as text (`""`, `"80"`, `"80-81"`).
    pub host_port: String,
    pub container_port: u32,
    pub proto: String,
}

fn port_range(s: &str) -> Result<(u64, u64), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let parse = |x: &str| -> Result<u64, String> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("strconv.ParseUint: parsing {x:?}: invalid syntax"));
        }
        let v: u64 = x
            .parse()
            .map_err(|_| format!("strconv.ParseUint: parsing {x:?}: value out of range"))?;
        if v > 65535 {
            return Err(format!(
                "strconv.ParseUint: parsing {x:?}: value out of range"
            ));
        }
        Ok(v)
    };
    match s.split_once('-') {
        None => {
            let v = parse(s)?;
            Ok((v, v))
        }
        Some((a, b)) => {
            let b = b.split('-').next().unwrap_or(b);
            let (start, end) = (parse(a)?, parse(b)?);
            if end < start {
                return Err(format!("invalid range specified for port: {s}"));
            }
            Ok((start, end))
        }
    }
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// `nat.ParsePortSpec`: `[ip:][host[-range]:]container[-range][/proto]`.
pub fn port_spec(raw: &str) -> Result<Vec<PortMapping>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (mut ip, host) = match n {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    let (proto, container) = split_proto_port(container);
    if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(inner) => ip = inner.to_string(),
            None => return Err(format!("invalid IP address {ip}")),
        }
    }
    if !ip.is_empty() && !is_ip(&ip) {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        port_range(&container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host.is_empty() {
        (0, 0)
    } else {
        port_range(host).map_err(|_| format!("invalid hostPort: {host}"))?
    };
    if !host.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        ));
    }
    let proto_l = proto.to_ascii_lowercase();
    if !matches!(proto_l.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut host_port = if host.is_empty() {
            String::new()
        } else {
            (hstart + i).to_string()
        };
        if start == end && hstart != hend {
            let _ = write!(host_port, "-{hend}");
        }
        out.push(PortMapping {
            host_ip: ip.clone(),
            host_port,
            container_port: (start + i) as u32,
            proto: proto_l.clone(),
        });
    }
    Ok(out)
}

fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp".into(), parts[0].to_string());
    }
    (parts[1].to_string(), parts[0].to_string())
}

/// A port as the compose loader keeps it (docker's `ServicePortConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub mode: String,
    pub target: u32,
    pub published: u32,
    pub protocol: String,
}

/// A short port spec to port configs, like docker's `toServicePortConfigs`:
/// mappings grouped by `port/proto` key in string order, host ranges
/// expanded; returns also "ignoring IP-address" warnings.
pub fn short_ports(raw: &str, warnings: &mut Vec<String>) -> Result<Vec<PortConfig>, String> {
    let mappings = port_spec(raw)?;
    let mut keys: Vec<String> = Vec::new();
    let key_of = |m: &PortMapping| format!("{}/{}", m.container_port, m.proto);
    for m in &mappings {
        let k = key_of(m);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        for m in mappings.iter().filter(|m| key_of(m) == k) {
            if let Ok(ip) = m.host_ip.parse::<std::net::IpAddr>()
                && !ip.is_unspecified()
            {
                let hostport = if ip.is_ipv6() {
                    format!("[{}]:{}", m.host_ip, m.host_port)
                } else {
                    format!("{}:{}", m.host_ip, m.host_port)
                };
                warnings.push(format!(
                    "ignoring IP-address ({hostport}:{k}) service will listen on '0.0.0.0'"
                ));
            }
            let (hs, he) = if m.host_port.is_empty() {
                (0, 0)
            } else {
                port_range(&m.host_port).map_err(|_| {
                    format!(
                        "invalid hostport binding ({}) for port ({})",
                        m.host_port, m.container_port
                    )
                })?
            };
            for p in hs..=he {
                out.push(PortConfig {
                    mode: "ingress".into(),
                    target: m.container_port,
                    published: p as u32,
                    protocol: m.proto.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// google/shlex `Split`: POSIX-like words, `'…'` literal, `"…"` with
/// backslash escapes, `#` at a word start begins a comment.
pub fn shlex(s: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum St {
        Start,
        Word,
        Escaping,
        EscapingQuoted,
        Dq,
        Sq,
        Comment,
    }
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut st = St::Start;
    for c in s.chars() {
        let space = matches!(c, ' ' | '\t' | '\r' | '\n');
        match st {
            St::Start => match c {
                _ if space => {}
                '"' => st = St::Dq,
                '\'' => st = St::Sq,
                '\\' => st = St::Escaping,
                '#' => st = St::Comment,
                _ => {
                    cur.push(c);
                    st = St::Word;
                }
            },
            St::Word => match c {
                _ if space => {
                    words.push(std::mem::take(&mut cur));
                    st = St::Start;
                }
                '"' => st = St::Dq,
                '\'' => st = St::Sq,
                '\\' => st = St::Escaping,
                _ => cur.push(c),
            },
            St::Escaping => {
                cur.push(c);
                st = St::Word;
            }
            St::EscapingQuoted => {
                cur.push(c);
                st = St::Dq;
            }
            St::Dq => match c {
                '"' => st = St::Word,
                '\\' => st = St::EscapingQuoted,
                _ => cur.push(c),
            },
            St::Sq => match c {
                '\'' => st = St::Word,
                _ => cur.push(c),
            },
            St::Comment => {
                if c == '\n' {
                    st = St::Start;
                }
            }
        }
    }
    match st {
        St::Word => words.push(cur),
        St::Escaping | St::EscapingQuoted => return Err("EOF found after escape character".into()),
        St::Dq | St::Sq => return Err("EOF found when expecting closing quote".into()),
        St::Start | St::Comment => {}
    }
    Ok(words)
}

/// A short volume spec, like docker's `ParseVolume`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShortVolume {
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub nocopy: bool,
    pub propagation: Option<String>,
}

const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

pub fn short_volume(spec: &str) -> Result<ShortVolume, String> {
    let mut v = ShortVolume::default();
    let chars: Vec<char> = spec.chars().collect();
    match chars.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            v.target = spec.to_string();
            v.kind = "volume".into();
            return Ok(v);
        }
        _ => {}
    }
    let mut buf: Vec<char> = Vec::new();
    for c in chars.iter().copied().map(Some).chain(std::iter::once(None)) {
        match c {
            Some(':') if buf.len() == 1 && buf[0].is_alphabetic() => buf.push(':'),
            Some(':') | None => {
                let s: String = buf.iter().collect();
                if let Err(e) = fill(&mut v, &s, c.is_none()) {
                    populate_type(&mut v);
                    return Err(format!("invalid spec: {spec}: {e}"));
                }
                buf.clear();
            }
            Some(ch) => buf.push(ch),
        }
    }
    populate_type(&mut v);
    Ok(v)
}

fn fill(v: &mut ShortVolume, buf: &str, end: bool) -> Result<(), String> {
    if buf.is_empty() {
        return Err("empty section between colons".into());
    }
    if v.source.is_empty() && end {
        v.target = buf.to_string();
        return Ok(());
    }
    if v.source.is_empty() {
        v.source = buf.to_string();
        return Ok(());
    }
    if v.target.is_empty() {
        v.target = buf.to_string();
        return Ok(());
    }
    if !end {
        return Err("too many colons".into());
    }
    for opt in buf.split(',') {
        match opt {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "nocopy" => v.nocopy = true,
            o if PROPAGATIONS.contains(&o) => v.propagation = Some(o.to_string()),
            _ => {}
        }
    }
    Ok(())
}

fn populate_type(v: &mut ShortVolume) {
    v.kind = if v.source.is_empty() || !is_file_path(&v.source) {
        "volume".into()
    } else {
        "bind".into()
    };
}

fn is_file_path(source: &str) -> bool {
    let mut chars = source.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if matches!(first, '.' | '/' | '~') {
        return true;
    }
    let Some(second) = chars.next() else {
        return false;
    };
    if source.starts_with("\\\\") {
        return true;
    }
    second == ':' && first.is_alphabetic()
}

/// Go's `filepath.Clean` for Unix paths.
#[must_use]
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|p| *p != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// docker's `absPath(workingDir, p)`: `p` if absolute, else `Join(dir, p)`.
#[must_use]
pub fn abs_path(working_dir: &str, p: &str) -> String {
    if p.starts_with('/') {
        return p.to_string();
    }
    if working_dir.is_empty() {
        return clean(p);
    }
    if p.is_empty() {
        return clean(working_dir);
    }
    clean(&format!("{working_dir}/{p}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(go_duration("0s"), Ok(0));
        assert_eq!(go_duration("0"), Ok(0));
        assert_eq!(go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(go_duration("300ms"), Ok(300_000_000));
        assert_eq!(go_duration("2us"), Ok(2_000));
        assert!(go_duration("10").is_err());
        assert!(go_duration("10 s").is_err());
        assert!(go_duration("").is_err());
        assert!(go_duration("1d").is_err());
    }

    #[test]
    fn byte_sizes_parse_like_go_units() {
        assert_eq!(ram_in_bytes("1000M"), Ok(1_048_576_000));
        assert_eq!(ram_in_bytes("512m"), Ok(536_870_912));
        assert_eq!(ram_in_bytes("1gb"), Ok(1_073_741_824));
        assert_eq!(ram_in_bytes("1GiB"), Ok(1_073_741_824));
        assert_eq!(ram_in_bytes("67108864"), Ok(67_108_864));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("10 k"), Ok(10240));
        assert!(ram_in_bytes("1x").is_err());
        assert!(ram_in_bytes("m").is_err());
    }

    #[test]
    fn cpus_parse_as_decimals() {
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus(".25"), Ok(250_000_000));
        assert!(parse_cpus("0.0000000001").is_err());
        assert!(parse_cpus("abc").is_err());
    }

    #[test]
    fn short_ports_expand_like_docker() {
        let mut w = Vec::new();
        let p = short_ports("80", &mut w).unwrap();
        assert_eq!(
            p,
            vec![PortConfig {
                mode: "ingress".into(),
                target: 80,
                published: 0,
                protocol: "tcp".into()
            }]
        );
        let p = short_ports("8000-8001:80-81/udp", &mut w).unwrap();
        assert_eq!(
            p.iter()
                .map(|x| (x.published, x.target))
                .collect::<Vec<_>>(),
            vec![(8000, 80), (8001, 81)]
        );
        assert_eq!(p[0].protocol, "udp");
        let p = short_ports("9090-9091:8080", &mut w).unwrap();
        assert_eq!(
            p.iter()
                .map(|x| (x.published, x.target))
                .collect::<Vec<_>>(),
            vec![(9090, 8080), (9091, 8080)]
        );
        assert!(w.is_empty());
        let p = short_ports("127.0.0.1:5000:5000", &mut w).unwrap();
        assert_eq!(p[0].published, 5000);
        assert_eq!(
            w,
            vec![
                "ignoring IP-address (127.0.0.1:5000:5000/tcp) service will listen on '0.0.0.0'"
                    .to_string()
            ]
        );
        assert!(port_spec("80:80/xtp").is_err());
        assert!(port_spec("8000-8002:80-81").is_err());
        assert!(port_spec("abc").is_err());
        assert!(port_spec("70000").is_err());
    }

    #[test]
    fn shlex_splits_like_google_shlex() {
        assert_eq!(
            shlex("a 'b c' \"d\\\"e\"").unwrap(),
            vec!["a", "b c", "d\"e"]
        );
        assert_eq!(
            shlex("sh -c 'echo $$x' # comment").unwrap(),
            vec!["sh", "-c", "echo $$x"]
        );
        assert_eq!(shlex("a&&b c").unwrap(), vec!["a&&b", "c"]);
        assert_eq!(shlex("a#b").unwrap(), vec!["a#b"]);
        assert_eq!(shlex("''").unwrap(), vec![""]);
        assert!(shlex("'open").is_err());
    }

    #[test]
    fn short_volumes_parse_like_docker() {
        let v = short_volume("volume1").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source.as_str(), v.target.as_str()),
            ("volume", "", "volume1")
        );
        let v = short_volume("./data:/data:ro").unwrap();
        assert_eq!(
            (
                v.kind.as_str(),
                v.source.as_str(),
                v.target.as_str(),
                v.read_only
            ),
            ("bind", "./data", "/data", true)
        );
        let v = short_volume("db:/var/lib/db:nocopy").unwrap();
        assert_eq!((v.kind.as_str(), v.nocopy), ("volume", true));
        let v = short_volume("/a:/b:rshared").unwrap();
        assert_eq!(v.propagation.as_deref(), Some("rshared"));
        let v = short_volume("~/x:/x").unwrap();
        assert_eq!(v.kind, "bind");
        assert!(short_volume("ab::c").is_err());
        assert!(short_volume("ab:bb:cc:dd").is_err());
    }

    #[test]
    fn paths_clean_like_go() {
        assert_eq!(
            abs_path("/tmp/s", "./grafana/provisioning/"),
            "/tmp/s/grafana/provisioning"
        );
        assert_eq!(abs_path("/tmp/s", "../prom/p.yml"), "/tmp/prom/p.yml");
        assert_eq!(abs_path("/tmp/s", ""), "/tmp/s");
        assert_eq!(abs_path("/tmp/s", "/abs/"), "/abs/");
    }
}

fn is_path_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok || i == b.len() {
            return false;
        }
    }
    true
}

fn is_domain(d: &str) -> bool {
    let host = match d.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return false,
        None => d,
    };
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The image as the Docker client posts it: docker's
/// `reference.ParseNormalizedNamed` then `FamiliarString(TagNameOnly(..))`
/// (`redis` → `redis:latest`, `docker.io/library/x:1` → `x:1`). `Err` with
/// docker's message when the reference is invalid.
pub fn normalize_image(image: &str) -> Result<String, String> {
    let invalid = || "invalid reference format".to_string();
    if image.is_empty() {
        return Err(invalid());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return Err(invalid());
        };
        let alg_ok = alg.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && alg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.'));
        if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let b = t.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'));
        if !ok {
            return Err(invalid());
        }
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, remainder))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), remainder.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io".to_string()
    } else {
        domain
    };
    if !is_domain(&domain) {
        return Err(invalid());
    }
    if path.to_lowercase() != path {
        return Err(format!(
            "invalid reference format: repository name ({path}) must be lowercase"
        ));
    }
    if path.is_empty() || !path.split('/').all(is_path_component) {
        return Err(invalid());
    }
    let familiar = if domain == "docker.io" {
        match path.strip_prefix("library/") {
            Some(p) if !p.contains('/') => p.to_string(),
            _ => path.clone(),
        }
    } else {
        format!("{domain}/{path}")
    };
    let mut out = familiar;
    match (tag, digest) {
        (Some(t), _) => {
            out.push(':');
            out.push_str(t);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Ok(out)
}

#[cfg(test)]
mod image_tests {
    use super::normalize_image;

    #[test]
    fn images_get_latest_and_familiar_names_like_the_docker_client() {
        assert_eq!(normalize_image("redis").unwrap(), "redis:latest");
        assert_eq!(
            normalize_image("docker.io/library/redis:7").unwrap(),
            "redis:7"
        );
        assert_eq!(
            normalize_image("ghcr.io/a/b").unwrap(),
            "ghcr.io/a/b:latest"
        );
        assert_eq!(
            normalize_image("localhost:5000/x").unwrap(),
            "localhost:5000/x:latest"
        );
        assert_eq!(
            normalize_image("127.0.0.1:5000/hasher:latest").unwrap(),
            "127.0.0.1:5000/hasher:latest"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize_image(&format!("x@{d}")).unwrap(),
            format!("x@{d}")
        );
        assert!(normalize_image("Upper/Case").is_err());
        assert!(normalize_image("a b").is_err());
        assert!(normalize_image("x:").is_err());
    }
}

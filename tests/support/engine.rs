//! A minimal, blocking Docker Engine API client over the unix socket.
//!
//! The conformance test posts the exact JSON bosun's converter produced, so it
//! talks HTTP/1.1 itself instead of going through a typed client that could
//! rename or drop fields (see docs/architecture.md, "Swarm traps": `HealthCheck` vs `Healthcheck`).
//! Paths are unversioned, like bollard's: the daemon treats them as its own API
//! version, which is the version the docker CLI negotiates as well.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// The daemon behind `DOCKER_HOST` (unix sockets only) or `/var/run/docker.sock`.
#[derive(Debug, Clone)]
pub struct Engine {
    socket: PathBuf,
}

/// One HTTP response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("invalid JSON from the daemon ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_string()
    }

    /// The daemon's error `message`, or the raw body.
    pub fn message(&self) -> String {
        self.json()
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| self.text())
    }
}

impl Engine {
    pub fn from_env() -> Result<Engine, String> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.is_empty() => match h.strip_prefix("unix://") {
                Some(p) => PathBuf::from(p),
                None => {
                    return Err(format!(
                        "DOCKER_HOST={h}: the conformance test only speaks to unix sockets"
                    ));
                }
            },
            _ => PathBuf::from("/var/run/docker.sock"),
        };
        Ok(Engine { socket })
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, String> {
        let what = || format!("{method} {path} on {}", self.socket.display());
        let mut stream =
            UnixStream::connect(&self.socket).map_err(|e| format!("{}: {e}", what()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        let payload = body.map(|b| serde_json::to_vec(b).expect("a JSON value serializes"));
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: bosun-conformance\r\nConnection: close\r\n"
        );
        if let Some(p) = &payload {
            let _ = write!(
                head,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                p.len()
            );
        } else if method == "POST" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .map_err(|e| format!("{}: {e}", what()))?;
        if let Some(p) = &payload {
            stream
                .write_all(p)
                .map_err(|e| format!("{}: {e}", what()))?;
        }
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .map_err(|e| format!("{}: {e}", what()))?;
        parse_response(&raw).map_err(|e| format!("{}: {e}", what()))
    }

    /// GET, expecting a 2xx JSON answer.
    pub fn get(&self, path: &str) -> Result<Value, String> {
        let r = self.request("GET", path, None)?;
        if !r.ok() {
            return Err(format!("GET {path}: HTTP {}: {}", r.status, r.message()));
        }
        r.json()
    }

    /// POST a JSON body, expecting a 2xx JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let r = self.request("POST", path, Some(body))?;
        if !r.ok() {
            return Err(format!("POST {path}: HTTP {}: {}", r.status, r.message()));
        }
        if r.body.is_empty() {
            Ok(Value::Null)
        } else {
            r.json()
        }
    }

    /// DELETE; a 404 counts as success (already gone).
    pub fn delete(&self, path: &str) -> Result<(), String> {
        let r = self.request("DELETE", path, None)?;
        if r.ok() || r.status == 404 {
            Ok(())
        } else {
            Err(format!("DELETE {path}: HTTP {}: {}", r.status, r.message()))
        }
    }

    /// List `kind` (`services`, `networks`, `configs`, `secrets`, `volumes`,
    /// `containers`) with a label filter.
    pub fn list_labelled(&self, kind: &str, label: &str) -> Result<Vec<Value>, String> {
        let filters = serde_json::json!({ "label": [label] }).to_string();
        // Containers: `/containers/json`, stopped ones too.
        let path = if kind == "containers" {
            format!("/containers/json?all=1&filters={}", encode(&filters))
        } else {
            format!("/{kind}?filters={}", encode(&filters))
        };
        let v = self.get(&path)?;
        let list = if kind == "volumes" {
            v.get("Volumes").cloned().unwrap_or(Value::Null)
        } else {
            v
        };
        Ok(list.as_array().cloned().unwrap_or_default())
    }

    /// List every object of `kind`.
    pub fn list(&self, kind: &str) -> Result<Vec<Value>, String> {
        Ok(self
            .get(&format!("/{kind}"))?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

/// Percent-encode a query parameter value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("truncated HTTP response ({} bytes)", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

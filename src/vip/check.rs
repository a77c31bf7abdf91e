//! The health checks keepalived runs inside its container (`bosun vip
//! check …`): small, dependency-free probes over the standard library, each
//! bounded by a timeout. A swarm task cannot see the host's processes, so
//! "dockerd alive" asks the Engine through the socket mounted into the
//! container, never `pgrep`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `GET /_ping` on the Engine socket answers 200.
    Docker(PathBuf),
    /// `GET url` (http://) answers `status`, or any 2xx.
    Http { url: String, status: Option<u16> },
    /// A TCP connection to `host:port` succeeds.
    Tcp(String),
}

/// Run the probe; `Err` says why it is unhealthy.
pub fn run(probe: &Probe, timeout: Duration) -> Result<(), String> {
    match probe {
        Probe::Docker(socket) => {
            let mut s = UnixStream::connect(socket)
                .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
            s.set_read_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            s.set_write_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            let code = get(&mut s, "docker", "/_ping")?;
            expect(code, Some(200), "dockerd /_ping")
        }
        Probe::Http { url, status } => {
            let rest = url
                .strip_prefix("http://")
                .ok_or_else(|| format!("`{url}`: only http:// URLs are checked"))?;
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let target = if authority.contains(':') {
                authority.to_string()
            } else {
                format!("{authority}:80")
            };
            let mut s = connect(&target, timeout)?;
            let code = get(&mut s, authority, path)?;
            expect(code, *status, url)
        }
        Probe::Tcp(address) => connect(address, timeout).map(drop),
    }
}

fn connect(address: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| format!("`{address}`: {e}"))?
        .collect();
    let mut last = format!("`{address}` resolves to no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout))
                    .map_err(|e| e.to_string())?;
                s.set_write_timeout(Some(timeout))
                    .map_err(|e| e.to_string())?;
                return Ok(s);
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// Send `GET path` (HTTP/1.0, the connection closes after the answer) and
/// read the status code.
fn get(s: &mut (impl Read + Write), host: &str, path: &str) -> Result<u16, String> {
    // One write: a server that answers after the first line and closes
    // would otherwise reset the rest.
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: bosun-vip-check\r\n\r\n");
    s.write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("no answer: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or_else(|| {
            format!(
                "not an HTTP answer: {:?}",
                line.lines().next().unwrap_or_default()
            )
        })
}

fn expect(code: u16, want: Option<u16>, what: &str) -> Result<(), String> {
    let ok = match want {
        Some(w) => code == w,
        None => (200..300).contains(&code),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} answered {code}, expected {}",
            want.map_or_else(|| "2xx".to_string(), |w| w.to_string())
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A one-shot HTTP server on loopback answering `status`.
    fn serve(status: u16) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                // The whole request, then the answer.
                let mut seen = Vec::new();
                let mut buf = [0u8; 512];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(answer.as_bytes());
            }
        });
        format!("http://{addr}/ping")
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn http_is_healthy_on_2xx_or_the_given_status_only() {
        let probe = |url: String, status| Probe::Http { url, status };
        assert_eq!(run(&probe(serve(200), None), T), Ok(()));
        let err = run(&probe(serve(503), None), T).expect_err("503");
        assert!(err.ends_with("answered 503, expected 2xx"), "{err}");
        assert_eq!(run(&probe(serve(401), Some(401)), T), Ok(()));
        let err = run(&probe("https://127.0.0.1/".into(), None), T).expect_err("https");
        assert!(err.contains("only http://"), "{err}");
    }

    #[test]
    fn tcp_is_healthy_only_while_something_listens() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        assert_eq!(run(&Probe::Tcp(addr.clone()), T), Ok(()));
        drop(listener);
        let err = run(&Probe::Tcp(addr), T).expect_err("closed");
        assert!(err.contains("cannot connect"), "{err}");
    }

    #[test]
    fn docker_is_unhealthy_without_its_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = run(&Probe::Docker(dir.path().join("docker.sock")), T).expect_err("no socket");
        assert!(err.contains("cannot connect to"), "{err}");
    }
}

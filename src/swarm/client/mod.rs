//! The real Docker Engine API client: raw JSON over HTTP/1.1.
//!
//! Why not bollard: its typed models drop the service `Healthcheck` (the
//! schema says `HealthCheck`, bollard issue 779), and it sends unversioned
//! paths, which the daemon serves as its newest version. This client asks
//! `GET /_ping` once (`GET /version` when the ping names no version), then
//! sends every request to `/v{negotiated}/…` with bodies as
//! `serde_json::Value`, so nothing is renamed or stripped.
//!
//! Connections are pooled (hyper-util's legacy client), every request is
//! counted ([`RequestCounter`]) and bounded by a timeout.

mod connect;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

pub use connect::{DEFAULT_HOST, Host, TlsFiles};

use super::counter::{RequestCounter, Requests};
use super::{Api, Error, Filters, Kind, Result};

/// The newest API version bosun speaks (Docker 27.x).
pub const MAX_API_VERSION: (u32, u32) = (1, 47);
/// Below this the daemon silently strips `CapabilityAdd`, `Ulimits`, `Pids`…
/// from service specs (docs/architecture.md, "Swarm traps").
pub const MIN_SAFE_API_VERSION: (u32, u32) = (1, 41);
/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Characters escaped in a path segment or query value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How to reach the daemon; build with [`Config::from_env`] or
/// [`Config::new`], then [`Client::connect_with`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The `DOCKER_HOST`-style address, as given (for messages).
    pub host: String,
    /// TLS material; `None` for plain unix/tcp.
    pub tls: Option<TlsFiles>,
    /// Per-request timeout (the event stream has none once it has started).
    pub timeout: Duration,
}

impl Config {
    /// A daemon at `host` (`unix:///path` or `tcp://host:port`), no TLS.
    #[must_use]
    pub fn new(host: &str) -> Self {
        Config {
            host: host.to_string(),
            tls: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Like the docker CLI: `DOCKER_HOST`, `DOCKER_TLS_VERIFY`,
    /// `DOCKER_CERT_PATH` (default `~/.docker`).
    #[must_use]
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let host = var("DOCKER_HOST").unwrap_or_else(|| DEFAULT_HOST.to_string());
        let tls = var("DOCKER_TLS_VERIFY").map(|_| {
            let dir = var("DOCKER_CERT_PATH").map_or_else(
                || {
                    std::path::PathBuf::from(var("HOME").unwrap_or_else(|| "/root".to_string()))
                        .join(".docker")
                },
                std::path::PathBuf::from,
            );
            TlsFiles::in_dir(&dir)
        });
        Config {
            host,
            tls,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Use TLS with these files.
    #[must_use]
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// Set the per-request timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A connected Docker Engine API client. Cheap to clone (shares the pool and
/// the counter).
#[derive(Clone)]
pub struct Client {
    http: HttpClient<connect::Connector, Full<Bytes>>,
    base: String,
    host: String,
    version: String,
    timeout: Duration,
    counter: Arc<RequestCounter>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What the HTTP layer hands back before the body is read.
struct Sent {
    method: Method,
    path: String,
    response: hyper::Response<Incoming>,
}

impl Client {
    /// Connect like the docker CLI does (see [`Config::from_env`]).
    pub async fn connect() -> Result<Self> {
        Self::connect_with(Config::from_env()).await
    }

    /// Connect to an explicit host, e.g. `unix:///run/bosun/manager1.sock`.
    pub async fn connect_host(host: &str) -> Result<Self> {
        Self::connect_with(Config::new(host)).await
    }

    /// Connect with a full configuration; negotiates the API version.
    pub async fn connect_with(config: Config) -> Result<Self> {
        let host = Host::parse(&config.host, config.tls.is_some())?;
        let tls = config
            .tls
            .as_ref()
            .map(|files| files.client_config(&config.host))
            .transpose()?;
        let base = match (&host, tls.is_some()) {
            (Host::Unix(_), _) => "http://localhost".to_string(),
            (Host::Tcp { host, port }, tls) => {
                let scheme = if tls { "https" } else { "http" };
                if host.contains(':') {
                    format!("{scheme}://[{host}]:{port}")
                } else {
                    format!("{scheme}://{host}:{port}")
                }
            }
        };
        let connector = connect::Connector::new(host, tls)?;
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let mut client = Client {
            http,
            base,
            host: config.host,
            version: String::new(),
            timeout: config.timeout,
            counter: Arc::new(RequestCounter::new()),
        };
        client.version = client.negotiate().await?;
        Ok(client)
    }

    /// Ask the daemon for its newest API version, then pick
    /// `min(daemon, 1.47)`. Like the docker CLI: `GET /_ping` (unversioned,
    /// answered at once; the version is its `API-Version` header), and only
    /// when no such header comes back (an old daemon, a proxy)
    /// `GET /version`, which the daemon answers ten times slower.
    async fn negotiate(&self) -> Result<String> {
        let daemon = match self.ping_version().await? {
            Some(v) => v,
            None => self.version_endpoint().await?,
        };
        let chosen = daemon.min(MAX_API_VERSION);
        if chosen < MIN_SAFE_API_VERSION {
            tracing::warn!(
                host = %self.host,
                version = %format!("{}.{}", chosen.0, chosen.1),
                "Docker API below 1.41: the daemon silently strips CapabilityAdd, Ulimits, Pids and more from service specs"
            );
        }
        Ok(format!("{}.{}", chosen.0, chosen.1))
    }

    /// `GET /_ping`: the `API-Version` header, if the answer has one.
    /// Only a daemon that cannot be reached is an error.
    async fn ping_version(&self) -> Result<Option<(u32, u32)>> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let sent = self
            .send(Method::GET, "/_ping".to_string(), "/_ping", None)
            .await?;
        let version = sent
            .response
            .status()
            .is_success()
            .then(|| sent.response.headers().get("api-version"))
            .flatten()
            .and_then(|h| h.to_str().ok())
            .and_then(parse_version);
        // Read the (tiny) body so that the connection goes back to the pool.
        let _ = tokio::time::timeout_at(deadline, sent.response.into_body().collect()).await;
        Ok(version)
    }

    /// `GET /version`: its `ApiVersion`.
    async fn version_endpoint(&self) -> Result<(u32, u32)> {
        let v = self
            .request_raw(Method::GET, "/version".to_string(), "/version", None)
            .await?;
        v.get("ApiVersion")
            .and_then(Value::as_str)
            .and_then(parse_version)
            .ok_or_else(|| Error::DecodeFailed {
                method: "GET".to_string(),
                path: "/version".to_string(),
                message: format!("no usable ApiVersion in {v}"),
            })
    }

    /// The negotiated API version, e.g. `1.41`.
    #[must_use]
    pub fn api_version(&self) -> &str {
        &self.version
    }

    /// The host as configured.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The shared request counter (for `/metrics`).
    #[must_use]
    pub fn counter(&self) -> Arc<RequestCounter> {
        Arc::clone(&self.counter)
    }

    /// A snapshot of the requests sent so far (by this client and its clones).
    #[must_use]
    pub fn requests(&self) -> Requests {
        self.counter.snapshot()
    }

    /// The versioned path for `rest` (which starts with `/`).
    fn path(&self, rest: &str) -> String {
        format!("/v{}{rest}", self.version)
    }

    /// Send a request and wait for the response head (within the timeout).
    async fn send(
        &self,
        method: Method,
        path: String,
        endpoint: &str,
        body: Option<&Value>,
    ) -> Result<Sent> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        let body = match body {
            Some(b) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(serde_json::to_vec(b).unwrap_or_default()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(|e| Error::DecodeFailed {
            method: method.to_string(),
            path: path.clone(),
            message: format!("cannot build request: {e}"),
        })?;
        let sent = tokio::time::timeout(self.timeout, self.http.request(request)).await;
        let response = match sent {
            Err(_) => {
                self.counter.record(method.as_str(), endpoint, 0);
                return Err(self.timed_out(&method, &path));
            }
            Ok(Err(e)) => {
                self.counter.record(method.as_str(), endpoint, 0);
                return Err(Error::ConnectFailed {
                    host: self.host.clone(),
                    message: format!("{method} {path}: {}", crate::error::chain(&e)),
                });
            }
            Ok(Ok(r)) => r,
        };
        self.counter
            .record(method.as_str(), endpoint, response.status().as_u16());
        Ok(Sent {
            method,
            path,
            response,
        })
    }

    fn timed_out(&self, method: &Method, path: &str) -> Error {
        Error::TimedOut {
            method: method.to_string(),
            path: path.to_string(),
            seconds: self.timeout.as_secs(),
        }
    }

    /// Send a request and read its whole JSON body (`null` when empty);
    /// error statuses become [`Error::ResponseFailed`] with the daemon's
    /// `message`.
    async fn request_raw(
        &self,
        method: Method,
        path: String,
        endpoint: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let sent = self.send(method, path, endpoint, body).await?;
        let Sent {
            method,
            path,
            response,
            ..
        } = sent;
        let status = response.status();
        let bytes = match tokio::time::timeout_at(deadline, response.into_body().collect()).await {
            Err(_) => return Err(self.timed_out(&method, &path)),
            Ok(Err(e)) => {
                return Err(Error::ConnectFailed {
                    host: self.host.clone(),
                    message: format!("{method} {path}: reading the response: {e}"),
                });
            }
            Ok(Ok(b)) => b.to_bytes(),
        };
        if !status.is_success() {
            return Err(response_failed(&method, &path, status, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::DecodeFailed {
            method: method.to_string(),
            path,
            message: format!("invalid JSON: {e}"),
        })
    }

    async fn request(
        &self,
        method: Method,
        rest: &str,
        endpoint: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        self.request_raw(method, self.path(rest), endpoint, body)
            .await
    }

    /// `GET /events`: a stream of event objects as the daemon sends them.
    ///
    /// Returns once the daemon has accepted the subscription (so events
    /// caused after this returns are delivered). Filter with e.g.
    /// `Filters::none().with("type", "service")`; swarm types are
    /// `service`, `network`, `node`, `config`, `secret`. The stream ends
    /// when the connection closes; it has no timeout.
    pub async fn events(
        &self,
        filters: &Filters,
    ) -> Result<impl Stream<Item = Result<Value>> + Send + 'static> {
        let rest = format!("/events{}", query(filters, None));
        let sent = self
            .send(Method::GET, self.path(&rest), "/events", None)
            .await?;
        let status = sent.response.status();
        if !status.is_success() {
            let bytes = sent
                .response
                .into_body()
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            return Err(response_failed(&sent.method, &sent.path, status, &bytes));
        }
        let state = EventState {
            host: self.host.clone(),
            body: sent.response.into_body(),
            buf: Vec::new(),
            path: sent.path,
            done: false,
        };
        Ok(futures::stream::unfold(state, next_event))
    }
}

struct EventState {
    host: String,
    body: Incoming,
    buf: Vec<u8>,
    path: String,
    done: bool,
}

/// Pull the next complete JSON object out of the event body.
async fn next_event(mut st: EventState) -> Option<(Result<Value>, EventState)> {
    loop {
        if st.done {
            return None;
        }
        // Skip leading whitespace, then try to read one complete value.
        let start = st
            .buf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(st.buf.len());
        st.buf.drain(..start);
        if !st.buf.is_empty() {
            let mut it = serde_json::Deserializer::from_slice(&st.buf).into_iter::<Value>();
            match it.next() {
                Some(Ok(v)) => {
                    let used = it.byte_offset();
                    st.buf.drain(..used);
                    return Some((Ok(v), st));
                }
                Some(Err(e)) if !e.is_eof() => {
                    st.done = true;
                    let err = Error::DecodeFailed {
                        method: "GET".to_string(),
                        path: st.path.clone(),
                        message: format!("invalid event JSON: {e}"),
                    };
                    return Some((Err(err), st));
                }
                _ => {}
            }
        }
        match st.body.frame().await {
            None => return None,
            Some(Err(e)) => {
                st.done = true;
                let err = Error::ConnectFailed {
                    host: st.host.clone(),
                    message: format!("GET {}: event stream broke: {e}", st.path),
                };
                return Some((Err(err), st));
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    st.buf.extend_from_slice(&data);
                }
            }
        }
    }
}

fn response_failed(method: &Method, path: &str, status: StatusCode, bytes: &[u8]) -> Error {
    let message = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).trim().to_string());
    Error::ResponseFailed {
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        message,
    }
}

/// `1.41` → `(1, 41)`.
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Encode one path segment (an ID or a name).
fn segment(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// `?filters=<url-encoded JSON>&version=N`, or nothing.
fn query(filters: &Filters, version: Option<u64>) -> String {
    let mut parts = Vec::new();
    if !filters.0.is_empty() {
        let json = serde_json::to_string(&filters.0).unwrap_or_default();
        parts.push(format!("filters={}", utf8_percent_encode(&json, COMPONENT)));
    }
    if let Some(v) = version {
        parts.push(format!("version={v}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The ID in a create response (`ID` for swarm objects, `Id` for networks).
fn created_id(v: &Value) -> Option<String> {
    v.get("ID")
        .or_else(|| v.get("Id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Api for Client {
    async fn info(&self) -> Result<Value> {
        self.request(Method::GET, "/info", "/info", None).await
    }

    async fn list(&self, kind: Kind, filters: &Filters) -> Result<Vec<Value>> {
        let c = kind.collection();
        let rest = format!("/{c}{}", query(filters, None));
        let v = self
            .request(Method::GET, &rest, &format!("/{c}"), None)
            .await?;
        match v {
            Value::Array(items) => Ok(items),
            Value::Null => Ok(Vec::new()),
            other => Err(Error::DecodeFailed {
                method: "GET".to_string(),
                path: self.path(&rest),
                message: format!("expected a JSON array, got {other}"),
            }),
        }
    }

    async fn inspect(&self, kind: Kind, id: &str) -> Result<Value> {
        let c = kind.collection();
        let rest = format!("/{c}/{}", segment(id));
        self.request(Method::GET, &rest, &format!("/{c}/{{id}}"), None)
            .await
    }

    /// Networks: `CheckDuplicate` defaults to `true` (as the docker CLI sends
    /// it, and as API ≥ 1.44 always behaves), so a name is never created
    /// twice.
    async fn create(&self, kind: Kind, body: &Value) -> Result<String> {
        let c = kind.collection();
        let rest = format!("/{c}/create");
        let mut body = body.clone();
        if kind == Kind::Network
            && let Some(obj) = body.as_object_mut()
        {
            obj.entry("CheckDuplicate").or_insert(Value::Bool(true));
        }
        let v = self
            .request(Method::POST, &rest, &rest, Some(&body))
            .await?;
        created_id(&v).ok_or_else(|| Error::DecodeFailed {
            method: "POST".to_string(),
            path: self.path(&rest),
            message: format!("no ID in {v}"),
        })
    }

    async fn update(&self, kind: Kind, id: &str, version: u64, body: &Value) -> Result<()> {
        let c = kind.collection();
        let rest = format!(
            "/{c}/{}/update{}",
            segment(id),
            query(&Filters::none(), Some(version))
        );
        self.request(
            Method::POST,
            &rest,
            &format!("/{c}/{{id}}/update"),
            Some(body),
        )
        .await
        .map(drop)
    }

    async fn remove(&self, kind: Kind, id: &str) -> Result<()> {
        let c = kind.collection();
        let rest = format!("/{c}/{}", segment(id));
        self.request(Method::DELETE, &rest, &format!("/{c}/{{id}}"), None)
            .await
            .map(drop)
    }
    async fn service_logs(&self, id: &str, tail: usize) -> Result<String> {
        let rest = format!(
            "/services/{}/logs?stdout=1&stderr=1&timestamps=1&tail={tail}",
            segment(id)
        );
        let deadline = tokio::time::Instant::now() + self.timeout;
        let sent = self
            .send(Method::GET, self.path(&rest), "/services/{id}/logs", None)
            .await?;
        let status = sent.response.status();
        let bytes =
            match tokio::time::timeout_at(deadline, sent.response.into_body().collect()).await {
                Err(_) => return Err(self.timed_out(&sent.method, &sent.path)),
                Ok(Err(e)) => {
                    return Err(Error::ConnectFailed {
                        host: self.host.clone(),
                        message: format!("GET {}: reading the response: {e}", sent.path),
                    });
                }
                Ok(Ok(b)) => b.to_bytes(),
            };
        if !status.is_success() {
            return Err(response_failed(&sent.method, &sent.path, status, &bytes));
        }
        Ok(super::demux_logs(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    /// What a scripted daemon answers to a request line: `None` = never.
    type Answer = fn(&str) -> Option<String>;

    /// A tiny HTTP/1.1 server on a unix socket; records request lines and
    /// counts connections.
    struct Daemon {
        _dir: tempfile::TempDir,
        host: String,
        seen: Arc<Mutex<Vec<String>>>,
        connections: Arc<Mutex<usize>>,
    }

    fn json_reply(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// A `/_ping` answer naming the daemon's API version, as dockerd sends it.
    fn ping_reply(version: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nApi-Version: {version}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK"
        )
    }

    /// Answer HTTP/1.1 requests on one connection, keeping it alive.
    async fn serve<S>(mut conn: S, answer: Answer, seen: Arc<Mutex<Vec<String>>>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let Ok(n) = conn.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if buf.len() < end + 4 + len {
                    break;
                }
                buf.drain(..end + 4 + len);
                let line = head.lines().next().unwrap_or_default().to_string();
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line.clone());
                match answer(&line) {
                    Some(reply) => {
                        if conn.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        }
    }

    fn daemon(answer: Answer) -> Daemon {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = dir.path().join("d.sock");
        let listener = UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (seen2, conns2) = (Arc::clone(&seen), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                *conns2
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                let seen = Arc::clone(&seen2);
                tokio::spawn(serve(conn, answer, seen));
            }
        });
        Daemon {
            host: format!("unix://{}", path.display()),
            _dir: dir,
            seen,
            connections,
        }
    }

    #[allow(clippy::unnecessary_wraps)] // an `Answer`
    fn modern(line: &str) -> Option<String> {
        Some(if line.starts_with("GET /_ping") {
            ping_reply("1.50")
        } else if line.starts_with("GET /version") {
            json_reply(r#"{"ApiVersion":"1.50","Version":"28.0.0"}"#)
        } else if line.contains("/events") {
            json_reply(
                "{\"Type\":\"service\",\"Action\":\"create\"}\n{\"Type\":\"network\",\n \"Action\":\"remove\"}\n",
            )
        } else {
            json_reply(r#"{"Swarm":{"LocalNodeState":"active"}}"#)
        })
    }

    #[tokio::test]
    async fn the_version_is_capped_at_1_47_and_every_path_carries_it() {
        let d = daemon(modern);
        let c = Client::connect_host(&d.host).await;
        let c = c.unwrap_or_else(|e| panic!("connect: {e}"));
        assert_eq!(c.api_version(), "1.47");
        for _ in 0..5 {
            assert!(c.info().await.is_ok());
        }
        let seen = d.seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            seen[0], "GET /_ping HTTP/1.1",
            "the cheap ping, not /version"
        );
        assert!(
            seen[1..].iter().all(|l| l == "GET /v1.47/info HTTP/1.1"),
            "{seen:?}"
        );
        assert_eq!(
            *d.connections.lock().map(|c| *c).as_ref().unwrap_or(&0),
            1,
            "one pooled connection"
        );
        assert_eq!(c.requests().count("GET", "/info"), 5);
        assert_eq!(c.requests().count("GET", "/_ping"), 1);
        assert_eq!(c.requests().count("GET", "/version"), 0);
    }

    /// Make a CA, a server certificate for 127.0.0.1 and a client
    /// certificate with the openssl CLI (skips when it is missing).
    fn certificates(dir: &std::path::Path) -> bool {
        let script = "set -e
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 1 -subj /CN=ca
            openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj /CN=daemon
            printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server.pem -days 1 -extfile server.ext
            openssl req -newkey rsa:2048 -nodes -keyout key.pem -out client.csr -subj /CN=client
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out cert.pem -days 1 -extfile client.ext";
        std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[tokio::test]
    async fn tls_connects_with_client_certificates_like_docker_tls_verify() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        if !certificates(dir.path()) {
            eprintln!("skipped: openssl cannot make test certificates");
            return;
        }
        let pem = |name: &str| dir.path().join(name);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(pem("ca.pem"))
            .into_iter()
            .flatten()
            .flatten()
        {
            assert!(roots.add(c).is_ok());
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .unwrap_or_else(|e| panic!("verifier: {e}"));
        let certs: Vec<_> = CertificateDer::pem_file_iter(pem("server.pem"))
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        let key = PrivateKeyDer::from_pem_file(pem("server-key.pem"))
            .unwrap_or_else(|e| panic!("key: {e}"));
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_client_cert_verifier(verifier))
            .and_then(|b| b.with_single_cert(certs, key))
            .unwrap_or_else(|e| panic!("server config: {e}"));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let listener = listener.unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    tokio::spawn(serve(tls, modern, Arc::clone(&seen2)));
                }
            }
        });

        let host = format!("tcp://127.0.0.1:{port}");
        let config = Config::new(&host).tls(TlsFiles::in_dir(dir.path()));
        let c = Client::connect_with(config).await;
        let c = c.unwrap_or_else(|e| panic!("connect over TLS: {e}"));
        assert_eq!(c.api_version(), "1.47");
        assert!(c.info().await.is_ok());
        assert_eq!(seen.lock().map(|s| s.len()).unwrap_or_default(), 2);

        // Without the client certificate the handshake is refused.
        let plain = Client::connect_host(&host).await;
        assert!(plain.is_err());
    }

    #[tokio::test]
    async fn a_daemon_whose_ping_names_no_version_is_asked_its_version() {
        let d = daemon(|line| {
            Some(json_reply(if line.starts_with("GET /version") {
                r#"{"ApiVersion":"1.40"}"#
            } else {
                "[]"
            }))
        });
        let c = Client::connect_host(&d.host).await;
        assert_eq!(
            c.ok().map(|c| c.api_version().to_string()).as_deref(),
            Some("1.40")
        );
    }

    #[tokio::test]
    async fn an_old_daemon_is_spoken_to_in_the_version_its_ping_names() {
        let d = daemon(|line| {
            Some(if line.starts_with("GET /_ping") {
                ping_reply("1.40")
            } else {
                json_reply("[]")
            })
        });
        let c = Client::connect_host(&d.host).await;
        let c = c.unwrap_or_else(|e| panic!("connect: {e}"));
        assert_eq!(c.api_version(), "1.40");
        assert_eq!(c.requests().count("GET", "/version"), 0);
    }

    #[tokio::test]
    async fn a_silent_daemon_times_out() {
        let d = daemon(|line| line.starts_with("GET /_ping").then(|| ping_reply("1.41")));
        let config = Config::new(&d.host).timeout(Duration::from_millis(200));
        let c = Client::connect_with(config).await;
        let c = c.unwrap_or_else(|e| panic!("connect: {e}"));
        let err = c.list(Kind::Service, &Filters::none()).await.err();
        assert!(
            matches!(&err, Some(Error::TimedOut { path, .. }) if path == "/v1.41/services"),
            "{err:?}"
        );
        assert!(err.is_some_and(|e| e.is_transient()));
        assert_eq!(
            c.requests().0.get(&("GET".into(), "/services".into(), 0)),
            Some(&1)
        );
    }

    #[tokio::test]
    async fn an_absent_daemon_is_a_transient_connect_failure() {
        let err = Client::connect_host("unix:///nonexistent/docker.sock")
            .await
            .err();
        assert!(
            matches!(&err, Some(Error::ConnectFailed { host, .. }) if host.contains("nonexistent")),
            "{err:?}"
        );
        assert!(err.is_some_and(|e| e.is_transient()));
    }

    #[tokio::test]
    async fn events_are_split_into_json_objects() {
        let d = daemon(modern);
        let c = Client::connect_host(&d.host).await;
        let c = c.unwrap_or_else(|e| panic!("connect: {e}"));
        let events = c.events(&Filters::none().with("type", "service")).await;
        let events = events.unwrap_or_else(|e| panic!("events: {e}"));
        let got: Vec<Value> = events.filter_map(|e| async move { e.ok() }).collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[1]["Action"], "remove");
        let seen = d.seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(
            seen[1].starts_with("GET /v1.47/events?filters=%7B%22type%22"),
            "{seen:?}"
        );
    }

    #[test]
    fn filters_are_url_encoded_json_maps_of_lists() {
        let f = Filters::none()
            .with("label", "dev.bosun.managed-by=bosun")
            .with("name", "a b");
        assert_eq!(
            query(&f, None),
            "?filters=%7B%22label%22%3A%5B%22dev.bosun.managed-by%3Dbosun%22%5D%2C%22name%22%3A%5B%22a%20b%22%5D%7D"
        );
        assert_eq!(query(&Filters::none(), Some(7)), "?version=7");
        assert_eq!(query(&Filters::none(), None), "");
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert!(parse_version("1.9").unwrap_or_default() < (1, 41));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn daemon_messages_are_extracted() {
        let e = response_failed(
            &Method::GET,
            "/v1.41/services/x",
            StatusCode::NOT_FOUND,
            br#"{"message":"service x not found"}"#,
        );
        assert!(e.is_not_found());
        assert_eq!(e.message(), "service x not found");
        let e = response_failed(&Method::GET, "/p", StatusCode::BAD_REQUEST, b"plain text\n");
        assert_eq!(e.message(), "plain text");
    }
}

//! The controller's HTTP endpoints, over real TCP on port 0.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bosun::controller::http::{self, HttpState};
use bosun::controller::metrics::Metrics;
use bosun::controller::status::{
    Condition, ObjectStatus, PassResult, PassStatus, SourceStatus, StatusHandle,
};
use bosun::source::webhook;
use bosun::swarm::RequestCounter;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

const SECRET: &[u8] = b"s3cr3t-webhook";

/// A server on 127.0.0.1:0 and the handles a test drives it with.
struct Server {
    addr: std::net::SocketAddr,
    status: StatusHandle,
    metrics: Metrics,
    requests: Arc<RequestCounter>,
    hooks: mpsc::Receiver<()>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), http::Error>>,
}

impl Server {
    async fn start(secret: Option<&[u8]>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = StatusHandle::new(SourceStatus {
            kind: "git".into(),
            location: "https://git.example.org/ops/cluster.git".into(),
            revision: None,
            error: None,
        });
        let requests = Arc::new(RequestCounter::new());
        let metrics = Metrics::new(requests.clone());
        let (hook_tx, hooks) = mpsc::channel(1);
        let (stop, stopped) = oneshot::channel::<()>();
        let state = HttpState {
            status: status.clone(),
            metrics: metrics.clone(),
            webhook_secret: secret.map(<[u8]>::to_vec),
            hook_tx,
        };
        let task = tokio::spawn(http::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            status,
            metrics,
            requests,
            hooks,
            stop: Some(stop),
            task,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.request(
            hyper::Request::get(path)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = hyper::Request::post(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
            .await
    }

    /// One request on a fresh HTTP/1.1 connection.
    async fn request(&self, mut req: hyper::Request<Full<Bytes>>) -> Reply {
        req.headers_mut()
            .insert(hyper::header::HOST, self.addr.to_string().parse().unwrap());
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let res = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
            .await
            .expect("request timed out")
            .unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            content_type,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    /// Whether a webhook trigger arrived (waits briefly).
    async fn triggered(&mut self) -> bool {
        tokio::time::timeout(Duration::from_millis(200), self.hooks.recv())
            .await
            .is_ok_and(|v| v.is_some())
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: Option<String>,
    body: String,
}

#[tokio::test]
async fn healthz_answers_ok_while_running() {
    let server = Server::start(None).await;
    let reply = server.get("/healthz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.trim(), "ok");
}

#[tokio::test]
async fn readyz_flips_to_200_after_the_first_successful_pass() {
    let server = Server::start(None).await;
    assert_eq!(server.get("/readyz").await.status, 503);
    server.status.update(|s| s.ready = true);
    let reply = server.get("/readyz").await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let server = Server::start(None).await;
    assert_eq!(server.get("/nope").await.status, 404);
    assert_eq!(server.get("/hooks/git").await.status, 405);
}

#[tokio::test]
async fn status_serves_the_snapshot_as_camel_case_json() {
    let server = Server::start(None).await;
    server.status.update(|s| {
        s.record_pass(PassStatus {
            started_at: "2024-05-01T12:00:00Z".into(),
            duration_ms: 420,
            result: PassResult::Success,
            trigger: "webhook".into(),
            revision: "0123abcd".into(),
            error: None,
            changes: 3,
        });
        s.objects.push(ObjectStatus {
            kind: bosun::swarm::Kind::Service,
            name: "traefik_proxy".into(),
            owner: "Stack/traefik".into(),
            condition: Condition::Ready,
            message: String::new(),
        });
        s.lease.holder = Some("manager1".into());
        s.lease.held = true;
    });
    let reply = server.get("/status").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(json["ready"], true);
    assert_eq!(json["source"]["kind"], "git");
    assert_eq!(json["source"]["revision"], "0123abcd");
    assert_eq!(json["lastPass"]["result"], "success");
    assert_eq!(json["lastPass"]["durationMs"], 420);
    assert_eq!(json["lastPass"]["trigger"], "webhook");
    assert_eq!(json["lastSuccess"]["changes"], 3);
    assert_eq!(json["lastError"], serde_json::Value::Null);
    assert_eq!(json["objects"][0]["name"], "traefik_proxy");
    assert_eq!(json["objects"][0]["condition"], "Ready");
    assert_eq!(json["lease"]["holder"], "manager1");
    assert_eq!(json["lease"]["held"], true);
    // And it reads back into the same type.
    let back: bosun::controller::status::Status = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(back, server.status.snapshot());
}

/// Checks Prometheus text format 0.0.4 line by line and returns the
/// samples as `(name, labels, value)`.
fn parse_exposition(text: &str) -> Vec<(String, String, f64)> {
    let mut helped = BTreeSet::new();
    let mut typed = std::collections::BTreeMap::new();
    let mut samples = Vec::new();
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(is_name(name), "bad HELP name {line:?}");
            assert!(!help.is_empty(), "empty HELP {line:?}");
            assert!(helped.insert(name.to_string()), "second HELP for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(is_name(name), "bad TYPE name {line:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad TYPE {line:?}"
            );
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "second TYPE for {name}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest.strip_suffix('}').expect("unclosed labels");
                for pair in split_labels(labels) {
                    let (k, v) = pair.split_once('=').expect("label without =");
                    assert!(is_name(k), "bad label name in {line:?}");
                    assert!(
                        v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                        "unquoted label value in {line:?}"
                    );
                }
                (name, labels.to_string())
            }
            None => (series, String::new()),
        };
        assert!(is_name(name), "bad sample name {line:?}");
        // Every sample belongs to a family that has HELP and TYPE.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "sample without TYPE: {line:?}");
        assert!(helped.contains(family), "sample without HELP: {line:?}");
        samples.push((name.to_string(), labels, value));
    }
    samples
}

/// Split `a="x",b="y,z"` at the commas outside quotes.
fn split_labels(labels: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() {
        out.push(&labels[start..]);
    }
    out
}

fn sample(samples: &[(String, String, f64)], name: &str, labels: &str) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l == labels)
        .map(|(_, _, v)| *v)
}

#[tokio::test]
async fn metrics_serve_valid_prometheus_text_and_counters_move() {
    let server = Server::start(None).await;
    let reply = server.get("/metrics").await;
    assert_eq!(reply.status, 200);
    let content_type = reply.content_type.unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let before = parse_exposition(&reply.body);
    assert_eq!(
        sample(&before, "bosun_passes_total", "result=\"success\""),
        Some(0.0)
    );
    assert_eq!(
        sample(&before, "bosun_pass_duration_seconds_count", ""),
        Some(0.0)
    );

    server
        .metrics
        .pass_finished(PassResult::Success, Duration::from_millis(300));
    server
        .metrics
        .pass_finished(PassResult::Invalid, Duration::from_millis(5));
    server.metrics.set_objects(bosun::swarm::Kind::Service, 12);
    server
        .metrics
        .drift_corrected(bosun::swarm::Kind::Network, 1);
    server.metrics.set_lease_held(true);
    server.metrics.set_last_success(1_714_564_800.0);
    server.requests.record("GET", "/services", 200);
    server.requests.record("POST", "/networks/create", 409);

    let after = parse_exposition(&server.get("/metrics").await.body);
    let s = |name, labels| sample(&after, name, labels);
    assert_eq!(s("bosun_passes_total", "result=\"success\""), Some(1.0));
    assert_eq!(s("bosun_passes_total", "result=\"invalid\""), Some(1.0));
    assert_eq!(s("bosun_passes_total", "result=\"failed\""), Some(0.0));
    assert_eq!(s("bosun_pass_duration_seconds_count", ""), Some(2.0));
    assert_eq!(
        s("bosun_pass_duration_seconds_bucket", "le=\"0.5\""),
        Some(2.0)
    );
    assert_eq!(
        s("bosun_pass_duration_seconds_bucket", "le=\"0.25\""),
        Some(1.0)
    );
    assert_eq!(s("bosun_managed_objects", "kind=\"service\""), Some(12.0));
    assert_eq!(
        s("bosun_drift_corrections_total", "kind=\"network\""),
        Some(1.0)
    );
    assert_eq!(s("bosun_lease_held", ""), Some(1.0));
    assert_eq!(
        s("bosun_last_success_timestamp_seconds", ""),
        Some(1_714_564_800.0)
    );
    assert_eq!(
        s(
            "bosun_api_requests_total",
            "method=\"GET\",endpoint=\"/services\",status=\"200\""
        ),
        Some(1.0)
    );
    assert_eq!(
        s(
            "bosun_api_requests_total",
            "method=\"POST\",endpoint=\"/networks/create\",status=\"409\""
        ),
        Some(1.0)
    );
}

const PUSH: &[u8] = br#"{"ref":"refs/heads/main","after":"0123abcd"}"#;

#[tokio::test]
async fn webhook_with_a_valid_github_signature_triggers_a_pass() {
    let mut server = Server::start(Some(SECRET)).await;
    let signature = webhook::sign(PUSH, SECRET);
    let reply = server
        .post(
            "/hooks/git",
            &[
                ("X-Hub-Signature-256", &signature),
                ("X-GitHub-Event", "push"),
                ("Content-Type", "application/json"),
            ],
            PUSH,
        )
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert!(server.triggered().await, "no trigger sent");
}

#[tokio::test]
async fn webhook_with_a_wrong_signature_is_401_and_triggers_nothing() {
    let mut server = Server::start(Some(SECRET)).await;
    let signature = webhook::sign(PUSH, b"not the secret");
    let reply = server
        .post("/hooks/git", &[("X-Hub-Signature-256", &signature)], PUSH)
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    // A body changed after signing is as bad as a wrong key.
    let signature = webhook::sign(PUSH, SECRET);
    let reply = server
        .post(
            "/hooks/git",
            &[("X-Hub-Signature-256", &signature)],
            br#"{"ref":"refs/heads/evil"}"#,
        )
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(!server.triggered().await, "a trigger was sent");
}

#[tokio::test]
async fn unsigned_webhook_is_401_and_triggers_nothing() {
    let mut server = Server::start(Some(SECRET)).await;
    let reply = server.post("/hooks/git", &[], PUSH).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(!server.triggered().await, "a trigger was sent");
}

#[tokio::test]
async fn webhook_with_the_gitlab_token_triggers_and_a_wrong_token_does_not() {
    let mut server = Server::start(Some(SECRET)).await;
    let reply = server
        .post("/hooks/git", &[("X-Gitlab-Token", "wrong")], PUSH)
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(!server.triggered().await, "a trigger was sent");
    let token = std::str::from_utf8(SECRET).unwrap();
    let reply = server
        .post(
            "/hooks/git",
            &[("X-Gitlab-Token", token), ("X-Gitlab-Event", "Push Hook")],
            PUSH,
        )
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert!(server.triggered().await, "no trigger sent");
}

#[tokio::test]
async fn webhook_without_a_configured_secret_is_always_401() {
    let mut server = Server::start(None).await;
    // Even a request "signed" with an empty secret gets nothing.
    let signature = webhook::sign(PUSH, b"");
    let reply = server
        .post("/hooks/git", &[("X-Hub-Signature-256", &signature)], PUSH)
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(reply.body.contains("--webhook-secret-file"), "{reply:?}");
    let reply = server
        .post("/hooks/git", &[("X-Gitlab-Token", "")], PUSH)
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(!server.triggered().await, "a trigger was sent");
}

#[tokio::test]
async fn webhooks_while_a_pass_is_pending_are_still_accepted() {
    let mut server = Server::start(Some(SECRET)).await;
    let signature = webhook::sign(PUSH, SECRET);
    for _ in 0..3 {
        let reply = server
            .post("/hooks/git", &[("X-Hub-Signature-256", &signature)], PUSH)
            .await;
        assert_eq!(reply.status, 202, "{reply:?}");
    }
    // The channel holds one trigger: three pushes, one pass.
    assert!(server.triggered().await);
    assert!(!server.triggered().await);
}

#[tokio::test]
async fn oversized_webhook_bodies_are_refused() {
    let mut server = Server::start(Some(SECRET)).await;
    let body = vec![b' '; http::BODY_LIMIT + 1];
    let signature = webhook::sign(&body, SECRET);
    let reply = server
        .post("/hooks/git", &[("X-Hub-Signature-256", &signature)], &body)
        .await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(!server.triggered().await, "a trigger was sent");
}

#[tokio::test]
async fn server_stops_when_the_shutdown_future_completes() {
    let mut server = Server::start(None).await;
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "still accepting connections"
    );
}

#[tokio::test]
async fn bind_names_the_address_when_it_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = http::bind(addr).await.unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

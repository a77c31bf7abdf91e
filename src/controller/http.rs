//! The controller's HTTP endpoints (`bosun run --listen ADDR`).
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | 200 `ok` while the process runs (liveness) |
//! | `GET /readyz` | 200 once a pass has succeeded, 503 before (readiness) |
//! | `GET /status` | the [`Status`](super::status::Status) as JSON |
//! | `GET /metrics` | Prometheus text (see [`super::metrics`]) |
//! | `POST /hooks/git` | a push webhook: 202 and a pass is triggered, or 401 |
//!
//! Liveness deliberately does not depend on the swarm: a swarm without
//! quorum is a reason to report, not to restart bosun (which would lose the
//! status that explains it).
//!
//! The webhook only makes the controller sync *now* instead of at its next
//! poll; the controller fetches the revision itself and never trusts the
//! payload. Unsigned requests, wrong signatures, and every request when no
//! secret is configured get 401 and change nothing. Bodies are capped at
//! [`BODY_LIMIT`] (413 beyond).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::metrics::{self, Metrics};
use super::status::StatusHandle;
use crate::source::webhook;

/// The largest request body accepted (push payloads of big merges are a few
/// hundred KiB).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Errors of the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr} (is another bosun or another service using it?)")]
    BindFailed {
        /// The address given with `--listen`.
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The server failed while accepting connections.
    #[error("the HTTP server failed")]
    ServeFailed(#[source] std::io::Error),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the endpoints read and where webhooks send their triggers.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// Served by `/status` and `/readyz`.
    pub status: StatusHandle,
    /// Served by `/metrics`.
    pub metrics: Metrics,
    /// The shared webhook secret; `None` refuses every webhook.
    pub webhook_secret: Option<Vec<u8>>,
    /// One `()` per accepted webhook. The controller should give it a small
    /// capacity (1 is enough): when it is full a pass is already pending.
    pub hook_tx: mpsc::Sender<()>,
}

/// Bind `addr` (a thin wrapper that names the address in the error).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::BindFailed { addr, source })
}

/// The routes, for embedding or for tests that drive the router directly.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/hooks/git", post(hook))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(Arc::new(state))
}

/// Serve the endpoints on `listener` until `shutdown` completes; then stop
/// accepting, let requests in flight finish, and return.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /healthz, /readyz, /status, /metrics, /hooks/git");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::ServeFailed)
}

type AppState = State<Arc<HttpState>>;

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): AppState) -> Response {
    if state.status.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no reconcile pass has succeeded yet\n",
        )
            .into_response()
    }
}

async fn status(State(state): AppState) -> Response {
    axum::Json(state.status.snapshot()).into_response()
}

async fn metrics(State(state): AppState) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn hook(State(state): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let secret = state.webhook_secret.as_deref().unwrap_or_default();
    let provider = match webhook::verify(&pairs, &body, secret) {
        Ok(provider) => provider,
        Err(rejection) => {
            tracing::warn!(reason = %rejection, "webhook rejected");
            let hint = if rejection == webhook::Rejection::NoSecret {
                " (start bosun with --webhook-secret-file to accept webhooks)"
            } else {
                ""
            };
            return (
                StatusCode::UNAUTHORIZED,
                format!("webhook rejected: {rejection}{hint}\n"),
            )
                .into_response();
        }
    };
    match state.hook_tx.try_send(()) {
        Ok(()) => tracing::info!(?provider, "webhook accepted, pass triggered"),
        Err(mpsc::error::TrySendError::Full(())) => {
            tracing::debug!(?provider, "webhook accepted, a pass is already pending");
        }
        Err(mpsc::error::TrySendError::Closed(())) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the controller is shutting down\n",
            )
                .into_response();
        }
    }
    (StatusCode::ACCEPTED, "accepted\n").into_response()
}

//! What every mock service shares: serving a router on loopback until stopped or dropped, and
//! its traffic ([`Traffic`]): a log of every request, the fault plan (`faults`) injected into
//! the answers, and a switch that takes the service down. A service words the kit's answers in
//! its own [`Voice`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use serde::Serialize;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::{Fault, FaultPlan};
use accessgov_policy::{CredentialConfig, LimitsConfig, SettingValue, TenantConfig};
use axum::http::HeaderMap;

/// The bearer token of a request, if it carries one.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// A tenant of `connector` for a mock listening on `addr`: its origin allowed (and loopback,
/// where mocks live), `settings` served, and `token` injected as the bearer token with `headers`.
pub fn loopback_tenant(
    tenant_id: &str,
    connector: &str,
    addr: SocketAddr,
    settings: BTreeMap<String, SettingValue>,
    token: &str,
    headers: BTreeMap<String, String>,
) -> TenantConfig {
    let origin = format!("http://{addr}");
    TenantConfig {
        id: tenant_id.to_string(),
        connector: connector.to_string(),
        customer: None,
        allowed_origins: vec![origin.clone()],
        settings,
        credentials: vec![CredentialConfig {
            origin,
            path_prefix: None,
            bearer_token: Some(token.to_string()),
            bearer_token_env: None,
            headers,
        }],
        allow_private_addresses: true,
        limits: LimitsConfig::default(),
    }
}

/// Largest request body a mock reads.
const MAX_BODY: usize = 4 << 20;

/// A router being served. Dropping it stops the server; [`Served::stop`] also waits for it.
pub struct Served {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Served {
    /// Serves `app` on `addr` (port 0 picks a free port).
    pub async fn start(app: Router, addr: SocketAddr) -> std::io::Result<Served> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        // As production HTTP servers do: a response's head and body go out without waiting for
        // the client's delayed acknowledgement.
        let listener = listener.tap_io(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("mock: TCP_NODELAY not set: {e}");
            }
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!("mock server failed: {e}");
            }
        });
        Ok(Served { addr, shutdown: Some(shutdown), task: Some(task) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// How a service words the answers the kit gives on its behalf.
pub trait Voice: Clone + Send + Sync + 'static {
    /// An error answer to a request for `path`.
    fn error(&self, path: &str, status: StatusCode, detail: &str) -> Response {
        let _ = path;
        json_error(status, detail)
    }

    /// The answer to a request whose body is over the mock's limit.
    fn too_large(&self, path: &str) -> Response {
        self.error(path, StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
    }

    /// The header naming a request's scope (a workspace, an organization), recorded with it.
    fn scope_header(&self) -> Option<&'static str> {
        None
    }
}

/// The voice of a plain JSON API: errors are `{"detail": ...}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonVoice;

impl Voice for JsonVoice {}

/// An error answer `{"detail": detail}`.
pub fn json_error(status: StatusCode, detail: &str) -> Response {
    (status, axum::Json(json!({"detail": detail}))).into_response()
}

/// One request the mock received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Body text.
    pub body: String,
    /// The bearer token presented, if any.
    pub bearer_token: Option<String>,
    /// The header naming the request's scope (the service's [`Voice::scope_header`], e.g.
    /// `chatgpt-account-id`), if the request carries it.
    pub scope_header: Option<String>,
    /// Status answered; 0 while unanswered, or when the client gave up first.
    pub status: u16,
    /// The fault injected into the answer, if any.
    pub fault: Option<Fault>,
    /// When it arrived, in microseconds since the process's first mock request: with
    /// `answered_us`, what shows which requests were in flight at once.
    pub arrived_us: u64,
    /// When its answer was ready; 0 while unanswered.
    pub answered_us: u64,
}

/// Microseconds since the process's first recorded request.
fn clock_us() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(std::time::Instant::now).elapsed().as_micros() as u64
}

impl RecordedRequest {
    /// Whether the request could change state.
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

/// What a mock's traffic holds.
#[derive(Debug, Default)]
struct TrafficData {
    requests: Vec<RecordedRequest>,
    faults: FaultPlan,
    down: bool,
}

/// A mock's traffic: every request received, in order; the faults to inject; whether it is down
/// (every request's connection dropped before it is handled, as when a service dies under its
/// clients). Shared by the server and its caller.
#[derive(Debug, Clone, Default)]
pub struct Traffic(Arc<Mutex<TrafficData>>);

impl Traffic {
    fn lock(&self) -> MutexGuard<'_, TrafficData> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the request log.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.lock().faults = plan;
    }

    /// Takes the service down or brings it back.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }
}

/// `router` with its requests recorded in `traffic` and its faults injected, the kit's answers
/// in `voice`.
pub fn with_traffic<S, V>(router: Router<S>, traffic: Traffic, voice: V) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    V: Voice,
{
    router.layer(middleware::from_fn_with_state((traffic, voice), record::<V>))
}

async fn record<V: Voice>(
    State((traffic, voice)): State<(Traffic, V)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return voice.too_large(parts.uri.path()),
    };
    let (down, fault) = {
        let mut data = traffic.lock();
        (data.down, data.faults.next(parts.method.as_str(), parts.uri.path()))
    };
    if down {
        return broken_connection();
    }
    let entry = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bearer_token: bearer(&parts.headers),
        scope_header: voice
            .scope_header()
            .and_then(|name| parts.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        status: 0,
        fault,
        arrived_us: clock_us(),
        answered_us: 0,
    };
    // Logged on arrival: a client that gives up mid-request leaves an entry with status 0.
    let index = {
        let mut data = traffic.lock();
        data.requests.push(entry);
        data.requests.len() - 1
    };
    if let Some(delay) = fault.and_then(Fault::delay) {
        tokio::time::sleep(delay).await;
    }
    let response = match fault {
        Some(fault) if !fault.applies_request() => refusal(&voice, fault, parts.uri.path()),
        _ => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            match fault {
                Some(Fault::TruncatedJson) => truncated(response).await,
                Some(Fault::AppliedButLost) => broken_connection(),
                _ => response,
            }
        }
    };
    if let Some(entry) = traffic.lock().requests.get_mut(index) {
        // A reset delivers no answer at all.
        entry.status = if fault == Some(Fault::Reset) { 0 } else { response.status().as_u16() };
        entry.answered_us = clock_us();
    }
    response
}

/// The answer of a fault that stops the request before it is handled, in the service's voice.
fn refusal(voice: &impl Voice, fault: Fault, path: &str) -> Response {
    let error = |status: StatusCode, detail: &str| voice.error(path, status, detail);
    let html = |status: StatusCode| {
        (
            status,
            [("content-type", "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>",
        )
            .into_response()
    };
    match fault {
        Fault::TooManyRequests { retry_after } => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            if let Some(seconds) = retry_after
                && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
            {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        Fault::Conflict => error(StatusCode::CONFLICT, "Conflict"),
        Fault::ServerError { status } => error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Internal server error",
        ),
        Fault::HtmlChallenge => html(StatusCode::FORBIDDEN),
        Fault::HtmlOk => html(StatusCode::OK),
        _ => broken_connection(),
    }
}

/// The handled request's JSON answer, cut in half.
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let cut = bytes.slice(..bytes.len() / 2);
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(cut))
}

/// A response whose body fails at once: the client sees the connection drop mid-answer.
fn broken_connection() -> Response {
    Response::new(Body::new(Broken))
}

struct Broken;

impl http_body::Body for Broken {
    type Data = bytes::Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected fault: connection reset",
        ))))
    }
}

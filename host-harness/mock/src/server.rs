//! Serving the mock on loopback, and recording every request it receives.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::bearer;
use super::console;
use super::faults::Fault;
use super::kit::Served;
use super::model::{MockService, RecordedRequest};
use super::scim;
use accessgov_policy::{CredentialConfig, LimitsConfig, SettingValue, TenantConfig};

/// Largest request body the mock reads.
const MAX_BODY: usize = 4 << 20;

/// A running mock server. Dropping it stops the server.
pub struct MockServer {
    served: Served,
    addr: SocketAddr,
    service: MockService,
}

impl MockServer {
    /// Serves `service` on `addr` (port 0 picks a free port).
    pub async fn start(service: MockService, addr: SocketAddr) -> std::io::Result<MockServer> {
        let served = Served::start(router(service.clone()), addr).await?;
        Ok(MockServer { addr: served.addr(), served, service })
    }

    /// Serves on a free loopback port.
    pub async fn start_local(service: MockService) -> std::io::Result<MockServer> {
        Self::start(service, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`, the origin to allow.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The console API base URL: `http://host:port/backend-api`.
    pub fn base_url(&self) -> String {
        console_base_url(self.addr)
    }

    /// The SCIM base URL of `directory`: `http://host:port/scim/v2.0/<directory>`.
    pub fn scim_base_url(&self, directory: &str) -> String {
        format!("http://{}/scim/v2.0/{directory}", self.addr)
    }

    /// A tenant of the bundled `chatgpt` connector for workspace `account_id` of this mock,
    /// holding `token`; see [`chatgpt_tenant_at`].
    pub fn chatgpt_tenant(&self, tenant_id: &str, account_id: &str, token: &str) -> TenantConfig {
        chatgpt_tenant_at(self.addr, tenant_id, account_id, token)
    }

    /// The state it serves.
    pub fn service(&self) -> &MockService {
        &self.service
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.served.stop().await;
    }
}

/// The console API base URL of a mock listening on `addr`: `http://host:port/backend-api`.
pub fn console_base_url(addr: SocketAddr) -> String {
    format!("http://{addr}/backend-api")
}

/// A tenant of the bundled `chatgpt` connector for workspace `account_id` of the mock listening
/// on `addr` (in this process or another), holding `token`: the origin allowed, the token and
/// `chatgpt-account-id` injected, and loopback explicitly allowed (the mock lives there).
pub fn chatgpt_tenant_at(
    addr: SocketAddr,
    tenant_id: &str,
    account_id: &str,
    token: &str,
) -> TenantConfig {
    let origin = format!("http://{addr}");
    let settings = BTreeMap::from([
        ("base-url".to_string(), SettingValue::Text(console_base_url(addr))),
        ("account-id".to_string(), SettingValue::Text(account_id.to_string())),
    ]);
    TenantConfig {
        id: tenant_id.to_string(),
        connector: "chatgpt".to_string(),
        allowed_origins: vec![origin.clone()],
        settings,
        credentials: vec![CredentialConfig {
            origin,
            path_prefix: None,
            bearer_token: Some(token.to_string()),
            bearer_token_env: None,
            headers: BTreeMap::from([("chatgpt-account-id".to_string(), account_id.to_string())]),
        }],
        allow_private_addresses: true,
        limits: LimitsConfig::default(),
    }
}

/// The mock's whole HTTP surface.
pub fn router(service: MockService) -> Router {
    console::routes()
        .merge(scim::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(service.clone(), record))
        .with_state(service)
}

async fn not_found(uri: Uri) -> Response {
    if scim::is_scim_path(uri.path()) {
        scim::ScimError::new(StatusCode::NOT_FOUND, format!("No resource at {}", uri.path()))
            .into_response()
    } else {
        (StatusCode::NOT_FOUND, axum::Json(json!({"detail": "Not Found"}))).into_response()
    }
}

async fn record(State(service): State<MockService>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) if scim::is_scim_path(parts.uri.path()) => {
            return scim::ScimError::too_large().into_response();
        }
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(json!({"detail": "Request body too large"})),
            )
                .into_response();
        }
    };
    let (down, fault) = {
        let mut data = service.lock();
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
        account_header: parts
            .headers
            .get("chatgpt-account-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        status: 0,
        fault,
    };
    // Logged on arrival: a client that gives up mid-request leaves an entry with status 0.
    let index = {
        let mut data = service.lock();
        data.requests.push(entry);
        data.requests.len() - 1
    };
    if let Some(delay) = fault.and_then(Fault::delay) {
        tokio::time::sleep(delay).await;
    }
    let response = match fault {
        Some(fault) if !fault.applies_request() => refusal(fault, parts.uri.path()),
        _ => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            match fault {
                Some(Fault::TruncatedJson) => truncated(response).await,
                Some(Fault::AppliedButLost) => broken_connection(),
                _ => response,
            }
        }
    };
    if let Some(entry) = service.lock().requests.get_mut(index) {
        // A reset delivers no answer at all.
        entry.status = if fault == Some(Fault::Reset) { 0 } else { response.status().as_u16() };
    }
    response
}

/// The answer of a fault that stops the request before it is handled; on the SCIM surface
/// its error bodies are SCIM errors.
fn refusal(fault: Fault, path: &str) -> Response {
    let error = |status: StatusCode, detail: &str| {
        if scim::is_scim_path(path) {
            scim::fault_refusal(status, detail)
        } else {
            (status, axum::Json(json!({"detail": detail}))).into_response()
        }
    };
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

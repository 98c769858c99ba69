//! Serving the mock on loopback, and recording every request it receives.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::auth::bearer;
use super::console;
use super::model::{MockService, RecordedRequest};
use crate::tenant::{CredentialConfig, LimitsConfig, SettingValue, TenantConfig};

/// Largest request body the mock reads.
const MAX_BODY: usize = 4 << 20;

/// A running mock server. Dropping it stops the server.
pub struct MockServer {
    addr: SocketAddr,
    service: MockService,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Serves `service` on `addr` (port 0 picks a free port).
    pub async fn start(service: MockService, addr: SocketAddr) -> std::io::Result<MockServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = router(service.clone());
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
        Ok(MockServer { addr, service, shutdown: Some(shutdown), task: Some(task) })
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
        format!("http://{}/backend-api", self.addr)
    }

    /// A tenant of the bundled `chatgpt` connector for workspace `account_id` of this mock,
    /// holding `token`: the origin allowed, the token and `chatgpt-account-id` injected, and
    /// loopback explicitly allowed (the mock lives there).
    pub fn chatgpt_tenant(&self, tenant_id: &str, account_id: &str, token: &str) -> TenantConfig {
        let settings = BTreeMap::from([
            ("base-url".to_string(), SettingValue::Text(self.base_url())),
            ("account-id".to_string(), SettingValue::Text(account_id.to_string())),
        ]);
        TenantConfig {
            id: tenant_id.to_string(),
            connector: "chatgpt".to_string(),
            allowed_origins: vec![self.origin()],
            settings,
            credentials: vec![CredentialConfig {
                origin: self.origin(),
                bearer_token: Some(token.to_string()),
                bearer_token_env: None,
                headers: BTreeMap::from([(
                    "chatgpt-account-id".to_string(),
                    account_id.to_string(),
                )]),
            }],
            allow_private_addresses: true,
            limits: LimitsConfig::default(),
        }
    }

    /// The state it serves.
    pub fn service(&self) -> &MockService {
        &self.service
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

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The mock's whole HTTP surface.
pub fn router(service: MockService) -> Router {
    console::routes()
        .fallback(|| async { (StatusCode::NOT_FOUND, axum::Json(json!({"detail": "Not Found"}))) })
        .layer(middleware::from_fn_with_state(service.clone(), record))
        .with_state(service)
}

async fn record(State(service): State<MockService>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(json!({"detail": "Request body too large"})),
            )
                .into_response();
        }
    };
    let mut entry = RecordedRequest {
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
    };
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    entry.status = response.status().as_u16();
    service.lock().requests.push(entry);
    response
}

//! Serving the mock ChatGPT service on loopback (its traffic recorded and faulted by the kit).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::console;
use super::kit::{self, Served, Voice};
use super::model::MockService;
use super::scim;
use accessgov_policy::{SettingValue, TenantConfig};

/// A running mock server. Dropping it stops the server.
pub struct MockServer {
    served: Served,
    service: MockService,
}

impl MockServer {
    /// Serves `service` on `addr` (port 0 picks a free port).
    pub async fn start(service: MockService, addr: SocketAddr) -> std::io::Result<MockServer> {
        let served = Served::start(router(service.clone()), addr).await?;
        Ok(MockServer { served, service })
    }

    /// Serves on a free loopback port.
    pub async fn start_local(service: MockService) -> std::io::Result<MockServer> {
        Self::start(service, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    /// `http://host:port`, the origin to allow.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The console API base URL: `http://host:port/backend-api`.
    pub fn base_url(&self) -> String {
        console_base_url(self.addr())
    }

    /// The SCIM base URL of `directory`: `http://host:port/scim/v2.0/<directory>`.
    pub fn scim_base_url(&self, directory: &str) -> String {
        format!("http://{}/scim/v2.0/{directory}", self.addr())
    }

    /// A tenant of the bundled `chatgpt` connector for workspace `account_id` of this mock,
    /// holding `token`; see [`chatgpt_tenant_at`].
    pub fn chatgpt_tenant(&self, tenant_id: &str, account_id: &str, token: &str) -> TenantConfig {
        chatgpt_tenant_at(self.addr(), tenant_id, account_id, token)
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
    let settings = BTreeMap::from([
        ("base-url".to_string(), SettingValue::Text(console_base_url(addr))),
        ("account-id".to_string(), SettingValue::Text(account_id.to_string())),
    ]);
    let headers = BTreeMap::from([("chatgpt-account-id".to_string(), account_id.to_string())]);
    kit::loopback_tenant(tenant_id, "chatgpt", addr, settings, token, headers)
}

/// The mock's whole HTTP surface, its traffic recorded and faulted by the kit.
pub fn router(service: MockService) -> Router {
    let routes = console::routes()
        .merge(scim::routes())
        .merge(super::admin_api::routes())
        .fallback(not_found);
    kit::with_traffic(routes, service.traffic().clone(), ChatGptVoice).with_state(service)
}

/// How the ChatGPT service words the kit's answers: SCIM errors on the SCIM surface, the
/// console's `{"detail"}` elsewhere; `chatgpt-account-id` names a request's workspace.
#[derive(Debug, Clone, Copy)]
struct ChatGptVoice;

impl Voice for ChatGptVoice {
    fn error(&self, path: &str, status: StatusCode, detail: &str) -> Response {
        if scim::is_scim_path(path) {
            scim::fault_refusal(status, detail)
        } else {
            kit::json_error(status, detail)
        }
    }

    fn too_large(&self, path: &str) -> Response {
        if scim::is_scim_path(path) {
            scim::ScimError::too_large().into_response()
        } else {
            kit::json_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
        }
    }

    fn scope_header(&self) -> Option<&'static str> {
        Some("chatgpt-account-id")
    }
}

async fn not_found(uri: Uri) -> Response {
    if scim::is_scim_path(uri.path()) {
        scim::ScimError::new(StatusCode::NOT_FOUND, format!("No resource at {}", uri.path()))
            .into_response()
    } else {
        kit::json_error(StatusCode::NOT_FOUND, "Not Found")
    }
}

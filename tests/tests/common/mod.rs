//! Shared set-up of the end-to-end tests: a host with a warm compile cache, seeded mocks.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use host_harness::mock::{GenerateSpec, MockServer, MockService, seed};
use host_harness::types::{Account, AccountPage, PageRequest};
use host_harness::{CallError, Host, HostConfig, TenantConfig};

/// The owner token of seeded workspaces.
pub const OWNER_TOKEN: &str = "owner-token-7f3a9c";

/// A host whose compile cache lives in the test target directory, shared by all test binaries.
pub fn host() -> Arc<Host> {
    let cache_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    Arc::new(Host::new(HostConfig { cache_dir: Some(cache_dir), ..HostConfig::default() }).unwrap())
}

/// A mock serving one generated workspace, with an Owner token.
pub async fn mock(account_id: &str, members: usize, invites: usize) -> MockServer {
    let service = MockService::new();
    service.put_workspace(seed::generate(account_id, GenerateSpec { members, invites, seed: 11 }));
    service.add_token(OWNER_TOKEN, account_id, "account-owner");
    MockServer::start_local(service).await.unwrap()
}

/// Registers `tenant` on `host`.
pub fn add(host: &Host, tenant: &TenantConfig) {
    host.add_tenant(tenant, Path::new(".")).unwrap();
}

/// Lists every account of `tenant`, asserting no cursor repeats; returns accounts and page count.
pub async fn list_all(
    host: &Host,
    tenant: &str,
    size: Option<u32>,
) -> Result<(Vec<Account>, usize), CallError> {
    let mut accounts = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen_cursors = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let page: AccountPage = host
            .list_accounts(tenant, PageRequest { cursor: cursor.clone(), size })
            .await
            .unwrap()
            .result?;
        pages += 1;
        accounts.extend(page.accounts);
        match page.next_cursor {
            Some(next) => {
                assert!(seen_cursors.insert(next.clone()), "cursor repeated: {next}");
                cursor = Some(next);
            }
            None => return Ok((accounts, pages)),
        }
    }
}

/// The SCIM directory and token of [`with_scim`].
pub const SCIM_DIRECTORY: &str = "dir-e2e";
/// The SCIM bearer token of [`with_scim`].
pub const SCIM_TOKEN: &str = "scim-token-5d21e0";

/// Turns SCIM on for `account_id` in the mock and gives `tenant` its directory: the setting
/// `scim-base-url` and the SCIM token, limited to the directory's path so the console never
/// sees it (the mock serves both surfaces on one origin, as a real host may).
pub fn with_scim(server: &MockServer, account_id: &str, mut tenant: TenantConfig) -> TenantConfig {
    use host_harness::tenant::{CredentialConfig, SettingValue};
    server.service().enable_scim(account_id, SCIM_DIRECTORY, SCIM_TOKEN);
    let base = server.scim_base_url(SCIM_DIRECTORY);
    tenant.settings.insert("scim-base-url".to_string(), SettingValue::Text(base));
    tenant.credentials.push(CredentialConfig {
        origin: server.origin(),
        path_prefix: Some(format!("/scim/v2.0/{SCIM_DIRECTORY}")),
        bearer_token: Some(SCIM_TOKEN.to_string()),
        bearer_token_env: None,
        headers: std::collections::BTreeMap::new(),
    });
    tenant
}

/// Sends one request to the mock as any HTTP client would; returns the status and JSON body.
pub async fn raw_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{extra}content-type: application/scim+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    let status: u16 = raw[9..12].parse().unwrap();
    let (_, payload) = raw.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(payload.trim()).unwrap_or(serde_json::Value::Null))
}

/// Creates a user through the mock's SCIM surface and returns its SCIM id.
pub async fn scim_create_user(server: &MockServer, email: &str) -> String {
    let auth = format!("Bearer {SCIM_TOKEN}");
    let (status, body) = raw_request(
        server.addr(),
        "POST",
        &format!("/scim/v2.0/{SCIM_DIRECTORY}/Users"),
        &[("authorization", &auth)],
        Some(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": email,
            "active": true,
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

//! Shared set-up of the end-to-end tests: a host with a warm compile cache, seeded mocks.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use accessgov_host::tenant::SettingValue;
use accessgov_host::types::{Account, AccountPage, PageRequest};
use accessgov_host::{CallError, Host, HostConfig, TenantConfig};
use accessgov_mock::{GenerateSpec, MockServer, MockService, seed};

/// The owner token of seeded workspaces.
pub const OWNER_TOKEN: &str = "owner-token-7f3a9c";

/// The configuration of [`host`]: the compile cache in the test target directory, shared by all
/// test binaries, and the bundled connectors. Tests needing another pool or bound start from it.
pub fn host_config() -> HostConfig {
    HostConfig {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    }
}

/// A host of [`host_config`].
pub fn host() -> Arc<Host> {
    Arc::new(Host::new(host_config()).unwrap())
}

/// The linear memory each `list-accounts` call of a whole listing of `tenant` held (pages of
/// `size`), one entry a call, and the accounts listed.
pub async fn memory_of_each_page(
    host: &Host,
    tenant: &str,
    size: Option<u32>,
) -> (Vec<u64>, usize) {
    let (mut held, mut listed, mut cursor) = (Vec::new(), 0, None);
    loop {
        let report = host.list_accounts(tenant, PageRequest { cursor, size }).await.unwrap();
        assert!(report.memory_bytes > 0, "a call reports the memory its instance held");
        held.push(report.memory_bytes);
        let page = report.result.unwrap();
        listed += page.accounts.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (held, listed),
        }
    }
}

/// A mock serving one generated workspace, with an Owner token.
pub async fn mock(account_id: &str, members: usize, invites: usize) -> MockServer {
    mock_of(account_id, GenerateSpec { members, invites, seed: 11, join_requests: 0 }).await
}

/// A mock serving the workspace `spec` generates, with an Owner token.
pub async fn mock_of(account_id: &str, spec: GenerateSpec) -> MockServer {
    let service = MockService::new();
    service.put_workspace(seed::generate(account_id, spec));
    service.add_token(OWNER_TOKEN, account_id, "account-owner");
    MockServer::start_local(service).await.unwrap()
}

/// Lets Owners change members' seat types in the console on workspace `account_id` (the mock's
/// switch for that assumed rule: an Enterprise workspace sends them to the account manager) and
/// tells `tenant` so, for tests that change members' seats on an Enterprise workspace.
pub fn self_service_seats(service: &MockService, account_id: &str, tenant: &mut TenantConfig) {
    if let Some(ws) = service.lock().workspaces.get_mut(account_id) {
        ws.seat_changes = accessgov_mock::SeatChanges::SelfService;
    }
    tenant.settings.insert("seat-changes".into(), SettingValue::Text("self-service".into()));
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
    use accessgov_host::tenant::{CredentialConfig, SettingValue};
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

/// An answer: status, headers (names lowercased) and the body, parsed when it is JSON.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `null` when it is not JSON.
    pub body: serde_json::Value,
}

impl Reply {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Asserts a SCIM error body (RFC 7644 §3.12) and returns its `scimType`.
    pub fn scim_error(&self, status: u16) -> Option<String> {
        use serde_json::json;
        const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/scim+json"));
        assert_eq!(self.body["schemas"], json!([ERROR_URN]), "{}", self.body);
        assert_eq!(self.body["status"], json!(status.to_string()), "status is a string");
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", self.body);
        self.body["scimType"].as_str().map(str::to_string)
    }
}

/// Sends one HTTP/1.1 request with `headers` and a raw body, as any HTTP client would. The
/// server may answer and close before reading a body it refuses, so write errors are tolerated
/// and whatever arrived is read.
pub async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !headers.iter().any(|(n, _)| *n == "content-length") {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(body).await;
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            bytes.extend_from_slice(&chunk[..n]);
        }
        bytes
    };
    let bytes = tokio::time::timeout(std::time::Duration::from_secs(20), exchange).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: serde_json::from_str(payload.trim()).unwrap_or(serde_json::Value::Null),
    }
}

/// The `Authorization` header of a bearer token.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// A request to the SCIM directory of [`with_scim`] with its token; `path` is below the
/// directory (`/Users/...`).
pub async fn scim_request(
    server: &MockServer,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Reply {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [bearer(SCIM_TOKEN), ("content-type", "application/scim+json".to_string())];
    let path = format!("/scim/v2.0/{SCIM_DIRECTORY}{path}");
    raw(server.addr(), method, &path, &headers, body.as_bytes()).await
}

/// Creates a user through the mock's SCIM surface and returns its SCIM id.
pub async fn scim_create_user(server: &MockServer, email: &str) -> String {
    let reply = scim_request(
        server,
        "POST",
        "/Users",
        Some(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": email,
            "active": true,
        })),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

/// A loopback TCP relay to `target` that counts the connections it accepts.
pub async fn counting_relay(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    round_relay(target, Duration::ZERO).await
}

/// [`counting_relay`] for counting the connections requests sent together need: every answer
/// waits until no request has reached the relay for `quiet`. The requests of a round, sent
/// together, then all reach the relay, each on the connection the host picked for it, before
/// any is answered and frees its connection for another; however loaded the machine, as long as
/// the host sends a round's requests within `quiet` of one another. Requests sent one after
/// another still share a connection, so the count shows them.
pub async fn round_relay(target: SocketAddr, quiet: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let last_request = Arc::new(std::sync::Mutex::new(Instant::now()));
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let (requested, waited) = (Arc::clone(&last_request), Arc::clone(&last_request));
            tokio::spawn(async move {
                let outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                let (from_client, to_client) = inbound.into_split();
                let (from_target, to_target) = outbound.into_split();
                let requests = forward(from_client, to_target, || {
                    *requested.lock().unwrap() = Instant::now();
                    async {}
                });
                let answers = forward(from_target, to_client, || {
                    let waited = Arc::clone(&waited);
                    // Requests arriving during the wait push the answer back again.
                    async move {
                        loop {
                            let left = quiet.saturating_sub(waited.lock().unwrap().elapsed());
                            if left.is_zero() {
                                break;
                            }
                            tokio::time::sleep(left).await;
                        }
                    }
                });
                tokio::join!(requests, answers);
            });
        }
    });
    (addr, accepted)
}

/// Copies `from` to `to` until either side ends, awaiting `before_write` ahead of each chunk,
/// then shuts `to` down.
async fn forward<F: std::future::Future<Output = ()>>(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut before_write: impl FnMut() -> F,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 16 << 10];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        before_write().await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// `server`'s ChatGPT tenant `id` for workspace `account`, reaching the service through `relay`
/// (its origin, credential and `base-url` moved there).
pub fn tenant_through(
    server: &MockServer,
    id: &str,
    account: &str,
    relay: SocketAddr,
) -> TenantConfig {
    let mut tenant = server.chatgpt_tenant(id, account, OWNER_TOKEN);
    let to = format!("http://{relay}");
    assert_ne!(server.origin(), to);
    tenant.allowed_origins = vec![to.clone()];
    tenant.credentials[0].origin = to.clone();
    tenant.settings.insert("base-url".to_string(), SettingValue::Text(format!("{to}/backend-api")));
    tenant
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("rules-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tenants file in `dir` for tenant `t` of the mock's workspace `account_id`, holding `token`.
pub fn tenants_file(
    dir: &Path,
    server: &MockServer,
    account_id: &str,
    token: &str,
    settings: &[(&str, &str)],
) -> PathBuf {
    let origin = server.origin();
    let mut file = format!(
        "[[tenant]]\nid = \"t\"\nconnector = \"chatgpt\"\nallow-private-addresses = true\nallowed-origins = [\"{origin}\"]\n[tenant.settings]\nbase-url = \"{origin}/backend-api\"\naccount-id = \"{account_id}\"\n"
    );
    for (key, value) in settings {
        file.push_str(&format!("{key} = \"{value}\"\n"));
    }
    file.push_str(&format!(
        "[[tenant.credentials]]\norigin = \"{origin}\"\nbearer-token = \"{token}\"\nheaders = {{ chatgpt-account-id = \"{account_id}\" }}\n"
    ));
    let path = dir.join("tenants.toml");
    std::fs::write(&path, file).unwrap();
    path
}

/// Runs the `harness` binary with `args` and `--tenants`: success, stdout, stderr.
pub fn harness(args: &[&str], tenants: &Path) -> (bool, String, String) {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    let output = std::process::Command::new(crate::conformance::harness())
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .arg("--tenants")
        .arg(tenants)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

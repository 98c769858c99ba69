//! Hostile connectors are contained: each attack is stopped and classified, a well-behaved
//! tenant's calls running at the same time all succeed, and the next call is unaffected.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use accessgov_host::egress::Denial;
use accessgov_host::tenant::{LimitsConfig, SettingValue};
use accessgov_host::types::{Account, AccountPage, AccountStatus, ConnectorError, PageRequest};
use accessgov_host::{CallError, Host, HostConfig, HostError, TenantConfig};
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http_body::Frame;

use crate::common::{
    OWNER_TOKEN, add, counting_relay, host, host_config, list_all, memory_of_each_page, mock,
    tenant_through,
};

/// A tenant running the hostile component with `attack`, allowed to reach `origins`.
fn hostile(
    id: &str,
    attack: &str,
    target: &str,
    origins: &[String],
    allow_private: bool,
) -> TenantConfig {
    TenantConfig {
        id: id.to_string(),
        connector: env!("HOSTILE_GUEST_WASM").to_string(),
        customer: None,
        allowed_origins: origins.to_vec(),
        settings: BTreeMap::from([
            ("attack".to_string(), SettingValue::Text(attack.to_string())),
            ("target-url".to_string(), SettingValue::Text(target.to_string())),
            ("secret".to_string(), SettingValue::Text(format!("secret-of-{id}"))),
        ]),
        credentials: Vec::new(),
        allow_private_addresses: allow_private,
        limits: LimitsConfig {
            call_timeout_ms: Some(2_000),
            memory_mib: Some(64),
            max_response_bytes: Some(1 << 20),
            ..LimitsConfig::default()
        },
    }
}

/// Runs `attack` on `tenant` while a well-behaved tenant lists its 40 accounts over and over;
/// returns the attack's error after checking every bystander call succeeded, and that the
/// hostile tenant's next call is served normally.
async fn contained(host: &Arc<Host>, tenant: &str) -> CallError {
    let server = mock(&format!("ws-by-{tenant}"), 35, 5).await;
    let bystander = format!("bystander-{tenant}");
    add(host, &server.chatgpt_tenant(&bystander, &format!("ws-by-{tenant}"), OWNER_TOKEN));
    let running = Arc::clone(host);
    let name = bystander.clone();
    let calm = tokio::spawn(async move {
        let mut listed = Vec::new();
        for _ in 0..6 {
            let (accounts, _) = list_all(&running, &name, Some(10)).await.unwrap();
            listed.push(accounts.len());
        }
        listed
    });
    let started = Instant::now();
    let report = host.test_connection(tenant).await.unwrap();
    println!("{tenant}: {:?} after {:?}", report.result, started.elapsed());
    assert_eq!(calm.await.unwrap(), vec![40; 6], "the bystander was served correctly throughout");
    let after = host.info(tenant).await.unwrap();
    assert!(after.result.is_ok(), "{tenant}: the next call works: {:?}", after.result);
    report.result.unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let host = host();
    add(&host, &hostile("loop", "loop", "", &[], false));
    let error = contained(&host, "loop").await;
    assert_eq!(error, CallError::Deadline(Duration::from_secs(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_memory_growth_hits_the_cap() {
    let host = host();
    add(&host, &hostile("memory", "memory", "", &[], false));
    match contained(&host, "memory").await {
        CallError::MemoryLimit { limit_bytes, .. } => assert_eq!(limit_bytes, 64 << 20),
        other => panic!("expected memory-limit, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_is_a_stack_overflow() {
    let host = host();
    add(&host, &hostile("recursion", "recursion", "", &[], false));
    assert_eq!(contained(&host, "recursion").await, CallError::StackOverflow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_trap_carrying_the_panic_message() {
    let host = host();
    add(&host, &hostile("panic", "panic", "", &[], false));
    match contained(&host, "panic").await {
        CallError::Trap { panic: Some(message), .. } => {
            assert!(message.contains("hostile guest panicked on purpose"), "{message}")
        }
        other => panic!("expected a trap with the panic message, got {other:?}"),
    }
}

/// A tenant of the hostile component whose `list-accounts` returns the page `page` names.
fn paging(id: &str, page: &str) -> TenantConfig {
    let mut tenant = hostile(id, "none", "", &[], false);
    tenant.settings.insert("page".to_string(), SettingValue::Text(page.to_string()));
    tenant
}

/// The host lifts `list-accounts` pages by hand (`accessgov_host`'s `lift`): every field, with
/// and without a value and beyond ASCII, arrives as the guest returned it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_an_account_page_arrives_as_the_guest_returned_it() {
    let host = host();
    add(&host, &paging("every-field", "every-field"));
    let report = host.list_accounts("every-field", PageRequest { cursor: None, size: None });
    let page = report.await.unwrap().result.unwrap();
    let expected = AccountPage {
        accounts: vec![
            Account {
                id: "user-1".to_string(),
                email: Some("zoe@example.com".to_string()),
                display_name: Some("Zoë Ångström 🦀".to_string()),
                status: AccountStatus::Suspended,
                entitlements: vec!["role:admin".to_string(), "group:Équipe".to_string()],
                managed_by: Some("scim".to_string()),
                created_at: Some("2026-01-02T03:04:05Z".to_string()),
            },
            Account {
                id: String::new(),
                email: None,
                display_name: None,
                status: AccountStatus::Requested,
                entitlements: Vec::new(),
                managed_by: None,
                created_at: None,
            },
        ],
        next_cursor: Some("page-2 ✓".to_string()),
    };
    assert_eq!(page, expected);
}

/// A page the guest could only lower unsafely (a string that is not UTF-8, a string outside its
/// memory) fails the call with the reason; nothing is half-lifted, and the next call works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_a_malformed_string_fails_the_call() {
    let host = host();
    for (page, reason) in
        [("invalid-utf8", "invalid utf-8"), ("string-out-of-bounds", "out of bounds of memory")]
    {
        add(&host, &paging(page, page));
        let report = host.list_accounts(page, PageRequest { cursor: None, size: None });
        match report.await.unwrap().result {
            Err(CallError::Trap { trap, .. }) => assert!(trap.contains(reason), "{page}: {trap}"),
            other => panic!("{page}: expected the lift to fail, got {other:?}"),
        }
        assert!(host.info(page).await.unwrap().result.is_ok(), "{page}: the next call works");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outside_the_allowlist_is_denied() {
    let server = mock("ws-target", 3, 0).await;
    let host = host();
    let target = format!("{}/accounts/ws-target/users", server.base_url());
    add(&host, &hostile("egress", "egress", &target, &["https://chatgpt.com".to_string()], true));
    match contained(&host, "egress").await {
        CallError::EgressDenied(Denial::OriginNotAllowed { origin }) => {
            assert_eq!(origin, server.origin())
        }
        other => panic!("expected egress-denied, got {other:?}"),
    }
    assert!(server.service().requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_name_that_resolves_to_loopback_is_denied() {
    let server = mock("ws-private", 3, 0).await;
    let host = host();
    // `localhost` is allowed by name, but it resolves to loopback, which this tenant may not reach.
    let origin = format!("http://localhost:{}", server.addr().port());
    let target = format!("{origin}/backend-api/accounts/ws-private/users");
    add(&host, &hostile("private", "private", &target, &[origin], false));
    match contained(&host, "private").await {
        CallError::EgressDenied(Denial::PrivateAddress { host, kind, .. }) => {
            assert_eq!(host, "localhost");
            assert_eq!(kind, "loopback");
        }
        other => panic!("expected a private-address denial, got {other:?}"),
    }
    assert!(server.service().requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_forms_that_carry_a_private_ipv4_address_are_denied_before_connecting() {
    // In an IPv6-only cluster these route to the IPv4 address they embed: loopback, the
    // metadata service. The host refuses them by the embedded address, opening no connection.
    let host = host();
    for (n, address) in
        ["64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1"].into_iter().enumerate()
    {
        let origin = format!("http://[{address}]:8080");
        let target = format!("{origin}/backend-api/accounts/ws/users");
        let id = format!("embedded-{n}");
        add(&host, &hostile(&id, "egress", &target, &[origin], false));
        match contained(&host, &id).await {
            CallError::EgressDenied(Denial::PrivateAddress { kind, .. }) => {
                assert!(kind.contains(" in an "), "{address}: {kind}");
                assert!(kind.starts_with("loopback") || kind.starts_with("link-local"), "{kind}");
            }
            other => panic!("{address}: expected a private-address denial, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dot_segment_path_cannot_steer_a_path_limited_credential() {
    let server = mock("ws-dots", 3, 0).await;
    let host = host();
    // The SCIM token is limited to /scim/v2.0/dir; `%2e%2e` would climb out of it on a server
    // that decodes before resolving, so the host refuses the request outright.
    let target = format!(
        "{}/scim/v2.0/dir/%2e%2e/%2E%2E/%2e%2e/backend-api/accounts/ws-dots/users",
        server.origin()
    );
    let mut tenant = hostile("dots", "egress", &target, &[server.origin()], true);
    tenant.credentials.push(accessgov_host::tenant::CredentialConfig {
        origin: server.origin(),
        path_prefix: Some("/scim/v2.0/dir".to_string()),
        bearer_token: Some("scim-secret".to_string()),
        bearer_token_env: None,
        headers: BTreeMap::new(),
    });
    add(&host, &tenant);
    match contained(&host, "dots").await {
        CallError::EgressDenied(Denial::DotSegment { path }) => {
            assert!(path.contains("%2e%2e"), "{path}")
        }
        other => panic!("expected a dot-segment denial, got {other:?}"),
    }
    assert!(server.service().requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_set_authorization_header_is_refused() {
    let server = mock("ws-authz", 3, 0).await;
    let host = host();
    let target = format!("{}/accounts/ws-authz/users", server.base_url());
    add(&host, &hostile("authorization", "authorization", &target, &[server.origin()], true));
    match contained(&host, "authorization").await {
        CallError::EgressDenied(Denial::GuestCredential { header }) => {
            assert_eq!(header, "authorization")
        }
        other => panic!("expected a credential denial, got {other:?}"),
    }
    assert!(server.service().requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_importing_filesystem_or_sockets_is_refused_at_load() {
    let host = host();
    let mut tenant = hostile("files", "files", "", &[], false);
    tenant.connector = env!("HOSTILE_FS_GUEST_WASM").to_string();
    match host.add_tenant(&tenant, std::path::Path::new(".")) {
        Err(HostError::ForbiddenImport { import, .. }) => {
            assert!(
                import.starts_with("wasi:filesystem/") || import.starts_with("wasi:sockets/"),
                "{import}"
            )
        }
        other => panic!("expected a load-time refusal, got {other:?}"),
    }
    let bytes = std::fs::read(env!("HOSTILE_FS_GUEST_WASM")).unwrap();
    let message = host.add_connector("files", &bytes).unwrap_err().to_string();
    assert!(message.contains("which the sandbox does not provide"), "{message}");
    // The same code without those imports loads (and, as the read-path test shows, sees no
    // settings but its tenant's, and an empty environment and argument list).
    add(&host, &hostile("no-files", "none", "", &[], false));
    assert!(host.test_connection("no-files").await.unwrap().result.is_ok());
}

/// A response body of `remaining` bytes in 64 KiB chunks, made as it is read.
struct Endless {
    remaining: u64,
}

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(64 << 10);
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; n as usize])))))
    }
}

/// A response body sent `piece` bytes at a time, `gap` apart: `/slow` drips a byte a second for
/// at most a minute, `/pieces` sends [`pieces`] 1 KiB at a time, 2 ms apart, so it reaches the
/// host in many reads.
struct Paced {
    body: Bytes,
    piece: usize,
    gap: Duration,
    next: Pin<Box<tokio::time::Sleep>>,
}

impl Paced {
    fn body(body: Vec<u8>, piece: usize, gap: Duration) -> axum::body::Body {
        let next = Box::pin(tokio::time::sleep(Duration::ZERO));
        axum::body::Body::new(Paced { body: Bytes::from(body), piece, gap, next })
    }
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.body.is_empty() {
            return Poll::Ready(None);
        }
        if self.next.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let at = tokio::time::Instant::now() + self.gap;
        self.next.as_mut().reset(at);
        let n = self.piece.min(self.body.len());
        Poll::Ready(Some(Ok(Frame::data(self.body.split_to(n)))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.body.len() as u64)
    }
}

/// `/pieces`'s 64 KiB body: byte `i` is `i % 251`.
fn pieces() -> Vec<u8> {
    (0..64 << 10).map(|i| (i % 251) as u8).collect()
}

/// Requests `/busy` is serving now, and the most it ever served at once.
static BUSY_NOW: AtomicUsize = AtomicUsize::new(0);
static BUSY_PEAK: AtomicUsize = AtomicUsize::new(0);

/// A loopback upstream with `/big` (1 GiB), `/slow` (a byte a second), `/pieces` (64 KiB in
/// 64 pieces), `/redirect`, and `/busy` (200 ms per request, counting how many overlap).
async fn upstream() -> SocketAddr {
    let app = Router::new()
        .route(
            "/busy",
            get(|| async {
                let now = BUSY_NOW.fetch_add(1, Ordering::SeqCst) + 1;
                BUSY_PEAK.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                BUSY_NOW.fetch_sub(1, Ordering::SeqCst);
                "done"
            }),
        )
        .route("/big", get(|| async { axum::body::Body::new(Endless { remaining: 1 << 30 }) }))
        .route(
            "/pieces",
            get(|| async { Paced::body(pieces(), 1 << 10, Duration::from_millis(2)) }),
        )
        .route(
            "/redirect",
            get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [("location", "http://203.0.113.9/elsewhere")],
                    "moved",
                )
            }),
        )
        .route("/slow", get(|| async { Paced::body(vec![b'x'; 60], 1, Duration::from_secs(1)) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gibibyte_response_is_cut_off_at_the_cap() {
    let addr = upstream().await;
    let host = host();
    let origin = format!("http://{addr}");
    add(
        &host,
        &hostile("big", "big-body", &format!("{origin}/big"), std::slice::from_ref(&origin), true),
    );
    assert_eq!(contained(&host, "big").await, CallError::ResponseTooLarge { limit_bytes: 1 << 20 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_arriving_in_pieces_reaches_the_guest_whole_in_one_read() {
    let addr = upstream().await;
    let host = host();
    let origin = format!("http://{addr}");
    let url = format!("{origin}/pieces");
    add(&host, &hostile("pieces", "count-reads", &url, &[origin], true));
    let report = host.test_connection("pieces").await.unwrap();
    let body = pieces();
    let checksum = body.iter().fold(0u64, |sum, b| sum.wrapping_mul(31) ^ u64::from(*b));
    assert_eq!(
        report.result,
        Err(CallError::Connector(ConnectorError::Unavailable(format!(
            "read {} bytes in 1 reads, checksum {checksum}",
            body.len()
        )))),
    );
    assert_eq!(report.egress[0].response_bytes, body.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_dripping_one_byte_a_second_is_cut_off() {
    let addr = upstream().await;
    let host = host();
    let origin = format!("http://{addr}");
    // Blocked in host I/O, the guest is still cut off by the call's wall-clock budget.
    add(
        &host,
        &hostile(
            "slow",
            "slow-body",
            &format!("{origin}/slow"),
            std::slice::from_ref(&origin),
            true,
        ),
    );
    let started = Instant::now();
    assert_eq!(contained(&host, "slow").await, CallError::Deadline(Duration::from_secs(2)));
    assert!(started.elapsed() < Duration::from_secs(20));
    // With a between-bytes timeout under a second, the transport gives up first.
    let mut impatient =
        hostile("impatient", "slow-body", &format!("{origin}/slow"), &[origin], true);
    impatient.limits.between_bytes_timeout_ms = Some(300);
    add(&host, &impatient);
    let report = host.test_connection("impatient").await.unwrap();
    assert!(
        matches!(report.result, Err(CallError::Connector(ConnectorError::Unavailable(_)))),
        "{:?}",
        report.result
    );
    assert!(report.egress[0].error.as_deref().unwrap_or_default().contains("no response bytes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_state_survives_from_one_call_or_tenant_to_the_next() {
    // A pool for one call at a time: its memory slots (two) serve every call below in turn, each
    // reset in place for the next.
    let host =
        Arc::new(Host::new(HostConfig { max_concurrent_calls: 1, ..host_config() }).unwrap());
    add(&host, &hostile("first", "none", "", &[], false));
    add(&host, &hostile("second", "none", "", &[], false));
    // Each `info` first scans its whole linear memory for the marked copies of a secret that
    // every `info` leaves in megabytes of its heap (grown pages included), then leaves its own.
    let fresh = |seen: String| {
        let seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
        (seen["calls"].clone(), seen["stash"].clone(), seen["residue"].clone())
    };
    let nothing = (1.into(), serde_json::Value::Null, serde_json::json!([]));
    for tenant in ["first", "first", "second", "first", "second"] {
        let seen = host.info(tenant).await.unwrap().result.unwrap().application;
        assert_eq!(fresh(seen), nothing, "{tenant}: a fresh instance");
    }
    // A call that trapped, after leaving its secret all over its memory, leaves nothing behind
    // either.
    add(&host, &hostile("crasher", "panic", "", &[], false));
    assert!(host.test_connection("crasher").await.unwrap().result.is_err());
    let seen = host.info("crasher").await.unwrap().result.unwrap().application;
    assert_eq!(fresh(seen), nothing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_guests_memory_scan_finds_what_a_call_leaves() {
    // The check behind `no_state_survives_from_one_call_or_tenant_to_the_next`: within one
    // call, the scan finds the secret the call just left.
    let host = host();
    add(&host, &hostile("scanner", "residue", "", &[], false));
    let err = host.test_connection("scanner").await.unwrap().result.unwrap_err();
    assert!(err.to_string().contains(r#"residue found: ["secret-of-scanner"]"#), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tenants_see_only_their_own_workspaces() {
    let host = host();
    let mut servers = Vec::new();
    for i in 0..200 {
        let server = mock(&format!("ws-{i}"), 3 + i % 13, i % 3).await;
        server.service().lock().tokens.clear();
        server.service().add_token(&format!("token-{i}"), &format!("ws-{i}"), "account-owner");
        add(
            &host,
            &server.chatgpt_tenant(&format!("t{i}"), &format!("ws-{i}"), &format!("token-{i}")),
        );
        servers.push(server);
    }
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let host = Arc::clone(&host);
            tokio::spawn(async move { list_all(&host, &format!("t{i}"), Some(5)).await.unwrap().0 })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let accounts = task.await.unwrap();
        let ws = servers[i].service().workspace(&format!("ws-{i}")).unwrap();
        let mut want: Vec<String> = ws.members.iter().map(|m| m.id.clone()).collect();
        want.extend(ws.invites.iter().map(|inv| format!("invite:{}", inv.id)));
        let got: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
        assert_eq!(got, want, "tenant t{i} sees exactly its own accounts");
        let requests = servers[i].service().requests();
        assert!(!requests.is_empty());
        let token = format!("token-{i}");
        assert!(
            requests.iter().all(|r| r.bearer_token.as_deref() == Some(token.as_str())),
            "mock {i} saw only its tenant's token"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_is_not_followed() {
    let addr = upstream().await;
    let host = host();
    let origin = format!("http://{addr}");
    add(
        &host,
        &hostile(
            "redirect",
            "egress",
            &format!("{origin}/redirect"),
            std::slice::from_ref(&origin),
            true,
        ),
    );
    let report = host.test_connection("redirect").await.unwrap();
    // The guest gets the 302 itself; the host sent exactly one request, to the allowed origin.
    match report.result {
        Err(CallError::Connector(ConnectorError::Unavailable(m))) => {
            assert!(m.contains("read 5 bytes"), "{m}")
        }
        other => panic!("expected the guest to see the redirect response, got {other:?}"),
    }
    assert_eq!(report.egress.len(), 1);
    assert_eq!(report.egress[0].status, Some(302));
    assert_eq!(report.egress[0].origin, origin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_concurrent_requests_are_bounded() {
    let addr = upstream().await;
    let host = host();
    let origin = format!("http://{addr}");
    let mut tenant =
        hostile("busy", "egress", &format!("{origin}/busy"), std::slice::from_ref(&origin), true);
    tenant.limits.max_concurrent_requests = Some(1);
    add(&host, &tenant);
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let host = Arc::clone(&host);
            tokio::spawn(async move { host.test_connection("busy").await.unwrap().result })
        })
        .collect();
    for call in calls {
        // Each call got its answer ("done"), one at a time.
        match call.await.unwrap() {
            Err(CallError::Connector(ConnectorError::Unavailable(m))) => {
                assert!(m.contains("read 4 bytes"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(BUSY_PEAK.load(Ordering::SeqCst), 1, "never more than one request in flight");
}

/// `tenant` without its console groups, so each round of a call is one request on one
/// connection (the groups' read otherwise rides beside the members' pages on a second).
fn one_request_at_a_time(mut tenant: TenantConfig) -> TenantConfig {
    tenant.settings.insert("console-groups".into(), SettingValue::Text("false".into()));
    tenant
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reused_across_a_tenants_calls_but_never_shared_between_tenants() {
    let server = mock("ws-reuse", 40, 0).await;
    let (relay, accepted) = counting_relay(server.addr()).await;
    let host = host();
    let through_relay =
        |id: &str| one_request_at_a_time(tenant_through(&server, id, "ws-reuse", relay));
    add(&host, &through_relay("reuse-a"));
    add(&host, &through_relay("reuse-b"));
    let (accounts, pages) = list_all(&host, "reuse-a", Some(10)).await.unwrap();
    assert_eq!(accounts.len(), 40);
    assert!(pages >= 4);
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "every call of one tenant, one connection");
    list_all(&host, "reuse-a", Some(10)).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    list_all(&host, "reuse-b", Some(10)).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "another tenant gets its own connection");
    assert_eq!(host.idle_connections(), 2);
    // Registered again (its policy may have changed), a tenant's idle connection is closed and
    // its next call opens a new one.
    add(&host, &through_relay("reuse-a"));
    assert_eq!(host.idle_connections(), 1);
    list_all(&host, "reuse-a", Some(10)).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert_eq!(host.idle_connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_bounded_across_tenants_closing_the_one_idle_longest() {
    let server = mock("ws-idle", 20, 0).await;
    let (relay, accepted) = counting_relay(server.addr()).await;
    let host =
        Arc::new(Host::new(HostConfig { max_idle_connections: 1, ..host_config() }).unwrap());
    for id in ["idle-a", "idle-b"] {
        add(&host, &one_request_at_a_time(tenant_through(&server, id, "ws-idle", relay)));
    }
    list_all(&host, "idle-a", Some(10)).await.unwrap();
    assert_eq!((accepted.load(Ordering::SeqCst), host.idle_connections()), (1, 1));
    // B's connection, once idle, takes the only place: A's is closed.
    list_all(&host, "idle-b", Some(10)).await.unwrap();
    assert_eq!((accepted.load(Ordering::SeqCst), host.idle_connections()), (2, 1));
    list_all(&host, "idle-a", Some(10)).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "A's idle connection was closed, not kept");
    assert_eq!(host.idle_connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_cap_below_the_connectors_initial_memory_is_refused_at_registration() {
    let server = mock("ws-small-cap", 5, 0).await;
    let host = host();
    let mut tenant = server.chatgpt_tenant("small-cap", "ws-small-cap", OWNER_TOKEN);
    tenant.limits.memory_mib = Some(1);
    let err = host.add_tenant(&tenant, std::path::Path::new(".")).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, HostError::InvalidTenant { .. })
            && message.contains("`limits.memory-mib` gives 1.0 MiB, less than the 2.0 MiB"),
        "{message}"
    );
    // At the bundled connector's initial memory (2 MiB, see `connector/chatgpt/build.rs`) it registers,
    // and its calls run.
    tenant.limits.memory_mib = Some(2);
    add(&host, &tenant);
    let (accounts, _) = list_all(&host, "small-cap", None).await.unwrap();
    assert_eq!(accounts.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_is_not_replaced_under_tenants_capped_below_its_initial_memory() {
    let server = mock("ws-swap", 5, 0).await;
    let host = host();
    let hostile = std::fs::read(env!("HOSTILE_GUEST_WASM")).unwrap();
    host.add_connector("shared", bundled_connectors::CHATGPT).unwrap();
    let tenant = |id: &str, mib: u64| {
        let mut tenant = server.chatgpt_tenant(id, "ws-swap", OWNER_TOKEN);
        tenant.connector = "shared".to_string();
        tenant.limits.memory_mib = Some(mib);
        tenant
    };
    add(&host, &tenant("roomy", 4));
    add(&host, &tenant("tight-b", 2));
    add(&host, &tenant("tight-a", 2));
    // The hostile guest declares 3 MiB of initial memory (its build.rs): both 2 MiB tenants are
    // named, the 4 MiB one is not.
    let err = host.add_connector("shared", &hostile).unwrap_err();
    assert!(
        matches!(&err, HostError::TenantsBelowInitialMemory { tenants, .. }
            if tenants == &["tight-a", "tight-b"]),
        "{err:?}"
    );
    assert!(err.to_string().contains("declares 3.0 MiB of initial memory"), "{err}");
    // The connector they run was kept: their calls still list the workspace.
    for id in ["tight-a", "tight-b", "roomy"] {
        let (accounts, _) = list_all(&host, id, None).await.unwrap();
        assert_eq!(accounts.len(), 5, "{id}");
    }
    // With the tight tenants given room, the same component replaces the connector.
    add(&host, &tenant("tight-a", 3));
    add(&host, &tenant("tight-b", 3));
    host.add_connector("shared", &hostile).unwrap();
    let info = host.info("roomy").await.unwrap().result.unwrap();
    assert_eq!(info.name, "hostile", "the replacement answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connector_built_here_runs_its_calls_in_its_initial_memory() {
    use accessgov_mock::directory::{DirectoryServer, DirectoryService};
    use accessgov_mock::platform::PlatformSpec;
    // A call that grows its memory pays an `mprotect` for the growth and another when its pool
    // slot is reset, and faults the grown pages in again. Each connector declares the standard
    // initial memory (`guest_build::declare_initial_memory`): its `info` and its pages run in it.
    let initial = u64::from(guest_build::CONNECTOR_INITIAL_MEMORY_BYTES);
    // What the host keeps resident of a pooled memory: a call of that size faults in nothing.
    assert_eq!(initial, accessgov_host::engine::MEMORY_KEEP_RESIDENT as u64);
    let host = host();
    let chatgpt = mock("ws-initial-memory", 2_500, 40).await;
    add(&host, &chatgpt.chatgpt_tenant("chatgpt", "ws-initial-memory", OWNER_TOKEN));
    let spec = PlatformSpec { users: 300, invites: 40, ..PlatformSpec::default() };
    let platform = crate::platform::platform("initial-memory.example.com", spec).await;
    add(&host, &crate::platform::platform_tenant(&platform, "platform"));
    let directory = DirectoryServer::start_local(DirectoryService::seeded("directory-token", 250))
        .await
        .unwrap();
    add(&host, &directory.tenant("template", env!("TEMPLATE_WASM"), "directory-token"));
    // The ChatGPT connector and the template at their largest pages; the platform connector at
    // its default page, as each of its listing's calls reads the organization's memberships
    // whole, so its memory grows with the organization (about 4 MiB a call at 2,500 members).
    for (tenant, size) in [("chatgpt", 1_000), ("platform", 100), ("template", 100)] {
        let info = host.info(tenant).await.unwrap();
        info.result.as_ref().unwrap();
        let (pages, _) = memory_of_each_page(&host, tenant, Some(size)).await;
        let held = [vec![info.memory_bytes], pages].concat();
        assert!(held.len() > 3, "{tenant}: info and several pages");
        assert!(held.iter().all(|bytes| *bytes == initial), "{tenant}: {held:?}, not {initial}");
    }
}

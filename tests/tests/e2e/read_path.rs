//! The read path end to end: the real ChatGPT component, in the real host, against the mock over
//! loopback HTTP.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use accessgov_host::CallError;
use accessgov_host::egress::Denial;
use accessgov_host::tenant::SettingValue;
use accessgov_host::types::{AccountRef, AccountStatus, ConnectorError, PageRequest};

use crate::common::{
    OWNER_TOKEN, add, host, list_all, memory_of_each_page, mock, round_relay, tenant_through,
};

/// How long the relay of a test that counts a round's connections waits, after the last request
/// reached it, before answering (see `round_relay`).
const ROUND_QUIET: Duration = Duration::from_millis(100);

fn role_id(console: &str) -> &'static str {
    match console {
        "account-owner" => "role:owner",
        "account-admin" => "role:admin",
        "standard-user" => "role:member",
        "analytics-viewer" => "role:analytics-viewer",
        other => panic!("unknown role {other}"),
    }
}

fn seat_id(console: &str) -> &'static str {
    match console {
        "default" => "seat:chatgpt",
        "usage_based" => "seat:codex",
        other => panic!("unknown seat {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_250_members_and_30_invites_exactly_once_with_correct_entitlements() {
    let server = mock("ws-big", 250, 30).await;
    let host = host();
    let mut tenant = server.chatgpt_tenant("big", "ws-big", OWNER_TOKEN);
    tenant.settings.insert("page-size".to_string(), SettingValue::Integer(100));
    add(&host, &tenant);

    let (accounts, pages) = list_all(&host, "big", None).await.unwrap();
    assert_eq!(accounts.len(), 280);
    assert_eq!(pages, 3, "280 accounts at 100 a page");
    let ids: HashSet<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), 280, "every account exactly once");

    let ws = server.service().workspace("ws-big").unwrap();
    let by_id: HashMap<&str, _> = accounts.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut suspended = 0;
    let mut codex = 0;
    for m in &ws.members {
        let a = by_id[m.id.as_str()];
        assert_eq!(a.email.as_deref(), Some(m.email.as_str()));
        assert_eq!(a.entitlements, vec!["workspace", role_id(&m.role), seat_id(&m.seat_type)]);
        let want = if m.deactivated_time.is_some() {
            AccountStatus::Suspended
        } else {
            AccountStatus::Active
        };
        assert_eq!(a.status, want, "{}", m.email);
        assert_eq!(a.managed_by.as_deref(), m.is_scim_managed.then_some("scim"));
        suspended += usize::from(a.status == AccountStatus::Suspended);
        codex += usize::from(m.seat_type == "usage_based");
    }
    for i in &ws.invites {
        let a = by_id[format!("invite:{}", i.id).as_str()];
        assert_eq!(a.status, AccountStatus::Invited);
        assert_eq!(a.email.as_deref(), Some(i.email_address.as_str()));
        assert_eq!(a.entitlements, vec!["workspace", role_id(&i.role), seat_id(&i.seat_type)]);
    }
    // The seed exercises every status and seat type, so the comparisons above mean something.
    assert!(suspended > 0 && codex > 0);

    // Every request carried the injected credential and the workspace header.
    let requests = server.service().requests();
    assert!(requests.iter().all(|r| r.bearer_token.as_deref() == Some(OWNER_TOKEN)));
    assert!(requests.iter().all(|r| r.scope_header.as_deref() == Some("ws-big")));
    assert!(requests.iter().all(|r| r.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_beyond_ascii_arrive_intact_and_a_body_that_is_not_utf8_fails_naming_why() {
    // The connector checks a body as ASCII before decoding it: pages holding other characters,
    // wherever in the body they fall, take the decoding path through the component.
    let server = mock("ws-names", 120, 0).await;
    let names = ["Zoë Ångström", "Søren Kierkegaard 🦀", "李小龍", "Renée"];
    {
        let mut data = server.service().lock();
        let ws = data.workspaces.get_mut("ws-names").unwrap();
        for (n, member) in ws.members.iter_mut().enumerate().filter(|(n, _)| n % 7 == 0) {
            member.name = names[n % names.len()].to_string();
        }
    }
    let host = host();
    add(&host, &server.chatgpt_tenant("names", "ws-names", OWNER_TOKEN));
    let (accounts, _) = list_all(&host, "names", None).await.unwrap();
    let by_id: HashMap<&str, _> = accounts.iter().map(|a| (a.id.as_str(), a)).collect();
    let ws = server.service().workspace("ws-names").unwrap();
    assert!(ws.members.iter().filter(|m| !m.name.is_ascii()).count() >= 15);
    for m in &ws.members {
        assert_eq!(by_id[m.id.as_str()].display_name.as_deref(), Some(m.name.as_str()));
    }

    // A service answering in Latin-1: an answer that cannot be read is tried again like any
    // garbled answer, then the call fails naming why.
    let service = axum::Router::new().fallback(|| async {
        // 0xe9 at byte 22 of 49: inside the check's first 32-byte block, not its tail.
        let body = b"{\"items\":[{\"name\":\"Ren\xe9 Descartes, philosophe\"}]}";
        ([("content-type", "application/json")], body.to_vec())
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, service).await });
    let mut latin1 = accessgov_mock::chatgpt_tenant_at(addr, "latin1", "ws-latin1", OWNER_TOKEN);
    latin1.settings.insert("retry-base-ms".to_string(), SettingValue::Text("5".to_string()));
    add(&host, &latin1);
    let report =
        host.list_accounts("latin1", PageRequest { cursor: None, size: None }).await.unwrap();
    match &report.result {
        Err(CallError::Connector(ConnectorError::Unavailable(message))) => {
            assert!(message.contains("GET users"), "{message}");
            assert!(message.contains("it is not UTF-8"), "{message}");
            assert!(message.contains("gave up after 4 attempts"), "{message}");
        }
        other => panic!("expected unavailable, naming UTF-8, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_larger_than_the_consoles_is_filled_from_several_console_pages_in_one_call() {
    let server = mock("ws-wide", 1_150, 30).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("wide", "ws-wide", OWNER_TOKEN));

    // 5,000 asked, 1,000 served: ten console pages of 100 in one call.
    let first =
        host.list_accounts("wide", PageRequest { cursor: None, size: Some(5_000) }).await.unwrap();
    let first_requests = first.egress.len();
    let first = first.result.unwrap();
    assert_eq!(first.accounts.len(), 1_000);
    // Ten console pages of 100, and the console groups' listing (none: no member pages more).
    assert_eq!(first_requests, 11, "ten console pages of 100 and the groups");
    assert!(server.service().requests().iter().all(|r| r.query.contains("limit=100")));

    // The rest: 150 members (two console pages), the 30 invites and the (empty) join requests,
    // in one more call; not the groups, as the cursor carries that none holds anyone.
    let second = host
        .list_accounts("wide", PageRequest { cursor: first.next_cursor, size: Some(5_000) })
        .await
        .unwrap();
    assert_eq!(second.egress.len(), 4);
    let second = second.result.unwrap();
    assert_eq!(second.accounts.len(), 180);
    assert_eq!(second.next_cursor, None);

    // The same accounts in the same order as pages of the console's size.
    let (by_hundred, pages) = list_all(&host, "wide", Some(100)).await.unwrap();
    assert_eq!(pages, 12);
    let wide: Vec<&str> =
        first.accounts.iter().chain(&second.accounts).map(|a| a.id.as_str()).collect();
    let narrow: Vec<&str> = by_hundred.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(wide, narrow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distant_console_gets_calls_of_full_rounds_and_the_same_accounts() {
    use accessgov_mock::{Fault, FaultPlan, RandomFaults};
    let server = mock("ws-far", 3_000, 5).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("far", "ws-far", OWNER_TOKEN));
    // Page sizes and requests of a sync in pages of 1,000 at the default read concurrency.
    let sync = || async {
        let (mut ids, mut sizes, mut requests, mut cursor) = (Vec::new(), Vec::new(), 0, None);
        loop {
            let report =
                host.list_accounts("far", PageRequest { cursor, size: Some(1000) }).await.unwrap();
            requests += report.egress.len();
            let page = report.result.unwrap();
            sizes.push(page.accounts.len());
            ids.extend(page.accounts.into_iter().map(|a| a.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return (ids, sizes, requests),
            }
        }
    };
    let (near_ids, near_sizes, near_requests) = sync().await;
    assert_eq!(near_sizes, [1000, 1000, 1000, 5]);
    // Every answer 40 ms late: a round trip of a distant service.
    let slow = RandomFaults {
        rate: 1.0,
        seed: 3,
        kinds: vec![Fault::Slow { millis: 40 }],
        methods: vec![],
    };
    server.service().set_faults(FaultPlan { random: Some(slow), ..FaultPlan::default() });
    let (far_ids, far_sizes, far_requests) = sync().await;
    assert_eq!(far_ids, near_ids);
    // The first call cannot know the listing's length before its first round; from the cursor
    // on, a call is eight pages: two full rounds of four (the groups were read by the first
    // call alone, and the cursor carries them).
    assert_eq!(far_sizes, [1000, 800, 800, 405]);
    // Thirty member pages, the invites, the (empty) join requests, and the groups once.
    assert_eq!((near_requests, far_requests), (30 + 2 + 1, 30 + 2 + 1));
}

/// The `GET` targets the mock received, sorted: requests sent together arrive in any order.
fn targets(server: &accessgov_mock::MockServer) -> Vec<String> {
    let mut targets: Vec<String> =
        server.service().requests().iter().map(|r| format!("{}?{}", r.path, r.query)).collect();
    targets.sort();
    targets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_pages_of_a_call_go_out_together_up_to_the_read_concurrency() {
    let server = mock("ws-rounds", 1_150, 30).await;
    let (relay, accepted) = round_relay(server.addr(), ROUND_QUIET).await;
    let host = host();
    let tenant = |id: &str, concurrency: Option<&str>, slots: Option<usize>| {
        let mut tenant = tenant_through(&server, id, "ws-rounds", relay);
        if let Some(n) = concurrency {
            tenant.settings.insert("read-concurrency".to_string(), SettingValue::Text(n.into()));
        }
        tenant.limits.max_concurrent_requests = slots;
        tenant
    };
    let mut listed = Vec::new();
    // (read-concurrency, the tenant's request slots, connections opened by the sync)
    for (id, concurrency, slots, connections) in [
        ("one-at-a-time", Some("1"), None, 1),
        ("default", None, None, 4),
        ("sixteen", Some("16"), None, 8),
        ("held-back", Some("4"), Some(2), 2),
    ] {
        add(&host, &tenant(id, concurrency, slots));
        let before = accepted.load(Ordering::SeqCst);
        server.service().clear_requests();
        let (accounts, pages) = list_all(&host, id, Some(1000)).await.unwrap();
        assert_eq!((accounts.len(), pages), (1_180, 2), "{id}");
        // A round's pages each need a connection of their own, no more than the tenant's slots
        // allow; those the host holds back reuse the connections the first ones free.
        assert_eq!(accepted.load(Ordering::SeqCst) - before, connections, "{id}");
        let ids: Vec<String> = accounts.into_iter().map(|a| a.id).collect();
        listed.push((ids, targets(&server)));
    }
    for other in &listed[1..] {
        assert!(*other == listed[0], "every concurrency lists the same, with the same requests");
    }
    assert_eq!(
        listed[0].1.len(),
        15,
        "12 pages of members, 1 of invites, 1 of join requests, the groups once a listing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_a_cursor_sends_its_first_round_together() {
    let server = mock("ws-carried", 1_150, 30).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("first", "ws-carried", OWNER_TOKEN));
    let page = |cursor| PageRequest { cursor, size: Some(1000) };
    let first = host.list_accounts("first", page(None)).await.unwrap().result.unwrap();
    assert_eq!(first.accounts.len(), 1000);
    // A tenant of its own, so no connection of the first call's is reused: the cursor's length
    // lets the call's first round ask for both remaining member pages at once.
    let (relay, accepted) = round_relay(server.addr(), ROUND_QUIET).await;
    add(&host, &tenant_through(&server, "second", "ws-carried", relay));
    server.service().clear_requests();
    let second = host.list_accounts("second", page(first.next_cursor)).await.unwrap().result;
    let second = second.unwrap();
    assert_eq!((second.accounts.len(), second.next_cursor), (180, None));
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "two member pages went out together");
    let targets = targets(&server);
    // The members' two pages, the invites and the join requests; the cursor carries the console
    // groups holding anyone (none), so they are not read again.
    assert_eq!(targets.len(), 4, "{targets:?}");
    assert!(targets[3].contains("/users?offset=1100&limit=100"), "{targets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_by_id_reads_the_console_in_rounds() {
    let server = mock("ws-lookup", 1_150, 0).await;
    let (relay, accepted) = round_relay(server.addr(), ROUND_QUIET).await;
    let host = host();
    let wanted = server.service().workspace("ws-lookup").unwrap().members[1_100].id.clone();
    // (read-concurrency, connections the lookup opens)
    for (concurrency, connections) in [("4", 4), ("1", 1)] {
        let id = format!("lookup-{concurrency}");
        let mut tenant = tenant_through(&server, &id, "ws-lookup", relay);
        tenant
            .settings
            .insert("read-concurrency".to_string(), SettingValue::Text(concurrency.into()));
        add(&host, &tenant);
        let before = accepted.load(Ordering::SeqCst);
        server.service().clear_requests();
        let found = host.get_account(&id, AccountRef::Id(wanted.clone())).await.unwrap().result;
        assert_eq!(found.unwrap().id, wanted);
        assert_eq!(accepted.load(Ordering::SeqCst) - before, connections, "{concurrency}");
        // Pages of 100 up to the one holding the member, never past the listing's end, and
        // the console groups it may be in.
        assert_eq!(targets(&server).len(), 13, "{concurrency}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_concurrency_outside_1_to_16_is_invalid_config() {
    let server = mock("ws-badconc", 3, 0).await;
    let host = host();
    for bad in ["0", "17", "four"] {
        let mut tenant = server.chatgpt_tenant("badconc", "ws-badconc", OWNER_TOKEN);
        tenant.settings.insert("read-concurrency".to_string(), SettingValue::Text(bad.into()));
        add(&host, &tenant);
        let call = host.list_accounts("badconc", PageRequest { cursor: None, size: None });
        match call.await.unwrap().result {
            Err(CallError::Connector(ConnectorError::InvalidConfig(m))) => {
                assert!(m.contains("`read-concurrency` must be a whole number from 1 to 16"), "{m}")
            }
            other => panic!("{bad}: expected invalid-config, got {other:?}"),
        }
    }
    assert!(server.service().requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_account_by_id_and_email_agrees_with_the_listing() {
    let server = mock("ws-get", 140, 5).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("get", "ws-get", OWNER_TOKEN));
    let (accounts, _) = list_all(&host, "get", Some(50)).await.unwrap();

    // A member on the second console page, and an invite.
    for wanted in [&accounts[120], &accounts[142]] {
        let by_id = host
            .get_account("get", AccountRef::Id(wanted.id.clone()))
            .await
            .unwrap()
            .result
            .unwrap();
        assert_eq!(&by_id, wanted);
        let email = wanted.email.clone().unwrap().to_uppercase();
        let by_email =
            host.get_account("get", AccountRef::Email(email)).await.unwrap().result.unwrap();
        assert_eq!(&by_email, wanted);
    }
    let missing =
        host.get_account("get", AccountRef::Email("nobody@nowhere.example".into())).await.unwrap();
    assert!(matches!(missing.result, Err(CallError::Connector(ConnectorError::NotFound(_)))));
    for bad in [
        AccountRef::Email("not-an-email".into()),
        AccountRef::Id("has space".into()),
        AccountRef::Id(String::new()),
    ] {
        let report = host.get_account("get", bad.clone()).await.unwrap();
        assert!(
            matches!(report.result, Err(CallError::Connector(ConnectorError::InvalidArgument(_)))),
            "{bad:?}: {:?}",
            report.result
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_foreign_cursors_are_invalid_arguments() {
    let server = mock("ws-cur", 30, 0).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("cur", "ws-cur", OWNER_TOKEN));
    let other = mock("ws-other", 30, 0).await;
    add(&host, &other.chatgpt_tenant("other", "ws-other", OWNER_TOKEN));

    let first =
        host.list_accounts("cur", PageRequest { cursor: None, size: Some(10) }).await.unwrap();
    let cursor = first.result.unwrap().next_cursor.unwrap();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'x' { b'y' } else { b'x' };
    let entitlement_cursor = host
        .list_entitlements("cur", PageRequest { cursor: None, size: Some(2) })
        .await
        .unwrap()
        .result
        .unwrap()
        .next_cursor
        .unwrap();
    let cases = [
        ("cur", String::from_utf8(tampered).unwrap()),
        ("cur", "garbage!".to_string()),
        ("cur", entitlement_cursor),
        ("other", cursor.clone()),
    ];
    for (tenant, bad) in cases {
        let before = server.service().requests().len() + other.service().requests().len();
        let report = host
            .list_accounts(tenant, PageRequest { cursor: Some(bad.clone()), size: None })
            .await
            .unwrap();
        match report.result {
            Err(CallError::Connector(ConnectorError::InvalidArgument(message))) => {
                assert!(message.contains("cursor"), "{message}")
            }
            other => panic!("{tenant} {bad}: expected invalid-argument, got {other:?}"),
        }
        let after = server.service().requests().len() + other.service().requests().len();
        assert_eq!(before, after, "a bad cursor sends no request");
    }
    let zero =
        host.list_accounts("cur", PageRequest { cursor: None, size: Some(0) }).await.unwrap();
    assert!(matches!(zero.result, Err(CallError::Connector(ConnectorError::InvalidArgument(_)))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_unauthenticated_and_a_wrong_workspace_is_permission_denied() {
    let server = mock("ws-auth", 5, 0).await;
    let other_ws = accessgov_mock::seed::generate(
        "ws-elsewhere",
        accessgov_mock::GenerateSpec { members: 2, invites: 0, seed: 1, join_requests: 0 },
    );
    server.service().put_workspace(other_ws);
    let host = host();
    add(&host, &server.chatgpt_tenant("wrong-token", "ws-auth", "not-a-real-token"));
    // The token is valid, but for another workspace than the one configured.
    add(&host, &server.chatgpt_tenant("wrong-ws", "ws-elsewhere", OWNER_TOKEN));
    // The configured account id and the injected header disagree.
    let mut mismatched = server.chatgpt_tenant("mismatched", "ws-auth", OWNER_TOKEN);
    mismatched.settings.insert("account-id".to_string(), SettingValue::Text("ws-elsewhere".into()));
    add(&host, &mismatched);

    match host.test_connection("wrong-token").await.unwrap().result {
        Err(CallError::Connector(ConnectorError::Unauthenticated(m))) => {
            assert!(m.contains("token_invalidated") && m.contains("renew"), "{m}")
        }
        other => panic!("expected unauthenticated, got {other:?}"),
    }
    for tenant in ["wrong-ws", "mismatched"] {
        match host
            .list_accounts(tenant, PageRequest { cursor: None, size: None })
            .await
            .unwrap()
            .result
        {
            Err(CallError::Connector(ConnectorError::PermissionDenied(m))) => {
                assert!(m.contains("Owner") && m.contains("account-id"), "{m}")
            }
            other => panic!("{tenant}: expected permission-denied, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_outside_the_allowlist_is_denied_before_any_request() {
    let server = mock("ws-deny", 5, 0).await;
    let host = host();
    let mut tenant = server.chatgpt_tenant("deny", "ws-deny", OWNER_TOKEN);
    // Same host, another port: not the mock's origin.
    tenant.allowed_origins = vec!["http://127.0.0.1:9".to_string()];
    tenant.credentials.clear();
    add(&host, &tenant);

    let report =
        host.list_accounts("deny", PageRequest { cursor: None, size: None }).await.unwrap();
    match &report.result {
        Err(CallError::EgressDenied(Denial::OriginNotAllowed { origin })) => {
            assert_eq!(origin, &server.origin());
        }
        other => panic!("expected egress-denied, got {other:?}"),
    }
    // The round's two requests (a page of members and the console groups beside it), each
    // denied once and never retried.
    assert_eq!(report.egress.len(), 2, "a denial is not retried: {report:?}");
    assert!(report.egress.iter().all(|r| r.denied.is_some()));
    assert!(server.service().requests().is_empty(), "the mock saw no request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_never_sees_the_credential_but_the_service_receives_it() {
    let server = mock("ws-secret", 3, 1).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("real", "ws-secret", OWNER_TOKEN));
    // The hostile test component reports everything a guest can read.
    let mut probe = server.chatgpt_tenant("probe", "ws-secret", OWNER_TOKEN);
    probe.connector = env!("HOSTILE_GUEST_WASM").to_string();
    add(&host, &probe);

    let seen = host.info("probe").await.unwrap().result.unwrap().application;
    let seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(seen["config"].as_array().unwrap().len(), 2, "only the tenant's settings: {seen}");
    assert_eq!(seen["env"], serde_json::json!([]));
    assert_eq!(seen["args"], serde_json::json!([]));
    assert!(!seen.to_string().contains(OWNER_TOKEN));

    let report =
        host.list_accounts("real", PageRequest { cursor: None, size: None }).await.unwrap();
    let serialized = serde_json::to_string(&report).unwrap();
    assert!(report.result.is_ok());
    assert!(!serialized.contains(OWNER_TOKEN), "nothing the host reports carries the token");
    let requests = server.service().requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| r.bearer_token.as_deref() == Some(OWNER_TOKEN)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_invalid_config_naming_the_setting() {
    let server = mock("ws-cfg", 3, 0).await;
    let host = host();
    let mut tenant = server.chatgpt_tenant("cfg", "ws-cfg", OWNER_TOKEN);
    tenant.settings.insert("page-size".to_string(), SettingValue::Text("lots".into()));
    add(&host, &tenant);
    match host.list_accounts("cfg", PageRequest { cursor: None, size: None }).await.unwrap().result
    {
        Err(CallError::Connector(ConnectorError::InvalidConfig(m))) => {
            assert!(m.contains("page-size"), "{m}")
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }
    assert!(server.service().requests().is_empty());
}

/// The largest linear memory any call of a full sync of `tenant` held, and the accounts listed.
async fn sync_peak_memory(host: &accessgov_host::Host, tenant: &str) -> (u64, usize) {
    let (held, listed) = memory_of_each_page(host, tenant, None).await;
    (held.into_iter().max().unwrap_or(0), listed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syncs_guest_memory_does_not_grow_with_the_workspace() {
    let small = mock("ws-mem-small", 200, 0).await;
    let large = mock("ws-mem-large", 10_000, 0).await;
    let host = host();
    add(&host, &small.chatgpt_tenant("mem-small", "ws-mem-small", OWNER_TOKEN));
    add(&host, &large.chatgpt_tenant("mem-large", "ws-mem-large", OWNER_TOKEN));
    let (small_peak, small_listed) = sync_peak_memory(&host, "mem-small").await;
    let (large_peak, large_listed) = sync_peak_memory(&host, "mem-large").await;
    assert_eq!((small_listed, large_listed), (200, 10_000));
    // Fifty times the people, the same page at a time: at most a few 64 KiB pages of difference,
    // far below the megabytes the whole workspace's JSON would take.
    assert!(
        large_peak <= small_peak + 4 * 65_536,
        "guest memory grew with the workspace: {small_peak} bytes for 200 people, {large_peak} for 10,000"
    );
}

//! The public ChatGPT Admin API as a read surface, end to end: a read-only key lists a large
//! workspace in a tenth of the console's requests, keys without the permission and Business
//! workspaces are refused by name, and a read-only review tenant says what it cannot do.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use accessgov_host::tenant::{CredentialConfig, SettingValue};
use accessgov_host::types::{
    Account, AccountRef, AccountStatus, ChangeOptions, ConnectorError, PageRequest,
};
use accessgov_host::{CallError, Host, TenantConfig};
use accessgov_mock::admin_api::{DIRECTORY_READ, USER_READ};
use accessgov_mock::{GenerateSpec, MockServer, MockService, Plan, seed};

use crate::common::{OWNER_TOKEN, add, harness, host, scratch, tenants_file};

const WS: &str = "ws-admin";
const READ_KEY: &str = "admin-key-read-77";
const DIRECTORY_KEY: &str = "admin-key-directory-12";

async fn mock(members: usize, plan: Plan) -> MockServer {
    let service = MockService::new();
    let mut ws =
        seed::generate(WS, GenerateSpec { members, invites: 40, join_requests: 5, seed: 21 });
    ws.set_plan(plan, false);
    seed::fit_to_plan(&mut ws);
    service.put_workspace(ws);
    service.add_token(OWNER_TOKEN, WS, "account-owner");
    service.add_admin_key(READ_KEY, WS, &[USER_READ]);
    service.add_admin_key(DIRECTORY_KEY, WS, &[DIRECTORY_READ]);
    MockServer::start_local(service).await.unwrap()
}

/// A tenant reading members through the Admin API with `key`; with the console too when
/// `console` (its token limited to the console's paths, the key to the Admin API's).
fn admin_tenant(server: &MockServer, id: &str, key: &str, console: bool) -> TenantConfig {
    let mut tenant = server.chatgpt_tenant(id, WS, OWNER_TOKEN);
    tenant.credentials[0].path_prefix = Some("/backend-api".to_string());
    if !console {
        tenant.settings.remove("base-url");
        tenant.credentials.clear();
    }
    let base = format!("{}/v1", server.origin());
    tenant.settings.insert("admin-api-base-url".into(), SettingValue::Text(base));
    tenant.credentials.push(CredentialConfig {
        origin: server.origin(),
        path_prefix: Some("/v1".to_string()),
        bearer_token: Some(key.to_string()),
        bearer_token_env: None,
        headers: BTreeMap::new(),
    });
    tenant
}

/// Every account of `tenant` in pages of 1,000, and the requests to paths containing `needle`.
async fn sync(host: &Host, tenant: &str, needle: &str) -> (Vec<Account>, usize) {
    let (mut accounts, mut requests, mut cursor) = (Vec::new(), 0, None);
    loop {
        let report = host
            .list_accounts(tenant, PageRequest { cursor: cursor.clone(), size: Some(1000) })
            .await
            .unwrap();
        requests += report.egress.iter().filter(|r| r.path.contains(needle)).count();
        let page = report.result.unwrap();
        accounts.extend(page.accounts);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (accounts, requests),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_lists_the_members_the_console_lists_in_a_tenth_of_the_requests() {
    let server = mock(25_000, Plan::Enterprise).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("console", WS, OWNER_TOKEN));
    add(&host, &admin_tenant(&server, "review", READ_KEY, false));
    let (console, console_requests) =
        sync(&host, "console", &format!("/backend-api/accounts/{WS}/users")).await;
    let (review, review_requests) =
        sync(&host, "review", &format!("/v1/manage/workspaces/{WS}/users")).await;
    assert_eq!(console_requests, 250);
    assert_eq!(review_requests, 25);
    // The Admin API lists active members only, times to the second.
    let comparable = |accounts: Vec<Account>| -> Vec<Account> {
        accounts
            .into_iter()
            .filter(|a| a.status == AccountStatus::Active)
            .map(|a| Account { created_at: a.created_at.map(|t| format!("{}Z", &t[..19])), ..a })
            .collect()
    };
    let (console, review) = (comparable(console), comparable(review));
    assert!(console.len() > 24_000, "{}", console.len());
    assert_eq!(review, console);

    // With the console too, invites and join requests follow the Admin API's members.
    add(&host, &admin_tenant(&server, "both", READ_KEY, true));
    let (both, _) = sync(&host, "both", "/v1/").await;
    let requested = both.iter().filter(|a| a.status == AccountStatus::Requested).count();
    let invited = both.iter().filter(|a| a.status == AccountStatus::Invited).count();
    assert_eq!((both.len() - review.len(), invited, requested), (45, 40, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_the_permission_or_a_business_workspace_is_refused_by_name() {
    let server = mock(30, Plan::Enterprise).await;
    let host = host();
    add(&host, &admin_tenant(&server, "directory-only", DIRECTORY_KEY, false));
    let report = host.test_connection("directory-only").await.unwrap();
    let Err(CallError::Connector(ConnectorError::PermissionDenied(message))) = report.result else {
        panic!("{:?}", report.result)
    };
    assert!(message.contains(USER_READ), "{message}");

    let business = mock(30, Plan::Business).await;
    add(&host, &admin_tenant(&business, "business", READ_KEY, false));
    let listed = host.list_accounts("business", PageRequest { cursor: None, size: None }).await;
    let Err(CallError::Connector(ConnectorError::InvalidConfig(message))) = listed.unwrap().result
    else {
        panic!("expected invalid-config")
    };
    assert!(message.contains("Enterprise and Edu") && message.contains("Business"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_review_tenant_says_what_it_cannot_see_or_do_and_writes_nothing() {
    let server = mock(30, Plan::Edu).await;
    let host = host();
    let mut review = admin_tenant(&server, "review", READ_KEY, false);
    review.settings.insert("plan".into(), SettingValue::Text("edu".into()));
    host.add_tenant_checked(&review, std::path::Path::new(".")).await.unwrap();
    let report = host.test_connection("review").await.unwrap().result.unwrap();
    let said = report.limitations.join("\n");
    for what in ["pending invites are not visible", "join requests are not visible", "writes"] {
        assert!(said.contains(what), "{said}");
    }
    let info = host.info("review").await.unwrap().result.unwrap();
    assert!(!info.capabilities.write && info.capabilities.read_accounts);
    assert!(info.application.contains("read-only"), "{}", info.application);
    let ids: Vec<String> = host
        .list_entitlements("review", PageRequest { cursor: None, size: None })
        .await
        .unwrap()
        .result
        .unwrap()
        .entitlements
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert!(!ids.contains(&"seat:codex".to_string()), "Edu has no Codex seats: {ids:?}");

    server.service().clear_requests();
    let member = server.service().workspace(WS).unwrap().members[3].email.clone();
    let options = ChangeOptions { dry_run: false };
    let who = AccountRef::Email(member.clone());
    let grant = host.grant("review", who.clone(), "role:admin".into(), options).await.unwrap();
    assert!(
        matches!(&grant.result, Err(CallError::Connector(ConnectorError::Unsupported(m))) if m.contains("no `base-url`")),
        "{:?}",
        grant.result
    );
    assert!(grant.egress.is_empty(), "nothing sent: {:?}", grant.egress);
    assert!(server.service().requests().is_empty());
    let found = host.get_account("review", who).await.unwrap().result.unwrap();
    assert_eq!(found.email.as_deref(), Some(member.as_str()));
    let invitee = server.service().workspace(WS).unwrap().invites[0].email_address.clone();
    let missing = host.get_account("review", AccountRef::Email(invitee)).await.unwrap().result;
    assert!(
        matches!(&missing, Err(CallError::Connector(ConnectorError::NotFound(m))) if m.contains("not visible")),
        "{missing:?}"
    );

    // The CLI prints the limitations, and `harness mock` prints a review tenant for its key.
    let dir = scratch("review-tenant");
    let tenants = tenants_file(&dir, &server, WS, OWNER_TOKEN, &[]);
    let mut text = std::fs::read_to_string(&tenants).unwrap();
    text = text.replace(
        &format!("base-url = \"{}/backend-api\"", server.origin()),
        &format!("admin-api-base-url = \"{}/v1\"\nplan = \"edu\"", server.origin()),
    );
    text = text
        .replace(OWNER_TOKEN, READ_KEY)
        .replace("headers = {", "path-prefix = \"/v1\"\nheaders = {");
    std::fs::write(&tenants, text).unwrap();
    let (ok, stdout, stderr) = harness(&["test-connection"], &tenants);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("limitation: pending invites are not visible"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

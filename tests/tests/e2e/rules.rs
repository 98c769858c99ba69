//! The service's 2026 rules, end to end through the real component and host against the mock:
//! what each plan allows, how seats change, notices, the integration account, who may grant
//! what, SCIM's ownership of its invites, and contract 0.1.0 components still running.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use accessgov_host::tenant::SettingValue;
use accessgov_host::types::{
    AccountRef, ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError, Entitlement, Notice,
    PageRequest,
};
use accessgov_host::{CallError, Host, TenantConfig};
use accessgov_mock::{
    GenerateSpec, Invite, Member, MockServer, MockService, Plan, SeatChanges, Workspace, seed,
};
use serde_json::json;

use crate::common::{
    OWNER_TOKEN, add, bearer, harness, host, list_all, raw, scratch, tenants_file,
};

const WS: &str = "ws-rules";
const APPLY: ChangeOptions = ChangeOptions { dry_run: false };
const DRY: ChangeOptions = ChangeOptions { dry_run: true };
/// The integration accounts every workspace of these tests has, one per standing.
const OWNER: &str = "ops-owner@acme.example.com";
const ADMIN: &str = "ops-admin@acme.example.com";
const MEMBER: &str = "ops-member@acme.example.com";
const INVITED: &str = "ops-invited@acme.example.com";
const ABSENT: &str = "ops-absent@acme.example.com";
/// A token acting as the Admin integration account.
const ADMIN_TOKEN: &str = "admin-token-3c1d";

fn person(ws: &Workspace, email: &str, role: &str) -> Member {
    let mut member = ws.members[1].clone();
    member.id = format!("user-{}", email.split('@').next().unwrap().replace('-', ""));
    member.account_user_id = format!("{}__{WS}", member.id);
    member.email = email.to_string();
    member.role = role.to_string();
    member.seat_type = "default".to_string();
    member.is_scim_managed = false;
    member.deactivated_time = None;
    member
}

/// A mock of one 30-member workspace on `plan`, with the integration accounts, a plain member
/// `plain@…`, a pending invite `pending@…` with a ChatGPT seat and a SCIM-managed one
/// `provisioned@…`; tokens for the Owner and the Admin.
async fn mock_on(plan: Plan, codex_business: bool) -> MockServer {
    let mut ws =
        seed::generate(WS, GenerateSpec { members: 30, invites: 0, seed: 5, join_requests: 0 });
    ws.set_plan(plan, codex_business);
    seed::fit_to_plan(&mut ws);
    let people = [
        person(&ws, OWNER, "account-owner"),
        person(&ws, ADMIN, "account-admin"),
        person(&ws, MEMBER, "standard-user"),
        person(&ws, "plain@acme.example.com", "standard-user"),
    ];
    ws.members.extend(people);
    let invite = |email: &str, scim: bool| Invite {
        id: format!("inv-{}", email.split('@').next().unwrap()),
        email_address: email.to_string(),
        role: "standard-user".to_string(),
        seat_type: "default".to_string(),
        status: 2,
        created_time: "2026-11-02T10:00:00.000000Z".to_string(),
        is_scim_managed: scim,
    };
    ws.invites.extend([
        invite(INVITED, false),
        invite("pending@acme.example.com", false),
        invite("provisioned@acme.example.com", true),
    ]);
    let service = MockService::new();
    service.put_workspace(ws);
    service.add_token(OWNER_TOKEN, WS, "account-owner");
    service.add_token(ADMIN_TOKEN, WS, "account-admin");
    MockServer::start_local(service).await.unwrap()
}

fn tenant(server: &MockServer, id: &str, token: &str, settings: &[(&str, &str)]) -> TenantConfig {
    let mut tenant = server.chatgpt_tenant(id, WS, token);
    for (key, value) in settings {
        tenant.settings.insert(key.to_string(), SettingValue::Text(value.to_string()));
    }
    tenant
}

async fn with_tenant(
    plan: Plan,
    codex_business: bool,
    token: &str,
    settings: &[(&str, &str)],
) -> (Arc<Host>, MockServer) {
    let server = mock_on(plan, codex_business).await;
    let host = host();
    add(&host, &tenant(&server, "t", token, settings));
    (host, server)
}

fn state(server: &MockServer) -> Workspace {
    server.service().workspace(WS).unwrap()
}

fn writes(server: &MockServer) -> usize {
    server.service().requests().iter().filter(|r| r.is_write()).count()
}

fn email(address: &str) -> AccountRef {
    AccountRef::Email(address.to_string())
}

async fn grant(
    host: &Host,
    who: &str,
    entitlement: &str,
    options: ChangeOptions,
) -> Result<ChangeResult, CallError> {
    host.grant("t", email(who), entitlement.to_string(), options).await.unwrap().result
}

fn member<'a>(ws: &'a Workspace, address: &str) -> &'a Member {
    ws.member_by_email(address).unwrap()
}

/// The connector's error of a call, or a panic naming what came instead.
fn refusal(result: Result<ChangeResult, CallError>) -> ConnectorError {
    match result {
        Err(CallError::Connector(error)) => error,
        other => panic!("expected the connector's refusal, got {other:?}"),
    }
}

async fn entitlement_ids(host: &Host) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = host
            .list_entitlements("t", PageRequest { cursor, size: Some(3) })
            .await
            .unwrap()
            .result
            .unwrap();
        ids.extend(page.entitlements.iter().map(|e: &Entitlement| e.id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plan_lists_what_it_allows_and_refuses_the_rest_before_any_write() {
    let base = ["workspace", "role:owner", "role:admin", "role:member"];
    let cases: [(Plan, bool, &[&str]); 6] = [
        (Plan::Enterprise, false, &["role:analytics-viewer", "seat:chatgpt", "seat:codex"]),
        (Plan::Business, true, &["seat:chatgpt", "seat:codex"]),
        (Plan::Business, false, &["seat:chatgpt"]),
        (Plan::Edu, false, &["seat:chatgpt"]),
        (Plan::Teachers, false, &["seat:chatgpt"]),
        (Plan::Healthcare, false, &["seat:chatgpt"]),
    ];
    for (plan, codex, extra) in cases {
        let label = format!("{} (codex seats: {codex})", plan.as_str());
        let (host, server) = with_tenant(plan, codex, OWNER_TOKEN, &[]).await;
        let expected: Vec<&str> = base.iter().chain(extra).copied().collect();
        assert_eq!(entitlement_ids(&host).await, expected, "{label}");
        for refused in ["role:analytics-viewer", "seat:codex"] {
            if expected.contains(&refused) {
                continue;
            }
            for who in
                ["plain@acme.example.com", "pending@acme.example.com", "new@acme.example.com"]
            {
                let before = writes(&server);
                let error = refusal(grant(&host, who, refused, APPLY).await);
                let ConnectorError::InvalidArgument(message) = &error else {
                    panic!("{label} {refused} for {who}: {error:?}")
                };
                let plan_name = match plan {
                    Plan::Business => "plan (Business",
                    Plan::Edu => "plan (Edu)",
                    Plan::Teachers => "plan (Teachers)",
                    Plan::Healthcare => "plan (Healthcare)",
                    Plan::Enterprise => "plan (Enterprise)",
                };
                assert!(message.contains(plan_name), "{label}: {message}");
                assert_eq!(writes(&server), before, "{label}: {refused} for {who} sent a write");
            }
            // The mock refuses it too when sent directly, as an invite and as a change.
            let (body, field) = match refused {
                "seat:codex" => (json!({"seat_type": "usage_based"}), "seat_type"),
                _ => (json!({"role": "analytics-viewer"}), "role"),
            };
            let plain = member(&state(&server), "plain@acme.example.com").id.clone();
            let headers = [bearer(OWNER_TOKEN), ("chatgpt-account-id", WS.to_string())];
            let path = format!("/backend-api/accounts/{WS}/users/{plain}");
            let sent = body.to_string();
            let patch = raw(server.addr(), "PATCH", &path, &headers, sent.as_bytes()).await;
            assert_eq!(patch.status, 400, "{label} {field}: {}", patch.body);
            assert!(patch.body["detail"].as_str().unwrap().contains("not available on this plan"));
            let mut invite =
                json!({"email_addresses": ["direct@acme.example.com"], "role": "standard-user"});
            invite[field] = body[field].clone();
            let path = format!("/backend-api/accounts/{WS}/invites");
            let sent = invite.to_string();
            let posted = raw(server.addr(), "POST", &path, &headers, sent.as_bytes()).await;
            assert_eq!(posted.status, 400, "{label} {field}: {}", posted.body);
        }
        assert!(state(&server).change_log.is_empty(), "{label}: nothing was changed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enterprise_members_seat_goes_through_the_account_manager_and_an_invites_does_not() {
    let (host, server) = with_tenant(Plan::Enterprise, false, OWNER_TOKEN, &[]).await;
    let plain = "plain@acme.example.com";
    for options in [DRY, APPLY] {
        let before = writes(&server);
        let error = refusal(grant(&host, plain, "seat:codex", options).await);
        let ConnectorError::Unsupported(message) = &error else { panic!("{error:?}") };
        assert!(message.contains("needs your OpenAI account manager"), "{message}");
        assert!(message.contains("Enterprise") && !message.contains("token"), "{message}");
        assert_eq!(writes(&server), before, "dry run {}: nothing sent", options.dry_run);
    }
    assert_eq!(member(&state(&server), plain).seat_type, "default");
    // Revoking the Codex seat of a member who has one is a seat change too.
    let codex_member =
        state(&server).members.iter().find(|m| m.seat_type == "usage_based").unwrap().clone();
    let revoked = host
        .revoke("t", AccountRef::Id(codex_member.id.clone()), "seat:codex".into(), APPLY)
        .await
        .unwrap()
        .result;
    assert!(
        matches!(refusal(revoked), ConnectorError::Unsupported(m) if m.contains("account manager"))
    );

    // A pending invite's seat is still chosen here: cancelled and invited again.
    let pending = "pending@acme.example.com";
    let changed = grant(&host, pending, "seat:codex", APPLY).await.unwrap();
    assert_eq!(changed.outcome, ChangeOutcome::Pending, "{}", changed.detail);
    let methods: Vec<&str> = changed.requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["DELETE", "POST"]);
    assert_eq!(state(&server).invite_by_email(pending).unwrap().seat_type, "usage_based");

    // The mock refuses the member's change itself, and a tenant that says seat changes are
    // self-service hears the service's reason, not that its token is wrong.
    let misinformed = tenant(&server, "self", OWNER_TOKEN, &[("seat-changes", "self-service")]);
    add(&host, &misinformed);
    let before = state(&server).change_log.len();
    let report = host.grant("self", email(plain), "seat:codex".into(), APPLY).await.unwrap().result;
    let error = refusal(report);
    let ConnectorError::Unsupported(message) = &error else { panic!("{error:?}") };
    assert!(message.contains("Seat type changes are handled by your OpenAI account manager"));
    assert_eq!(state(&server).change_log.len(), before);

    // On Business, self-service: the same change is applied.
    let (host, server) = with_tenant(Plan::Business, true, OWNER_TOKEN, &[]).await;
    let done = grant(&host, plain, "seat:codex", APPLY).await.unwrap();
    assert_eq!(done.outcome, ChangeOutcome::Applied, "{}", done.detail);
    assert_eq!(member(&state(&server), plain).seat_type, "usage_based");
    assert_eq!(done.requests.len(), 1);
}

fn data_access_notice(result: &ChangeResult) -> &accessgov_host::types::DataAccessLoss {
    match result.notices.as_slice() {
        [Notice::DataAccessLost(loss)] => loss,
        other => panic!("expected one data-access notice, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_to_a_codex_seat_carries_its_notice_in_the_plan_and_the_result() {
    let (host, server) = with_tenant(Plan::Business, true, OWNER_TOKEN, &[]).await;
    let plain = "plain@acme.example.com";
    let planned = grant(&host, plain, "seat:codex", DRY).await.unwrap();
    assert_eq!(planned.outcome, ChangeOutcome::Planned);
    let loss = data_access_notice(&planned);
    assert_eq!(loss.data, ["chats", "memories", "projects"]);
    assert!(!loss.deleted && loss.restored_on_return);
    assert!(loss.message.contains("loses access to their chats"), "{}", loss.message);
    assert_eq!(writes(&server), 0);
    let applied = grant(&host, plain, "seat:codex", APPLY).await.unwrap();
    assert_eq!(data_access_notice(&applied), loss);
    // Back to ChatGPT: no notice.
    let back = grant(&host, plain, "seat:chatgpt", APPLY).await.unwrap();
    assert!(back.notices.is_empty(), "{:?}", back.notices);
    // A new person invited with a Codex seat is told what it lacks.
    let invited = grant(&host, "coder@acme.example.com", "seat:codex", DRY).await.unwrap();
    assert!(data_access_notice(&invited).message.contains("will have a Codex seat"));

    // The CLI prints it beside the change, for one change and for a CSV.
    let dir = scratch("codex-notice");
    let tenants = tenants_file(&dir, &server, WS, OWNER_TOKEN, &[]);
    let single = harness(&["grant", plain, "seat:codex", "--dry-run"], &tenants);
    assert!(single.0, "{}", single.2);
    assert!(single.1.contains("NOTICE data access lost"), "{}", single.1);
    let csv = dir.join("people.csv");
    std::fs::write(&csv, format!("email,role,seat type\n{plain},member,Codex\n")).unwrap();
    let applied = harness(&["apply", "--dry-run", "--csv", csv.to_str().unwrap()], &tenants);
    assert!(applied.0, "{}", applied.2);
    assert!(applied.1.contains("NOTICE data access lost"), "{}", applied.1);
    assert_eq!(member(&state(&server), plain).seat_type, "default", "dry runs wrote nothing");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_checks_the_integration_account_is_an_active_owner() {
    let server = mock_on(Plan::Enterprise, false).await;
    let host = host();
    let mut messages = Vec::new();
    for (index, account) in [OWNER, ADMIN, MEMBER, ABSENT, INVITED].into_iter().enumerate() {
        let id = format!("t{index}");
        add(&host, &tenant(&server, &id, OWNER_TOKEN, &[("integration-account", account)]));
        server.service().clear_requests();
        let result = host.test_connection(&id).await.unwrap().result;
        let listings: Vec<String> = server
            .service()
            .requests()
            .iter()
            .filter(|r| !r.path.ends_with("/settings"))
            .map(|r| r.path.clone())
            .collect();
        if account == OWNER {
            assert!(result.is_ok(), "{result:?}");
            assert_eq!(listings.len(), 1, "one listing request: {listings:?}");
            continue;
        }
        let Err(CallError::Connector(ConnectorError::PermissionDenied(message))) = result else {
            panic!("{account}: {result:?}")
        };
        assert!(message.contains(account), "{message}");
        messages.push(message);
    }
    assert!(messages[0].contains("is an Admin of workspace"), "{}", messages[0]);
    assert!(messages[1].contains("is a Member of workspace"), "{}", messages[1]);
    assert!(messages[2].contains("is not a member of workspace"), "{}", messages[2]);
    assert!(messages[3].contains("is still an invite"), "{}", messages[3]);
    let distinct: std::collections::BTreeSet<_> = messages.iter().collect();
    assert_eq!(distinct.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_integration_account_never_gives_the_owner_role() {
    let settings = [("integration-account", ADMIN)];
    let (host, server) = with_tenant(Plan::Enterprise, false, ADMIN_TOKEN, &settings).await;
    for who in ["plain@acme.example.com", "newcomer@acme.example.com"] {
        let error = refusal(grant(&host, who, "role:owner", APPLY).await);
        let ConnectorError::PermissionDenied(message) = &error else { panic!("{error:?}") };
        assert!(message.contains(ADMIN) && message.contains("nothing was sent"), "{message}");
    }
    assert_eq!(writes(&server), 0);
    // An Admin may still invite Members.
    let invited = grant(&host, "helper@acme.example.com", "workspace", APPLY).await.unwrap();
    assert_eq!(invited.outcome, ChangeOutcome::Pending);

    // The mock makes an Admin's invite as Owner a Member's, as the service does.
    let headers = [bearer(ADMIN_TOKEN), ("chatgpt-account-id", WS.to_string())];
    let body = json!({"email_addresses": ["direct@acme.example.com"], "role": "account-owner"});
    let path = format!("/backend-api/accounts/{WS}/invites");
    let reply = raw(server.addr(), "POST", &path, &headers, body.to_string().as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let direct = state(&server).invite_by_email("direct@acme.example.com").unwrap().clone();
    assert_eq!(direct.role, "standard-user");

    // A CSV: an Owner row for a new person invites them as Member, with a note; the typo
    // `ownr` for an existing Owner changes nothing and names its line.
    let dir = scratch("admin-csv");
    let tenants = tenants_file(&dir, &server, WS, ADMIN_TOKEN, &settings);
    let csv = dir.join("people.csv");
    std::fs::write(&csv, "email,role\nboss@acme.example.com,Owner\n").unwrap();
    let (ok, stdout, stderr) = harness(&["apply", "--csv", csv.to_str().unwrap()], &tenants);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("invited as Member (OpenAI's CSV rule)"), "{stdout}");
    assert_eq!(
        state(&server).invite_by_email("boss@acme.example.com").unwrap().role,
        "standard-user"
    );

    let before = writes(&server);
    std::fs::write(&csv, format!("email,role\n\n{OWNER},ownr\n")).unwrap();
    let (ok, stdout, _) = harness(&["apply", "--csv", csv.to_str().unwrap()], &tenants);
    assert!(!ok, "a malformed row fails the run");
    let row = stdout.lines().find(|l| l.contains(OWNER)).unwrap_or_default();
    assert!(row.contains('3') && stdout.contains("\"ownr\""), "{stdout}");
    assert!(stdout.contains("nothing was changed"), "{stdout}");
    assert_eq!(writes(&server), before);
    assert_eq!(member(&state(&server), OWNER).role, "account-owner");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_managed_invite_stays_in_the_identity_providers_hands() {
    let (host, server) = with_tenant(Plan::Enterprise, false, OWNER_TOKEN, &[]).await;
    let provisioned = "provisioned@acme.example.com";
    for entitlement in ["role:admin", "seat:codex", "workspace"] {
        let result = match entitlement {
            "workspace" => host.revoke("t", email(provisioned), entitlement.into(), APPLY).await,
            _ => host.grant("t", email(provisioned), entitlement.into(), APPLY).await,
        };
        let error = refusal(result.unwrap().result);
        let ConnectorError::ManagedExternally(message) = &error else { panic!("{error:?}") };
        assert!(message.contains("SCIM") && message.contains("identity provider"), "{message}");
    }
    assert_eq!(writes(&server), 0);
    let invite = state(&server).invite_by_email(provisioned).unwrap().clone();
    assert!(invite.is_scim_managed && invite.role == "standard-user");
    // The console refuses to cancel it.
    let headers = [bearer(OWNER_TOKEN), ("chatgpt-account-id", WS.to_string())];
    let body = json!({"email_address": provisioned}).to_string();
    let path = format!("/backend-api/accounts/{WS}/invites");
    let reply = raw(server.addr(), "DELETE", &path, &headers, body.as_bytes()).await;
    assert_eq!(
        (reply.status, reply.body["detail"].as_str()),
        (400, Some("User is managed by SCIM"))
    );
    assert!(state(&server).invite_by_email(provisioned).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_built_against_contract_0_1_0_still_runs() {
    let server = mock_on(Plan::Business, true).await;
    let host = host();
    let mut old = tenant(&server, "old", OWNER_TOKEN, &[]);
    old.connector = fixture_0_1_0().display().to_string();
    host.add_tenant_checked(&old, Path::new(".")).await.unwrap();
    let info = host.info("old").await.unwrap().result.unwrap();
    assert_eq!((info.name.as_str(), info.version.as_str()), ("chatgpt", "0.1.0"));
    let (accounts, _) = list_all(&host, "old", Some(25)).await.unwrap();
    assert_eq!(accounts.len(), state(&server).members.len() + state(&server).invites.len());
    let plain = "plain@acme.example.com";
    let granted = host.grant("old", email(plain), "role:admin".into(), APPLY).await.unwrap();
    let granted = granted.result.unwrap();
    assert_eq!(granted.outcome, ChangeOutcome::Applied);
    assert!(granted.notices.is_empty(), "0.1.0 states no notices");
    assert_eq!(member(&state(&server), plain).role, "account-admin");
    let refused = host.grant("old", email("bad address"), "workspace".into(), APPLY).await;
    assert!(matches!(
        refused.unwrap().result,
        Err(CallError::Connector(ConnectorError::InvalidArgument(_)))
    ));
}

/// The 0.1.0 build of the ChatGPT connector kept as a test artifact.
fn fixture_0_1_0() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/contract-0.1.0/chatgpt_connector.wasm")
}

#[test]
fn seat_change_modes_and_plans_read_as_the_cli_names_them() {
    assert_eq!("self-service".parse::<SeatChanges>(), Ok(SeatChanges::SelfService));
    assert!("teachers".parse::<Plan>().is_ok() && "team".parse::<Plan>().is_err());
}

//! Pending join requests end to end: listed as accounts of their own status among members and
//! invites, approved by a grant (with its role and seat), rejected by revoking `workspace`,
//! through the real component and host against the mock.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use accessgov_host::types::{
    AccountRef, AccountStatus, Change, ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError,
    EntitlementChange, Notice,
};
use accessgov_host::{CallError, Host};
use accessgov_mock::{AppliedChangeKind, GenerateSpec, MockServer, Workspace};

use crate::common::{OWNER_TOKEN, add, harness, host, list_all, mock_of, scratch, tenants_file};

const WS: &str = "ws-join";
const APPLY: ChangeOptions = ChangeOptions { dry_run: false };

async fn mock(members: usize, invites: usize, join_requests: usize) -> MockServer {
    mock_of(WS, GenerateSpec { members, invites, join_requests, seed: 9 }).await
}

fn state(server: &MockServer) -> Workspace {
    server.service().workspace(WS).unwrap()
}

fn writes(server: &MockServer) -> usize {
    server.service().requests().iter().filter(|r| r.is_write()).count()
}

/// The address of the `n`th join request.
fn asker(server: &MockServer, n: usize) -> String {
    state(server).join_requests[n].email.clone()
}

async fn change(
    host: &Host,
    grant: bool,
    who: &str,
    entitlement: &str,
    options: ChangeOptions,
) -> Result<ChangeResult, CallError> {
    let who = AccountRef::Email(who.to_string());
    let report = match grant {
        true => host.grant("t", who, entitlement.into(), options).await,
        false => host.revoke("t", who, entitlement.into(), options).await,
    };
    report.unwrap().result
}

/// Runs a step: its outcome, how many writes it sent (checked against the mock's log), and
/// the mock's state afterwards.
async fn step(
    server: &MockServer,
    result: impl std::future::Future<Output = Result<ChangeResult, CallError>>,
    want: (ChangeOutcome, usize),
    check: impl Fn(&Workspace) -> bool,
    label: &str,
) -> ChangeResult {
    let before = writes(server);
    let result = result.await.unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(result.outcome, want.0, "{label}: {}", result.detail);
    assert_eq!(writes(server) - before, want.1, "{label}: writes");
    assert_eq!(result.requests.len(), want.1, "{label}: reported requests");
    assert!(check(&state(server)), "{label}: mock state is wrong: {result:?}");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_requests_are_listed_once_each_after_members_and_invites_over_many_pages() {
    let server = mock(250, 120, 130).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    let (accounts, pages) = list_all(&host, "t", Some(70)).await.unwrap();
    assert_eq!(accounts.len(), 500);
    assert_eq!(pages, 8);
    let ids: BTreeSet<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), 500, "each account exactly once");
    let statuses: Vec<AccountStatus> = accounts.iter().map(|a| a.status).collect();
    let requested: Vec<_> =
        accounts.iter().filter(|a| a.status == AccountStatus::Requested).collect();
    assert_eq!(requested.len(), 130);
    // Members, then invites, then requests.
    assert!(
        statuses[..250]
            .iter()
            .all(|s| *s != AccountStatus::Requested && *s != AccountStatus::Invited)
    );
    assert!(statuses[250..370].iter().all(|s| *s == AccountStatus::Invited));
    assert!(statuses[370..].iter().all(|s| *s == AccountStatus::Requested));
    let expected: Vec<String> =
        state(&server).join_requests.iter().map(|r| format!("request:{}", r.id)).collect();
    let listed: Vec<String> = requested.iter().map(|a| a.id.clone()).collect();
    assert_eq!(listed, expected);
    assert!(requested.iter().all(|a| a.entitlements.is_empty() && a.email.is_some()));

    // One by id and by email.
    let by_id = host.get_account("t", AccountRef::Id(expected[7].clone())).await.unwrap();
    let by_id = by_id.result.unwrap();
    assert_eq!(by_id.status, AccountStatus::Requested);
    let email = by_id.email.clone().unwrap().to_uppercase();
    let by_email = host.get_account("t", AccountRef::Email(email)).await.unwrap().result.unwrap();
    assert_eq!(by_email, by_id);

    // The CLI lists them with their status.
    let dir = scratch("join-accounts");
    let tenants = tenants_file(&dir, &server, WS, OWNER_TOKEN, &[]);
    let (ok, stdout, stderr) = harness(&["accounts"], &tenants);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.matches("requested").count(), 130, "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_with_a_role_then_the_role_cycle_and_rejecting_then_inviting() {
    let server = mock(20, 2, 6).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    use ChangeOutcome::*;
    let [first, second, third, fourth] = [0, 1, 2, 3].map(|n| asker(&server, n));

    // A dry run plans the approval and sends nothing.
    let planned = change(&host, true, &first, "role:admin", ChangeOptions { dry_run: true });
    let planned = planned.await.unwrap();
    assert_eq!(planned.outcome, Planned);
    assert!(planned.requests[0].path.ends_with("/approve"), "{:?}", planned.requests);
    assert_eq!(writes(&server), 0);

    let role_of = |ws: &Workspace| ws.member_by_email(&first).map(|m| m.role.clone());
    let approved = step(
        &server,
        change(&host, true, &first, "role:admin", APPLY),
        (Applied, 1),
        |ws| {
            role_of(ws).as_deref() == Some("account-admin")
                && ws.join_request_by_email(&first).is_none()
        },
        "approve as Admin",
    )
    .await;
    let account = approved.account.unwrap();
    assert_eq!(account.status, AccountStatus::Active);
    assert!(account.entitlements.contains(&"role:admin".to_string()), "{account:?}");
    let admin = Some("account-admin");
    step(
        &server,
        change(&host, true, &first, "role:admin", APPLY),
        (AlreadyInState, 0),
        |ws| role_of(ws).as_deref() == admin,
        "grant again",
    )
    .await;
    step(
        &server,
        change(&host, false, &first, "role:admin", APPLY),
        (Applied, 1),
        |ws| role_of(ws).as_deref() == Some("standard-user"),
        "revoke",
    )
    .await;
    step(
        &server,
        change(&host, false, &first, "role:admin", APPLY),
        (AlreadyInState, 0),
        |ws| role_of(ws).as_deref() == Some("standard-user"),
        "revoke again",
    )
    .await;
    step(
        &server,
        change(&host, true, &first, "role:admin", APPLY),
        (Applied, 1),
        |ws| role_of(ws).as_deref() == admin,
        "grant once more",
    )
    .await;

    // A role and a seat for one request in one batch: one approval carrying both.
    let grant = |entitlement: &str| {
        Change::Grant(EntitlementChange {
            account: AccountRef::Email(second.clone()),
            entitlement: entitlement.to_string(),
        })
    };
    let before = writes(&server);
    let batch = host
        .apply_batch("t", vec![grant("role:admin"), grant("seat:codex")], APPLY)
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(writes(&server) - before, 1, "one approval");
    let results: Vec<ChangeResult> = batch.into_iter().map(Result::unwrap).collect();
    assert!(results.iter().all(|r| r.outcome == Applied), "{results:?}");
    assert!(matches!(results[1].notices.as_slice(), [Notice::DataAccessLost(_)]));
    let member = state(&server).member_by_email(&second).unwrap().clone();
    assert_eq!((member.role.as_str(), member.seat_type.as_str()), ("account-admin", "usage_based"));

    // Reject, nothing left to reject, then invite: the revoke/revoke/grant cycle.
    let gone = |ws: &Workspace| {
        ws.join_request_by_email(&third).is_none() && ws.member_by_email(&third).is_none()
    };
    step(&server, change(&host, false, &third, "workspace", APPLY), (Applied, 1), gone, "reject")
        .await;
    step(
        &server,
        change(&host, false, &third, "workspace", APPLY),
        (AlreadyInState, 0),
        gone,
        "reject again",
    )
    .await;
    step(
        &server,
        change(&host, true, &third, "workspace", APPLY),
        (Pending, 1),
        |ws| ws.invite_by_email(&third).is_some(),
        "invite",
    )
    .await;

    // A revoke of what a request does not hold changes nothing.
    step(
        &server,
        change(&host, false, &fourth, "role:admin", APPLY),
        (AlreadyInState, 0),
        |ws| ws.join_request_by_email(&fourth).is_some(),
        "revoke from a request",
    )
    .await;

    let log: Vec<AppliedChangeKind> =
        state(&server).change_log.into_iter().map(|c| c.kind).collect();
    let approvals =
        log.iter().filter(|k| matches!(k, AppliedChangeKind::JoinApproved { .. })).count();
    let rejections = log.iter().filter(|k| matches!(k, AppliedChangeKind::JoinRejected)).count();
    assert_eq!((approvals, rejections), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_without_join_requests_is_named_as_a_setting_to_change() {
    let server = mock(10, 1, 3).await;
    server.service().lock().workspaces.get_mut(WS).unwrap().join_requests_served = false;
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    let error = list_all(&host, "t", None).await.unwrap_err();
    let CallError::Connector(ConnectorError::InvalidConfig(message)) = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains("join-requests = false"), "{message}");
    let mut without = server.chatgpt_tenant("without", WS, OWNER_TOKEN);
    without
        .settings
        .insert("join-requests".into(), accessgov_host::tenant::SettingValue::Text("false".into()));
    add(&host, &without);
    let (accounts, _) = list_all(&host, "without", None).await.unwrap();
    assert_eq!(accounts.len(), 11);
}

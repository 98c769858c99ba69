//! Console groups end to end: listed as `group:<id>` entitlements of kind `console-group`
//! whether or not SCIM is configured, reported on the members in them, and changed through the
//! console one bulk request per group and direction per batch, through the real component and
//! host against the mock.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use accessgov_host::types::{
    AccountRef, Change, ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError,
    EntitlementChange, PageRequest,
};
use accessgov_host::{CallError, Host};
use accessgov_mock::console_groups::{MAX_CONSOLE_GROUPS, MAX_GROUP_BULK};
use accessgov_mock::{GenerateSpec, MockServer, Workspace};
use serde_json::json;

use crate::common::{OWNER_TOKEN, add, bearer, host, list_all, mock_of, raw};

const WS: &str = "ws-cgroups";
const APPLY: ChangeOptions = ChangeOptions { dry_run: false };

async fn mock(members: usize) -> MockServer {
    mock_of(WS, GenerateSpec { members, invites: 3, join_requests: 0, seed: 17 }).await
}

fn state(server: &MockServer) -> Workspace {
    server.service().workspace(WS).unwrap()
}

fn writes(server: &MockServer) -> usize {
    server.service().requests().iter().filter(|r| r.is_write()).count()
}

fn members_of(server: &MockServer, group: &str) -> BTreeSet<String> {
    let ws = state(server);
    ws.console_groups.iter().find(|g| g.id == group).unwrap().members.iter().cloned().collect()
}

fn change(grant: bool, who: &str, group: &str) -> Change {
    let change = EntitlementChange {
        account: AccountRef::Id(who.to_string()),
        entitlement: format!("group:{group}"),
    };
    if grant { Change::Grant(change) } else { Change::Revoke(change) }
}

async fn one(host: &Host, grant: bool, who: &str, group: &str) -> Result<ChangeResult, CallError> {
    let who = AccountRef::Id(who.to_string());
    let entitlement = format!("group:{group}");
    let report = match grant {
        true => host.grant("t", who, entitlement, APPLY).await,
        false => host.revoke("t", who, entitlement, APPLY).await,
    };
    report.unwrap().result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_and_fifty_groups_are_listed_once_each_and_members_report_theirs() {
    let server = mock(40).await;
    let ws = state(&server);
    let ids: Vec<String> = (0..250)
        .map(|n| {
            let members = [ws.members[n % 40].id.as_str()];
            server.service().add_console_group(WS, &format!("Group {n}"), &members).unwrap()
        })
        .collect();
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    let (mut listed, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = host
            .list_entitlements("t", PageRequest { cursor, size: Some(60) })
            .await
            .unwrap()
            .result
            .unwrap();
        pages += 1;
        listed.extend(page.entitlements);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let groups: Vec<String> = listed
        .iter()
        .filter(|e| e.kind == "console-group")
        .map(|e| e.id.trim_start_matches("group:").to_string())
        .collect();
    assert_eq!(groups, ids, "every group once, in order");
    assert_eq!(listed.len(), 7 + 250);
    assert_eq!(pages, 5);

    // A member reports the console groups they are in.
    let first = ws.members[0].id.clone();
    let account = host.get_account("t", AccountRef::Id(first)).await.unwrap().result.unwrap();
    let held: Vec<&String> =
        account.entitlements.iter().filter(|e| e.starts_with("group:")).collect();
    let expected: Vec<String> = (0..250).step_by(40).map(|n| format!("group:{}", ids[n])).collect();
    assert_eq!(held, expected.iter().collect::<Vec<_>>());
}

/// The console groups `account` reports, by id.
fn groups_of(accounts: &[accessgov_host::types::Account], account: &str) -> Vec<String> {
    let account = accounts.iter().find(|a| a.id == account).unwrap();
    let groups = account.entitlements.iter().filter_map(|e| e.strip_prefix("group:"));
    groups.map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_reads_the_groups_once_and_every_page_reports_its_members_groups() {
    let server = mock(250).await;
    let ws = state(&server);
    let member = |n: usize| ws.members[n].id.clone();
    let service = server.service();
    let spread = service.add_console_group(WS, "Spread", &[&member(3), &member(140), &member(230)]);
    let late = service.add_console_group(WS, "Late", &[&member(140), &member(240)]);
    let (spread, late) = (spread.unwrap(), late.unwrap());
    service.add_console_group(WS, "Empty", &[]).unwrap();
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    let groups_listed = |server: &MockServer| {
        let listing = format!("/backend-api/accounts/{WS}/groups");
        server
            .service()
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == listing)
            .count()
    };
    let members_read = |server: &MockServer, group: &str| {
        let listing = format!("/backend-api/accounts/{WS}/groups/{group}/members");
        server.service().requests().iter().filter(|r| r.path == listing).count()
    };

    service.clear_requests();
    let (accounts, pages) = list_all(&host, "t", Some(100)).await.unwrap();
    assert_eq!((accounts.len(), pages), (253, 3));
    assert_eq!(groups_of(&accounts, &member(3)), [spread.as_str()]);
    assert_eq!(groups_of(&accounts, &member(140)), [spread.as_str(), late.as_str()]);
    assert_eq!(groups_of(&accounts, &member(230)), [spread.as_str()]);
    assert_eq!(groups_of(&accounts, &member(240)), [late.as_str()]);
    assert!(groups_of(&accounts, &member(4)).is_empty());
    // Three calls of members: the groups listed by the first alone (its cursor carries the two
    // holding anyone), the members of each of those two read by every call, the empty one's
    // by none.
    assert_eq!(groups_listed(&server), 1);
    assert_eq!(members_read(&server, &spread), 3);
    assert_eq!(members_read(&server, &late), 3);

    // A group deleted in the console during a listing reports no one from then on, and the
    // listing goes on without an error.
    let first = host.list_accounts("t", PageRequest { cursor: None, size: Some(100) }).await;
    let cursor = first.unwrap().result.unwrap().next_cursor;
    let headers = [bearer(OWNER_TOKEN), ("chatgpt-account-id", WS.to_string())];
    let path = format!("/backend-api/accounts/{WS}/groups/{late}");
    let reply = raw(server.addr(), "DELETE", &path, &headers, b"").await;
    assert!(reply.status < 300, "{}: {}", reply.status, reply.body);
    let second = host.list_accounts("t", PageRequest { cursor, size: Some(100) }).await;
    let second = second.unwrap().result.unwrap().accounts;
    assert_eq!(groups_of(&second, &member(140)), [spread.as_str()]);

    // A cursor whose carried groups were edited is refused like any other edited cursor.
    let first = host.list_accounts("t", PageRequest { cursor: None, size: Some(100) }).await;
    let cursor = first.unwrap().result.unwrap().next_cursor.unwrap();
    let mut edited = cursor.into_bytes();
    let at = edited.len() - 20;
    edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
    let edited = PageRequest { cursor: Some(String::from_utf8(edited).unwrap()), size: Some(100) };
    let refused = host.list_accounts("t", edited).await.unwrap().result;
    let refused = matches!(refused, Err(CallError::Connector(ConnectorError::InvalidArgument(_))));
    assert!(refused, "an edited cursor was not refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_goes_through_the_grant_revoke_cycle_with_state_checked() {
    let server = mock(10).await;
    let group = server.service().add_console_group(WS, "Research", &[]).unwrap();
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    let who = state(&server).members[3].id.clone();
    use ChangeOutcome::*;

    // A dry run plans the bulk request and sends nothing.
    let planned = host
        .grant(
            "t",
            AccountRef::Id(who.clone()),
            format!("group:{group}"),
            ChangeOptions { dry_run: true },
        )
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(planned.outcome, Planned);
    assert_eq!(planned.requests[0].method, "POST");
    assert_eq!(writes(&server), 0);

    for (grant, want, holds, label) in [
        (true, Applied, true, "grant"),
        (true, AlreadyInState, true, "grant again"),
        (false, Applied, false, "revoke"),
        (false, AlreadyInState, false, "revoke again"),
        (true, Applied, true, "grant once more"),
    ] {
        let before = writes(&server);
        let result =
            one(&host, grant, &who, &group).await.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(result.outcome, want, "{label}: {}", result.detail);
        let wrote = writes(&server) - before;
        assert_eq!(wrote, usize::from(want == Applied), "{label}");
        assert_eq!(result.requests.len(), wrote, "{label}");
        assert_eq!(members_of(&server, &group).contains(&who), holds, "{label}");
    }
    // An invitee cannot be in a group: a conflict, nothing sent.
    let invitee = format!("invite:{}", state(&server).invites[0].id);
    let before = writes(&server);
    let refused = one(&host, true, &invitee, &group).await;
    assert!(
        matches!(refused, Err(CallError::Connector(ConnectorError::Conflict(_)))),
        "{refused:?}"
    );
    assert_eq!(writes(&server), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_id_that_would_reshape_the_request_names_no_group_and_writes_nothing() {
    let server = mock(5).await;
    let ws = state(&server);
    let member = ws.members[0].id.clone();
    let group = server.service().add_console_group(WS, "Real", &[]).unwrap();
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    // Read as paths, these would name the real group (its query or a sibling path dropped).
    for id in [format!("{group}?x=1"), format!("{group}/members/../"), format!("{group}#x")] {
        server.service().clear_requests();
        let result = one(&host, true, &member, &id).await;
        assert!(
            matches!(result, Err(CallError::Connector(ConnectorError::NotFound(_)))),
            "{id}: {result:?}"
        );
        assert_eq!(writes(&server), 0, "{id}");
        let asked: Vec<String> =
            server.service().requests().iter().map(|r| r.path.clone()).collect();
        assert!(asked.iter().all(|p| !p.ends_with(&format!("/groups/{group}"))), "{id}: {asked:?}");
    }
    assert!(members_of(&server, &group).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_adding_three_hundred_people_sends_one_bulk_request_per_hundred() {
    let server = mock(320).await;
    let group = server.service().add_console_group(WS, "Everyone", &[]).unwrap();
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    let people: Vec<String> =
        state(&server).members.iter().take(300).map(|m| m.id.clone()).collect();
    server.service().clear_requests();
    let changes: Vec<Change> = people.iter().map(|p| change(true, p, &group)).collect();
    let results = host.apply_batch("t", changes, APPLY).await.unwrap().result.unwrap();
    assert!(results.iter().all(|r| r.as_ref().unwrap().outcome == ChangeOutcome::Applied));
    let bulk: Vec<_> = server.service().requests().into_iter().filter(|r| r.is_write()).collect();
    assert_eq!(bulk.len(), 300 / MAX_GROUP_BULK, "{bulk:?}");
    assert!(bulk.iter().all(|r| r.method == "POST" && r.path.ends_with("/members")));
    assert_eq!(members_of(&server, &group), people.into_iter().collect());

    // Removing them all again: one bulk request per hundred the other way.
    server.service().clear_requests();
    let everyone: Vec<String> = members_of(&server, &group).into_iter().collect();
    let changes: Vec<Change> = everyone.iter().map(|p| change(false, p, &group)).collect();
    let results = host.apply_batch("t", changes, APPLY).await.unwrap().result.unwrap();
    assert!(results.iter().all(|r| r.as_ref().unwrap().outcome == ChangeOutcome::Applied));
    let bulk = server.service().requests().into_iter().filter(|r| r.is_write()).count();
    assert_eq!(bulk, 3);
    assert!(members_of(&server, &group).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_synced_group_refuses_console_changes_and_the_workspace_holds_ten_thousand() {
    let server = mock(10).await;
    let group = server.service().add_console_group(WS, "Engineering", &[]).unwrap();
    // A SCIM group of the same name syncs it.
    server.service().add_group(WS, "engineering", &[]).unwrap();
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    let who = state(&server).members[2].id.clone();
    let refused = one(&host, true, &who, &group).await;
    let Err(CallError::Connector(ConnectorError::ManagedExternally(message))) = refused else {
        panic!("{refused:?}")
    };
    assert!(message.contains("Engineering") && message.contains("identity provider"), "{message}");
    assert_eq!(writes(&server), 0);

    // Up to 10,000 groups; the 10,001st is refused.
    for n in 1..MAX_CONSOLE_GROUPS {
        server.service().add_console_group(WS, &format!("g{n}"), &[]).unwrap();
    }
    assert_eq!(state(&server).console_groups.len(), MAX_CONSOLE_GROUPS);
    let headers = [bearer(OWNER_TOKEN), ("chatgpt-account-id", WS.to_string())];
    let body = json!({"name": "one too many"}).to_string();
    let path = format!("/backend-api/accounts/{WS}/groups");
    let reply = raw(server.addr(), "POST", &path, &headers, body.as_bytes()).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body["detail"].as_str().unwrap().contains("at most 10000 groups"));
}

//! Groups and SCIM-managed people end to end: the real component in the real host against the
//! mock's console and SCIM surfaces, with the mock's state checked at every step.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use accessgov_host::types::{
    AccountRef, AccountStatus, Change, ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError,
    EntitlementChange, PageRequest,
};
use accessgov_host::{CallError, Host};
use accessgov_mock::{MockServer, Workspace};

use crate::common::{
    OWNER_TOKEN, SCIM_DIRECTORY, SCIM_TOKEN, add, host, list_all, mock, scim_create_user,
    scim_request, with_scim,
};

const WS: &str = "ws-groups";
const APPLY: ChangeOptions = ChangeOptions { dry_run: false };
const DRY_RUN: ChangeOptions = ChangeOptions { dry_run: true };

async fn setup() -> (Arc<Host>, MockServer) {
    let server = mock(WS, 30, 2).await;
    let host = host();
    add(&host, &with_scim(&server, WS, server.chatgpt_tenant("t", WS, OWNER_TOKEN)));
    (host, server)
}

fn state(server: &MockServer) -> Workspace {
    server.service().workspace(WS).unwrap()
}

fn writes(server: &MockServer) -> usize {
    server.service().requests().iter().filter(|r| r.is_write()).count()
}

fn members_of(server: &MockServer, group: &str) -> Vec<String> {
    state(server).groups.into_iter().find(|g| g.id == group).unwrap().members
}

async fn change(
    host: &Host,
    grant: bool,
    who: &AccountRef,
    entitlement: &str,
    options: ChangeOptions,
) -> Result<ChangeResult, CallError> {
    let report = if grant {
        host.grant("t", who.clone(), entitlement.to_string(), options).await
    } else {
        host.revoke("t", who.clone(), entitlement.to_string(), options).await
    };
    report.unwrap().result
}

/// Lists every entitlement page by page with `size`; returns them and the page count.
async fn all_entitlements(host: &Host, size: u32) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = host
            .list_entitlements("t", PageRequest { cursor: cursor.take(), size: Some(size) })
            .await
            .unwrap()
            .result
            .unwrap();
        pages += 1;
        assert!(page.entitlements.len() <= size as usize);
        ids.extend(page.entitlements.into_iter().map(|e| e.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (ids, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_page_as_entitlements_and_a_membership_cycles_through_grant_and_revoke() {
    let (host, server) = setup().await;
    let service = server.service();
    let groups: Vec<String> =
        (0..12).map(|i| service.add_group(WS, &format!("Team {i:02}"), &[]).unwrap()).collect();

    // Entitlements: the fixed ones, then every group once, over several pages.
    let (ids, pages) = all_entitlements(&host, 5).await;
    assert!(pages >= 4, "{pages} pages");
    let group_ids: Vec<&String> = ids.iter().filter(|id| id.starts_with("group:")).collect();
    let want: Vec<String> = groups.iter().map(|g| format!("group:{g}")).collect();
    assert_eq!(group_ids.len(), 12, "{ids:?}");
    assert_eq!(
        group_ids.iter().map(|s| s.to_string()).collect::<HashSet<_>>(),
        want.iter().cloned().collect()
    );
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "no entitlement repeats");
    assert!(ids.contains(&"workspace".to_string()) && ids.contains(&"role:admin".to_string()));

    // Ann comes from the identity provider and accepts her invite.
    let ann_id = scim_create_user(&server, "ann@acme.test").await;
    let member = service.accept_invite(WS, "ann@acme.test").unwrap();
    assert_eq!(member.id, ann_id, "the console id is the SCIM id");
    let ann = AccountRef::Email("Ann@Acme.test".to_string());
    let group = &groups[3];
    let entitlement = format!("group:{group}");

    let steps = [
        (true, ChangeOutcome::Applied, true),
        (true, ChangeOutcome::AlreadyInState, true),
        (false, ChangeOutcome::Applied, false),
        (false, ChangeOutcome::AlreadyInState, false),
        (true, ChangeOutcome::Applied, true),
    ];
    for (index, (grant, outcome, member_after)) in steps.into_iter().enumerate() {
        let before = writes(&server);
        let result = change(&host, grant, &ann, &entitlement, APPLY)
            .await
            .unwrap_or_else(|e| panic!("step {index}: {e}"));
        assert_eq!(result.outcome, outcome, "step {index}: {}", result.detail);
        assert_eq!(members_of(&server, group).contains(&ann_id), member_after, "step {index}");
        let sent = writes(&server) - before;
        if outcome == ChangeOutcome::AlreadyInState {
            assert_eq!(sent, 0, "step {index}: already-in-state writes nothing");
        } else {
            assert_eq!(sent, 1, "step {index}: one PATCH");
            let last = service.requests().into_iter().rev().find(|r| r.is_write()).unwrap();
            assert_eq!(last.method, "PATCH");
            assert_eq!(last.path, format!("/scim/v2.0/{SCIM_DIRECTORY}/Groups/{group}"));
            assert_eq!(result.requests.len(), 1);
            assert_eq!(result.requests[0].path, format!("/Groups/{group}"));
        }
        let account = result.account.unwrap();
        assert_eq!(account.entitlements.contains(&entitlement), member_after, "step {index}");
    }

    // Every SCIM request carried the SCIM token, every console request the console token.
    for request in service.requests() {
        let want = if request.path.starts_with("/scim/") { SCIM_TOKEN } else { OWNER_TOKEN };
        assert_eq!(
            request.bearer_token.as_deref(),
            Some(want),
            "{} {}",
            request.method,
            request.path
        );
    }

    // Reads show the membership: get-account and list-accounts.
    let got = host.get_account("t", ann.clone()).await.unwrap().result.unwrap();
    assert!(got.entitlements.contains(&entitlement), "{:?}", got.entitlements);
    assert_eq!(got.managed_by.as_deref(), Some("scim"));
    let (accounts, _) = list_all(&host, "t", Some(7)).await.unwrap();
    let listed = accounts.iter().find(|a| a.id == ann_id).unwrap();
    assert!(listed.entitlements.contains(&entitlement));
    let others_in_groups = accounts
        .iter()
        .filter(|a| a.id != ann_id)
        .any(|a| a.entitlements.iter().any(|e| e.starts_with("group:")));
    assert!(!others_in_groups, "only Ann is in a group");

    // A dry run plans the PATCH and writes nothing.
    let before = (state(&server), writes(&server));
    let plan = change(&host, false, &ann, &entitlement, DRY_RUN).await.unwrap();
    assert_eq!(plan.outcome, ChangeOutcome::Planned);
    assert_eq!(plan.requests.len(), 1);
    assert!(
        plan.requests[0].body.as_deref().unwrap().contains("members[value eq"),
        "{:?}",
        plan.requests
    );
    assert!(!plan.account.unwrap().entitlements.contains(&entitlement));
    assert_eq!((state(&server), writes(&server)), before, "a dry run writes nothing");

    // A batch: two people join one group in one PATCH; a console change rides along.
    let bob_id = scim_create_user(&server, "bob@acme.test").await;
    let plain = state(&server)
        .members
        .into_iter()
        .find(|m| !m.is_scim_managed && m.deactivated_time.is_none() && m.role == "standard-user")
        .unwrap();
    let other = format!("group:{}", groups[7]);
    let grant = |who: AccountRef, entitlement: &str| {
        Change::Grant(EntitlementChange { account: who, entitlement: entitlement.to_string() })
    };
    let before = writes(&server);
    let results = host
        .apply_batch(
            "t",
            vec![
                grant(ann.clone(), &other),
                grant(AccountRef::Id(plain.id.clone()), "role:admin"),
                grant(AccountRef::Email("bob@acme.test".into()), &other),
                grant(AccountRef::Id(plain.id.clone()), &other),
                grant(ann.clone(), "group:no-such-group"),
                grant(AccountRef::Id(plain.id.clone()), "group:no-such-group"),
            ],
            APPLY,
        )
        .await
        .unwrap()
        .result
        .unwrap();
    let outcome = |i: usize| results[i].as_ref().map(|r| r.outcome);
    assert_eq!(outcome(0), Ok(ChangeOutcome::Applied));
    assert_eq!(outcome(1), Ok(ChangeOutcome::Applied));
    // Bob is still a pending invite: SCIM knows him, so he can be in a group already.
    assert_eq!(outcome(2), Ok(ChangeOutcome::Applied));
    match &results[3] {
        Err(ConnectorError::Conflict(msg)) => {
            assert!(msg.contains("not provisioned through SCIM"), "{msg}")
        }
        other => panic!("a console-only member cannot join a SCIM group: {other:?}"),
    }
    // A group that does not exist is the answer, whoever asks to join it: not that a
    // console-only member cannot be in a SCIM group.
    for index in [4, 5] {
        match &results[index] {
            Err(ConnectorError::NotFound(msg)) => assert!(msg.contains("no-such-group"), "{msg}"),
            other => panic!("expected not-found, got {other:?}"),
        }
    }
    let mut in_other = members_of(&server, &groups[7]);
    in_other.sort();
    let mut want = vec![ann_id.clone(), bob_id.clone()];
    want.sort();
    assert_eq!(in_other, want);
    assert_eq!(writes(&server) - before, 2, "one console PATCH and one SCIM PATCH for two joins");
    let bob = results[2].as_ref().unwrap().account.clone().unwrap();
    assert_eq!(bob.status, AccountStatus::Invited);
    assert!(bob.entitlements.contains(&other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_created_user_is_a_managed_invite_the_console_cannot_remove() {
    let (host, server) = setup().await;
    let carol_id = scim_create_user(&server, "carol@acme.test").await;
    let (accounts, _) = list_all(&host, "t", None).await.unwrap();
    let carol = accounts.iter().find(|a| a.email.as_deref() == Some("carol@acme.test")).unwrap();
    assert_eq!(carol.status, AccountStatus::Invited);
    assert_eq!(carol.managed_by.as_deref(), Some("scim"));
    assert!(carol.entitlements.contains(&"role:member".to_string()));
    assert!(carol.entitlements.contains(&"seat:chatgpt".to_string()), "{:?}", carol.entitlements);

    let before = (state(&server), writes(&server));
    match change(&host, false, &AccountRef::Id(carol.id.clone()), "workspace", APPLY).await {
        Err(CallError::Connector(ConnectorError::ManagedExternally(msg))) => {
            assert!(msg.contains("identity provider"), "{msg}")
        }
        other => panic!("expected managed-externally, got {other:?}"),
    }
    assert_eq!((state(&server), writes(&server)), before, "refused before any request");

    // The identity provider deactivates her: she is gone from the next listing.
    let reply = scim_request(
        &server,
        "PATCH",
        &format!("/Users/{carol_id}"),
        Some(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}],
        })),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (accounts, _) = list_all(&host, "t", None).await.unwrap();
    assert!(accounts.iter().all(|a| a.email.as_deref() != Some("carol@acme.test")));
    assert_eq!(accounts.len(), 32, "the 30 members and 2 invites of the seed remain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_scim_there_are_no_scim_group_entitlements_and_an_unknown_group_is_not_found() {
    let server = mock(WS, 10, 0).await;
    let host = host();
    add(&host, &server.chatgpt_tenant("t", WS, OWNER_TOKEN));
    server.service().enable_scim(WS, SCIM_DIRECTORY, SCIM_TOKEN);
    server.service().add_group(WS, "Ignored", &[]).unwrap();
    let (ids, _) = all_entitlements(&host, 100).await;
    assert!(!ids.iter().any(|id| id.starts_with("group:")), "{ids:?}");
    let member = state(&server).members[1].clone();
    let before = writes(&server);
    // Not a console group (the console says so), and the tenant has no SCIM directory.
    match change(&host, true, &AccountRef::Id(member.id), "group:anything", APPLY).await {
        Err(CallError::Connector(ConnectorError::NotFound(msg))) => {
            assert!(msg.contains("no console group") && msg.contains("scim-base-url"), "{msg}")
        }
        other => panic!("expected not-found, got {other:?}"),
    }
    assert_eq!(writes(&server), before);
    assert!(server.service().requests().iter().all(|r| !r.path.starts_with("/scim/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_reads_the_directory_only_for_pages_with_scim_managed_people() {
    let (host, server) = setup().await;
    let service = server.service();
    let emails = ["dana@acme.test", "erin@acme.test", "fay@acme.test"];
    let mut scim_ids = Vec::new();
    for email in emails {
        scim_ids.push(scim_create_user(&server, email).await);
    }
    // Dana accepts: a member now, known to SCIM by her console id. Erin and Fay stay invited.
    service.accept_invite(WS, emails[0]).unwrap();
    // 250 groups, three pages of the directory; each SCIM person in every tenth.
    let mut expected: Vec<HashSet<String>> = vec![HashSet::new(); 3];
    for i in 0..250 {
        let members: Vec<&str> =
            if i % 10 == 0 { vec![scim_ids[i / 10 % 3].as_str()] } else { vec![] };
        let group = service.add_group(WS, &format!("Team {i:03}"), &members).unwrap();
        if i % 10 == 0 {
            expected[i / 10 % 3].insert(format!("group:{group}"));
        }
    }

    let (mut cursor, mut pages_without, mut pages_with) = (None, 0, 0);
    loop {
        let report = host
            .list_accounts("t", PageRequest { cursor: cursor.take(), size: Some(5) })
            .await
            .unwrap();
        let scim_paths: Vec<&str> = report
            .egress
            .iter()
            .map(|e| e.path.as_str())
            .filter(|p| p.starts_with("/scim/"))
            .collect();
        let page = report.result.unwrap();
        let managed: Vec<_> =
            page.accounts.iter().filter(|a| a.managed_by.as_deref() == Some("scim")).collect();
        if managed.is_empty() {
            assert!(scim_paths.is_empty(), "no SCIM-managed account, yet {scim_paths:?}");
            pages_without += 1;
        } else {
            // The directory's three pages of groups, and a lookup per SCIM-managed invite.
            let groups = scim_paths.iter().filter(|p| p.ends_with("/Groups")).count();
            let users = scim_paths.iter().filter(|p| p.ends_with("/Users")).count();
            let invites = managed.iter().filter(|a| a.status == AccountStatus::Invited).count();
            assert_eq!(
                (groups, users, scim_paths.len()),
                (3, invites, 3 + invites),
                "{scim_paths:?}"
            );
            pages_with += 1;
        }
        for account in &page.accounts {
            let groups: HashSet<String> =
                account.entitlements.iter().filter(|e| e.starts_with("group:")).cloned().collect();
            let want = match emails.iter().position(|e| account.email.as_deref() == Some(e)) {
                Some(person) => expected[person].clone(),
                None => HashSet::new(),
            };
            assert_eq!(groups, want, "{:?}", account.email);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(
        pages_without > 0 && pages_with > 0,
        "{pages_without} pages without, {pages_with} with"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_looks_its_people_up_in_a_big_directory_instead_of_listing_it() {
    use accessgov_mock::{MockFixture, MockService};
    const BIG: &str = "ws-big-directory";
    // 3,000 SCIM users (each a pending invite the directory manages): thirty pages of the
    // directory, more than the batch's 25 lookups.
    let mut fixture = format!(
        "[[workspace]]\naccount_id = \"{BIG}\"\nplan = \"enterprise\"\n\
         [[workspace.token]]\ntoken = \"{OWNER_TOKEN}\"\n\
         [workspace.scim]\ndirectory = \"{SCIM_DIRECTORY}\"\ntoken = \"{SCIM_TOKEN}\"\n\
         [[workspace.group]]\ndisplay_name = \"Everyone\"\n"
    );
    for n in 0..3000 {
        fixture += &format!("[[workspace.scim_user]]\nuser_name = \"p{n}@big.test\"\n");
    }
    let service = MockService::new();
    toml::from_str::<MockFixture>(&fixture).unwrap().load_into(&service);
    let server = MockServer::start_local(service).await.unwrap();
    let host = host();
    add(&host, &with_scim(&server, BIG, server.chatgpt_tenant("big", BIG, OWNER_TOKEN)));
    let directory = server.service().workspace(BIG).unwrap();
    let everyone = format!("group:{}", directory.groups[0].id);

    let changes: Vec<Change> = (0..25)
        .map(|n| {
            Change::Grant(EntitlementChange {
                account: AccountRef::Email(format!("p{n}@big.test")),
                entitlement: everyone.clone(),
            })
        })
        .collect();
    server.service().clear_requests();
    let results = host.apply_batch("big", changes, APPLY).await.unwrap().result.unwrap();
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result.as_ref().map(|r| r.outcome), Ok(ChangeOutcome::Applied), "p{n}");
    }
    let users_path = format!("/scim/v2.0/{SCIM_DIRECTORY}/Users");
    let requests = server.service().requests();
    let user_reads: Vec<_> = requests.iter().filter(|r| r.path == users_path).collect();
    let listings = user_reads.iter().filter(|r| r.query.contains("startIndex")).count();
    let lookups = user_reads.iter().filter(|r| r.query.contains("filter")).count();
    // The directory's first page tells its size; 25 lookups then beat 29 more pages.
    assert_eq!((listings, lookups), (1, 25), "{} reads of /Users", user_reads.len());
    let mut joined = server.service().workspace(BIG).unwrap().groups[0].members.clone();
    joined.sort();
    let mut want: Vec<String> = directory.scim_users[..25].iter().map(|u| u.id.clone()).collect();
    want.sort();
    assert_eq!(joined, want);
}

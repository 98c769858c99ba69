//! Provisioning end to end: grant, revoke and set through the real component and host, against
//! the mock, with the mock's state and request log checked after every step.

#![allow(clippy::unwrap_used)]

use accessgov_host::types::{
    AccountRef, ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError,
};
use accessgov_host::{CallError, Host};
use accessgov_mock::{Member, MockServer, Workspace};

use crate::common::{OWNER_TOKEN, add, host, mock};

const WS: &str = "ws-prov";
const APPLY: ChangeOptions = ChangeOptions { dry_run: false };

async fn setup(members: usize) -> (std::sync::Arc<Host>, MockServer) {
    let server = mock(WS, members, 0).await;
    let host = host();
    let mut tenant = server.chatgpt_tenant("t", WS, OWNER_TOKEN);
    crate::common::self_service_seats(server.service(), WS, &mut tenant);
    add(&host, &tenant);
    (host, server)
}

fn state(server: &MockServer) -> Workspace {
    server.service().workspace(WS).unwrap()
}

fn writes(server: &MockServer) -> usize {
    server.service().requests().iter().filter(|r| r.is_write()).count()
}

/// The plain members (not SCIM-managed, not deactivated, role Member, seat ChatGPT).
fn plain_members(server: &MockServer) -> impl Iterator<Item = Member> {
    state(server).members.into_iter().filter(|m| {
        !m.is_scim_managed
            && m.deactivated_time.is_none()
            && m.role == "standard-user"
            && m.seat_type == "default"
    })
}

/// A plain member (see [`plain_members`]).
fn plain_member(server: &MockServer) -> Member {
    plain_members(server).next().unwrap()
}

async fn grant(
    host: &Host,
    account: &AccountRef,
    entitlement: &str,
) -> Result<ChangeResult, CallError> {
    host.grant("t", account.clone(), entitlement.to_string(), APPLY).await.unwrap().result
}

async fn revoke(
    host: &Host,
    account: &AccountRef,
    entitlement: &str,
) -> Result<ChangeResult, CallError> {
    host.revoke("t", account.clone(), entitlement.to_string(), APPLY).await.unwrap().result
}

/// Runs a step and checks its outcome, whether it wrote, and the mock's state afterwards.
async fn step(
    server: &MockServer,
    result: impl std::future::Future<Output = Result<ChangeResult, CallError>>,
    want: ChangeOutcome,
    check: impl Fn(&Workspace) -> bool,
    label: &str,
) -> ChangeResult {
    let before = writes(server);
    let result = result.await.unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(result.outcome, want, "{label}: {}", result.detail);
    let wrote = writes(server) - before;
    if want == ChangeOutcome::AlreadyInState {
        assert_eq!(wrote, 0, "{label}: already-in-state must send no write");
        assert!(result.requests.is_empty());
    } else {
        assert!(wrote > 0, "{label}: expected a write");
        assert_eq!(wrote, result.requests.len(), "{label}: reported requests match the log");
    }
    assert!(check(&state(server)), "{label}: mock state is wrong: {:?}", result);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_cycle_grant_grant_revoke_revoke_grant() {
    let (host, server) = setup(30).await;
    let m = plain_member(&server);
    let who = AccountRef::Id(m.id.clone());
    let role_of = |ws: &Workspace| ws.members.iter().find(|x| x.id == m.id).unwrap().role.clone();
    use ChangeOutcome::*;
    let r = step(
        &server,
        grant(&host, &who, "role:admin"),
        Applied,
        |ws| role_of(ws) == "account-admin",
        "grant",
    )
    .await;
    assert_eq!(r.replaced, vec!["role:member"]);
    assert!(r.account.unwrap().entitlements.contains(&"role:admin".to_string()));
    // Changing a member's role needs no workspace settings: the default seat is read lazily.
    assert!(server.service().requests().iter().all(|q| !q.path.ends_with("/settings")));
    step(
        &server,
        grant(&host, &who, "role:admin"),
        AlreadyInState,
        |ws| role_of(ws) == "account-admin",
        "grant again",
    )
    .await;
    step(
        &server,
        revoke(&host, &who, "role:admin"),
        Applied,
        |ws| role_of(ws) == "standard-user",
        "revoke",
    )
    .await;
    step(
        &server,
        revoke(&host, &who, "role:admin"),
        AlreadyInState,
        |ws| role_of(ws) == "standard-user",
        "revoke again",
    )
    .await;
    step(
        &server,
        grant(&host, &who, "role:admin"),
        Applied,
        |ws| role_of(ws) == "account-admin",
        "grant once more",
    )
    .await;
    // role:member is the base role: revoking it is refused without a write.
    let before = writes(&server);
    let set_member = host
        .set_entitlement("t", who.clone(), "role".into(), "role:member".into(), APPLY)
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(set_member.replaced, vec!["role:admin"]);
    match revoke(&host, &who, "role:member").await {
        Err(CallError::Connector(ConnectorError::InvalidArgument(m))) => {
            assert!(m.contains("revoke `workspace`"), "{m}")
        }
        other => panic!("expected invalid-argument, got {other:?}"),
    }
    assert_eq!(writes(&server), before + 1, "only the set wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_cycle_grant_grant_revoke_revoke_grant() {
    let (host, server) = setup(30).await;
    let m = plain_member(&server);
    let who = AccountRef::Email(m.email.to_uppercase());
    let seat_of =
        |ws: &Workspace| ws.members.iter().find(|x| x.id == m.id).unwrap().seat_type.clone();
    use ChangeOutcome::*;
    let r = step(
        &server,
        grant(&host, &who, "seat:codex"),
        Applied,
        |ws| seat_of(ws) == "usage_based",
        "grant",
    )
    .await;
    assert_eq!(r.replaced, vec!["seat:chatgpt"]);
    step(
        &server,
        grant(&host, &who, "seat:codex"),
        AlreadyInState,
        |ws| seat_of(ws) == "usage_based",
        "grant again",
    )
    .await;
    step(
        &server,
        revoke(&host, &who, "seat:codex"),
        Applied,
        |ws| seat_of(ws) == "default",
        "revoke",
    )
    .await;
    step(
        &server,
        revoke(&host, &who, "seat:codex"),
        AlreadyInState,
        |ws| seat_of(ws) == "default",
        "revoke again",
    )
    .await;
    step(
        &server,
        grant(&host, &who, "seat:codex"),
        Applied,
        |ws| seat_of(ws) == "usage_based",
        "grant once more",
    )
    .await;
    // The workspace default seat cannot be revoked.
    let r = revoke(&host, &who, "seat:chatgpt").await.unwrap();
    assert_eq!(r.outcome, AlreadyInState, "holds codex, so chatgpt is not held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_cycle_invites_cancels_and_reinvites() {
    let (host, server) = setup(10).await;
    let who = AccountRef::Email("new.person@acme.example.com".into());
    let invited = |ws: &Workspace| ws.invite_by_email("new.person@acme.example.com").is_some();
    use ChangeOutcome::*;
    let r = step(&server, grant(&host, &who, "workspace"), Pending, invited, "grant").await;
    let account = r.account.unwrap();
    assert!(account.id.starts_with("invite:"));
    assert_eq!(account.entitlements, vec!["workspace", "role:member", "seat:chatgpt"]);
    step(&server, grant(&host, &who, "workspace"), AlreadyInState, invited, "grant again").await;
    step(&server, revoke(&host, &who, "workspace"), Applied, |ws| !invited(ws), "revoke").await;
    step(
        &server,
        revoke(&host, &who, "workspace"),
        AlreadyInState,
        |ws| !invited(ws),
        "revoke again",
    )
    .await;
    step(&server, grant(&host, &who, "workspace"), Pending, invited, "grant once more").await;

    // Revoking workspace from a member removes them.
    let m = plain_member(&server);
    let gone = |ws: &Workspace| ws.members.iter().all(|x| x.id != m.id);
    step(
        &server,
        revoke(&host, &AccountRef::Id(m.id.clone()), "workspace"),
        Applied,
        gone,
        "remove member",
    )
    .await;
    // Gone by email is already-in-state; the old id no longer names anyone.
    let by_email = AccountRef::Email(m.email.clone());
    step(&server, revoke(&host, &by_email, "workspace"), AlreadyInState, gone, "remove again")
        .await;
    let by_id = revoke(&host, &AccountRef::Id(m.id.clone()), "workspace").await;
    assert!(matches!(by_id, Err(CallError::Connector(ConnectorError::NotFound(_)))), "{by_id:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_is_reissued_to_change_its_role_or_seat() {
    let (host, server) = setup(5).await;
    let email = "fresh@partner.example.org";
    let who = AccountRef::Email(email.into());
    let r = grant(&host, &who, "role:admin").await.unwrap();
    assert_eq!(r.outcome, ChangeOutcome::Pending);
    let ws = state(&server);
    let invites: Vec<_> = ws.invites.iter().filter(|i| i.email_address == email).collect();
    assert_eq!(invites.len(), 1);
    assert_eq!(
        (invites[0].role.as_str(), invites[0].seat_type.as_str()),
        ("account-admin", "default")
    );
    let first_id = invites[0].id.clone();

    let r = grant(&host, &who, "seat:codex").await.unwrap();
    assert_eq!(r.outcome, ChangeOutcome::Pending);
    assert_eq!(r.replaced, vec!["seat:chatgpt"]);
    let methods: Vec<&str> = r.requests.iter().map(|q| q.method.as_str()).collect();
    assert_eq!(methods, ["DELETE", "POST"], "cancel, then re-invite");
    let ws = state(&server);
    let invites: Vec<_> = ws.invites.iter().filter(|i| i.email_address == email).collect();
    assert_eq!(invites.len(), 1);
    assert_eq!(
        (invites[0].role.as_str(), invites[0].seat_type.as_str()),
        ("account-admin", "usage_based")
    );
    assert_ne!(invites[0].id, first_id, "a new invite");
    assert_eq!(r.account.unwrap().entitlements, vec!["workspace", "role:admin", "seat:codex"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_owner_cannot_change_roles_and_scim_members_cannot_be_removed() {
    let (host, server) = setup(40).await;
    server.service().add_token("admin-token", WS, "account-admin");
    add(&host, &server.chatgpt_tenant("admin", WS, "admin-token"));
    let m = plain_member(&server);
    let before = state(&server);
    let report = host
        .grant("admin", AccountRef::Id(m.id.clone()), "role:admin".into(), APPLY)
        .await
        .unwrap();
    match report.result {
        Err(CallError::Connector(ConnectorError::PermissionDenied(msg))) => {
            assert!(msg.contains("Owner"), "{msg}")
        }
        other => panic!("expected permission-denied, got {other:?}"),
    }
    assert_eq!(state(&server), before, "nothing changed");

    let scim = {
        let mut ws = state(&server);
        let member =
            ws.members.iter_mut().find(|x| x.id != m.id && x.role == "standard-user").unwrap();
        member.is_scim_managed = true;
        let id = member.id.clone();
        server.service().put_workspace(ws);
        id
    };
    let before = state(&server);
    let writes_before = writes(&server);
    match revoke(&host, &AccountRef::Id(scim), "workspace").await {
        Err(CallError::Connector(ConnectorError::ManagedExternally(msg))) => {
            assert!(msg.contains("identity provider"), "{msg}")
        }
        other => panic!("expected managed-externally, got {other:?}"),
    }
    assert_eq!(state(&server), before);
    assert_eq!(writes(&server), writes_before, "refused before any request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_without_writing_and_bad_entitlements_are_refused() {
    let (host, server) = setup(20).await;
    let m = plain_member(&server);
    let before = state(&server);
    let plan = host
        .grant(
            "t",
            AccountRef::Id(m.id.clone()),
            "role:owner".into(),
            ChangeOptions { dry_run: true },
        )
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(plan.outcome, ChangeOutcome::Planned);
    assert_eq!(plan.requests.len(), 1);
    assert_eq!(plan.requests[0].method, "PATCH");
    assert_eq!(plan.requests[0].body.as_deref(), Some(r#"{"role":"account-owner"}"#));
    assert_eq!(writes(&server), 0);
    assert_eq!(state(&server), before);

    for (entitlement, is_expected) in [
        (
            "role:king",
            (|e: &ConnectorError| matches!(e, ConnectorError::NotFound(_)))
                as fn(&ConnectorError) -> bool,
        ),
        ("", |e| matches!(e, ConnectorError::InvalidArgument(_))),
        // Neither a console group (the console says so) nor reachable as a SCIM group.
        ("group:eng", |e| matches!(e, ConnectorError::NotFound(m) if m.contains("scim-base-url"))),
    ] {
        match grant(&host, &AccountRef::Id(m.id.clone()), entitlement).await {
            Err(CallError::Connector(e)) => assert!(is_expected(&e), "{entitlement}: {e:?}"),
            other => panic!("{entitlement}: {other:?}"),
        }
    }
    let wrong_group = host
        .set_entitlement(
            "t",
            AccountRef::Id(m.id.clone()),
            "seat".into(),
            "role:admin".into(),
            APPLY,
        )
        .await
        .unwrap();
    assert!(matches!(
        wrong_group.result,
        Err(CallError::Connector(ConnectorError::InvalidArgument(_)))
    ));
    let unknown = grant(&host, &AccountRef::Id("user-doesnotexist".into()), "role:admin").await;
    assert!(matches!(unknown, Err(CallError::Connector(ConnectorError::NotFound(_)))));
    assert_eq!(writes(&server), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_workspace_refuses_invites_and_says_why() {
    let (host, server) = setup(5).await;
    let mut ws = state(&server);
    ws.seat_limit = Some(ws.seats_used());
    server.service().put_workspace(ws);
    let before = state(&server);
    match grant(&host, &AccountRef::Email("one.more@acme.example.com".into()), "workspace").await {
        Err(CallError::Connector(ConnectorError::Conflict(m))) => {
            assert!(m.contains("seat_true_up_pending"), "{m}")
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(state(&server), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_service_acknowledged_but_did_not_apply_is_an_error() {
    let (host, server) = setup(10).await;
    let m = plain_member(&server);
    let mut ws = state(&server);
    ws.drop_writes = true;
    server.service().put_workspace(ws);
    match grant(&host, &AccountRef::Id(m.id.clone()), "role:admin").await {
        Err(CallError::Connector(ConnectorError::Conflict(msg))) => {
            assert!(msg.contains("reading back shows") && msg.contains("role:member"), "{msg}")
        }
        other => panic!("expected a read-back conflict, got {other:?}"),
    }
    match grant(&host, &AccountRef::Email("x.y@acme.example.com".into()), "workspace").await {
        Err(CallError::Connector(ConnectorError::Conflict(msg))) => {
            assert!(msg.contains("no member or invite"), "{msg}")
        }
        other => panic!("expected a read-back conflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_of_errored_emails_is_reported_per_person() {
    use accessgov_host::types::{Change, EntitlementChange};
    use accessgov_mock::ErroredEmailShape;
    for shape in
        [ErroredEmailShape::EmailAddress, ErroredEmailShape::Email, ErroredEmailShape::Bare]
    {
        let (host, server) = setup(3).await;
        let mut ws = state(&server);
        ws.errored_email_shape = shape;
        server.service().put_workspace(ws);
        let change = |email: &str| {
            Change::Grant(EntitlementChange {
                account: AccountRef::Email(email.into()),
                entitlement: "workspace".into(),
            })
        };
        let results = host
            .apply_batch("t", vec![change("ok@acme.example.com"), change("no@bad.invalid")], APPLY)
            .await
            .unwrap()
            .result
            .unwrap();
        assert_eq!(results[0].as_ref().unwrap().outcome, ChangeOutcome::Pending, "{shape:?}");
        match &results[1] {
            Err(ConnectorError::InvalidArgument(m)) => {
                assert!(m.contains("no@bad.invalid"), "{shape:?}: {m}")
            }
            other => panic!("{shape:?}: {other:?}"),
        }
        let posts = server.service().requests().iter().filter(|r| r.method == "POST").count();
        assert_eq!(posts, 1, "one bulk request for both");
        assert!(state(&server).invite_by_email("ok@acme.example.com").is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_young_business_workspace_refuses_new_owners() {
    let (host, server) = setup(8).await;
    let mut ws = state(&server);
    ws.owner_change_locked = true;
    server.service().put_workspace(ws);
    let m = plain_member(&server);
    match grant(&host, &AccountRef::Id(m.id.clone()), "role:owner").await {
        Err(CallError::Connector(ConnectorError::InvalidArgument(msg))) => {
            assert!(msg.contains("30 days"), "{msg}")
        }
        other => panic!("expected the service's refusal, got {other:?}"),
    }
    assert_eq!(plain_member(&server).id, m.id, "still a plain member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinvite_that_fails_after_the_cancel_says_what_was_done() {
    let (host, server) = setup(3).await;
    // An invite the service would no longer accept (its domain is now refused).
    let mut ws = state(&server);
    ws.invites.push(accessgov_mock::Invite {
        id: "5b0a2c1e-0000-4000-8000-000000000001".into(),
        email_address: "stale@old-partner.invalid".into(),
        role: "standard-user".into(),
        seat_type: "default".into(),
        status: 2,
        created_time: "2026-01-02T00:00:00.000000Z".into(),
        is_scim_managed: false,
    });
    server.service().put_workspace(ws);
    match grant(&host, &AccountRef::Email("stale@old-partner.invalid".into()), "seat:codex").await {
        Err(CallError::Connector(ConnectorError::InvalidArgument(m))) => {
            assert!(m.contains("Invalid email domain"), "{m}");
            assert!(
                m.contains("DELETE /accounts/ws-prov/invites") && m.contains("not restored"),
                "{m}"
            );
        }
        other => panic!("expected a reported half-applied change, got {other:?}"),
    }
    assert!(
        state(&server).invite_by_email("stale@old-partner.invalid").is_none(),
        "the cancel did happen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_searches_a_big_workspace_for_its_people_instead_of_listing_it() {
    use accessgov_host::types::{Change, EntitlementChange};
    // 25,000 members: 250 pages, 63 rounds of four, against 50 searches one after another.
    let (host, server) = setup(25_000).await;
    let emails: Vec<String> = plain_members(&server).take(25).map(|m| m.email).collect();
    assert_eq!(emails.len(), 25);
    let changes: Vec<Change> = emails
        .iter()
        .map(|email| {
            Change::Grant(EntitlementChange {
                account: AccountRef::Email(email.clone()),
                entitlement: "role:admin".to_string(),
            })
        })
        .collect();
    server.service().clear_requests();
    let results = host.apply_batch("t", changes, APPLY).await.unwrap().result.unwrap();
    for (email, result) in emails.iter().zip(&results) {
        assert_eq!(result.as_ref().map(|r| r.outcome), Ok(ChangeOutcome::Applied), "{email}");
    }
    let admins = state(&server).members.into_iter().filter(|m| emails.contains(&m.email));
    assert!(admins.clone().all(|m| m.role == "account-admin"));
    assert_eq!(admins.count(), 25);
    // The two listings' lengths (an item each), then a search of each per email, for planning
    // and again for the results' accounts.
    let reads: Vec<_> = server
        .service()
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET" && (r.path.ends_with("/users") || r.path.ends_with("/invites"))
        })
        .collect();
    let listings: Vec<&str> =
        reads.iter().filter(|r| r.query.ends_with("query=")).map(|r| r.query.as_str()).collect();
    assert!(listings.iter().all(|q| *q == "offset=0&limit=1&query="), "{listings:?}");
    let lookups = listings.len() / 2;
    assert!(lookups > 0, "the lengths were read");
    assert_eq!(reads.len(), lookups * (2 + 2 * 25), "a search of members and invites per email");
}

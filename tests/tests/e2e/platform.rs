//! The OpenAI API Platform connector, built as a component, in the real host against the API
//! Platform mock on loopback: a large organization listed over both paging styles, each kind of
//! entitlement cycled with the mock's state and writes checked at every step, invites with
//! projects, expiry and withdrawal, and the organization's rules (owners own every project,
//! archived projects, project roles for people not yet in the organization, service accounts).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};

use accessgov_host::tenant::SettingValue;
use accessgov_host::types::{
    AccountRef, AccountStatus, Change, ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError,
    Entitlement, EntitlementChange, PageRequest,
};
use accessgov_host::{CallError, Host, TenantConfig};
use accessgov_mock::platform::{
    Organization, PlatformServer, PlatformService, PlatformSpec, PlatformSwitches, generate,
};

use crate::common::{add, host, list_all};

const APPLY: ChangeOptions = ChangeOptions { dry_run: false };
const DRY: ChangeOptions = ChangeOptions { dry_run: true };
/// The organization's Admin API key.
pub const ADMIN_KEY: &str = "platform-admin-key-41c7";

/// A mock serving the organization `spec` generates, its people at `domain`.
pub async fn platform(domain: &str, spec: PlatformSpec) -> PlatformServer {
    let org = generate(domain, spec);
    PlatformServer::start_local(PlatformService::new(org, ADMIN_KEY)).await.unwrap()
}

/// A tenant of the bundled connector for `server`, retrying quickly.
pub fn platform_tenant(server: &PlatformServer, id: &str) -> TenantConfig {
    let mut tenant = server.tenant(id, "openai-platform", ADMIN_KEY);
    tenant.settings.insert("retry-base-ms".into(), SettingValue::Integer(5));
    tenant
}

/// Every entitlement, in pages of `size`.
async fn all_entitlements(host: &Host, tenant: &str, size: u32) -> Vec<Entitlement> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = host
            .list_entitlements(tenant, PageRequest { cursor, size: Some(size) })
            .await
            .unwrap()
            .result
            .unwrap();
        assert!(page.entitlements.len() <= size as usize, "a page holds at most what was asked");
        all.extend(page.entitlements);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

/// Writes the mock received since its log was last cleared.
fn writes(server: &PlatformServer) -> Vec<String> {
    let requests = server.service().traffic().requests();
    requests.iter().filter(|r| r.is_write()).map(|r| format!("{} {}", r.method, r.path)).collect()
}

async fn change(
    host: &Host,
    tenant: &str,
    grant: bool,
    who: AccountRef,
    entitlement: &str,
    options: ChangeOptions,
) -> Result<ChangeResult, CallError> {
    let report = if grant {
        host.grant(tenant, who, entitlement.to_string(), options).await
    } else {
        host.revoke(tenant, who, entitlement.to_string(), options).await
    };
    report.unwrap().result
}

/// Grant, grant, revoke, revoke, grant of `entitlement` to the member `email`, with `held`
/// reading the mock's state: each step's outcome, the state and the count of writes applied.
async fn cycle(
    host: &Host,
    server: &PlatformServer,
    tenant: &str,
    email: &str,
    entitlement: &str,
    held: impl Fn(&Organization) -> bool,
) {
    use ChangeOutcome::{AlreadyInState, Applied};
    let steps = [
        (true, Applied, true, 1),
        (true, AlreadyInState, true, 0),
        (false, Applied, false, 1),
        (false, AlreadyInState, false, 0),
        (true, Applied, true, 1),
    ];
    for (n, (grant, outcome, holds, applied)) in steps.into_iter().enumerate() {
        let before = server.service().changes().len();
        let who = AccountRef::Email(email.to_string());
        let result = change(host, tenant, grant, who, entitlement, APPLY)
            .await
            .unwrap_or_else(|e| panic!("{entitlement} step {n}: {e}"));
        assert_eq!(result.outcome, outcome, "{entitlement} step {n}: {}", result.detail);
        let org = server.service().organization();
        assert_eq!(held(&org), holds, "{entitlement} step {n}: the mock's state");
        assert_eq!(server.service().changes().len() - before, applied, "{entitlement} step {n}");
        let account = result.account.unwrap();
        assert_eq!(account.entitlements.contains(&entitlement.to_string()), holds, "step {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_organization_is_listed_once_and_each_kind_cycles() {
    let spec = PlatformSpec {
        users: 2500,
        projects: 40,
        archived_projects: 2,
        groups: 30,
        custom_roles: 0,
        invites: 20,
        expired_invites: 5,
        service_accounts_per_project: 1,
        seed: 3,
    };
    let server = platform("big.example.com", spec).await;
    let host = host();
    add(&host, &platform_tenant(&server, "big"));
    let org = server.service().organization();

    let (accounts, pages) = list_all(&host, "big", Some(500)).await.unwrap();
    let ids: HashSet<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), accounts.len(), "no account twice");
    assert_eq!(accounts.len(), 2500 + 20 + 5 + 38, "members, invites, service accounts");
    assert!(pages >= 6, "{pages} pages");
    for user in &org.users {
        assert!(ids.contains(user.id.as_str()), "{} listed", user.id);
    }
    // A member's entitlements are what the mock holds for them.
    let sample = &org.users[7];
    let account = accounts.iter().find(|a| a.id == sample.id).unwrap();
    let mut expected: BTreeSet<String> =
        ["organization".to_string(), format!("org-role:{}", sample.role)].into();
    for project in org.projects.iter() {
        if let Some(role) = org.project_role(&project.id, &sample.id) {
            expected.insert(format!("project:{}:{role}", project.id));
        }
    }
    for group in org.groups.iter().filter(|g| g.users.contains(&sample.id)) {
        expected.insert(format!("group:{}", group.id));
    }
    assert_eq!(account.entitlements.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let expired = accounts.iter().filter(|a| a.status == AccountStatus::Suspended).count();
    assert_eq!(expired, 5, "expired invites are shown as such");

    let entitlements = all_entitlements(&host, "big", 37).await;
    let unique: HashSet<&str> = entitlements.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(unique.len(), entitlements.len(), "no entitlement twice");
    assert_eq!(entitlements.len(), 4 + 40 * 2 + 30);
    let archived: Vec<&str> =
        org.projects.iter().filter(|p| p.is_archived()).map(|p| p.id.as_str()).collect();
    let scim_groups: Vec<String> =
        org.groups.iter().filter(|g| g.scim_managed).map(|g| format!("group:{}", g.id)).collect();
    assert_eq!(scim_groups.len(), 1);
    for e in &entitlements {
        let in_archived = archived.iter().any(|p| e.id.starts_with(&format!("project:{p}:")));
        let fixed = in_archived || e.id == "project:*:owner" || scim_groups.contains(&e.id);
        assert_eq!(e.grantable, !fixed, "{}", e.id);
    }

    // A plain member: a reader, not managed by SCIM.
    let person = org.users.iter().find(|u| u.role == "reader" && !u.is_scim_managed).unwrap();
    let (id, email) = (person.id.clone(), person.email.clone());
    let project = org
        .projects
        .iter()
        .find(|p| !p.is_archived() && org.project_role(&p.id, &id).is_none())
        .unwrap()
        .id
        .clone();
    let group =
        org.groups.iter().find(|g| !g.scim_managed && !g.users.contains(&id)).unwrap().id.clone();
    let role_of = |org: &Organization| org.users.iter().find(|u| u.id == id).unwrap().role.clone();
    let entitlement = format!("project:{project}:member");
    cycle(&host, &server, "big", &email, &entitlement, |o| {
        o.project_role(&project, &id) == Some("member")
    })
    .await;
    cycle(&host, &server, "big", &email, &format!("group:{group}"), |o| {
        o.group(&group).unwrap().users.contains(&id)
    })
    .await;

    // Last: an owner owns every project, so no project role could be revoked from them.
    cycle(&host, &server, "big", &email, "org-role:owner", |o| role_of(o) == "owner").await;

    // A dry run plans, and sends nothing.
    server.service().traffic().clear_requests();
    let before = server.service().changes().len();
    let who = AccountRef::Email(email.clone());
    let planned = change(&host, "big", false, who, "organization", DRY).await.unwrap();
    assert_eq!(planned.outcome, ChangeOutcome::Planned);
    assert_eq!(planned.requests[0].path, format!("/organization/users/{id}"));
    assert_eq!(writes(&server), Vec::<String>::new());
    assert_eq!(server.service().changes().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_carry_projects_expire_and_are_withdrawn() {
    let spec = PlatformSpec { users: 20, projects: 4, archived_projects: 1, ..Default::default() };
    let server = platform("inv.example.com", spec).await;
    let host = host();
    add(&host, &platform_tenant(&server, "inv"));
    let org = server.service().organization();
    let (a, b) = (org.projects[0].id.clone(), org.projects[1].id.clone());

    // Two project roles for someone new: one invite carrying both, and nothing else.
    server.service().traffic().clear_requests();
    let new = "new.hire@inv.example.com";
    let grant = |entitlement: String| {
        Change::Grant(EntitlementChange { account: AccountRef::Email(new.into()), entitlement })
    };
    let results = host
        .apply_batch(
            "inv",
            vec![grant(format!("project:{a}:member")), grant(format!("project:{b}:owner"))],
            APPLY,
        )
        .await
        .unwrap()
        .result
        .unwrap();
    for result in &results {
        let result = result.as_ref().unwrap();
        assert_eq!(result.outcome, ChangeOutcome::Pending, "{}", result.detail);
        let account = result.account.as_ref().unwrap();
        assert_eq!(account.status, AccountStatus::Invited);
        assert!(account.entitlements.contains(&format!("project:{b}:owner")));
    }
    assert_eq!(writes(&server), ["POST /v1/organization/invites"]);
    let now = server.service().organization();
    let invite = now.pending_invite(new).unwrap();
    assert_eq!(invite.role, "reader");
    assert_eq!(invite.projects, [(a.clone(), "member".into()), (b.clone(), "owner".into())]);

    // An expired invite is listed as such, holds nothing, and is invited again by a grant.
    let expired = org.invites.iter().find(|i| i.status == "expired").unwrap().clone();
    let (accounts, _) = list_all(&host, "inv", None).await.unwrap();
    let listed = accounts.iter().find(|x| x.id == expired.id).unwrap();
    assert_eq!(listed.status, AccountStatus::Suspended);
    assert!(listed.entitlements.is_empty());
    let who = AccountRef::Email(expired.email.clone());
    let again = change(&host, "inv", true, who, "organization", APPLY).await.unwrap();
    assert_eq!(again.outcome, ChangeOutcome::Pending);
    let invite = server.service().organization().pending_invite(&expired.email).cloned().unwrap();
    assert!(invite.projects.is_empty(), "`projects: []` keeps them out of the default project");

    // Revoking `organization`: a member is removed, an invitee's invite deleted.
    let member = org.users.iter().find(|u| !u.is_scim_managed).unwrap().clone();
    let removed =
        change(&host, "inv", false, AccountRef::Id(member.id.clone()), "organization", APPLY)
            .await
            .unwrap();
    assert_eq!(removed.outcome, ChangeOutcome::Applied);
    assert!(removed.account.is_none());
    assert!(server.service().organization().user_by_email(&member.email).is_none());
    let withdrawn =
        change(&host, "inv", false, AccountRef::Email(new.into()), "organization", APPLY)
            .await
            .unwrap();
    assert_eq!(withdrawn.outcome, ChangeOutcome::Applied);
    assert!(server.service().organization().pending_invite(new).is_none());

    // The person of an accepted invite is a member, whose removal is a member's.
    let accepter = org.invites.iter().find(|i| i.status == "pending").unwrap().clone();
    let now = accessgov_mock::platform::EPOCH + 100;
    let user = server.service().organization().clone();
    drop(user);
    let mut joined = None;
    server.service().update(|o| joined = o.accept_invite(&accepter.email, now));
    let joined = joined.unwrap();
    let account =
        host.get_account("inv", AccountRef::Id(accepter.id.clone())).await.unwrap().result.unwrap();
    assert_eq!(account.id, joined.id, "an accepted invite's id names its member");
    let gone =
        change(&host, "inv", false, AccountRef::Id(accepter.id.clone()), "organization", APPLY)
            .await
            .unwrap();
    assert_eq!(gone.outcome, ChangeOutcome::Applied);
    let after = server.service().organization();
    assert!(after.user_by_email(&accepter.email).is_none());
    assert_eq!(after.invites.iter().find(|i| i.id == accepter.id).unwrap().status, "accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organizations_rules_are_kept_and_said() {
    let spec = PlatformSpec {
        users: 30,
        projects: 3,
        archived_projects: 1,
        custom_roles: 2,
        ..Default::default()
    };
    let server = platform("rules.example.com", spec).await;
    let host = host();
    add(&host, &platform_tenant(&server, "rules"));
    let org = server.service().organization();
    let active = org.projects[0].id.clone();
    let archived = org.projects.iter().find(|p| p.is_archived()).unwrap().id.clone();

    // An organization owner owns every project, without being listed as its member.
    let owner = org.users.iter().find(|u| u.role == "owner").unwrap().clone();
    let account = host
        .get_account("rules", AccountRef::Email(owner.email.clone()))
        .await
        .unwrap()
        .result
        .unwrap();
    assert!(account.entitlements.contains(&"project:*:owner".to_string()));
    server.service().traffic().clear_requests();
    let refused = change(
        &host,
        "rules",
        false,
        AccountRef::Id(owner.id.clone()),
        &format!("project:{active}:owner"),
        APPLY,
    )
    .await;
    match refused {
        Err(CallError::Connector(ConnectorError::Conflict(m))) => {
            assert!(m.contains("organization owner") && m.contains("every project"), "{m}")
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(writes(&server), Vec::<String>::new());

    // Archived projects are shown and refused for changes.
    let reader =
        org.users.iter().find(|u| u.role == "reader" && !u.is_scim_managed).unwrap().clone();
    let refused = change(
        &host,
        "rules",
        true,
        AccountRef::Email(reader.email.clone()),
        &format!("project:{archived}:member"),
        APPLY,
    )
    .await;
    match refused {
        Err(CallError::Connector(ConnectorError::Conflict(m))) => {
            assert!(m.contains("archived"), "{m}")
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(writes(&server), Vec::<String>::new());

    // A project role for someone not in the organization invites them with it...
    let outsider = "outsider@rules.example.com";
    let invited = change(
        &host,
        "rules",
        true,
        AccountRef::Email(outsider.into()),
        &format!("project:{active}:member"),
        APPLY,
    )
    .await
    .unwrap();
    assert_eq!(invited.outcome, ChangeOutcome::Pending);
    assert_eq!(
        server.service().organization().pending_invite(outsider).unwrap().projects,
        [(active.clone(), "member".to_string())]
    );
    // ... unless the tenant says not to, which refuses it saying so, sending nothing.
    let mut strict = platform_tenant(&server, "strict");
    strict.settings.insert("invite-on-role-grant".into(), SettingValue::Text("false".into()));
    add(&host, &strict);
    server.service().traffic().clear_requests();
    let refused = change(
        &host,
        "strict",
        true,
        AccountRef::Email("other@rules.example.com".into()),
        &format!("project:{active}:member"),
        APPLY,
    )
    .await;
    match refused {
        Err(CallError::Connector(ConnectorError::Conflict(m))) => {
            assert!(
                m.contains("invite-on-role-grant") && m.contains("grant `organization` first"),
                "{m}"
            )
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(writes(&server), Vec::<String>::new());

    // Custom roles are entitlements of members.
    let role = org.roles.iter().find(|r| !r.predefined).unwrap().id.clone();
    let holder = org
        .users
        .iter()
        .find(|u| u.role == "reader" && !org.user_roles.iter().any(|(x, _)| *x == u.id))
        .unwrap()
        .clone();
    cycle(&host, &server, "rules", &holder.email, &format!("role:{role}"), |o| {
        o.user_roles.iter().any(|(u, r)| *u == holder.id && *r == role)
    })
    .await;

    // Service accounts are listed, never granted anything, and removed by revoking access.
    let project = org.projects.iter().find(|p| !p.service_accounts.is_empty()).unwrap().clone();
    let bot = project.service_accounts[0].clone();
    let (accounts, _) = list_all(&host, "rules", None).await.unwrap();
    let listed = accounts.iter().find(|a| a.id == bot.id).unwrap();
    assert_eq!(listed.entitlements, [format!("project:{}:{}", project.id, bot.role)]);
    let refused =
        change(&host, "rules", true, AccountRef::Id(bot.id.clone()), "org-role:owner", APPLY).await;
    assert!(
        matches!(refused, Err(CallError::Connector(ConnectorError::Unsupported(_)))),
        "{refused:?}"
    );
    let deleted =
        change(&host, "rules", false, AccountRef::Id(bot.id.clone()), "organization", APPLY)
            .await
            .unwrap();
    assert_eq!(deleted.outcome, ChangeOutcome::Applied);
    let after = server.service().organization();
    assert!(after.project(&project.id).unwrap().service_accounts.iter().all(|a| a.id != bot.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_reads_and_throttled_listings_are_waited_out() {
    let spec =
        PlatformSpec { users: 120, projects: 3, groups: 4, custom_roles: 0, ..Default::default() };
    let server = platform("lag.example.com", spec).await;
    let host = host();
    let mut tenant = platform_tenant(&server, "lag");
    tenant.settings.insert("retry-base-ms".into(), SettingValue::Integer(50));
    add(&host, &tenant);
    let org = server.service().organization();
    let person =
        org.users.iter().find(|u| u.role == "reader" && !u.is_scim_managed).unwrap().clone();

    // Reads lag writes: the read-back waits until the change shows, and says it is applied.
    server
        .service()
        .set_switches(PlatformSwitches { stale_reads_after_write: 12, throttle_rbac_every: None });
    let result = change(
        &host,
        "lag",
        true,
        AccountRef::Email(person.email.clone()),
        "org-role:owner",
        APPLY,
    )
    .await
    .unwrap();
    assert_eq!(result.outcome, ChangeOutcome::Applied);
    assert!(result.account.unwrap().entitlements.contains(&"org-role:owner".to_string()));
    assert_eq!(server.service().changes().len(), 1, "written once, read until it showed");

    // RBAC listings throttled with Retry-After: the listing waits and completes.
    server.service().set_switches(PlatformSwitches {
        stale_reads_after_write: 0,
        throttle_rbac_every: Some(3),
    });
    let (accounts, _) = list_all(&host, "lag", Some(1000)).await.unwrap();
    let bots: usize = org.projects.iter().map(|p| p.service_accounts.len()).sum();
    assert_eq!(accounts.len(), org.users.len() + org.invites.len() + bots);
    let throttled =
        server.service().traffic().requests().iter().filter(|r| r.status == 429).count();
    assert!(throttled >= 1, "the mock throttled");
}

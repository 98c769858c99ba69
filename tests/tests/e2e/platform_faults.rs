//! The fault matrix of the ChatGPT connector, run for the API Platform connector: every
//! operation under every fault the mock injects, each cell on a fresh organization. The final
//! state must be right and each write applied exactly once (the mock's change log).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use accessgov_host::Host;
use accessgov_host::tenant::SettingValue;
use accessgov_host::types::{AccountRef, ChangeOptions, ChangeOutcome};
use accessgov_mock::platform::{Organization, PlatformSpec};
use accessgov_mock::{Fault, FaultPlan, FaultScript};

use crate::common::{add, host, list_all};
use crate::platform::{platform, platform_tenant};

const APPLY: ChangeOptions = ChangeOptions { dry_run: false };

/// The operations of the matrix.
#[derive(Debug, Clone, Copy)]
enum Op {
    ListAccounts,
    GetAccount,
    ChangeOrgRole,
    AddToProject,
    AddToGroup,
    RemoveMember,
    Invite,
    DeleteInvite,
}

impl Op {
    const ALL: [Op; 8] = [
        Op::ListAccounts,
        Op::GetAccount,
        Op::ChangeOrgRole,
        Op::AddToProject,
        Op::AddToGroup,
        Op::RemoveMember,
        Op::Invite,
        Op::DeleteInvite,
    ];
}

/// The facts of one cell's organization the operations use.
struct Scene {
    member_id: String,
    member_email: String,
    project: String,
    group: String,
    invite_id: String,
    invite_email: String,
}

fn scene(org: &Organization) -> Scene {
    let member = org.users.iter().find(|u| u.role == "reader" && !u.is_scim_managed).unwrap();
    let project = org
        .projects
        .iter()
        .find(|p| !p.is_archived() && org.project_role(&p.id, &member.id).is_none())
        .unwrap();
    let group =
        org.groups.iter().find(|g| !g.scim_managed && !g.users.contains(&member.id)).unwrap();
    let invite = org.invites.iter().find(|i| i.status == "pending").unwrap();
    Scene {
        member_id: member.id.clone(),
        member_email: member.email.clone(),
        project: project.id.clone(),
        group: group.id.clone(),
        invite_id: invite.id.clone(),
        invite_email: invite.email.clone(),
    }
}

/// The method and path suffix the fault is injected on, and the mock's change it makes.
fn route(op: Op, s: &Scene) -> (&'static str, String, Option<&'static str>) {
    match op {
        Op::ListAccounts | Op::GetAccount => ("GET", "/organization/users".into(), None),
        Op::ChangeOrgRole => {
            ("POST", format!("/organization/users/{}", s.member_id), Some("set-role"))
        }
        Op::AddToProject => (
            "POST",
            format!("/organization/projects/{}/users", s.project),
            Some("add-project-user"),
        ),
        Op::AddToGroup => {
            ("POST", format!("/organization/groups/{}/users", s.group), Some("add-group-user"))
        }
        Op::RemoveMember => {
            ("DELETE", format!("/organization/users/{}", s.member_id), Some("remove-user"))
        }
        Op::Invite => ("POST", "/organization/invites".into(), Some("invite")),
        Op::DeleteInvite => {
            ("DELETE", format!("/organization/invites/{}", s.invite_id), Some("delete-invite"))
        }
    }
}

async fn cell(host: &Arc<Host>, op: Op, fault: Fault, n: usize) {
    let spec = PlatformSpec { users: 30, projects: 4, groups: 6, seed: 5, ..Default::default() };
    let server = platform("faults.example.com", spec).await;
    let tenant_id = format!("pf{n}");
    let mut tenant = platform_tenant(&server, &tenant_id);
    tenant.settings.insert("page-size".into(), SettingValue::Integer(100));
    // A slow answer goes past the first-byte timeout.
    tenant.limits.first_byte_timeout_ms = Some(150);
    add(host, &tenant);
    let before = server.service().organization();
    let s = scene(&before);
    let (method, suffix, kind) = route(op, &s);
    server.service().traffic().set_faults(FaultPlan {
        scripts: vec![FaultScript {
            method: method.into(),
            path_suffix: suffix.clone(),
            attempts: vec![Some(fault)],
            seen: 0,
        }],
        ..FaultPlan::default()
    });
    let label = format!("{op:?} × {fault:?}");
    let change = |grant: bool, who: AccountRef, entitlement: String| {
        let host = host.clone();
        let tenant = tenant_id.clone();
        async move {
            let report = if grant {
                host.grant(&tenant, who, entitlement, APPLY).await
            } else {
                host.revoke(&tenant, who, entitlement, APPLY).await
            };
            report.unwrap().result
        }
    };
    let member = || AccountRef::Email(s.member_email.clone());
    let outcome = match op {
        Op::ListAccounts => {
            let (accounts, _) =
                list_all(host, &tenant_id, None).await.unwrap_or_else(|e| panic!("{label}: {e}"));
            let bots: usize = before.projects.iter().map(|p| p.service_accounts.len()).sum();
            assert_eq!(accounts.len(), before.users.len() + before.invites.len() + bots, "{label}");
            None
        }
        Op::GetAccount => {
            let report = host.get_account(&tenant_id, member()).await.unwrap();
            let account = report.result.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(account.id, s.member_id, "{label}");
            None
        }
        Op::ChangeOrgRole => Some(change(true, member(), "org-role:owner".into()).await),
        Op::AddToProject => {
            Some(change(true, member(), format!("project:{}:member", s.project)).await)
        }
        Op::AddToGroup => Some(change(true, member(), format!("group:{}", s.group)).await),
        Op::RemoveMember => Some(change(false, member(), "organization".into()).await),
        Op::Invite => Some(
            change(
                true,
                AccountRef::Email("new.hire@faults.example.com".into()),
                "org-role:owner".into(),
            )
            .await,
        ),
        Op::DeleteInvite => Some(
            change(false, AccountRef::Email(s.invite_email.clone()), "organization".into()).await,
        ),
    };
    if let Some(outcome) = outcome {
        let result = outcome.unwrap_or_else(|e| panic!("{label}: {e}"));
        let want =
            if matches!(op, Op::Invite) { ChangeOutcome::Pending } else { ChangeOutcome::Applied };
        assert_eq!(result.outcome, want, "{label}: {}", result.detail);
    }
    let after = server.service().organization();
    let user = after.users.iter().find(|u| u.id == s.member_id);
    match op {
        Op::ListAccounts | Op::GetAccount => {
            assert_eq!(after, before, "{label}: a read changed nothing")
        }
        Op::ChangeOrgRole => assert_eq!(user.unwrap().role, "owner", "{label}"),
        Op::AddToProject => {
            assert_eq!(after.project_role(&s.project, &s.member_id), Some("member"), "{label}")
        }
        Op::AddToGroup => {
            assert!(after.group(&s.group).unwrap().users.contains(&s.member_id), "{label}")
        }
        Op::RemoveMember => {
            assert!(user.is_none(), "{label}");
            assert_eq!(after.users.len(), before.users.len() - 1, "{label}: only that member");
        }
        Op::Invite => {
            let invite = after.pending_invite("new.hire@faults.example.com").unwrap();
            assert_eq!(invite.role, "owner", "{label}");
        }
        Op::DeleteInvite => {
            assert!(after.invites.iter().all(|i| i.id != s.invite_id), "{label}");
            assert_eq!(after.invites.len(), before.invites.len() - 1, "{label}: only that invite");
        }
    }
    // Exactly one write applied, whatever happened to its answer.
    let changes = server.service().changes();
    match kind {
        Some(kind) => {
            assert_eq!(changes.len(), 1, "{label}: {changes:?}");
            assert_eq!(changes[0].kind, kind, "{label}");
        }
        None => assert!(changes.is_empty(), "{label}: {changes:?}"),
    }
    // The fault really happened.
    let requests = server.service().traffic().requests();
    assert!(requests.iter().any(|r| r.fault == Some(fault)), "{label}: fault injected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_platform_operation_survives_every_fault() {
    let host = host();
    let mut n = 0;
    for op in Op::ALL {
        for fault in Fault::ALL {
            cell(&host, op, fault, n).await;
            n += 1;
        }
    }
    println!(
        "platform fault matrix: {} operations × {} faults = {n} cases",
        Op::ALL.len(),
        Fault::ALL.len()
    );
    assert_eq!(n, 96);
}

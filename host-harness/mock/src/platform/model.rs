//! The organization the API Platform mock serves, and how one is generated.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// 2026-01-01T00:00:00Z, the generated organization's epoch.
pub const EPOCH: i64 = 1_767_225_600;
/// How long an invite stays acceptable.
pub const INVITE_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// A member of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgUser {
    /// `user-<n>`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Address, unique in any case.
    pub email: String,
    /// `owner` or `reader`.
    pub role: String,
    /// Unix seconds.
    pub added_at: i64,
    /// Whether an identity provider manages them.
    pub is_scim_managed: bool,
}

/// An invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgInvite {
    /// `invite-<n>`.
    pub id: String,
    /// Address invited.
    pub email: String,
    /// `owner` or `reader`.
    pub role: String,
    /// `pending`, `accepted` or `expired`.
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds, once accepted.
    pub accepted_at: Option<i64>,
    /// Projects and roles it gives.
    pub projects: Vec<(String, String)>,
}

/// A project's service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgServiceAccount {
    /// `svc_acct_<n>`.
    pub id: String,
    /// Name.
    pub name: String,
    /// `owner`, `member` or `none`.
    pub role: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgProject {
    /// `proj_<n>`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, once archived.
    pub archived_at: Option<i64>,
    /// Members: user id and role (`owner` or `member`), with when they were added.
    pub users: Vec<(String, String, i64)>,
    /// Service accounts.
    pub service_accounts: Vec<OrgServiceAccount>,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgGroup {
    /// `group_<n>`.
    pub id: String,
    /// Name, unique.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Whether an identity provider manages its membership.
    pub scim_managed: bool,
    /// Member user ids, in the order added.
    pub users: Vec<String>,
}

/// A role, predefined or custom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRole {
    /// `role_<n>`, or the predefined role's name.
    pub id: String,
    /// Name.
    pub name: String,
    /// What it allows.
    pub description: String,
    /// Whether the service defines it.
    pub predefined: bool,
}

/// One API Platform organization.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// Members, in the order listed.
    pub users: Vec<OrgUser>,
    /// Invites, in the order listed.
    pub invites: Vec<OrgInvite>,
    /// Projects, in the order listed; the first active one is the default project.
    pub projects: Vec<OrgProject>,
    /// Groups.
    pub groups: Vec<OrgGroup>,
    /// Roles, predefined first.
    pub roles: Vec<OrgRole>,
    /// Custom roles assigned to users: user id and role id.
    pub user_roles: Vec<(String, String)>,
    /// The next number an id is made from.
    pub next_id: u64,
}

impl Organization {
    /// The member with address `email`, in any case.
    pub fn user_by_email(&self, email: &str) -> Option<&OrgUser> {
        self.users.iter().find(|u| u.email.eq_ignore_ascii_case(email))
    }

    /// The pending invite of `email`, in any case.
    pub fn pending_invite(&self, email: &str) -> Option<&OrgInvite> {
        self.invites.iter().find(|i| i.status == "pending" && i.email.eq_ignore_ascii_case(email))
    }

    /// The project with `id`.
    pub fn project(&self, id: &str) -> Option<&OrgProject> {
        self.projects.iter().find(|p| p.id == id)
    }

    /// The role of user `user` in project `project`, if a member.
    pub fn project_role(&self, project: &str, user: &str) -> Option<&str> {
        self.project(project)?.users.iter().find(|(u, _, _)| u == user).map(|(_, r, _)| r.as_str())
    }

    /// The group with `id`.
    pub fn group(&self, id: &str) -> Option<&OrgGroup> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// A fresh id with `prefix`.
    pub fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:05}", self.next_id)
    }

    /// Marks pending invites past their expiry, as the service shows them.
    pub fn expire_invites(&mut self, now: i64) {
        for invite in self.invites.iter_mut().filter(|i| i.status == "pending") {
            if invite.expires_at <= now {
                invite.status = "expired".to_string();
            }
        }
    }

    /// Accepts `email`'s pending invite, as the person would by following its link: they
    /// become a member with its role and projects. Returns the new member.
    pub fn accept_invite(&mut self, email: &str, now: i64) -> Option<OrgUser> {
        let index = self
            .invites
            .iter()
            .position(|i| i.status == "pending" && i.email.eq_ignore_ascii_case(email))?;
        let id = self.fresh_id("user-");
        let invite = &mut self.invites[index];
        invite.status = "accepted".to_string();
        invite.accepted_at = Some(now);
        let (role, projects) = (invite.role.clone(), invite.projects.clone());
        let user = OrgUser {
            id: id.clone(),
            name: email.split('@').next().unwrap_or_default().to_string(),
            email: invite.email.clone(),
            role,
            added_at: now,
            is_scim_managed: false,
        };
        self.users.push(user.clone());
        for (project, role) in projects {
            if let Some(p) = self.projects.iter_mut().find(|p| p.id == project) {
                p.users.push((id.clone(), role, now));
            }
        }
        Some(user)
    }
}

impl OrgUser {
    /// The service's JSON of it.
    pub fn json(&self) -> Value {
        json!({"object": "organization.user", "id": self.id, "name": self.name, "email": self.email,
            "role": self.role, "added_at": self.added_at, "is_scim_managed": self.is_scim_managed,
            "is_service_account": false})
    }
}

impl OrgInvite {
    /// The service's JSON of it.
    pub fn json(&self) -> Value {
        let projects: Vec<Value> =
            self.projects.iter().map(|(id, role)| json!({"id": id, "role": role})).collect();
        json!({"object": "organization.invite", "id": self.id, "email": self.email, "role": self.role,
            "status": self.status, "created_at": self.created_at, "expires_at": self.expires_at,
            "accepted_at": self.accepted_at, "projects": projects})
    }
}

impl OrgProject {
    /// The service's JSON of it.
    pub fn json(&self) -> Value {
        json!({"object": "organization.project", "id": self.id, "name": self.name,
            "created_at": self.created_at, "archived_at": self.archived_at,
            "status": if self.archived_at.is_some() { "archived" } else { "active" }})
    }

    /// Whether it is archived.
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

impl OrgServiceAccount {
    /// The service's JSON of it.
    pub fn json(&self) -> Value {
        json!({"object": "organization.project.service_account", "id": self.id, "name": self.name,
            "role": self.role, "created_at": self.created_at})
    }
}

impl OrgGroup {
    /// The service's JSON of it.
    pub fn json(&self) -> Value {
        json!({"object": "group", "id": self.id, "name": self.name, "created_at": self.created_at,
            "scim_managed": self.scim_managed})
    }
}

impl OrgRole {
    /// The service's JSON of it.
    pub fn json(&self) -> Value {
        json!({"object": "role", "id": self.id, "name": self.name, "description": self.description,
            "permissions": [], "resource_type": "api.organization", "predefined_role": self.predefined})
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformSpec {
    /// Members; every 25th an owner, every 40th SCIM-managed.
    pub users: usize,
    /// Projects; each member is in one to three of them.
    pub projects: usize,
    /// Of those, how many (the last ones) are archived.
    pub archived_projects: usize,
    /// Groups; each member is in up to two.
    pub groups: usize,
    /// Custom roles; every tenth member holds one.
    pub custom_roles: usize,
    /// Pending invites, some carrying projects.
    pub invites: usize,
    /// Expired invites.
    pub expired_invites: usize,
    /// Service accounts in each active project.
    pub service_accounts_per_project: usize,
    /// Varies who is where.
    pub seed: u64,
}

impl Default for PlatformSpec {
    fn default() -> Self {
        PlatformSpec {
            users: 40,
            projects: 4,
            archived_projects: 1,
            groups: 3,
            custom_roles: 1,
            invites: 3,
            expired_invites: 1,
            service_accounts_per_project: 1,
            seed: 1,
        }
    }
}

/// An organization of `spec`'s shape, the same for the same spec. People are
/// `user<n>@<domain>`; invitees `invitee<n>@<domain>`.
pub fn generate(domain: &str, spec: PlatformSpec) -> Organization {
    let mut org = Organization::default();
    let mut state = spec.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    org.roles.push(OrgRole {
        id: "owner".into(),
        name: "owner".into(),
        description: "Manages the organization".into(),
        predefined: true,
    });
    org.roles.push(OrgRole {
        id: "reader".into(),
        name: "reader".into(),
        description: "Uses the organization's projects".into(),
        predefined: true,
    });
    for n in 0..spec.custom_roles {
        let id = org.fresh_id("role_");
        org.roles.push(OrgRole {
            id,
            name: format!("auditor-{n}"),
            description: format!("Custom role {n}: reads usage and audit logs"),
            predefined: false,
        });
    }
    let active = spec.projects.saturating_sub(spec.archived_projects);
    for n in 0..spec.projects {
        let id = org.fresh_id("proj_");
        let archived = n >= active;
        let service_accounts = (0..if archived { 0 } else { spec.service_accounts_per_project })
            .map(|k| OrgServiceAccount {
                id: format!("svc_acct_{n:03}_{k:02}"),
                name: format!("deploy-bot-{n}-{k}"),
                role: if k % 2 == 0 { "member" } else { "owner" }.to_string(),
                created_at: EPOCH + n as i64 * 3600,
            })
            .collect();
        org.projects.push(OrgProject {
            id,
            name: format!("Project {n}"),
            created_at: EPOCH + n as i64 * 60,
            archived_at: archived.then_some(EPOCH + 86_400),
            users: Vec::new(),
            service_accounts,
        });
    }
    for n in 0..spec.groups {
        let id = org.fresh_id("group_");
        org.groups.push(OrgGroup {
            id,
            name: format!("team-{n}"),
            created_at: EPOCH + n as i64,
            scim_managed: spec.groups > 2 && n == spec.groups - 1,
            users: Vec::new(),
        });
    }
    for n in 0..spec.users {
        let id = org.fresh_id("user-");
        let added_at = EPOCH + n as i64 * 37;
        for _ in 0..(1 + next() % 3) {
            if spec.projects == 0 {
                break;
            }
            let project = &mut org.projects[(next() % spec.projects as u64) as usize];
            if !project.users.iter().any(|(u, _, _)| *u == id) {
                let role = if next() % 5 == 0 { "owner" } else { "member" };
                project.users.push((id.clone(), role.to_string(), added_at));
            }
        }
        for _ in 0..(next() % 3) {
            if spec.groups == 0 {
                break;
            }
            let group = &mut org.groups[(next() % spec.groups as u64) as usize];
            if !group.users.contains(&id) {
                group.users.push(id.clone());
            }
        }
        if spec.custom_roles > 0 && n % 10 == 3 {
            let role = org.roles[2 + n / 10 % spec.custom_roles].id.clone();
            org.user_roles.push((id.clone(), role));
        }
        org.users.push(OrgUser {
            id,
            name: format!("User {n}"),
            email: format!("user{n}@{domain}"),
            role: if n % 25 == 0 { "owner" } else { "reader" }.to_string(),
            added_at,
            is_scim_managed: n % 40 == 39,
        });
    }
    let far = EPOCH + 3650 * 86_400;
    for n in 0..spec.invites + spec.expired_invites {
        let id = org.fresh_id("invite-");
        let expired = n >= spec.invites;
        let projects = match (n % 2, org.projects.first()) {
            (0, Some(p)) if !p.is_archived() => vec![(p.id.clone(), "member".to_string())],
            _ => Vec::new(),
        };
        org.invites.push(OrgInvite {
            id,
            email: format!("invitee{n}@{domain}"),
            role: "reader".to_string(),
            status: if expired { "expired" } else { "pending" }.to_string(),
            created_at: EPOCH + n as i64,
            expires_at: if expired { EPOCH + INVITE_LIFETIME_SECS } else { far },
            accepted_at: None,
            projects,
        });
    }
    org
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_repeatable_and_shaped_as_asked() {
        let spec = PlatformSpec {
            users: 100,
            projects: 6,
            archived_projects: 2,
            ..PlatformSpec::default()
        };
        let org = generate("acme.example.com", spec);
        assert_eq!(org, generate("acme.example.com", spec));
        assert_eq!(org.users.len(), 100);
        assert_eq!(org.projects.iter().filter(|p| p.is_archived()).count(), 2);
        assert!(org.projects.iter().flat_map(|p| &p.users).count() >= 100);
        assert_eq!(org.invites.iter().filter(|i| i.status == "expired").count(), 1);
        assert!(org.users.iter().any(|u| u.role == "owner"));
    }

    #[test]
    fn an_accepted_invite_makes_a_member_with_its_projects() {
        let mut org = generate("x.com", PlatformSpec::default());
        let invite = org.invites.iter().find(|i| !i.projects.is_empty()).unwrap().clone();
        let user = org.accept_invite(&invite.email, EPOCH + 10).unwrap();
        assert_eq!(org.project_role(&invite.projects[0].0, &user.id), Some("member"));
        assert!(org.pending_invite(&invite.email).is_none());
    }
}

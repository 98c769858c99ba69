//! What a person holds, and the contract's account of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use connector_sdk::ConnectorError;
use connector_sdk::time::rfc3339_from_unix;
use connector_sdk::transport::Transport;
use connector_sdk::types::{Account, AccountStatus};

use crate::api::{Client, Invite, Project, ServiceAccount, User};
use crate::catalog;
use crate::directory::{Org, Person, assigned_roles};

/// Whether a person is in the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Neither a member nor invited (an expired invite counts for nothing).
    Absent,
    /// Invited, not yet joined.
    Invited,
    /// A member.
    Member,
}

/// What a person holds in the organization: the state the planner changes and the account
/// shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdings {
    /// Member, invited or absent.
    pub presence: Presence,
    /// `owner` or `reader`; meaningless when absent.
    pub role: String,
    /// The projects they are a member of (or, invited, will be), with their role in each.
    pub projects: BTreeMap<String, String>,
    /// The groups they are in (members only).
    pub groups: BTreeSet<String>,
    /// The custom roles assigned to them (members only).
    pub roles: BTreeSet<String>,
}

impl Holdings {
    /// Someone holding nothing.
    pub fn absent() -> Self {
        Holdings {
            presence: Presence::Absent,
            role: catalog::DEFAULT_ORG_ROLE.to_string(),
            projects: BTreeMap::new(),
            groups: BTreeSet::new(),
            roles: BTreeSet::new(),
        }
    }

    /// A member's holdings, from what was read of the organization.
    pub fn of_user(user: &User, org: &Org, roles: Option<&BTreeSet<String>>) -> Self {
        Holdings {
            presence: Presence::Member,
            role: user.role.clone(),
            projects: org.memberships.get(&user.id).cloned().unwrap_or_default(),
            groups: org.group_members.get(&user.id).cloned().unwrap_or_default(),
            roles: roles.cloned().unwrap_or_default(),
        }
    }

    /// A pending invite's holdings: the role and projects it will give.
    pub fn of_invite(invite: &Invite) -> Self {
        Holdings {
            presence: Presence::Invited,
            role: invite.role.clone(),
            projects: invite.projects.iter().map(|p| (p.id.clone(), p.role.clone())).collect(),
            groups: BTreeSet::new(),
            roles: BTreeSet::new(),
        }
    }

    /// What `person` holds, `roles` being the custom roles read for members. A service
    /// account holds its role in its project.
    pub fn of_person(
        person: &Person,
        org: &Org,
        roles: &HashMap<String, BTreeSet<String>>,
    ) -> Self {
        match person {
            Person { user: Some(user), .. } => Holdings::of_user(user, org, roles.get(&user.id)),
            Person { invite: Some(invite), .. } => Holdings::of_invite(invite),
            Person { service_account: Some((project, account)), .. } => Holdings {
                presence: Presence::Member,
                projects: [(project.id.clone(), account.role.clone())].into(),
                ..Holdings::absent()
            },
            _ => Holdings::absent(),
        }
    }

    /// Whether they are an organization member who is an owner, and so owner of every project.
    pub fn owns_every_project(&self) -> bool {
        self.presence == Presence::Member && self.role == "owner"
    }

    /// The entitlement ids held.
    pub fn entitlements(&self) -> Vec<String> {
        if self.presence == Presence::Absent {
            return Vec::new();
        }
        let mut held = vec![catalog::ORGANIZATION.to_string(), catalog::org_role(&self.role)];
        if self.owns_every_project() {
            held.push(catalog::EVERY_PROJECT_OWNER.to_string());
        }
        held.extend(self.projects.iter().map(|(p, r)| catalog::project_role(p, r)));
        held.extend(self.groups.iter().map(|g| catalog::group(g)));
        held.extend(self.roles.iter().map(|r| catalog::custom_role(r)));
        held
    }
}

/// A member's account.
pub fn user_account(user: &User, holdings: &Holdings) -> Account {
    Account {
        id: user.id.clone(),
        email: Some(user.email.clone()),
        display_name: user.name.clone().filter(|n| !n.is_empty()),
        status: AccountStatus::Active,
        entitlements: holdings.entitlements(),
        managed_by: user.is_scim_managed.then(|| "scim".to_string()),
        created_at: user.added_at.and_then(rfc3339_from_unix),
    }
}

/// An invite's account: pending, holding what it will give; or expired, shown as `suspended`
/// and holding nothing (the contract has no status of its own for a lapsed invite; granting
/// `organization` invites the person again).
pub fn invite_account(invite: &Invite) -> Account {
    let (status, entitlements) = if invite.is_pending() {
        (AccountStatus::Invited, Holdings::of_invite(invite).entitlements())
    } else {
        (AccountStatus::Suspended, Vec::new())
    };
    Account {
        id: invite.id.clone(),
        email: Some(invite.email.clone()),
        display_name: None,
        status,
        entitlements,
        managed_by: None,
        created_at: invite.created_at.and_then(rfc3339_from_unix),
    }
}

/// A project service account's account: it holds its role in its project (none when its role
/// is `none`), and is never invited.
pub fn service_account(project: &Project, account: &ServiceAccount) -> Account {
    let entitlements = if catalog::PROJECT_ROLES.contains(&account.role.as_str()) {
        vec![catalog::project_role(&project.id, &account.role)]
    } else {
        Vec::new()
    };
    Account {
        id: account.id.clone(),
        email: None,
        display_name: Some(match &account.name {
            Some(name) if !name.is_empty() => {
                format!("{name} (service account of {})", project.name)
            }
            _ => format!("service account of {}", project.name),
        }),
        status: AccountStatus::Active,
        entitlements,
        managed_by: None,
        created_at: account.created_at.and_then(rfc3339_from_unix),
    }
}

/// The account of `person`, a member's entitlements those of `holdings`; `None` when the
/// reference named no one.
pub fn person_account(person: &Person, holdings: &Holdings) -> Option<Account> {
    match person {
        Person { user: Some(user), .. } => Some(user_account(user, holdings)),
        Person { invite: Some(invite), .. } | Person { expired: Some(invite), .. } => {
            Some(invite_account(invite))
        }
        Person { service_account: Some((project, account)), .. } => {
            Some(service_account(project, account))
        }
        _ => None,
    }
}

/// The account of `person` (`None` when the reference named no one), reading a member's
/// custom roles; what else they hold comes from `org`.
pub fn account_of<T: Transport>(
    client: &Client<'_, T>,
    org: &Org,
    person: &Person,
) -> Result<Option<Account>, ConnectorError> {
    let ids: Vec<&str> = person.user.iter().map(|u| u.id.as_str()).collect();
    let roles = assigned_roles(client, org, &ids)?;
    Ok(person_account(person, &Holdings::of_person(person, org, &roles)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: &str) -> User {
        User {
            id: "user-1".into(),
            name: Some("Ann".into()),
            email: "ann@acme.com".into(),
            role: role.into(),
            added_at: Some(0),
            is_scim_managed: false,
        }
    }

    #[test]
    fn owners_own_every_project_without_being_listed_as_its_members() {
        let mut org = Org::default();
        org.memberships.insert("user-1".into(), [("p1".to_string(), "member".to_string())].into());
        let owner = Holdings::of_user(&user("owner"), &org, None);
        assert_eq!(
            user_account(&user("owner"), &owner).entitlements,
            ["organization", "org-role:owner", "project:*:owner", "project:p1:member"]
        );
        let reader = Holdings::of_user(&user("reader"), &org, None);
        assert!(!reader.entitlements().contains(&catalog::EVERY_PROJECT_OWNER.to_string()));
    }

    #[test]
    fn an_expired_invite_holds_nothing() {
        let invite = Invite {
            id: "invite-1".into(),
            email: "bo@acme.com".into(),
            role: "owner".into(),
            status: "expired".into(),
            created_at: None,
            projects: Vec::new(),
        };
        let account = invite_account(&invite);
        assert_eq!(account.status, AccountStatus::Suspended);
        assert!(account.entitlements.is_empty());
    }
}

//! Listings: accounts (members, then invites, then each project's service accounts) and
//! entitlements (the fixed ones, then each project's, the groups, the custom roles), each paged
//! by an opaque cursor that holds the upstream listing's own key.

use connector_sdk::cursor::{Cursor, Listing};
use connector_sdk::paging::page_size;
use connector_sdk::transport::Transport;
use connector_sdk::types::{Account, Entitlement, PageRequest};
use connector_sdk::{ConnectorError, Page};

use crate::accounts::{Holdings, invite_account, service_account, user_account};
use crate::api::{
    CLASSIC_MAX_PAGE, Client, Group, Invite, Project, RBAC_MAX_PAGE, Reads, Role, ServiceAccount,
    User,
};
use crate::catalog;
use crate::directory::{Org, assigned_roles, read_org};
use crate::settings::{MAX_PAGE_SIZE, Settings};

/// The listings of accounts, in the order they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountListing {
    /// Members.
    Users,
    /// Invites, pending and expired (accepted ones are their members).
    Invites,
    /// Each project's service accounts; the key is `<project id> <service account id>`, or
    /// the project id alone at the start of its listing.
    ServiceAccounts,
}

impl Listing for AccountListing {
    fn code(self) -> char {
        match self {
            AccountListing::Users => 'u',
            AccountListing::Invites => 'i',
            AccountListing::ServiceAccounts => 's',
        }
    }
}

/// The listings of entitlements, in the order they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntitlementListing {
    /// Access, the organization roles and owning every project.
    Fixed,
    /// Each project's two roles; the key is the last project listed whole, or `<id> owner`
    /// when only its owner role was.
    Projects,
    /// Groups; the key is the service's cursor.
    Groups,
    /// Custom roles; the key is the service's cursor.
    Roles,
}

impl Listing for EntitlementListing {
    fn code(self) -> char {
        match self {
            EntitlementListing::Fixed => 'f',
            EntitlementListing::Projects => 'p',
            EntitlementListing::Groups => 'g',
            EntitlementListing::Roles => 'r',
        }
    }
}

const ACCOUNT_LISTINGS: [AccountListing; 3] =
    [AccountListing::Users, AccountListing::Invites, AccountListing::ServiceAccounts];
const ENTITLEMENT_LISTINGS: [EntitlementListing; 4] = [
    EntitlementListing::Fixed,
    EntitlementListing::Projects,
    EntitlementListing::Groups,
    EntitlementListing::Roles,
];

/// One page of accounts.
pub fn accounts<T: Transport>(
    client: &Client<'_, T>,
    settings: &Settings,
    request: &PageRequest,
) -> Result<Page<Account>, ConnectorError> {
    let size = page_size(request.size, settings.page_size, MAX_PAGE_SIZE)? as usize;
    let scope = settings.base_url.as_str();
    let mut at = match &request.cursor {
        Some(raw) => Cursor::decode(raw, scope, &ACCOUNT_LISTINGS)?,
        None => Cursor::start(AccountListing::Users),
    };
    let reads = Reads(client);
    // Members and service accounts are shown with what the organization says they hold.
    let mut org: Option<Org> = None;
    let mut items: Vec<Account> = Vec::new();
    let mut done = false;
    while items.len() < size && !done {
        let room = (size - items.len()) as u32;
        match at.phase {
            AccountListing::Users => {
                let (users, next) =
                    reads.classic_page::<User>("organization/users", at.after.as_deref(), room)?;
                let org = match &mut org {
                    Some(org) => org,
                    None => org.insert(read_org(client)?),
                };
                let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
                let roles = assigned_roles(client, org, &ids)?;
                items.extend(
                    users
                        .iter()
                        .map(|u| user_account(u, &Holdings::of_user(u, org, roles.get(&u.id)))),
                );
                at = advance(at, users.len(), next, AccountListing::Invites);
            }
            AccountListing::Invites => {
                let (invites, next) = reads.classic_page::<Invite>(
                    "organization/invites",
                    at.after.as_deref(),
                    room,
                )?;
                let listed = invites.len();
                items.extend(invites.iter().filter(|i| i.status != "accepted").map(invite_account));
                at = advance(at, listed, next, AccountListing::ServiceAccounts);
            }
            AccountListing::ServiceAccounts => {
                let org = match &mut org {
                    Some(org) => org,
                    None => org.insert(Org {
                        projects: crate::directory::projects(client)?,
                        ..Org::default()
                    }),
                };
                let (project, after) = match at
                    .after
                    .as_deref()
                    .map(|k| k.split_once(' ').map_or((k, None), |(p, a)| (p, Some(a))))
                {
                    None => match org.projects.first() {
                        Some(first) => (first.clone(), None),
                        None => {
                            done = true;
                            continue;
                        }
                    },
                    Some((project, after)) => match org.project(project) {
                        Some(p) => (p.clone(), after.map(str::to_string)),
                        None => {
                            return Err(ConnectorError::InvalidArgument(format!(
                                "the cursor continues in project {project:?}, which no longer exists; start the listing again without a cursor"
                            )));
                        }
                    },
                };
                let path = format!("organization/projects/{}/service_accounts", project.id);
                let (accounts, next) =
                    reads.classic_page::<ServiceAccount>(&path, after.as_deref(), room)?;
                items.extend(accounts.iter().map(|a| service_account(&project, a)));
                at.offset += accounts.len() as u64;
                at.after = match next {
                    Some(key) => Some(format!("{} {key}", project.id)),
                    None => {
                        let position = org.projects.iter().position(|p| p.id == project.id);
                        match position.and_then(|i| org.projects.get(i + 1)) {
                            Some(following) => Some(following.id.clone()),
                            None => {
                                done = true;
                                None
                            }
                        }
                    }
                };
            }
        }
    }
    #[cfg(feature = "bug-repeat-cursor")]
    let done = {
        let _ = done;
        false
    };
    #[cfg(feature = "bug-repeat-cursor")]
    let at = Cursor::start(AccountListing::Users);
    Ok(Page { items, next_cursor: (!done).then(|| at.encode(scope)) })
}

/// The cursor after a page of `listed` items of `at`'s listing whose next key is `next`: the
/// same listing after that key, or the start of `following`.
fn advance<L: Listing>(
    mut at: Cursor<L>,
    listed: usize,
    next: Option<String>,
    following: L,
) -> Cursor<L> {
    match next {
        Some(key) => {
            at.offset += listed as u64;
            at.after = Some(key);
            at
        }
        None => Cursor { offset: at.offset + listed as u64, ..Cursor::start(following) },
    }
}

/// One page of entitlements.
pub fn entitlements<T: Transport>(
    client: &Client<'_, T>,
    settings: &Settings,
    request: &PageRequest,
) -> Result<Page<Entitlement>, ConnectorError> {
    let size = page_size(request.size, settings.page_size, MAX_PAGE_SIZE)? as usize;
    let scope = settings.base_url.as_str();
    let mut at = match &request.cursor {
        Some(raw) => Cursor::decode(raw, scope, &ENTITLEMENT_LISTINGS)?,
        None => Cursor::start(EntitlementListing::Fixed),
    };
    let reads = Reads(client);
    let mut items: Vec<Entitlement> = Vec::new();
    let mut done = false;
    while items.len() < size && !done {
        let room = size - items.len();
        match at.phase {
            EntitlementListing::Fixed => {
                let fixed = catalog::fixed_entitlements();
                let from = at.offset as usize;
                let taken: Vec<Entitlement> = fixed.iter().skip(from).take(room).cloned().collect();
                at.offset += taken.len() as u64;
                items.extend(taken);
                if at.offset as usize >= fixed.len() {
                    at = Cursor::start(EntitlementListing::Projects);
                }
            }
            EntitlementListing::Projects => {
                // A project whose owner role ended the last page: its member role first.
                if let Some(project) = at.after.as_deref().and_then(|k| k.strip_suffix(" owner")) {
                    let project: Project =
                        client.get_json(&format!("organization/projects/{project}"))?;
                    let [_, member] = catalog::project_entitlements(
                        &project.id,
                        &project.name,
                        project.is_archived(),
                    );
                    items.push(member);
                    at.after = Some(project.id);
                    continue;
                }
                let limit = (room as u32).div_ceil(2).min(CLASSIC_MAX_PAGE);
                let (projects, next) = reads.classic_page::<Project>(
                    "organization/projects?include_archived=true",
                    at.after.as_deref(),
                    limit,
                )?;
                let mut last_whole = at.after.clone();
                let mut split = None;
                for project in &projects {
                    let [owner, member] = catalog::project_entitlements(
                        &project.id,
                        &project.name,
                        project.is_archived(),
                    );
                    items.push(owner);
                    if items.len() >= size {
                        split = Some(project.id.clone());
                        break;
                    }
                    items.push(member);
                    last_whole = Some(project.id.clone());
                }
                match (split, next) {
                    (Some(project), _) => at.after = Some(format!("{project} owner")),
                    // Fewer projects fitted than were read: continue after the last one listed.
                    (None, _)
                        if last_whole.as_deref() != projects.last().map(|p| p.id.as_str()) =>
                    {
                        at.after = last_whole;
                    }
                    (None, Some(key)) => at.after = Some(key),
                    (None, None) => at = Cursor::start(EntitlementListing::Groups),
                }
            }
            EntitlementListing::Groups => {
                let (groups, next) = reads.rbac_page::<Group>(
                    "organization/groups",
                    at.after.as_deref(),
                    (room as u32).min(RBAC_MAX_PAGE),
                )?;
                items.extend(groups.iter().map(|g| Entitlement {
                    id: catalog::group(&g.id),
                    kind: "group".to_string(),
                    display_name: format!("Group {}", g.name),
                    description: if g.scim_managed {
                        format!("Member of group {} (its membership is managed by the identity provider through SCIM)", g.name)
                    } else {
                        format!("Member of group {}", g.name)
                    },
                    exclusion_group: None,
                    grantable: !g.scim_managed,
                }));
                at = match next {
                    Some(key) => Cursor { after: Some(key), ..at },
                    None => Cursor::start(EntitlementListing::Roles),
                };
            }
            EntitlementListing::Roles => {
                let (roles, next) = reads.rbac_page::<Role>(
                    "organization/roles",
                    at.after.as_deref(),
                    room as u32,
                )?;
                items.extend(roles.iter().filter(|r| r.is_custom_org_role()).map(|r| {
                    Entitlement {
                        id: catalog::custom_role(&r.id),
                        kind: "custom-role".to_string(),
                        display_name: format!("Role {}", r.name),
                        description: r
                            .description
                            .clone()
                            .filter(|d| !d.is_empty())
                            .unwrap_or_else(|| {
                                format!("Custom role {} of the organization", r.name)
                            }),
                        exclusion_group: None,
                        grantable: true,
                    }
                }));
                match next {
                    Some(key) => at.after = Some(key),
                    None => done = true,
                }
            }
        }
    }
    Ok(Page { items, next_cursor: (!done).then(|| at.encode(scope)) })
}

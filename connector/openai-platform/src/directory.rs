//! Reading the organization: its projects and their members, its groups and their members, its
//! custom roles, and the person an account reference names.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use connector_sdk::ConnectorError;
use connector_sdk::client::encode_query;
use connector_sdk::refs::{path_id, validate_email};
use connector_sdk::transport::Transport;
use connector_sdk::types::AccountRef;

use crate::api::{
    Client, Group, GroupUser, Invite, Project, ProjectUser, Reads, Role, ServiceAccount, User,
};

/// What a listing of accounts needs to know of the organization beyond its people: who is in
/// which project and group, and which custom roles exist.
#[derive(Debug, Clone, Default)]
pub struct Org {
    /// Every project, archived ones included.
    pub projects: Vec<Project>,
    /// Per user id, the projects they are a member of and their role in each.
    pub memberships: HashMap<String, BTreeMap<String, String>>,
    /// Every group.
    pub groups: Vec<Group>,
    /// Per user id, the groups they are in.
    pub group_members: HashMap<String, BTreeSet<String>>,
    /// The organization's custom roles (those it defined, assignable across it).
    pub custom_roles: Vec<Role>,
}

impl Org {
    /// The project with `id`.
    pub fn project(&self, id: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    /// The group with `id`.
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The custom role with `id`.
    pub fn custom_role(&self, id: &str) -> Option<&Role> {
        self.custom_roles.iter().find(|r| r.id == id)
    }
}

/// Every project, archived ones included.
pub fn projects<T: Transport>(client: &Client<'_, T>) -> Result<Vec<Project>, ConnectorError> {
    first(Reads(client).classic_all(&["organization/projects?include_archived=true".to_string()]))
}

/// Reads the organization: projects and groups with their members (each listing's first page
/// asked for together), and its custom roles.
pub fn read_org<T: Transport>(client: &Client<'_, T>) -> Result<Org, ConnectorError> {
    let reads = Reads(client);
    let projects = projects(client)?;
    let paths: Vec<String> =
        projects.iter().map(|p| format!("organization/projects/{}/users", p.id)).collect();
    let mut memberships: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for (project, members) in projects.iter().zip(reads.classic_all::<ProjectUser>(&paths)) {
        for member in members? {
            memberships.entry(member.id).or_default().insert(project.id.clone(), member.role);
        }
    }
    let groups: Vec<Group> = first(reads.rbac_all(&["organization/groups".to_string()]))?;
    let paths: Vec<String> =
        groups.iter().map(|g| format!("organization/groups/{}/users", g.id)).collect();
    let mut group_members: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (group, members) in groups.iter().zip(reads.rbac_all::<GroupUser>(&paths)) {
        for member in members? {
            group_members.entry(member.id).or_default().insert(group.id.clone());
        }
    }
    let custom_roles = custom_roles(client)?;
    Ok(Org { projects, memberships, groups, group_members, custom_roles })
}

/// The organization's custom roles.
pub fn custom_roles<T: Transport>(client: &Client<'_, T>) -> Result<Vec<Role>, ConnectorError> {
    let roles: Vec<Role> = first(Reads(client).rbac_all(&["organization/roles".to_string()]))?;
    Ok(roles.into_iter().filter(Role::is_custom_org_role).collect())
}

/// The custom roles assigned to each of `users`, read only when the organization has any.
pub fn assigned_roles<T: Transport>(
    client: &Client<'_, T>,
    org: &Org,
    users: &[&str],
) -> Result<HashMap<String, BTreeSet<String>>, ConnectorError> {
    if org.custom_roles.is_empty() || users.is_empty() {
        return Ok(HashMap::new());
    }
    let paths: Vec<String> =
        users.iter().map(|u| format!("organization/users/{u}/roles")).collect();
    let mut assigned = HashMap::new();
    for (user, roles) in users.iter().zip(Reads(client).rbac_all::<Role>(&paths)) {
        let ids =
            roles?.into_iter().filter(|r| org.custom_role(&r.id).is_some()).map(|r| r.id).collect();
        assigned.insert(user.to_string(), ids);
    }
    Ok(assigned)
}

/// The only listing's outcome.
fn first<I>(outcomes: Vec<Result<Vec<I>, ConnectorError>>) -> Result<Vec<I>, ConnectorError> {
    outcomes.into_iter().next().unwrap_or_else(|| Ok(Vec::new()))
}

/// What an account reference names: a member, a pending invite, an expired one, or a project's
/// service account. All empty when no one has that address.
#[derive(Debug, Clone, Default)]
pub struct Person {
    /// The member.
    pub user: Option<User>,
    /// The pending invite.
    pub invite: Option<Invite>,
    /// The latest expired invite, when there is no member and no pending invite.
    pub expired: Option<Invite>,
    /// The service account and the project it belongs to.
    pub service_account: Option<(Project, ServiceAccount)>,
}

impl Person {
    /// The address, where the person has one.
    pub fn email(&self) -> Option<&str> {
        self.user
            .as_ref()
            .map(|u| u.email.as_str())
            .or(self.invite.as_ref().map(|i| i.email.as_str()))
            .or(self.expired.as_ref().map(|i| i.email.as_str()))
    }

    /// Whether the reference named no one.
    pub fn is_nobody(&self) -> bool {
        self.user.is_none()
            && self.invite.is_none()
            && self.expired.is_none()
            && self.service_account.is_none()
    }
}

/// Finds people, reading the organization's invites at most once (the Admin API finds no
/// invite by address).
pub struct Finder<'c, 'a, T: Transport> {
    client: &'c Client<'a, T>,
    invites: Option<Vec<Invite>>,
    service_accounts: Option<Vec<(Project, ServiceAccount)>>,
}

impl<'c, 'a, T: Transport> Finder<'c, 'a, T> {
    /// A finder reading through `client`.
    pub fn new(client: &'c Client<'a, T>) -> Self {
        Finder { client, invites: None, service_accounts: None }
    }

    fn invites(&mut self) -> Result<&[Invite], ConnectorError> {
        if self.invites.is_none() {
            self.invites =
                Some(first(Reads(self.client).classic_all(&["organization/invites".to_string()]))?);
        }
        Ok(self.invites.as_deref().unwrap_or_default())
    }

    fn service_accounts(&mut self) -> Result<&[(Project, ServiceAccount)], ConnectorError> {
        if self.service_accounts.is_none() {
            let projects = projects(self.client)?;
            let paths: Vec<String> = projects
                .iter()
                .map(|p| format!("organization/projects/{}/service_accounts", p.id))
                .collect();
            let mut all = Vec::new();
            for (project, accounts) in
                projects.iter().zip(Reads(self.client).classic_all::<ServiceAccount>(&paths))
            {
                all.extend(accounts?.into_iter().map(|a| (project.clone(), a)));
            }
            self.service_accounts = Some(all);
        }
        Ok(self.service_accounts.as_deref().unwrap_or_default())
    }

    /// The person with `email`: member, pending invite or, failing both, the latest expired
    /// invite.
    pub fn by_email(&mut self, email: &str) -> Result<Person, ConnectorError> {
        let email = validate_email(email)?.to_lowercase();
        let path = format!("organization/users?emails[]={}", encode_query(&email));
        let (users, _) = Reads(self.client).classic_page::<User>(&path, None, 100)?;
        let user = users.into_iter().find(|u| u.email.to_lowercase() == email);
        let invites = self.invites()?;
        let mine = || invites.iter().filter(|i| i.email.to_lowercase() == email);
        let invite = mine().find(|i| i.is_pending()).cloned();
        let expired = match (&user, &invite) {
            (None, None) => mine().filter(|i| i.is_expired()).max_by_key(|i| i.created_at).cloned(),
            _ => None,
        };
        Ok(Person { user, invite, expired, service_account: None })
    }

    /// The person whose account id is `id`: a user, an invite, or a service account.
    pub fn by_id(&mut self, id: &str) -> Result<Person, ConnectorError> {
        let id = path_id(id, "account id")?;
        match self.client.get_json::<User>(&format!("organization/users/{id}")) {
            Ok(user) => return Ok(Person { user: Some(user), ..Person::default() }),
            Err(ConnectorError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
        match self.client.get_json::<Invite>(&format!("organization/invites/{id}")) {
            // An accepted invite's person is the member.
            Ok(invite) if invite.status == "accepted" => return self.by_email(&invite.email),
            Ok(invite) if invite.is_pending() => {
                return Ok(Person { invite: Some(invite), ..Person::default() });
            }
            Ok(invite) => return Ok(Person { expired: Some(invite), ..Person::default() }),
            Err(ConnectorError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
        let found = self.service_accounts()?.iter().find(|(_, a)| a.id == id).cloned();
        Ok(Person { service_account: found, ..Person::default() })
    }

    /// The person `reference` names.
    pub fn find(&mut self, reference: &AccountRef) -> Result<Person, ConnectorError> {
        match reference {
            AccountRef::Email(email) => self.by_email(email),
            AccountRef::Id(id) => self.by_id(id),
        }
    }

    /// Forgets what was read, so the next lookup reads the organization again (after writes).
    pub fn forget(&mut self) {
        self.invites = None;
        self.service_accounts = None;
    }
}

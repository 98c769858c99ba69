//! The mock's in-memory state: workspaces, members, invites, SCIM users and groups, tokens and
//! the request log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

pub use super::kit::RecordedRequest;
use super::kit::Traffic;

/// Console role values.
pub const ROLES: [&str; 4] =
    ["account-owner", "account-admin", "standard-user", "analytics-viewer"];
/// Console seat type values.
pub const SEAT_TYPES: [&str; 2] = ["default", "usage_based"];

/// A ChatGPT plan: what a workspace may hold and how its seats change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// ChatGPT Business: Codex seats only if it had one before 2026-06-24; seat changes in the
    /// console.
    Business,
    /// ChatGPT Enterprise: Codex seats and Analytics Viewers; seat changes through the account
    /// manager.
    #[default]
    Enterprise,
    /// ChatGPT Edu: no Codex seats.
    Edu,
    /// ChatGPT for Teachers: no Codex seats.
    Teachers,
    /// ChatGPT for Healthcare: no Codex seats.
    Healthcare,
}

impl Plan {
    /// `plan_type` in the settings object.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Business => "business",
            Plan::Enterprise => "enterprise",
            Plan::Edu => "edu",
            Plan::Teachers => "teachers",
            Plan::Healthcare => "healthcare",
        }
    }

    /// Whether a workspace of this plan can have Codex seats at all (Business only when
    /// `codex_seats_enabled`).
    pub fn has_codex_seats(self) -> bool {
        matches!(self, Plan::Business | Plan::Enterprise)
    }

    /// How an existing member's seat type changes on this plan unless a fixture says otherwise.
    pub fn default_seat_changes(self) -> SeatChanges {
        match self {
            Plan::Business => SeatChanges::SelfService,
            _ => SeatChanges::AccountManager,
        }
    }
}

impl std::str::FromStr for Plan {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let plans = [Plan::Business, Plan::Enterprise, Plan::Edu, Plan::Teachers, Plan::Healthcare];
        plans.into_iter().find(|p| p.as_str() == name).ok_or_else(|| {
            format!("no plan {name:?}; plans are business, enterprise, edu, teachers, healthcare")
        })
    }
}

impl std::str::FromStr for SeatChanges {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "account-manager" => Ok(SeatChanges::AccountManager),
            "self-service" => Ok(SeatChanges::SelfService),
            _ => Err(format!("no seat-change mode {name:?}; use account-manager or self-service")),
        }
    }
}

/// How an existing member's seat type changes (*assumed* in the reference: a switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeatChanges {
    /// `PATCH {"seat_type"}` of a member is refused 403: the OpenAI account manager does it.
    AccountManager,
    /// An Owner changes it in the console.
    SelfService,
}

/// A workspace member, serialized exactly as the console API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `user-...`
    pub id: String,
    /// `user-...__<account id>`
    pub account_user_id: String,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Console role value.
    pub role: String,
    /// Console seat type value.
    pub seat_type: String,
    /// Creation time, RFC 3339 with microseconds.
    pub created_time: String,
    /// Whether SCIM owns the member.
    pub is_scim_managed: bool,
    /// Set when deactivated.
    pub deactivated_time: Option<String>,
}

/// A pending invite, serialized exactly as the console API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// A UUID.
    pub id: String,
    /// Invited address.
    pub email_address: String,
    /// Console role value.
    pub role: String,
    /// Console seat type value.
    pub seat_type: String,
    /// Invite status code (2: pending).
    pub status: u8,
    /// Creation time.
    pub created_time: String,
    /// Whether SCIM created it.
    pub is_scim_managed: bool,
}

impl Invite {
    /// A pending invite a write creates now, its id and time the next of the mock's `sequence`.
    pub(crate) fn pending(
        sequence: &mut u64,
        email_address: String,
        role: String,
        seat_type: String,
        is_scim_managed: bool,
    ) -> Invite {
        let created_time = super::seed::next_time(sequence);
        Invite {
            id: super::seed::invite_id(*sequence),
            email_address,
            role,
            seat_type,
            status: 2,
            created_time,
            is_scim_managed,
        }
    }
}

/// A pending request to join the workspace (*assumed* shape), serialized as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// A UUID.
    pub id: String,
    /// The address of the person asking.
    pub email: String,
    /// Their name.
    pub name: String,
    /// When they asked.
    pub created_time: String,
}

/// A group Owners and Admins made in the console (*assumed* shapes): it gates GPTs, projects
/// and apps and never changes a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleGroup {
    /// A UUID.
    pub id: String,
    /// Its name, unique case-insensitively.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Console ids of its members, in the order added.
    pub members: Vec<String>,
    /// Creation time.
    pub created_time: String,
}

/// An email of a SCIM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimEmail {
    /// The address, as given.
    pub value: String,
    /// `type` on the wire (`work`, `home`, ...).
    pub kind: Option<String>,
    /// The address the workspace knows the person by; at most one.
    pub primary: bool,
}

/// A user of the workspace's SCIM directory. Its id is the console id of the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimUser {
    /// `user-...`: the id of the console member this user is (or becomes on accepting).
    pub id: String,
    /// Lowercased; unique case-insensitively.
    pub user_name: String,
    /// The identity provider's id.
    pub external_id: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// `name.givenName`.
    pub given_name: Option<String>,
    /// `name.familyName`.
    pub family_name: Option<String>,
    /// At least one; values unique across users.
    pub emails: Vec<ScimEmail>,
    /// Inactive users have no member, no invite and no group.
    pub active: bool,
    /// `meta.created`.
    pub created: String,
    /// `meta.lastModified`.
    pub last_modified: String,
}

/// A SCIM group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// A UUID.
    pub id: String,
    /// Unique case-insensitively.
    pub display_name: String,
    /// The identity provider's id.
    pub external_id: Option<String>,
    /// SCIM user ids of active users, in the order added.
    pub members: Vec<String>,
    /// `meta.created`.
    pub created: String,
    /// `meta.lastModified`.
    pub last_modified: String,
}

/// A ChatGPT workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// Workspace (account) id.
    pub account_id: String,
    /// The plan.
    pub plan: Plan,
    /// Whether the workspace may hold Codex seats: always on Enterprise, never on Edu, Teachers
    /// or Healthcare, and on Business only if it had one before 2026-06-24.
    pub codex_seats_enabled: bool,
    /// Switch: how an existing member's seat type changes.
    pub seat_changes: SeatChanges,
    /// Seat type of invites that name none.
    pub default_seat_type: String,
    /// Members, in creation order.
    pub members: Vec<Member>,
    /// Pending invites, in creation order.
    pub invites: Vec<Invite>,
    /// Pending join requests, in the order they were made.
    pub join_requests: Vec<JoinRequest>,
    /// Switch: whether the console serves join requests at all (their shapes are assumed; off,
    /// the routes answer 404 as for any path the service does not have).
    pub join_requests_served: bool,
    /// A deactivated workspace answers 401 `account_deactivated`.
    pub deactivated: bool,
    /// Paid seats: inviting beyond active members plus pending invites answers
    /// `seat_true_up_pending`. `None`: unlimited.
    pub seat_limit: Option<usize>,
    /// Switch: a Business workspace younger than 30 days refuses new Owners (400).
    pub owner_change_locked: bool,
    /// Which of the three observed shapes `errored_emails` entries take.
    pub errored_email_shape: ErroredEmailShape,
    /// Switch: answer writes with success but do not apply them (the service's 2xx is
    /// provisional; careful clients read back). Applies to SCIM writes too.
    pub drop_writes: bool,
    /// The directory id in the SCIM base URL; `None`: no SCIM.
    pub scim_directory: Option<String>,
    /// SCIM users, in creation order.
    pub scim_users: Vec<ScimUser>,
    /// SCIM groups, in creation order.
    pub groups: Vec<Group>,
    /// Console groups, in creation order.
    pub console_groups: Vec<ConsoleGroup>,
    /// Switch: whether the console serves groups at all (their shapes are assumed; off, the
    /// routes answer 404).
    pub console_groups_served: bool,
    /// Every change of a member's or invite's state the console applied, in order: what a
    /// test compares a client's report of its changes with.
    pub change_log: Vec<AppliedChange>,
}

/// One change of state the mock's console applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppliedChange {
    /// The person's email, lowercase.
    pub email: String,
    /// What changed.
    pub kind: AppliedChangeKind,
}

/// What one applied change did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum AppliedChangeKind {
    /// A member's role changed.
    Role {
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// A member's seat type changed.
    Seat {
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// A member was removed.
    Removed,
    /// An invite was created.
    Invited {
        /// Its role.
        role: String,
        /// Its seat type.
        seat: String,
    },
    /// A pending invite was cancelled.
    InviteCancelled,
    /// A join request was approved: the person became a member.
    JoinApproved {
        /// Their role.
        role: String,
        /// Their seat type.
        seat: String,
    },
    /// A join request was rejected.
    JoinRejected,
    /// A member was added to a console group.
    AddedToGroup {
        /// The group's id.
        group: String,
    },
    /// A member was removed from a console group.
    RemovedFromGroup {
        /// The group's id.
        group: String,
    },
}

/// The shapes of `errored_emails` entries seen from the real service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErroredEmailShape {
    /// `{"email_address": .., "error": ..}`
    #[default]
    EmailAddress,
    /// `{"email": .., "error": ..}`
    Email,
    /// A bare string: the address.
    Bare,
}

impl Workspace {
    /// The member with this email, case-insensitively.
    pub fn member_by_email(&self, email: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.email.eq_ignore_ascii_case(email))
    }

    /// The pending join request of this email, case-insensitively.
    pub fn join_request_by_email(&self, email: &str) -> Option<&JoinRequest> {
        self.join_requests.iter().find(|r| r.email.eq_ignore_ascii_case(email))
    }

    /// The pending invite for this email, case-insensitively.
    pub fn invite_by_email(&self, email: &str) -> Option<&Invite> {
        self.invites.iter().find(|i| i.email_address.eq_ignore_ascii_case(email))
    }

    /// Seats in use: active members and pending invites.
    pub fn seats_used(&self) -> usize {
        self.members.iter().filter(|m| m.deactivated_time.is_none()).count() + self.invites.len()
    }

    /// An empty workspace.
    pub fn new(account_id: &str) -> Self {
        Workspace {
            account_id: account_id.to_string(),
            plan: Plan::Enterprise,
            codex_seats_enabled: true,
            seat_changes: SeatChanges::AccountManager,
            default_seat_type: "default".to_string(),
            members: Vec::new(),
            invites: Vec::new(),
            join_requests: Vec::new(),
            join_requests_served: true,
            deactivated: false,
            seat_limit: None,
            owner_change_locked: false,
            errored_email_shape: ErroredEmailShape::default(),
            drop_writes: false,
            scim_directory: None,
            scim_users: Vec::new(),
            groups: Vec::new(),
            console_groups: Vec::new(),
            console_groups_served: true,
            change_log: Vec::new(),
        }
    }

    /// Whether a console group is synced by SCIM: a SCIM group of the same name makes it so, and
    /// its membership is then the identity provider's.
    pub fn console_group_synced(&self, group: &ConsoleGroup) -> bool {
        self.groups.iter().any(|g| g.display_name.eq_ignore_ascii_case(&group.name))
    }

    /// Whether the workspace can hold seat type `seat` (console value).
    pub fn allows_seat(&self, seat: &str) -> bool {
        seat != "usage_based" || (self.plan.has_codex_seats() && self.codex_seats_enabled)
    }

    /// Whether the workspace can hold role `role` (console value): Analytics Viewer is
    /// Enterprise's only.
    pub fn allows_role(&self, role: &str) -> bool {
        role != "analytics-viewer" || self.plan == Plan::Enterprise
    }

    /// Sets the plan, with what it implies for Codex seats and seat changes: Codex seats on
    /// Enterprise and (when `codex_business`) Business, seat changes as the plan has them.
    pub fn set_plan(&mut self, plan: Plan, codex_business: bool) {
        self.plan = plan;
        self.codex_seats_enabled =
            plan == Plan::Enterprise || (plan == Plan::Business && codex_business);
        self.seat_changes = plan.default_seat_changes();
    }

    /// Adds to the change log.
    pub fn log_change(&mut self, email: &str, kind: AppliedChangeKind) {
        self.change_log.push(AppliedChange { email: email.to_lowercase(), kind });
    }
}

/// What a bearer token is allowed to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The workspace it belongs to.
    pub account_id: String,
    /// Console role of the user who owns the token.
    pub role: String,
    /// A revoked token answers 401 `token_invalidated`.
    pub revoked: bool,
}

/// A workspace-scoped key of the public Admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminKey {
    /// The workspace it belongs to.
    pub workspace_id: String,
    /// The permissions chosen for it, e.g. `chatgpt.enterprise.user.read`.
    pub permissions: Vec<String>,
}

/// Everything the mock holds.
#[derive(Debug, Default)]
pub struct MockData {
    /// Workspaces by id.
    pub workspaces: BTreeMap<String, Workspace>,
    /// Console tokens.
    pub tokens: BTreeMap<String, TokenInfo>,
    /// SCIM bearer tokens: token to directory id.
    pub scim_tokens: BTreeMap<String, String>,
    /// Admin API keys.
    pub admin_keys: BTreeMap<String, AdminKey>,
    /// Sequence of ids and times handed out by writes.
    pub sequence: u64,
}

/// A handle on the mock's state, shared by the server and its caller.
#[derive(Debug, Clone, Default)]
pub struct MockService {
    data: Arc<Mutex<MockData>>,
    traffic: Traffic,
}

impl MockService {
    /// An empty mock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the state for direct inspection or changes.
    pub fn lock(&self) -> MutexGuard<'_, MockData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the service down (every request dropped unhandled) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.traffic.set_down(down);
    }

    /// Its request log and fault plan.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Adds or replaces a workspace.
    pub fn put_workspace(&self, workspace: Workspace) {
        self.lock().workspaces.insert(workspace.account_id.clone(), workspace);
    }

    /// Adds a token for `account_id` held by a user with console role `role`.
    pub fn add_token(&self, token: &str, account_id: &str, role: &str) {
        self.lock().tokens.insert(
            token.to_string(),
            TokenInfo {
                account_id: account_id.to_string(),
                role: role.to_string(),
                revoked: false,
            },
        );
    }

    /// A copy of a workspace.
    pub fn workspace(&self, account_id: &str) -> Option<Workspace> {
        self.lock().workspaces.get(account_id).cloned()
    }

    /// A copy of the request log.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.traffic.requests()
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: super::faults::FaultPlan) {
        self.traffic.set_faults(plan);
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.traffic.clear_requests();
    }

    /// Adds an Admin API key for `workspace_id` holding `permissions`.
    pub fn add_admin_key(&self, key: &str, workspace_id: &str, permissions: &[&str]) {
        let permissions = permissions.iter().map(|p| p.to_string()).collect();
        let key_info = AdminKey { workspace_id: workspace_id.to_string(), permissions };
        self.lock().admin_keys.insert(key.to_string(), key_info);
    }

    /// Serves workspace `account_id` over SCIM as `directory`, for bearer `token`.
    pub fn enable_scim(&self, account_id: &str, directory: &str, token: &str) {
        let mut data = self.lock();
        if let Some(ws) = data.workspaces.get_mut(account_id) {
            ws.scim_directory = Some(directory.to_string());
        }
        data.scim_tokens.insert(token.to_string(), directory.to_string());
    }

    /// Creates a SCIM group as `POST /Groups` does: ids naming no active SCIM user are
    /// dropped. Returns its id; `None` when the workspace is unknown or the name is taken.
    pub fn add_group(
        &self,
        account_id: &str,
        display_name: &str,
        member_ids: &[&str],
    ) -> Option<String> {
        let mut data = self.lock();
        let MockData { workspaces, sequence, .. } = &mut *data;
        let fields = super::scim::identity::GroupFields {
            display_name: display_name.to_string(),
            external_id: None,
            members: member_ids.iter().map(|m| m.to_string()).collect(),
        };
        let ws = workspaces.get_mut(account_id)?;
        super::scim::identity::create_group(ws, sequence, fields).ok().map(|g| g.id)
    }

    /// Creates a console group of `member_ids` (console ids of members; others are dropped) as
    /// `POST /groups` and then `POST /groups/{id}/members` would. Returns its id; `None` when
    /// the workspace is unknown, the name taken or the workspace full.
    pub fn add_console_group(
        &self,
        account_id: &str,
        name: &str,
        member_ids: &[&str],
    ) -> Option<String> {
        let mut data = self.lock();
        let MockData { workspaces, sequence, .. } = &mut *data;
        let ws = workspaces.get_mut(account_id)?;
        let group = super::console_groups::create(ws, sequence, name, None).ok()?;
        let members: Vec<String> = member_ids
            .iter()
            .filter(|id| ws.members.iter().any(|m| m.id == **id))
            .map(|id| id.to_string())
            .collect();
        let created = ws.console_groups.iter_mut().find(|g| g.id == group)?;
        created.members = members;
        Some(group)
    }

    /// The person invited as `email` accepts: the pending invite becomes a member with the
    /// invite's role, seat type and SCIM flag. A person SCIM knows keeps their SCIM user's id.
    pub fn accept_invite(&self, account_id: &str, email: &str) -> Option<Member> {
        let mut data = self.lock();
        let MockData { workspaces, sequence, .. } = &mut *data;
        let ws = workspaces.get_mut(account_id)?;
        super::scim::identity::accept_invite(ws, sequence, email)
    }
}

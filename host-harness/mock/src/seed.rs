//! Seeding the mock: generated workspaces of any size, or fixtures in JSON or TOML.

use std::path::Path;

use serde::Deserialize;

use super::model::{
    Invite, JoinRequest, Member, MockData, MockService, Plan, ROLES, SEAT_TYPES, ScimEmail,
    SeatChanges, Workspace,
};
use super::scim::identity::{self, GroupFields, UserFields};

/// The largest fixture file read.
pub const MAX_FIXTURE_BYTES: u64 = 64 << 20;
/// The most members, and the most invites, a generated workspace may have: a mock of a million
/// people is still served in memory (about 300 bytes a person), a hundred million is not.
pub const MAX_GENERATED: usize = 1_000_000;

/// How many members and invites to generate, from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    /// Members (the first is the Owner).
    pub members: usize,
    /// Pending invites.
    #[serde(default)]
    pub invites: usize,
    /// Pending join requests.
    #[serde(default)]
    pub join_requests: usize,
    /// Seed: the same seed gives the same workspace.
    #[serde(default)]
    pub seed: u64,
}

impl GenerateSpec {
    /// Refuses a spec beyond [`MAX_GENERATED`], naming the field.
    pub fn check(&self) -> Result<(), String> {
        let counts = [
            ("members", self.members),
            ("invites", self.invites),
            ("join_requests", self.join_requests),
        ];
        for (field, count) in counts {
            if count > MAX_GENERATED {
                return Err(format!(
                    "`{field}` is {count}; a generated workspace has at most {MAX_GENERATED}"
                ));
            }
        }
        Ok(())
    }
}

/// A fixture file: one or more workspaces and their tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockFixture {
    /// The workspaces.
    #[serde(rename = "workspace")]
    pub workspaces: Vec<WorkspaceFixture>,
}

/// One workspace of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceFixture {
    /// Workspace id.
    pub account_id: String,
    /// `business`, `enterprise` (the default), `edu`, `teachers` or `healthcare`.
    #[serde(default)]
    pub plan: Plan,
    /// Whether a Business workspace may hold Codex seats (it had one before 2026-06-24);
    /// Enterprise always may, the other plans never. Default: false.
    #[serde(default)]
    pub codex_seats_enabled: bool,
    /// Switch: how an existing member's seat type changes, `account-manager` or `self-service`
    /// (default: self-service on Business, the account manager elsewhere).
    #[serde(default)]
    pub seat_changes: Option<SeatChanges>,
    /// `default` or `usage_based`.
    #[serde(default = "default_seat")]
    pub default_seat_type: String,
    /// Tokens that may call it.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenFixture>,
    /// Keys of its public Admin API (Enterprise and Edu).
    #[serde(default, rename = "admin_key")]
    pub admin_keys: Vec<AdminKeyFixture>,
    /// Paid seats (members plus invites); unlimited when absent.
    #[serde(default)]
    pub seat_limit: Option<usize>,
    /// Switch: refuse new Owners as a young Business workspace does.
    #[serde(default)]
    pub owner_change_locked: bool,
    /// Switch: acknowledge writes without applying them.
    #[serde(default)]
    pub drop_writes: bool,
    /// Shape of `errored_emails` entries: `email_address`, `email` or `bare`.
    #[serde(default)]
    pub errored_email_shape: super::model::ErroredEmailShape,
    /// Generated members and invites, added before the listed ones.
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
    /// Listed members.
    #[serde(default, rename = "member")]
    pub members: Vec<MemberFixture>,
    /// Listed invites.
    #[serde(default, rename = "invite")]
    pub invites: Vec<InviteFixture>,
    /// Listed join requests.
    #[serde(default, rename = "join_request")]
    pub join_requests: Vec<JoinRequestFixture>,
    /// Switch: whether the console serves join requests (default true).
    #[serde(default = "yes")]
    pub join_requests_served: bool,
    /// The SCIM directory and its token; `None`: no SCIM.
    #[serde(default)]
    pub scim: Option<ScimFixture>,
    /// SCIM users, created after members and invites as `POST /Users` creates them.
    #[serde(default, rename = "scim_user")]
    pub scim_users: Vec<ScimUserFixture>,
    /// SCIM groups, created after the SCIM users.
    #[serde(default, rename = "group")]
    pub groups: Vec<GroupFixture>,
}

/// The SCIM surface of a fixture workspace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimFixture {
    /// The directory id in the SCIM base URL.
    pub directory: String,
    /// Its bearer token.
    pub token: String,
}

/// A join request of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequestFixture {
    /// The address of the person asking.
    pub email: String,
    /// Their name (default: from the email).
    #[serde(default)]
    pub name: Option<String>,
}

/// A SCIM user of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimUserFixture {
    /// An email address; also the user's email.
    pub user_name: String,
    /// Active (default true).
    #[serde(default = "yes")]
    pub active: bool,
    /// `name.givenName`.
    #[serde(default)]
    pub given_name: Option<String>,
    /// `name.familyName`.
    #[serde(default)]
    pub family_name: Option<String>,
}

/// A SCIM group of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFixture {
    /// Unique case-insensitively.
    pub display_name: String,
    /// `user_name`s of the workspace's SCIM users (inactive ones are dropped, as on the wire).
    #[serde(default)]
    pub members: Vec<String>,
}

/// An Admin API key of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminKeyFixture {
    /// The key.
    pub key: String,
    /// Its permissions (default: `chatgpt.enterprise.user.read` only).
    #[serde(default = "user_read")]
    pub permissions: Vec<String>,
}

fn user_read() -> Vec<String> {
    vec![super::admin_api::USER_READ.to_string()]
}

/// A token of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFixture {
    /// The bearer token.
    pub token: String,
    /// Console role of its user (default `account-owner`).
    #[serde(default = "owner")]
    pub role: String,
}

/// A member of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberFixture {
    /// Email.
    pub email: String,
    /// Name (default: from the email).
    #[serde(default)]
    pub name: Option<String>,
    /// Console role (default `standard-user`).
    #[serde(default = "standard")]
    pub role: String,
    /// Seat type (default: the workspace default).
    #[serde(default)]
    pub seat_type: Option<String>,
    /// SCIM-managed.
    #[serde(default)]
    pub is_scim_managed: bool,
    /// Deactivated.
    #[serde(default)]
    pub deactivated: bool,
}

/// An invite of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteFixture {
    /// Email.
    pub email_address: String,
    /// Console role (default `standard-user`).
    #[serde(default = "standard")]
    pub role: String,
    /// Seat type (default: the workspace default).
    #[serde(default)]
    pub seat_type: Option<String>,
    /// SCIM-created.
    #[serde(default)]
    pub is_scim_managed: bool,
}

fn default_seat() -> String {
    "default".to_string()
}
fn owner() -> String {
    "account-owner".to_string()
}
fn standard() -> String {
    "standard-user".to_string()
}
fn yes() -> bool {
    true
}

/// Why a fixture was refused.
#[derive(Debug, thiserror::Error)]
#[error("mock fixture {origin}: {message}")]
pub struct FixtureError {
    /// File or description.
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

impl MockFixture {
    /// Reads a `.json` or `.toml` fixture.
    pub fn read(path: &Path) -> Result<Self, FixtureError> {
        let fail = |message: String| FixtureError { origin: path.display().to_string(), message };
        let text = accessgov_policy::bounded_read::read_text(path, MAX_FIXTURE_BYTES)
            .map_err(|e| fail(e.to_string()))?;
        let fixture: MockFixture = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?,
            Some("toml") => toml::from_str(&text).map_err(|e| fail(e.to_string()))?,
            _ => return Err(fail("must end in .json or .toml".to_string())),
        };
        fixture.validate().map_err(fail)?;
        Ok(fixture)
    }

    fn validate(&self) -> Result<(), String> {
        for ws in &self.workspaces {
            let at = format!("workspace {:?}", ws.account_id);
            if let Some(spec) = &ws.generate {
                spec.check().map_err(|e| format!("{at} generate: {e}"))?;
            }
            check_value(&at, "default_seat_type", &ws.default_seat_type, &SEAT_TYPES)?;
            if ws.codex_seats_enabled && ws.plan != Plan::Business {
                return Err(format!(
                    "{at}: codex_seats_enabled is for Business workspaces; {} {}",
                    ws.plan.as_str(),
                    if ws.plan.has_codex_seats() { "always has them" } else { "never has them" }
                ));
            }
            let mut rules = Workspace::new(&ws.account_id);
            rules.set_plan(ws.plan, ws.codex_seats_enabled);
            let fits = |at: &str, role: &str, seat: Option<&str>| -> Result<(), String> {
                if !rules.allows_role(role) {
                    return Err(format!(
                        "{at}: role {role:?} does not exist on the {} plan",
                        ws.plan.as_str()
                    ));
                }
                match seat {
                    Some(seat) if !rules.allows_seat(seat) => Err(format!(
                        "{at}: seat_type {seat:?} is not available on this workspace's plan ({}{})",
                        ws.plan.as_str(),
                        if ws.plan == Plan::Business { " without codex_seats_enabled" } else { "" }
                    )),
                    _ => Ok(()),
                }
            };
            fits(&at, "standard-user", Some(&ws.default_seat_type))?;
            for (i, t) in ws.tokens.iter().enumerate() {
                check_value(&format!("{at} token[{i}]"), "role", &t.role, &ROLES)?;
            }
            for (i, m) in ws.members.iter().enumerate() {
                let at = format!("{at} member[{i}]");
                check_value(&at, "role", &m.role, &ROLES)?;
                if let Some(seat) = &m.seat_type {
                    check_value(&at, "seat_type", seat, &SEAT_TYPES)?;
                }
                fits(&at, &m.role, m.seat_type.as_deref())?;
                check_email(&at, &m.email)?;
            }
            for (i, inv) in ws.invites.iter().enumerate() {
                let at = format!("{at} invite[{i}]");
                check_value(&at, "role", &inv.role, &ROLES)?;
                if let Some(seat) = &inv.seat_type {
                    check_value(&at, "seat_type", seat, &SEAT_TYPES)?;
                }
                fits(&at, &inv.role, inv.seat_type.as_deref())?;
                check_email(&at, &inv.email_address)?;
            }
            for (i, request) in ws.join_requests.iter().enumerate() {
                check_email(&format!("{at} join_request[{i}]"), &request.email)?;
            }
            validate_scim(ws, &at)?;
        }
        let mut directories: Vec<&str> = self
            .workspaces
            .iter()
            .filter_map(|w| w.scim.as_ref())
            .map(|s| s.directory.as_str())
            .collect();
        directories.sort_unstable();
        if let Some(pair) = directories.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("SCIM directory {:?} is used twice", pair[0]));
        }
        Ok(())
    }

    /// Loads every workspace and token into `service`.
    pub fn load_into(&self, service: &MockService) {
        for fixture in &self.workspaces {
            let mut ws = match fixture.generate {
                Some(spec) => generate(&fixture.account_id, spec),
                None => Workspace::new(&fixture.account_id),
            };
            ws.set_plan(fixture.plan, fixture.codex_seats_enabled);
            if let Some(mode) = fixture.seat_changes {
                ws.seat_changes = mode;
            }
            fit_to_plan(&mut ws);
            ws.default_seat_type = fixture.default_seat_type.clone();
            ws.seat_limit = fixture.seat_limit;
            ws.owner_change_locked = fixture.owner_change_locked;
            ws.drop_writes = fixture.drop_writes;
            ws.errored_email_shape = fixture.errored_email_shape;
            let mut ids = IdSource::new(ws.members.len() as u64 + 7919);
            for m in &fixture.members {
                let n = ws.members.len() + ws.invites.len();
                let id = ids.user_id();
                ws.members.push(Member {
                    account_user_id: format!("{id}__{}", ws.account_id),
                    id,
                    email: m.email.to_lowercase(),
                    name: m.name.clone().unwrap_or_else(|| name_from_email(&m.email)),
                    role: m.role.clone(),
                    seat_type: m.seat_type.clone().unwrap_or_else(|| ws.default_seat_type.clone()),
                    created_time: timestamp(n as u64),
                    is_scim_managed: m.is_scim_managed,
                    deactivated_time: m.deactivated.then(|| timestamp(n as u64 + 1)),
                });
            }
            for inv in &fixture.invites {
                let n = ws.members.len() + ws.invites.len();
                ws.invites.push(Invite {
                    id: ids.uuid(),
                    email_address: inv.email_address.to_lowercase(),
                    role: inv.role.clone(),
                    seat_type: inv
                        .seat_type
                        .clone()
                        .unwrap_or_else(|| ws.default_seat_type.clone()),
                    status: 2,
                    created_time: timestamp(n as u64),
                    is_scim_managed: inv.is_scim_managed,
                });
            }
            for request in &fixture.join_requests {
                let n = ws.members.len() + ws.invites.len() + ws.join_requests.len();
                ws.join_requests.push(JoinRequest {
                    id: ids.uuid(),
                    email: request.email.to_lowercase(),
                    name: request.name.clone().unwrap_or_else(|| name_from_email(&request.email)),
                    created_time: timestamp(n as u64),
                });
            }
            ws.join_requests_served = fixture.join_requests_served;
            service.put_workspace(ws);
            for token in &fixture.tokens {
                service.add_token(&token.token, &fixture.account_id, &token.role);
            }
            for key in &fixture.admin_keys {
                let permissions: Vec<&str> = key.permissions.iter().map(String::as_str).collect();
                service.add_admin_key(&key.key, &fixture.account_id, &permissions);
            }
            if let Some(scim) = &fixture.scim {
                service.enable_scim(&fixture.account_id, &scim.directory, &scim.token);
            }
            load_scim(fixture, &mut service.lock());
        }
    }
}

fn validate_scim(ws: &WorkspaceFixture, at: &str) -> Result<(), String> {
    if let Some(scim) = &ws.scim
        && (scim.directory.is_empty() || scim.token.is_empty())
    {
        return Err(format!("{at}: scim needs a directory and a token"));
    }
    if ws.scim.is_none() && (!ws.scim_users.is_empty() || !ws.groups.is_empty()) {
        return Err(format!("{at}: scim_user and group need scim = {{ directory, token }}"));
    }
    let mut names: Vec<String> = Vec::new();
    for (i, user) in ws.scim_users.iter().enumerate() {
        let at = format!("{at} scim_user[{i}]");
        check_email(&at, &user.user_name)?;
        let name = user.user_name.to_lowercase();
        if names.contains(&name) {
            return Err(format!("{at}: user_name {:?} is used twice", user.user_name));
        }
        names.push(name);
    }
    let mut groups: Vec<String> = Vec::new();
    for (i, group) in ws.groups.iter().enumerate() {
        let at = format!("{at} group[{i}]");
        let name = group.display_name.trim().to_lowercase();
        if name.is_empty() || groups.contains(&name) {
            return Err(format!(
                "{at}: display_name {:?} is empty or used twice",
                group.display_name
            ));
        }
        groups.push(name);
        if let Some(unknown) = group.members.iter().find(|m| !names.contains(&m.to_lowercase())) {
            return Err(format!("{at}: member {unknown:?} is not a scim_user of the workspace"));
        }
    }
    Ok(())
}

/// Creates the fixture's SCIM users and groups through the same code as `POST /Users` and
/// `POST /Groups`, so invites and members link as they would on the wire.
fn load_scim(fixture: &WorkspaceFixture, data: &mut MockData) {
    let MockData { workspaces, sequence, .. } = data;
    let Some(ws) = workspaces.get_mut(&fixture.account_id) else { return };
    for user in &fixture.scim_users {
        let user_name = user.user_name.to_lowercase();
        let fields = UserFields {
            emails: vec![ScimEmail {
                value: user_name.clone(),
                kind: Some("work".into()),
                primary: true,
            }],
            user_name,
            external_id: None,
            display_name: None,
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            active: Some(user.active),
        };
        if let Err(e) = identity::create_user(ws, sequence, fields) {
            tracing::warn!("fixture SCIM user {} not created: {}", user.user_name, e.detail);
        }
    }
    for group in &fixture.groups {
        let members = group
            .members
            .iter()
            .filter_map(|name| {
                ws.scim_users.iter().find(|u| u.user_name.eq_ignore_ascii_case(name))
            })
            .map(|u| u.id.clone())
            .collect();
        let fields =
            GroupFields { display_name: group.display_name.clone(), external_id: None, members };
        if let Err(e) = identity::create_group(ws, sequence, fields) {
            tracing::warn!("fixture group {} not created: {}", group.display_name, e.detail);
        }
    }
}

fn check_value(at: &str, field: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!("{at}: {field} {value:?} is not one of {}", allowed.join(", ")))
    }
}

fn check_email(at: &str, email: &str) -> Result<(), String> {
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') => Ok(()),
        _ => Err(format!("{at}: {email:?} is not an email address")),
    }
}

/// A display name guessed from an address: `ann.lee@x` is `ann lee`.
pub(crate) fn name_from_email(email: &str) -> String {
    email.split('@').next().unwrap_or(email).replace(['.', '_'], " ")
}

/// A fresh invite id (UUID shape) for sequence number `n`.
pub(crate) fn invite_id(n: u64) -> String {
    IdSource::new(n.wrapping_mul(0x5851_f42d_4c95_7f2d)).uuid()
}

/// A fresh `user-...` id for sequence number `n`.
pub(crate) fn user_id(n: u64) -> String {
    IdSource::new(n.wrapping_mul(0x2545_f491_4f6c_dd1d)).user_id()
}

/// Deterministic ids and choices (SplitMix64), so a seed always gives the same workspace.
struct IdSource(u64);

impl IdSource {
    fn new(seed: u64) -> Self {
        IdSource(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn user_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let tail: String = (0..24)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len() as u64) as usize]))
            .collect();
        format!("user-{tail}")
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

const FIRST: [&str; 16] = [
    "ann", "bob", "chen", "dana", "emil", "fatima", "george", "hana", "ivan", "julia", "kofi",
    "lena", "mateo", "nora", "omar", "priya",
];
const LAST: [&str; 12] = [
    "lee", "smith", "garcia", "kim", "novak", "okafor", "rossi", "tanaka", "weber", "silva",
    "haddad", "berg",
];

/// Generates a workspace: the first member is the Owner; about 5% are Admins, 3% Analytics
/// Viewers, 20% hold Codex seats, 3% are SCIM-managed and 2% deactivated.
pub fn generate(account_id: &str, spec: GenerateSpec) -> Workspace {
    let mut rng = IdSource::new(spec.seed);
    let mut ws = Workspace::new(account_id);
    for i in 0..spec.members {
        let (first, last) = (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
        let roll = rng.below(100);
        let role = match (i, roll) {
            (0, _) => "account-owner",
            (_, 0..=4) => "account-admin",
            (_, 5..=7) => "analytics-viewer",
            _ => "standard-user",
        };
        let id = rng.user_id();
        ws.members.push(Member {
            account_user_id: format!("{id}__{account_id}"),
            id,
            email: format!("{first}.{last}{i}@acme.example.com"),
            name: format!("{} {}", capitalize(first), capitalize(last)),
            role: role.to_string(),
            seat_type: SEAT_TYPES[usize::from(rng.below(100) < 20)].to_string(),
            created_time: timestamp(i as u64),
            is_scim_managed: i > 0 && rng.below(100) < 3,
            deactivated_time: (i > 0 && rng.below(100) < 2).then(|| timestamp(i as u64 + 1000)),
        });
    }
    for i in 0..spec.invites {
        ws.invites.push(Invite {
            id: rng.uuid(),
            email_address: format!("invitee{i}@partner.example.org"),
            role: if rng.below(10) == 0 { "account-admin" } else { "standard-user" }.to_string(),
            seat_type: SEAT_TYPES[usize::from(rng.below(100) < 30)].to_string(),
            status: 2,
            created_time: timestamp((spec.members + i) as u64),
            is_scim_managed: false,
        });
    }
    for i in 0..spec.join_requests {
        let (first, last) = (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
        ws.join_requests.push(JoinRequest {
            id: rng.uuid(),
            email: format!("{first}.{last}.asks{i}@acme.example.com"),
            name: format!("{} {}", capitalize(first), capitalize(last)),
            created_time: timestamp((spec.members + spec.invites + i) as u64),
        });
    }
    ws
}

/// Gives the people of a generated workspace only roles and seats its plan has: an Analytics
/// Viewer outside Enterprise becomes a Member, a Codex seat where there are none a ChatGPT one.
pub fn fit_to_plan(ws: &mut Workspace) {
    let (role_ok, seat_ok) = (ws.allows_role("analytics-viewer"), ws.allows_seat("usage_based"));
    let fit_role = |role: &mut String| {
        if !role_ok && role == "analytics-viewer" {
            *role = "standard-user".to_string();
        }
    };
    let fit_seat = |seat: &mut String| {
        if !seat_ok && seat == "usage_based" {
            *seat = "default".to_string();
        }
    };
    for m in &mut ws.members {
        fit_role(&mut m.role);
        fit_seat(&mut m.seat_type);
    }
    for i in &mut ws.invites {
        fit_role(&mut i.role);
        fit_seat(&mut i.seat_type);
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

/// `2026-01-01T00:00:00.000000Z` plus `n` minutes and some microseconds, RFC 3339.
pub(crate) fn timestamp(n: u64) -> String {
    let secs = 1_767_225_600 + n * 60;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        (n * 7919) % 1_000_000
    )
}

/// The time of the mock's next write: advances `sequence`, whose new value also names what the
/// write creates (`invite_id(sequence)`, `user_id(sequence)`).
pub(crate) fn next_time(sequence: &mut u64) -> String {
    *sequence += 1;
    timestamp(100_000 + *sequence)
}

/// An RFC 3339 time in UTC (`2026-01-01T00:00:00.000000Z`, fraction optional) as Unix seconds;
/// `None` for anything else.
pub fn unix_seconds(time: &str) -> Option<i64> {
    let (date, clock) = time.strip_suffix('Z')?.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let clock = clock.split('.').next()?;
    let mut clock = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (clock.next()??, clock.next()??, clock.next()??);
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 to a civil date (year, month, day), by Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_reads_what_timestamp_writes() {
        assert_eq!(unix_seconds(&timestamp(0)), Some(1_767_225_600));
        assert_eq!(unix_seconds(&timestamp(1234)), Some(1_767_225_600 + 1234 * 60));
        assert_eq!(unix_seconds("2000-02-29T12:00:00Z"), Some(951_825_600));
        for bad in ["", "2026-01-01", "2026-01-01T00:00:00", "x-01-01T00:00:00Z"] {
            assert_eq!(unix_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn generation_is_deterministic_and_well_formed() {
        let spec = GenerateSpec { members: 300, invites: 40, seed: 7, join_requests: 0 };
        let a = generate("ws", spec);
        assert_eq!(a, generate("ws", spec));
        assert_eq!(a.members[0].role, "account-owner");
        let mut emails: Vec<&str> = a.members.iter().map(|m| m.email.as_str()).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), 300);
        assert_eq!(timestamp(0), "2026-01-01T00:00:00.000000Z");
        assert!(a.invites.iter().all(|i| i.id.len() == 36));
    }

    #[test]
    fn a_bad_fixture_names_the_field() {
        let fixture: MockFixture = toml::from_str(
            "[[workspace]]\naccount_id = \"w\"\n[[workspace.member]]\nemail = \"a@b.com\"\nrole = \"boss\"\n",
        )
        .unwrap();
        let err = fixture.validate().unwrap_err();
        assert!(err.contains("member[0]: role \"boss\""), "{err}");
    }

    const SCIM_FIXTURE: &str = r#"
[[workspace]]
account_id = "w"
scim = { directory = "dir-1", token = "scim-t" }
[[workspace.member]]
email = "ann@acme.com"
[[workspace.invite]]
email_address = "bob@acme.com"
role = "account-admin"
[[workspace.scim_user]]
user_name = "Ann@acme.com"
given_name = "Ann"
[[workspace.scim_user]]
user_name = "bob@acme.com"
[[workspace.scim_user]]
user_name = "cy@acme.com"
[[workspace.scim_user]]
user_name = "dee@acme.com"
active = false
[[workspace.group]]
display_name = "Eng"
members = ["ann@acme.com", "CY@acme.com", "dee@acme.com"]
"#;

    #[test]
    fn scim_fixtures_link_members_invites_and_groups() {
        let fixture: MockFixture = toml::from_str(SCIM_FIXTURE).unwrap();
        fixture.validate().unwrap();
        let service = MockService::new();
        fixture.load_into(&service);
        let ws = service.workspace("w").unwrap();
        assert_eq!(ws.scim_directory.as_deref(), Some("dir-1"));
        assert_eq!(service.lock().scim_tokens.get("scim-t").map(String::as_str), Some("dir-1"));
        let user = |name: &str| ws.scim_users.iter().find(|u| u.user_name == name).unwrap();
        // Ann was a member: SCIM took her over, same id.
        let ann = ws.member_by_email("ann@acme.com").unwrap();
        assert_eq!(
            (user("ann@acme.com").id.as_str(), ann.is_scim_managed),
            (ann.id.as_str(), true)
        );
        // Bob's console invite was taken over, keeping its role; Cy got a SCIM invite; Dee,
        // inactive, got none.
        let bob = ws.invite_by_email("bob@acme.com").unwrap();
        assert_eq!((bob.role.as_str(), bob.is_scim_managed), ("account-admin", true));
        let cy = ws.invite_by_email("cy@acme.com").unwrap();
        assert_eq!(
            (cy.role.as_str(), cy.seat_type.as_str(), cy.is_scim_managed),
            ("standard-user", "default", true)
        );
        assert!(ws.invite_by_email("dee@acme.com").is_none());
        assert_eq!(ws.groups.len(), 1);
        assert_eq!(
            ws.groups[0].members,
            vec![user("ann@acme.com").id.clone(), user("cy@acme.com").id.clone()]
        );
    }

    #[test]
    fn bad_scim_fixtures_name_the_problem() {
        let bad = |text: &str| {
            toml::from_str::<MockFixture>(text)
                .map_err(|e| e.to_string())
                .and_then(|f| f.validate())
                .unwrap_err()
        };
        let err = bad(&SCIM_FIXTURE.replace("\"CY@acme.com\"", "\"zed@acme.com\""));
        assert!(err.contains("group[0]: member \"zed@acme.com\""), "{err}");
        let err = bad(
            &SCIM_FIXTURE.replace("scim = { directory = \"dir-1\", token = \"scim-t\" }\n", "")
        );
        assert!(err.contains("need scim"), "{err}");
        let err =
            bad(&SCIM_FIXTURE
                .replace("user_name = \"bob@acme.com\"", "user_name = \"ANN@acme.com\""));
        assert!(err.contains("scim_user[1]: user_name"), "{err}");
        let err = bad(&SCIM_FIXTURE.replace("user_name = \"cy@acme.com\"", "user_name = \"cy\""));
        assert!(err.contains("scim_user[2]"), "{err}");
        let err = bad(&SCIM_FIXTURE.replace("active = false", "activ = false"));
        assert!(err.contains("unknown field"), "{err}");
    }
}

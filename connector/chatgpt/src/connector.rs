//! The connector's operations, over any transport.

use std::cell::OnceCell;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::accounts::{
    INVITE_ID_PREFIX, REQUEST_ID_PREFIX, console_group_entitlement, member_account,
    request_account, validate_email, validate_id,
};
use crate::api::Surface;
use crate::api::{
    ConsoleClient, ConsoleGroupInfo, ConsoleReads, Invite, JoinRequest, ListPage, Member,
    console_client,
};
use crate::catalog;
use crate::cursor::{Cursor, Phase, carried_held_groups, carry_held_groups};
use crate::scim;
use crate::settings::{CONFIG_SCHEMA, MAX_PAGE_SIZE, Settings};
use crate::workspace::WorkspaceRules;
use connector_sdk::ConnectorError;
use connector_sdk::client::{JsonClient, RetryClock};
use connector_sdk::settings::ConfigSource;
use connector_sdk::transport::Transport;
use connector_sdk::types::{
    Account, AccountRef, AccountStatus, ChangeResult, ConnectionReport, ConnectorInfo, Entitlement,
    PageRequest,
};
use connector_sdk::{ChangeRequest, Connector, Page};

/// The ChatGPT workspace connector for one tenant's settings.
pub struct ChatGptConnector<T: Transport> {
    pub(crate) transport: T,
    pub(crate) settings: Settings,
    /// What the workspace's plan allows, read once a call and only when needed.
    rules: OnceCell<WorkspaceRules>,
    /// Where the integration account stands, read once a call and only when needed.
    integration: OnceCell<IntegrationAccount>,
    /// The first page of console groups, when it was read beside a listing's pages.
    pub(crate) console_groups_first: OnceCell<Result<ListPage<ConsoleGroupInfo>, ConnectorError>>,
    /// The retrying this call has done, across its clients, bounded by the retry budget.
    pub(crate) retrying: RetryClock,
}

/// Describes the connector; needs no settings.
pub fn info() -> ConnectorInfo {
    ConnectorInfo {
        name: "chatgpt".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        application: "ChatGPT Business/Enterprise workspace".to_string(),
        entitlement_kinds: ["access", "role", "seat", "group", "console-group"]
            .map(String::from)
            .to_vec(),
        exclusion_groups: catalog::exclusion_groups(),
        capabilities: connector_sdk::connector::every_capability(),
        config_schema: CONFIG_SCHEMA.to_string(),
    }
}

impl<T: Transport> ChatGptConnector<T> {
    /// A connector sending through `transport` with validated `settings`.
    pub fn new(transport: T, settings: Settings) -> Self {
        ChatGptConnector {
            transport,
            settings,
            rules: OnceCell::new(),
            integration: OnceCell::new(),
            console_groups_first: OnceCell::new(),
            retrying: RetryClock::default(),
        }
    }

    /// A client of the console; `unsupported` for a read-only tenant, which has none.
    pub(crate) fn console(&self) -> Result<ConsoleClient<'_, T>, ConnectorError> {
        let base = self.settings.account_base().ok_or_else(|| {
            ConnectorError::Unsupported(format!("{READ_ONLY}; this needs the console (`base-url`)"))
        })?;
        Ok(console_client(&self.transport, base, self.settings.retry, self.retrying.clone()))
    }

    /// A client of the public Admin API, when the tenant reads members through it.
    pub(crate) fn admin(&self) -> Option<ConsoleClient<'_, T>> {
        let base = self.settings.admin_base()?;
        let (policy, clock) = (self.settings.retry, self.retrying.clone());
        Some(JsonClient::on(Surface::AdminApi, &self.transport, base, policy, clock))
    }

    /// Reads the workspace settings, proving the token and account id work together, then
    /// (when the tenant names its integration account) checks with one listing request that
    /// the account is an active Owner, as role and seat changes need.
    ///
    /// A tenant reading through the Admin API has its key checked with one member read first;
    /// a read-only one is then done, and its report says what it cannot see or do.
    pub fn test_connection(&self) -> Result<ConnectionReport, ConnectorError> {
        let mut limitations = Vec::new();
        if let Some(admin) = self.admin() {
            crate::admin::probe(&admin)?;
            limitations.push(
                "deactivated members are not listed: the Admin API lists active members only"
                    .to_string(),
            );
        }
        if self.settings.read_only() {
            limitations.extend(
                [
                    "pending invites are not visible",
                    "pending join requests are not visible",
                    "writes (grant, revoke, set, batches) are unsupported: they need the console and an Owner integration account",
                ]
                .map(|what| format!("{what} ({READ_ONLY})")),
            );
            return Ok(ConnectionReport { limitations });
        }
        let settings = self.console()?.settings()?;
        if settings.id != self.settings.account_id {
            return Err(ConnectorError::InvalidConfig(format!(
                "the service answered for workspace {:?}, not the configured `account-id` {:?}",
                settings.id, self.settings.account_id
            )));
        }
        let rules = WorkspaceRules::from_settings(&settings, self.settings.seat_changes);
        let _ = self.rules.set(rules);
        match self.not_an_owner()? {
            Some(why) => Err(ConnectorError::PermissionDenied(format!(
                "{why}; the connector acts as it, and role and seat changes need an active Owner"
            ))),
            None => Ok(ConnectionReport { limitations }),
        }
    }

    /// What the workspace's plan allows, read from its settings the first time it is needed.
    pub(crate) fn workspace_rules(&self) -> Result<&WorkspaceRules, ConnectorError> {
        if let Some(rules) = self.rules.get() {
            return Ok(rules);
        }
        let rules = match self.settings.read_only() {
            true => WorkspaceRules::without_console(self.settings.plan_without_console.clone()),
            false => {
                let settings = self.console()?.settings()?;
                WorkspaceRules::from_settings(&settings, self.settings.seat_changes)
            }
        };
        Ok(self.rules.get_or_init(|| rules))
    }

    /// The workspace's default seat type (console value).
    pub(crate) fn default_seat(&self) -> Result<&str, ConnectorError> {
        Ok(&self.workspace_rules()?.default_seat)
    }

    /// Where the tenant's integration account stands; `None` when the tenant names none. One
    /// search of the members, and of the invites when it is not a member.
    pub(crate) fn integration_account(
        &self,
    ) -> Result<Option<&IntegrationAccount>, ConnectorError> {
        let Some(email) = &self.settings.integration_account else { return Ok(None) };
        if let Some(account) = self.integration.get() {
            return Ok(Some(account));
        }
        let console = self.console()?;
        let concurrency = self.settings.read_concurrency;
        let member = scan(&console, "users", email, concurrency, |m: &Member| {
            m.email.eq_ignore_ascii_case(email)
        })?;
        let account = match member {
            Some(m) if m.deactivated_time.is_some() => IntegrationAccount::Deactivated,
            Some(m) if m.role == catalog::OWNER.console => IntegrationAccount::Owner,
            Some(m) => IntegrationAccount::Member { role: m.role },
            None => {
                let invite = scan(&console, "invites", email, concurrency, |i: &Invite| {
                    i.email_address.eq_ignore_ascii_case(email)
                })?;
                if invite.is_some() {
                    IntegrationAccount::Invited
                } else {
                    IntegrationAccount::Absent
                }
            }
        };
        Ok(Some(self.integration.get_or_init(|| account)))
    }

    /// Where the integration account stands ("the integration account x is an Admin of ..."),
    /// when the tenant names one and it is not an active Owner.
    fn not_an_owner(&self) -> Result<Option<String>, ConnectorError> {
        Ok(match (&self.settings.integration_account, self.integration_account()?) {
            (Some(email), Some(account)) if *account != IntegrationAccount::Owner => Some(format!(
                "the integration account {email} {}",
                account.standing(&self.settings.account_id)
            )),
            _ => None,
        })
    }

    /// Refuses, before any request, a write that needs an Owner (`what`) when the integration
    /// account is known not to be one.
    pub(crate) fn require_owner(&self, what: &str) -> Result<(), ConnectorError> {
        match self.not_an_owner()? {
            Some(why) => Err(ConnectorError::PermissionDenied(format!(
                "{what} needs an Owner, and {why}; nothing was sent"
            ))),
            None => Ok(()),
        }
    }

    /// The listings of accounts, in listing order: a read-only tenant sees members only.
    fn account_phases(&self) -> &'static [Phase] {
        match (self.settings.read_only(), self.settings.join_requests) {
            (true, _) => &[Phase::Members],
            (false, true) => &[Phase::Members, Phase::Invites, Phase::Requests],
            (false, false) => &[Phase::Members, Phase::Invites],
        }
    }

    /// One page of accounts: members first, then pending invites, then pending join requests.
    pub fn list_accounts(&self, page: &PageRequest) -> Result<Page<Account>, ConnectorError> {
        let size = self.settings.effective_page_size(page.size)?;
        let phases = self.account_phases();
        let mut cursor = match &page.cursor {
            None => Cursor::start(Phase::Members),
            Some(raw) => Cursor::decode(raw, &self.settings.account_id, phases)?,
        };
        let concurrency = self.settings.read_concurrency;
        // The console groups holding anyone, as the listing's first call found them: a
        // listing's members all report the groups of its start, and later calls need not read
        // the groups again (a group gone since then reports no one).
        let mut carried = match (cursor.phase, &cursor.carried) {
            (Phase::Members, Some(carried)) => Some(carried_held_groups(carried)?),
            _ => None,
        };
        let mut items = Vec::with_capacity(size as usize);
        // Whether the members' walk ended the call short of `size`, its round trips too slow
        // for another round it could not fill.
        let mut paced = false;
        // The cursor's length (as the previous call last saw it) lets the first round ask for
        // several pages; a stale one costs at most a round's pages, the first page past the real
        // end coming back short and ending the listing.
        loop {
            let at = Position { offset: cursor.offset, total: cursor.total };
            let wanted = size - items.len() as u32;
            let resume =
                |at: Option<Position>| at.map(|at| Cursor::at(cursor.phase, at.offset, at.total));
            let stopped = match (cursor.phase, self.admin()) {
                (Phase::Members, Some(admin)) => {
                    crate::admin::list_members(&admin, &cursor, wanted, |member| {
                        items.push(member);
                    })?
                }
                (Phase::Invites, _) => {
                    let console = self.console()?;
                    let listed = walk(&console, "invites", "", concurrency, at, wanted, |i| {
                        items.push(self.invite_account(&i)?);
                        Ok(false)
                    });
                    resume(listed?)
                }
                (Phase::Requests, _) => {
                    let console = self.console()?;
                    let listed = walk(&console, JOIN_REQUESTS, "", concurrency, at, wanted, |r| {
                        items.push(request_account(r));
                        Ok(false)
                    });
                    resume(listed.map_err(join_requests_unserved)?)
                }
                _ => {
                    let console = self.console()?;
                    let groups = self.console_groups_beside().filter(|_| carried.is_none());
                    let beside = groups.as_ref();
                    let walked = walk_beside(
                        &console,
                        "users",
                        "",
                        Rounds { concurrency, paced: true },
                        at,
                        wanted,
                        beside,
                        |m| {
                            items.push(member_account(m));
                            Ok(false)
                        },
                    )?;
                    paced = walked.paced;
                    resume(walked.stopped)
                }
            };
            let next_phase = phases.iter().skip_while(|p| **p != cursor.phase).nth(1).copied();
            cursor = match (stopped, next_phase) {
                (None, None) => {
                    self.add_console_groups(&mut items, carried.take())?;
                    self.add_groups(&mut items)?;
                    return Ok(Page { items, next_cursor: None });
                }
                (None, Some(phase)) => Cursor::start(phase),
                (Some(next), _) => next,
            };
            if items.len() as u32 >= size || paced {
                let held = self.add_console_groups(&mut items, carried.take())?;
                self.add_groups(&mut items)?;
                if cursor.phase == Phase::Members {
                    cursor.carried = held.as_deref().and_then(carry_held_groups);
                }
                let next_cursor = Some(cursor.encode(&self.settings.account_id));
                // Deliberate defect for the conformance kit's tests: hand back the same cursor.
                #[cfg(feature = "bug-repeat-cursor")]
                let next_cursor = page.cursor.clone().or(next_cursor);
                return Ok(Page { items, next_cursor });
            }
        }
    }

    /// One account by id or email, with the groups it is in.
    pub fn get_account(&self, reference: &AccountRef) -> Result<Account, ConnectorError> {
        let mut account = [self.console_account(reference)?];
        self.add_console_groups(&mut account, None)?;
        self.add_groups(&mut account)?;
        let [account] = account;
        Ok(account)
    }

    /// One account by id or email: a member through the Admin API when the tenant reads
    /// through it, else the console; then the console's invites and join requests, when the
    /// tenant has a console.
    fn console_account(&self, reference: &AccountRef) -> Result<Account, ConnectorError> {
        let missing = |what: String| {
            let unseen = match self.settings.read_only() {
                true => {
                    format!(" (pending invites and join requests are not visible: {READ_ONLY})")
                }
                false => String::new(),
            };
            ConnectorError::NotFound(format!("{what}{unseen}"))
        };
        let concurrency = self.settings.read_concurrency;
        match reference {
            AccountRef::Email(email) => {
                let email = validate_email(email)?;
                let member = match self.admin() {
                    Some(admin) => crate::admin::member_by_email(&admin, &email)?,
                    None => scan(&self.console()?, "users", &email, concurrency, |m: &Member| {
                        m.email.eq_ignore_ascii_case(&email)
                    })?
                    .map(member_account),
                };
                if let Some(member) = member {
                    return Ok(member);
                }
                let not_found = || {
                    missing(format!(
                        "no member, pending invite or join request has the email {email:?}"
                    ))
                };
                if self.settings.read_only() {
                    return Err(not_found());
                }
                let console = self.console()?;
                let invite = scan(&console, "invites", &email, concurrency, |i: &Invite| {
                    i.email_address.eq_ignore_ascii_case(&email)
                })?;
                if let Some(invite) = invite {
                    return self.invite_account(&invite);
                }
                self.find_request(&console, &email, |r| r.email.eq_ignore_ascii_case(&email))?
                    .map(request_account)
                    .ok_or_else(not_found)
            }
            AccountRef::Id(id) => {
                let id = validate_id(id)?;
                let found = if let Some(invite_id) = id.strip_prefix(INVITE_ID_PREFIX) {
                    let console = self.console()?;
                    scan(&console, "invites", "", concurrency, |i: &Invite| i.id == invite_id)?
                        .map(|i| self.invite_account(&i))
                        .transpose()?
                } else if let Some(request_id) = id.strip_prefix(REQUEST_ID_PREFIX) {
                    let console = self.console()?;
                    self.find_request(&console, "", |r| r.id == request_id)?.map(request_account)
                } else if let Some(admin) = self.admin() {
                    crate::admin::member_by_id(&admin, id)?
                } else {
                    scan(&self.console()?, "users", "", concurrency, |m: &Member| m.id == id)?
                        .map(member_account)
                };
                found.ok_or_else(|| {
                    missing(format!("no member, pending invite or join request has the id {id:?}"))
                })
            }
        }
    }

    /// The first join request matching `query` (empty: all) for which `matches` holds; `None`
    /// also when the tenant does not list join requests.
    pub(crate) fn find_request(
        &self,
        console: &ConsoleClient<'_, T>,
        query: &str,
        matches: impl Fn(&JoinRequest) -> bool,
    ) -> Result<Option<JoinRequest>, ConnectorError> {
        if !self.settings.join_requests {
            return Ok(None);
        }
        let concurrency = self.settings.read_concurrency;
        scan(console, JOIN_REQUESTS, query, concurrency, matches).map_err(join_requests_unserved)
    }

    /// The listings of entitlements, in listing order: the fixed ones, the console groups,
    /// the SCIM groups, as the tenant has them.
    fn entitlement_phases(&self) -> Vec<Phase> {
        let mut phases = vec![Phase::Entitlements];
        if self.console_groups_enabled() {
            phases.push(Phase::ConsoleGroups);
        }
        if self.settings.scim_base_url.is_some() {
            phases.push(Phase::ScimGroups);
        }
        phases
    }

    /// One page of entitlements: the fixed ones the plan allows, then one per console group,
    /// then (with SCIM configured) one per SCIM group, a cursor's offset counting within its
    /// listing (for SCIM groups, 0-based: `startIndex` is `offset + 1`).
    pub fn list_entitlements(
        &self,
        page: &PageRequest,
    ) -> Result<Page<Entitlement>, ConnectorError> {
        let size = self.settings.effective_page_size(page.size)?;
        let phases = self.entitlement_phases();
        let mut cursor = match &page.cursor {
            None => Cursor::start(Phase::Entitlements),
            Some(raw) => Cursor::decode(raw, &self.settings.account_id, &phases)?,
        };
        let mut items: Vec<Entitlement> = Vec::new();
        loop {
            let wanted = size - items.len() as u32;
            let stopped = match cursor.phase {
                Phase::ConsoleGroups => {
                    let at = Position { offset: cursor.offset, total: cursor.total };
                    let (groups, stopped) = self.console_groups_page(at, wanted)?;
                    items.extend(groups.iter().map(console_group_entitlement));
                    stopped.map(|at| Cursor::at(cursor.phase, at.offset, at.total))
                }
                Phase::ScimGroups => {
                    let scim = self.scim().ok_or_else(|| {
                        ConnectorError::Internal("a SCIM groups cursor without SCIM".to_string())
                    })?;
                    let groups = scim.list_groups(cursor.offset + 1, wanted)?;
                    let got = groups.resources.len().min(wanted as usize);
                    items.extend(groups.resources.iter().take(got).map(scim::group_entitlement));
                    let seen = cursor.offset + got as u64;
                    // An empty page ends the listing whatever `totalResults` says, so a
                    // miscounting directory cannot hand out a cursor that never moves.
                    (got > 0 && seen < groups.total_results)
                        .then(|| Cursor::at(cursor.phase, seen, None))
                }
                _ => {
                    let fixed = self.workspace_rules()?.entitlements();
                    let start = usize::try_from(cursor.offset).unwrap_or(usize::MAX);
                    let taken: Vec<Entitlement> =
                        fixed.iter().skip(start).take(wanted as usize).cloned().collect();
                    let reached = start.saturating_add(taken.len());
                    items.extend(taken);
                    (reached < fixed.len()).then(|| Cursor::at(cursor.phase, reached as u64, None))
                }
            };
            let next_phase = phases.iter().skip_while(|p| **p != cursor.phase).nth(1).copied();
            cursor = match (stopped, next_phase) {
                (None, None) => return Ok(Page { items, next_cursor: None }),
                (None, Some(phase)) => Cursor::start(phase),
                (Some(next), _) => next,
            };
            if items.len() as u32 >= size {
                let next_cursor = Some(cursor.encode(&self.settings.account_id));
                return Ok(Page { items, next_cursor });
            }
        }
    }

    pub(crate) fn invite_account(&self, invite: &Invite) -> Result<Account, ConnectorError> {
        let seat = match &invite.seat_type {
            Some(seat) => seat.clone(),
            None => self.default_seat()?.to_string(),
        };
        Ok(Account {
            id: format!("{INVITE_ID_PREFIX}{}", invite.id),
            email: Some(invite.email_address.clone()),
            display_name: None,
            status: AccountStatus::Invited,
            entitlements: vec![
                catalog::WORKSPACE.to_string(),
                catalog::role_entitlement(&invite.role),
                catalog::seat_entitlement(&seat),
            ],
            managed_by: invite.is_scim_managed.then(|| "scim".to_string()),
            created_at: invite.created_time.clone(),
        })
    }
}

/// What a read-only tenant is, for messages.
pub(crate) const READ_ONLY: &str =
    "this tenant reads members through the public Admin API only: it has no `base-url`";

/// The console's listing of pending join requests.
pub(crate) const JOIN_REQUESTS: &str = "join_requests";

/// A join-request listing the console does not serve (404) is a setting to change, not a
/// missing account: the tenant is told which.
pub(crate) fn join_requests_unserved(error: ConnectorError) -> ConnectorError {
    crate::api::unserved(
        error,
        "this workspace's console serves no join requests: set `join-requests = false` to work without them",
    )
}

/// Where the tenant's integration account stands in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IntegrationAccount {
    /// An active Owner: every write the connector makes is allowed.
    Owner,
    /// An active member with another role (console value).
    Member {
        /// Its role.
        role: String,
    },
    /// A deactivated member.
    Deactivated,
    /// Invited, the invite not accepted.
    Invited,
    /// Neither a member nor invited.
    Absent,
}

impl IntegrationAccount {
    /// Where it stands, for a message: "is an Admin of workspace ws, not an Owner".
    fn standing(&self, workspace: &str) -> String {
        match self {
            IntegrationAccount::Owner => format!("is an Owner of workspace {workspace}"),
            IntegrationAccount::Member { role } => {
                let name = catalog::role_by_console(role).map_or(role.as_str(), |r| r.name);
                let article = if name.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
                format!(
                    "is {article} {name} of workspace {workspace}, not an Owner; make it an Owner in Workspace settings > Members"
                )
            }
            IntegrationAccount::Deactivated => format!(
                "is a deactivated member of workspace {workspace}; reactivate it and make it an Owner"
            ),
            IntegrationAccount::Invited => format!(
                "is still an invite of workspace {workspace}: accept the invite with that account, then make it an Owner"
            ),
            IntegrationAccount::Absent => format!(
                "is not a member of workspace {workspace} nor invited to it; invite it and make it an Owner"
            ),
        }
    }
}

/// Where a walk over a console listing stands: the offset of its next item, and the listing's
/// length as last seen (until known, a round asks for one page, so none past the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// Offset of the next item.
    pub offset: u64,
    /// The listing's length, when known.
    pub total: Option<u64>,
}

impl Position {
    /// A listing's start.
    pub(crate) const START: Position = Position { offset: 0, total: None };
}

/// Reads the console's `listing` (`users` or `invites`) of the items matching `query` (empty:
/// all) from `at`, in rounds of up to `concurrency` pages, handing every item to `take` in
/// order until `limit` items have been taken or, at the end of a round, `take` has returned
/// `true` (it has what it looked for): then it returns where it stopped. `None`: the listing
/// ended.
pub(crate) fn walk<T: Transport, I: DeserializeOwned>(
    console: &ConsoleClient<'_, T>,
    listing: &str,
    query: &str,
    concurrency: u32,
    at: Position,
    limit: u32,
    take: impl FnMut(I) -> Result<bool, ConnectorError>,
) -> Result<Option<Position>, ConnectorError> {
    let rounds = Rounds { concurrency, paced: false };
    let walked = walk_beside::<T, I, ()>(console, listing, query, rounds, at, limit, None, take)?;
    Ok(walked.stopped)
}

/// A read sent beside a listing's pages, in its first round, so that it costs no round trip of
/// its own; its answer is kept for whatever needs it later in the call.
pub(crate) struct Beside<'a, B> {
    /// The console path.
    pub path: String,
    /// Where its answer goes.
    pub answer: &'a OnceCell<Result<B, ConnectorError>>,
}

/// How a walk sends its pages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rounds {
    /// Requests sent at once: the tenant's read concurrency.
    pub concurrency: u32,
    /// Whether the walk is a listing call's page, which may end short of its limit rather than
    /// start a round it cannot fill while round trips are slow (see [`paced_pages`]).
    pub paced: bool,
}

/// Where a walk stopped.
#[derive(Debug)]
pub(crate) struct Walked {
    /// Where the listing goes on; `None`: it ended.
    pub stopped: Option<Position>,
    /// Whether the walk stopped short of its limit, as [`Rounds::paced`] allows.
    pub paced: bool,
}

/// What one more call costs a sync beyond its round trips: a fresh instance of the connector, and
/// the platform's own handling of a call. Set high, so that a nearby service's pages stay full.
const CALL_COST: Duration = Duration::from_millis(5);

/// Round trips shorter than this never pace a call: a nearby service's round is mostly the two
/// ends' work on the pages, which a shorter call does not save, and its pages stay as asked.
const NEAR: Duration = Duration::from_millis(10);

/// How many of the `wanted` console pages a listing call reads when each of its rounds takes
/// `round_trip`: the count that lists the most accounts per unit of time, a call costing its
/// rounds and [`CALL_COST`]. Pages go `concurrency` at a time, one place of the first round taken
/// when a read goes `beside` them. Of counts listing as fast, the most pages.
///
/// A round that cannot be filled costs a whole round trip for the pages it carries; a call that
/// leaves them to the next one, whose rounds they fill, costs one more call instead. At the
/// default four requests at once, a call of ten pages and the console groups' read makes three
/// rounds, where seven pages make two: seven list faster once a round trip takes more than three
/// calls' cost.
pub(crate) fn paced_pages(
    wanted: u32,
    concurrency: u32,
    beside: bool,
    round_trip: Duration,
) -> u32 {
    let rate = |pages: u32| {
        let rounds = (pages + u32::from(beside)).div_ceil(concurrency.max(1));
        let seconds = f64::from(rounds) * round_trip.as_secs_f64() + CALL_COST.as_secs_f64();
        f64::from(pages) / seconds
    };
    let wanted = wanted.max(1);
    let mut best = (wanted, rate(wanted));
    for pages in (1..wanted).rev() {
        let rate = rate(pages);
        if rate > best.1 {
            best = (pages, rate);
        }
    }
    best.0
}

/// [`walk`], sending `beside` (if it has no answer yet) in its first round, and pacing a listing
/// call's page as `rounds` says.
#[allow(clippy::too_many_arguments)]
pub(crate) fn walk_beside<T: Transport, I: DeserializeOwned, B: DeserializeOwned>(
    console: &ConsoleClient<'_, T>,
    listing: &str,
    query: &str,
    rounds: Rounds,
    mut at: Position,
    limit: u32,
    beside: Option<&Beside<'_, B>>,
    mut take: impl FnMut(I) -> Result<bool, ConnectorError>,
) -> Result<Walked, ConnectorError> {
    let concurrency = rounds.concurrency.max(1);
    // With one request at a time there is no room beside a page: the read goes on its own.
    let pending = || beside.filter(|b| b.answer.get().is_none() && concurrency > 1);
    let beside_first = pending().is_some();
    // Only a call resuming a listing of known length paces itself (its pages, ahead of the
    // first round, are all known); the first round shows how long a round trip takes.
    let mut pace = rounds.paced && at.total.is_some();
    let (mut left, mut done, mut capped) = (limit, false, false);
    loop {
        let with = pending();
        let pages = round(at.offset, left, concurrency - u32::from(with.is_some()), at.total);
        let answers = match with {
            Some(beside) => {
                let (answers, extra) =
                    console.list_pages_beside(listing, query, &pages, &beside.path);
                let _ = beside.answer.set(extra);
                answers
            }
            None => console.list_pages(listing, query, &pages),
        };
        let round_trip = console.last_round_trip();
        let taken = take_pages(answers, &pages, |item| {
            done |= take(item)?;
            Ok(())
        })?;
        if taken.exhausted {
            return Ok(Walked { stopped: None, paced: false });
        }
        at = Position { offset: at.offset + taken.items, total: Some(taken.total) };
        // At most the `left` items asked for were taken.
        left -= taken.items as u32;
        if std::mem::take(&mut pace) && round_trip >= NEAR {
            let wanted = limit.div_ceil(MAX_PAGE_SIZE);
            let cap = paced_pages(wanted, concurrency, beside_first, round_trip) * MAX_PAGE_SIZE;
            if cap < limit {
                capped = true;
                left = left.min(cap.saturating_sub(limit - left));
            }
        }
        if done || left == 0 {
            return Ok(Walked { stopped: Some(at), paced: capped && !done });
        }
    }
}

/// The first item of the console's `listing` matching `query` for which `matches` holds, read
/// in rounds of up to `concurrency` pages until one is found or the listing ends.
pub(crate) fn scan<T: Transport, I: DeserializeOwned>(
    console: &ConsoleClient<'_, T>,
    listing: &str,
    query: &str,
    concurrency: u32,
    matches: impl Fn(&I) -> bool,
) -> Result<Option<I>, ConnectorError> {
    let mut found = None;
    walk(console, listing, query, concurrency, Position::START, u32::MAX, |item| {
        if found.is_none() && matches(&item) {
            found = Some(item);
        }
        Ok(found.is_some())
    })?;
    Ok(found)
}

/// The console pages one round of a listing asks for at once: up to `concurrency` pages of at
/// most [`MAX_PAGE_SIZE`] from `offset`, together no more than the `wanted` items still missing
/// and, after the first, none starting past the listing's `total` (only one page while the total
/// is not known).
fn round(offset: u64, wanted: u32, concurrency: u32, total: Option<u64>) -> Vec<(u64, u32)> {
    let pages = if total.is_some() { concurrency.max(1) } else { 1 };
    let end = total.unwrap_or(u64::MAX);
    (0..pages)
        .map(|i| i * MAX_PAGE_SIZE)
        .take_while(|&skip| skip < wanted && (skip == 0 || offset + u64::from(skip) < end))
        .map(|skip| (offset + u64::from(skip), (wanted - skip).min(MAX_PAGE_SIZE)))
        .collect()
}

/// What a round's pages gave.
struct Taken {
    /// Items taken.
    items: u64,
    /// Whether the listing has ended.
    exhausted: bool,
    /// The listing's length, as the last page taken said.
    total: u64,
}

/// Hands the items of a round's pages to `take`, in order, up to the page that shows the
/// listing has ended (a later page, asked for before that was known, is dropped unread).
fn take_pages<I>(
    answers: Vec<Result<ListPage<I>, ConnectorError>>,
    pages: &[(u64, u32)],
    mut take: impl FnMut(I) -> Result<(), ConnectorError>,
) -> Result<Taken, ConnectorError> {
    let mut taken = Taken { items: 0, exhausted: false, total: 0 };
    for (answer, &(offset, want)) in answers.into_iter().zip(pages) {
        let page = answer?;
        let (items, exhausted) = take_page(page.items, page.total, offset, want);
        taken.items += items.len() as u64;
        taken.total = page.total;
        for item in items {
            take(item)?;
        }
        if exhausted {
            taken.exhausted = true;
            break;
        }
    }
    Ok(taken)
}

/// Keeps at most `want` items of a console page and says whether the listing is exhausted:
/// the console's paging ends when fewer than `limit` items come back or `offset + items >= total`.
pub(crate) fn take_page<I>(
    mut items: Vec<I>,
    total: u64,
    offset: u64,
    want: u32,
) -> (Vec<I>, bool) {
    let short = items.len() < want as usize;
    items.truncate(want as usize);
    let exhausted = short || offset + items.len() as u64 >= total;
    (items, exhausted)
}

/// The contract over this connector: each operation is the inherent method of the same name
/// (`apply_batch` is the planner's, in `provision`).
impl<T: Transport + Default> Connector for ChatGptConnector<T> {
    fn load(config: &dyn ConfigSource) -> Result<Self, ConnectorError> {
        Ok(ChatGptConnector::new(T::default(), Settings::load(config)?))
    }

    fn info() -> ConnectorInfo {
        info()
    }

    /// A read-only review tenant (no console) can list but not change: it says so.
    fn tenant_info(config: &dyn ConfigSource) -> ConnectorInfo {
        let mut info = info();
        if Settings::load(config).is_ok_and(|s| s.read_only()) {
            info.application = "ChatGPT Enterprise/Edu workspace, read-only review through the Admin API: members only (no pending invites or join requests), no writes".to_string();
            info.capabilities.write = false;
            info.capabilities.batch = false;
            info.capabilities.dry_run = false;
        }
        info
    }

    fn test_connection(&self) -> Result<ConnectionReport, ConnectorError> {
        ChatGptConnector::test_connection(self)
    }

    fn list_accounts(&self, page: &PageRequest) -> Result<Page<Account>, ConnectorError> {
        ChatGptConnector::list_accounts(self, page)
    }

    fn get_account(&self, account: &AccountRef) -> Result<Account, ConnectorError> {
        ChatGptConnector::get_account(self, account)
    }

    fn list_entitlements(&self, page: &PageRequest) -> Result<Page<Entitlement>, ConnectorError> {
        ChatGptConnector::list_entitlements(self, page)
    }

    fn apply_batch(
        &self,
        changes: &[ChangeRequest],
        dry_run: bool,
    ) -> Result<Vec<Result<ChangeResult, ConnectorError>>, ConnectorError> {
        ChatGptConnector::apply_batch(self, changes, dry_run)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use serde_json::json;

    use super::*;
    use crate::accounts::GROUP_PREFIX;
    use crate::cursor::CARRIED_GROUPS;
    use connector_sdk::settings::RetryPolicy;
    use connector_sdk::transport::{HttpRequest, HttpResponse, TransportError};

    /// A console of `members` members and `invites` invites (each with a seat type, so no
    /// settings are read) that records the paths of each round of requests sent together and
    /// throttles the listed paths once each.
    struct FakeConsole {
        members: Cell<u64>,
        invites: u64,
        rounds: RefCell<Vec<Vec<String>>>,
        throttle_once: RefCell<Vec<String>>,
        /// The console groups: each id with the members (by number) in it.
        groups: RefCell<Vec<(String, Vec<u64>)>>,
        /// Whether listing a group's members answers 404, the group there or not.
        group_members_unserved: Cell<bool>,
        /// How late each round's answers come, on the console's own clock.
        latency: std::time::Duration,
        clock: Cell<std::time::Instant>,
    }

    impl FakeConsole {
        fn new(members: u64, invites: u64) -> Self {
            FakeConsole {
                members: Cell::new(members),
                invites,
                rounds: RefCell::new(Vec::new()),
                throttle_once: RefCell::new(Vec::new()),
                groups: RefCell::new(Vec::new()),
                group_members_unserved: Cell::new(false),
                latency: std::time::Duration::ZERO,
                clock: Cell::new(std::time::Instant::now()),
            }
        }

        /// A console whose every round comes back `latency_ms` late: its clock moves on by that
        /// much a round, and by nothing else.
        fn distant(members: u64, invites: u64, latency_ms: u64) -> Self {
            let latency = std::time::Duration::from_millis(latency_ms);
            FakeConsole { latency, ..FakeConsole::new(members, invites) }
        }

        fn answer(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
            let path = request.url.strip_prefix("https://x/accounts/ws/").unwrap();
            let throttled = self.throttle_once.borrow().iter().position(|p| p == path);
            if let Some(at) = throttled {
                self.throttle_once.borrow_mut().remove(at);
                return Ok(HttpResponse {
                    status: 429,
                    content_type: Some("application/json".into()),
                    retry_after: None,
                    body: br#"{"detail":"too many requests"}"#.to_vec(),
                });
            }
            let groups = self.groups.borrow();
            let Some((listing, query)) = path.split_once('?') else {
                // One console group, as `GET groups/{id}` reads it.
                let id = path.strip_prefix("groups/").unwrap();
                let found = groups.iter().any(|(g, _)| g == id);
                return Ok(HttpResponse {
                    status: if found { 200 } else { 404 },
                    content_type: Some("application/json".into()),
                    retry_after: None,
                    body: json!({"id": id, "name": id, "detail": "no such group"})
                        .to_string()
                        .into_bytes(),
                });
            };
            let number = |key: &str| -> u64 {
                let pair = query.split('&').find(|p| p.starts_with(key)).unwrap();
                pair[key.len() + 1..].parse().unwrap()
            };
            let (offset, limit) = (number("offset"), number("limit"));
            let in_group = listing.strip_prefix("groups/").and_then(|l| l.strip_suffix("/members"));
            let members_of = match in_group {
                Some(id) => match groups.iter().find(|(g, _)| g == id) {
                    Some((_, members)) if !self.group_members_unserved.get() => members.clone(),
                    _ => {
                        return Ok(HttpResponse {
                            status: 404,
                            content_type: Some("application/json".into()),
                            retry_after: None,
                            body: br#"{"detail":"no such group"}"#.to_vec(),
                        });
                    }
                },
                None => Vec::new(),
            };
            let total = match listing {
                "users" => self.members.get(),
                "groups" => groups.len() as u64,
                _ if in_group.is_some() => members_of.len() as u64,
                _ => self.invites,
            };
            let items: Vec<_> = (offset..total.min(offset + limit))
                .map(|i| match listing {
                    "users" => json!({"id": format!("user-{i}"), "email": format!("m{i}@x.com"),
                        "role": "standard-user", "seat_type": "default"}),
                    "groups" => {
                        let (id, members) = &groups[i as usize];
                        json!({"id": id, "name": id, "member_count": members.len()})
                    }
                    _ if in_group.is_some() => {
                        json!({"id": format!("user-{}", members_of[i as usize])})
                    }
                    _ => json!({"id": format!("inv-{i}"), "email_address": format!("i{i}@x.com"),
                        "role": "standard-user", "seat_type": "default"}),
                })
                .collect();
            Ok(HttpResponse {
                status: 200,
                content_type: Some("application/json".into()),
                retry_after: None,
                body: json!({"items": items, "total": total}).to_string().into_bytes(),
            })
        }
    }

    impl Transport for &FakeConsole {
        fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
            self.send_all(std::slice::from_ref(request)).pop().unwrap()
        }

        fn send_all(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
            let paths = requests.iter().map(|r| r.url.replace("https://x/accounts/ws/", ""));
            self.rounds.borrow_mut().push(paths.collect());
            self.clock.set(self.clock.get() + self.latency);
            requests.iter().map(|r| self.answer(r)).collect()
        }

        fn now(&self) -> std::time::Instant {
            self.clock.get()
        }
    }

    fn connector(console: &FakeConsole, read_concurrency: u32) -> ChatGptConnector<&FakeConsole> {
        let settings = Settings {
            base_url: Some("https://x".into()),
            admin_api_base_url: None,
            plan_without_console: crate::workspace::Plan::Enterprise,
            account_id: "ws".into(),
            scim_base_url: None,
            page_size: 100,
            read_concurrency,
            integration_account: None,
            seat_changes: None,
            join_requests: false,
            console_groups: false,
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: std::time::Duration::from_millis(1),
                budget: std::time::Duration::from_secs(1),
            },
        };
        ChatGptConnector::new(console, settings)
    }

    /// Every account id of a sync in pages of `size`, and the number of calls.
    fn sync(connector: &ChatGptConnector<&FakeConsole>, size: u32) -> (Vec<String>, usize) {
        let (mut ids, mut cursor, mut calls) = (Vec::new(), None, 0);
        loop {
            let page = connector.list_accounts(&PageRequest { cursor, size: Some(size) }).unwrap();
            calls += 1;
            ids.extend(page.items.into_iter().map(|a| a.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return (ids, calls),
            }
        }
    }

    fn users(offset: u64, limit: u32) -> String {
        format!("users?offset={offset}&limit={limit}&query=")
    }

    fn invites(offset: u64, limit: u32) -> String {
        format!("invites?offset={offset}&limit={limit}&query=")
    }

    #[test]
    fn a_round_covers_what_is_missing_in_console_pages() {
        let known = Some(10_000);
        assert_eq!(round(0, 1000, 4, known), vec![(0, 100), (100, 100), (200, 100), (300, 100)]);
        assert_eq!(round(700, 250, 4, known), vec![(700, 100), (800, 100), (900, 50)]);
        assert_eq!(round(5, 30, 4, known), vec![(5, 30)]);
        assert_eq!(round(0, 1000, 1, known), vec![(0, 100)]);
        // Not past the end once it is known, and one page while it is not.
        assert_eq!(round(100, 1000, 4, Some(250)), vec![(100, 100), (200, 100)]);
        assert_eq!(round(300, 1000, 4, Some(250)), vec![(300, 100)]);
        assert_eq!(round(0, 1000, 4, None), vec![(0, 100)]);
    }

    #[test]
    fn pages_of_a_call_go_out_in_rounds_and_list_what_one_at_a_time_lists() {
        let concurrent = FakeConsole::new(950, 120);
        let (ids, calls) = sync(&connector(&concurrent, 4), 1000);
        let sequential = FakeConsole::new(950, 120);
        assert_eq!(sync(&connector(&sequential, 1), 1000), (ids.clone(), calls));
        assert_eq!(ids.len(), 1070);
        assert_eq!(ids[949], "user-949");
        assert_eq!(ids[950], "invite:inv-0");
        assert_eq!(calls, 2);
        assert!(sequential.rounds.borrow().iter().all(|r| r.len() == 1));

        let rounds = concurrent.rounds.borrow();
        let pages =
            |from: u64| -> Vec<String> { (0..4).map(|i| users(from + 100 * i, 100)).collect() };
        // The first page tells the listing's length; the rest go four at a time, none past it.
        assert_eq!(rounds[0], vec![users(0, 100)]);
        assert_eq!(rounds[1], pages(100));
        assert_eq!(rounds[2], pages(500));
        assert_eq!(rounds[3], vec![users(900, 100)]);
        // The invites fill the rest of the call; the second call starts where it stopped.
        assert_eq!(rounds[4], vec![invites(0, 50)]);
        assert_eq!(rounds[5], vec![invites(50, 100)]);
        assert_eq!(rounds.len(), 6);
        let sent = |rounds: &[Vec<String>]| rounds.concat();
        assert_eq!(sent(&rounds), sent(&sequential.rounds.borrow()));
    }

    #[test]
    fn a_call_from_a_cursor_sends_its_first_pages_together() {
        let console = FakeConsole::new(2500, 0);
        let (ids, calls) = sync(&connector(&console, 4), 1000);
        assert_eq!(ids, (0..2500).map(|i| format!("user-{i}")).collect::<Vec<_>>());
        assert_eq!(calls, 3);
        let sizes: Vec<usize> = console.rounds.borrow().iter().map(Vec::len).collect();
        // Only the first call asks for one page alone; the others know the length from the
        // cursor. The last call ends the members on a full page and lists the (empty) invites.
        assert_eq!(sizes, [1, 4, 4, 1, 4, 4, 2, 4, 1, 1]);
        assert_eq!(console.rounds.borrow()[4][0], users(1000, 100));
    }

    /// Every account of a listing at pages of `size` in calls of fresh connectors (as in the
    /// component, where what a call read is its own), with the cursors the calls returned.
    fn list_fresh(
        console: &FakeConsole,
        concurrency: u32,
        groups: bool,
        size: u32,
    ) -> (Vec<Account>, Vec<String>) {
        let (mut accounts, mut cursors, mut cursor) = (Vec::new(), Vec::new(), None);
        loop {
            let mut connector = connector(console, concurrency);
            connector.settings.console_groups = groups;
            let page = connector.list_accounts(&PageRequest { cursor, size: Some(size) }).unwrap();
            accounts.extend(page.items);
            match page.next_cursor {
                Some(next) => {
                    cursors.push(next.clone());
                    cursor = Some(next);
                }
                None => return (accounts, cursors),
            }
        }
    }

    #[test]
    fn the_console_groups_read_rides_along_with_the_members_pages() {
        let sync_fresh = |console: &FakeConsole, concurrency: u32, groups: bool| {
            let (accounts, _) = list_fresh(console, concurrency, groups, 1000);
            accounts.into_iter().map(|a| a.id).collect::<Vec<_>>()
        };
        let plain = FakeConsole::new(2500, 0);
        let ids = sync_fresh(&plain, 4, false);
        let console = FakeConsole::new(2500, 0);
        assert_eq!(sync_fresh(&console, 4, true), ids);
        let rounds = console.rounds.borrow();
        let sizes: Vec<usize> = rounds.iter().map(Vec::len).collect();
        // The listing's first call reads the groups, in its first round beside its first page:
        // no round of its own, and no round of more than four requests. No group holds anyone,
        // and the cursor says so: the later calls read none.
        assert_eq!(sizes, [2, 4, 4, 1, 4, 4, 2, 4, 1, 1]);
        assert_eq!(rounds.len(), plain.rounds.borrow().len());
        let groups = "groups?offset=0&limit=100&query=";
        let reads: Vec<usize> = rounds
            .iter()
            .enumerate()
            .filter(|(_, r)| r.iter().any(|p| p == groups))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(reads, [0]);
        // With one request at a time there is no room beside a page: the read goes on its own.
        let sequential = FakeConsole::new(2500, 0);
        assert_eq!(sync_fresh(&sequential, 1, true), ids);
        assert!(sequential.rounds.borrow().iter().all(|r| r.len() == 1));
        let alone = sequential.rounds.borrow().iter().filter(|r| r[0] == groups).count();
        assert_eq!(alone, 1);
    }

    #[test]
    fn a_listing_carries_the_groups_holding_anyone_from_its_first_call() {
        let console = FakeConsole::new(350, 2);
        *console.groups.borrow_mut() = vec![
            ("g-a".to_string(), vec![5, 150, 300]),
            ("g-empty".to_string(), vec![]),
            ("g-b".to_string(), vec![150, 320]),
        ];
        let groups_of = |accounts: &[Account], id: &str| -> Vec<String> {
            let account = accounts.iter().find(|a| a.id == id).unwrap();
            account.entitlements.iter().filter(|e| e.starts_with(GROUP_PREFIX)).cloned().collect()
        };
        let (accounts, cursors) = list_fresh(&console, 4, true, 100);
        assert_eq!(accounts.len(), 352);
        assert_eq!(groups_of(&accounts, "user-5"), ["group:g-a"]);
        assert_eq!(groups_of(&accounts, "user-150"), ["group:g-a", "group:g-b"]);
        assert_eq!(groups_of(&accounts, "user-320"), ["group:g-b"]);
        assert!(groups_of(&accounts, "user-6").is_empty());
        let rounds = console.rounds.borrow();
        let listed = |path: &str| rounds.iter().flatten().filter(|p| p.starts_with(path)).count();
        // The groups listed once, for the whole listing; the members of each group holding
        // anyone read by every call that has members (four), the empty group's never.
        assert_eq!(listed("groups?"), 1);
        assert_eq!(listed("groups/g-a/members?"), 4);
        assert_eq!(listed("groups/g-b/members?"), 4);
        assert_eq!(listed("groups/g-empty/"), 0);
        drop(rounds);

        // A group deleted during the listing reports no one from then on, without an error; a
        // group made during it shows from the next listing on.
        let with_groups = || {
            let mut connector = connector(&console, 4);
            connector.settings.console_groups = true;
            connector
        };
        let first = with_groups().list_accounts(&PageRequest { cursor: None, size: Some(100) });
        let cursor = first.unwrap().next_cursor;
        *console.groups.borrow_mut() =
            vec![("g-b".to_string(), vec![150]), ("g-new".to_string(), vec![120])];
        let connector = with_groups();
        let page = connector.list_accounts(&PageRequest { cursor, size: Some(100) }).unwrap();
        assert_eq!(groups_of(&page.items, "user-150"), ["group:g-b"]);
        assert!(groups_of(&page.items, "user-120").is_empty());
        let (accounts, _) = list_fresh(&console, 4, true, 100);
        assert_eq!(groups_of(&accounts, "user-120"), ["group:g-new"]);
        // A group that is there but whose members the console does not list is an error, not
        // a group of no one.
        console.group_members_unserved.set(true);
        let unserved = with_groups().list_accounts(&PageRequest { cursor: None, size: Some(100) });
        assert!(matches!(unserved, Err(ConnectorError::NotFound(_))), "{unserved:?}");
        console.group_members_unserved.set(false);

        // What a cursor carries is checked like the rest of it: a cursor whose groups were
        // edited is refused, and so is one carrying groups no listing would (forged, since the
        // checksum only detects edits).
        let account_id = &connector.settings.account_id;
        let mut edited = cursors[0].clone().into_bytes();
        let at = edited.len() - 20;
        edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
        let forged = |carried: &str| Cursor {
            carried: Some(carried.to_string()),
            ..Cursor::at(Phase::Members, 100, Some(350))
        };
        for cursor in [
            String::from_utf8(edited).unwrap(),
            forged("g-a,../users").encode(account_id),
            forged("g-a,,g-b").encode(account_id),
            forged("g?x=1").encode(account_id),
            forged(&vec!["g"; CARRIED_GROUPS + 1].join(",")).encode(account_id),
        ] {
            let page = connector.list_accounts(&PageRequest { cursor: Some(cursor), size: None });
            assert!(matches!(page, Err(ConnectorError::InvalidArgument(_))), "{page:?}");
        }
        // Too many groups holding anyone to carry: every call reads them, and lists the same.
        let many = FakeConsole::new(350, 0);
        let held = (0..=CARRIED_GROUPS).map(|g| (format!("g-{g}"), vec![g as u64 * 10]));
        *many.groups.borrow_mut() = held.collect();
        let (accounts, cursors) = list_fresh(&many, 4, true, 100);
        assert_eq!(groups_of(&accounts, "user-320"), [format!("group:g-{CARRIED_GROUPS}")]);
        let decoded = Cursor::decode(&cursors[0], "ws", &[Phase::Members]).unwrap();
        assert_eq!(decoded.carried, None);
        let rounds = many.rounds.borrow();
        assert_eq!(rounds.iter().flatten().filter(|p| p.starts_with("groups?")).count(), 4);
    }

    #[test]
    fn a_call_reads_as_many_pages_as_list_fastest_for_its_round_trips() {
        let ms = std::time::Duration::from_millis;
        // Ten pages and the groups' read at four at once: three rounds; seven: two.
        assert_eq!(paced_pages(10, 4, true, ms(0)), 10);
        assert_eq!(paced_pages(10, 4, true, ms(10)), 10);
        assert_eq!(paced_pages(10, 4, true, ms(20)), 7);
        assert_eq!(paced_pages(10, 4, true, ms(50)), 7);
        // Without the read (a listing's later calls), eight pages are two full rounds.
        assert_eq!(paced_pages(10, 4, false, ms(10)), 8);
        assert_eq!(paced_pages(10, 4, false, ms(50)), 8);
        // At five at once nine pages and the read are two full rounds; at eight, seven are one.
        assert_eq!(paced_pages(10, 5, true, ms(50)), 9);
        assert_eq!(paced_pages(10, 8, true, ms(50)), 7);
        // One at a time every round is full; a call that fits in one round is never cut.
        assert_eq!(paced_pages(10, 1, true, ms(500)), 10);
        assert_eq!(paced_pages(3, 4, true, ms(500)), 3);
        assert_eq!(paced_pages(0, 4, true, ms(500)), 1);
    }

    #[test]
    fn a_distant_console_gets_calls_of_full_rounds_and_lists_the_same_accounts() {
        let sync_fresh = |console: &FakeConsole| {
            let (mut ids, mut cursor, mut sizes) = (Vec::new(), None, Vec::new());
            loop {
                let mut connector = connector(console, 4);
                connector.settings.console_groups = true;
                let page = connector.list_accounts(&PageRequest { cursor, size: Some(1000) });
                let page = page.unwrap();
                sizes.push(page.items.len());
                ids.extend(page.items.into_iter().map(|a| a.id));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return (ids, sizes),
                }
            }
        };
        let near = FakeConsole::distant(10_000, 5, 5);
        let (ids, sizes) = sync_fresh(&near);
        assert_eq!(sizes, [vec![1000; 10], vec![5]].concat());
        let far = FakeConsole::distant(10_000, 5, 50);
        let (far_ids, far_sizes) = sync_fresh(&far);
        assert_eq!(far_ids, ids);
        // The first call cannot know the listing's length before its first round; from the
        // cursor on, a call of eight pages is two full rounds (the cursor carries the groups,
        // so no later call reads them beside its pages).
        assert_eq!(far_sizes, [vec![1000], vec![800; 11], vec![205]].concat());
        let far_rounds = far.rounds.borrow();
        assert!(far_rounds[4..far_rounds.len() - 3].iter().all(|r| r.len() == 4));
        // Near, three rounds a call of a thousand (the last one not full); far, two a call of
        // eight hundred: fewer rounds for the same listing.
        assert_eq!(near.rounds.borrow().len(), 32);
        assert_eq!(far_rounds.len(), 28);
    }

    #[test]
    fn a_stale_length_in_the_cursor_costs_at_most_a_round_and_lists_what_is_there() {
        let console = FakeConsole::new(2500, 3);
        let connector = connector(&console, 4);
        let first = connector.list_accounts(&PageRequest { cursor: None, size: Some(1000) });
        let cursor = first.unwrap().next_cursor;
        // Members leave between the calls: the cursor still says 2,500.
        console.members.set(1050);
        console.rounds.borrow_mut().clear();
        let page = connector.list_accounts(&PageRequest { cursor, size: Some(1000) }).unwrap();
        let ids: Vec<_> = page.items.iter().map(|a| a.id.as_str()).collect();
        let expected: Vec<String> = (1000..1050)
            .map(|i| format!("user-{i}"))
            .chain((0..3).map(|i| format!("invite:inv-{i}")))
            .collect();
        assert_eq!(ids, expected);
        assert_eq!(page.next_cursor, None);
        let rounds = console.rounds.borrow();
        // The round asked for four pages; the first came back short and ended the members.
        assert_eq!(rounds[0].len(), 4);
        assert_eq!(rounds[1], vec![invites(0, 100)]);
        assert_eq!(rounds.len(), 2);
    }

    #[test]
    fn a_lookup_by_id_reads_in_rounds_and_stops_with_the_round_that_finds_it() {
        let console = FakeConsole::new(2500, 0);
        let found = connector(&console, 4).get_account(&AccountRef::Id("user-1234".into()));
        assert_eq!(found.unwrap().id, "user-1234");
        let sizes: Vec<usize> = console.rounds.borrow().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 4, 4, 4]);
        assert_eq!(console.rounds.borrow()[3][3], users(1200, 100));

        let missing = FakeConsole::new(950, 0);
        let error = connector(&missing, 4).get_account(&AccountRef::Id("user-x".into()));
        assert!(matches!(error, Err(ConnectorError::NotFound(_))), "{error:?}");
        let sizes: Vec<usize> = missing.rounds.borrow().iter().map(Vec::len).collect();
        // The whole listing once, no page past its end.
        assert_eq!(sizes, [1, 4, 4, 1]);
        let one_at_a_time = FakeConsole::new(950, 0);
        let _ = connector(&one_at_a_time, 1).get_account(&AccountRef::Id("user-x".into()));
        assert_eq!(missing.rounds.borrow().concat(), one_at_a_time.rounds.borrow().concat());
    }

    #[test]
    fn a_throttled_page_of_a_round_is_retried_on_its_own() {
        let console = FakeConsole::new(400, 0);
        console.throttle_once.borrow_mut().push(users(200, 100));
        let (ids, calls) = sync(&connector(&console, 4), 1000);
        assert_eq!(ids, (0..400).map(|i| format!("user-{i}")).collect::<Vec<_>>());
        assert_eq!(calls, 1);
        let rounds = console.rounds.borrow();
        assert_eq!(rounds[1], vec![users(100, 100), users(200, 100), users(300, 100)]);
        assert_eq!(rounds[2], vec![users(200, 100)]);
        assert_eq!(rounds[3], vec![invites(0, 100)]);
        assert_eq!(rounds.len(), 4);
        assert!(console.throttle_once.borrow().is_empty());
    }

    #[test]
    fn a_page_that_fails_for_good_fails_the_call() {
        let console = FakeConsole::new(400, 0);
        for _ in 0..3 {
            console.throttle_once.borrow_mut().push(users(100, 100));
        }
        let error = connector(&console, 4)
            .list_accounts(&PageRequest { cursor: None, size: Some(400) })
            .unwrap_err();
        assert!(matches!(error, ConnectorError::RateLimited { .. }), "{error:?}");
    }
}

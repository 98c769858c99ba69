//! Writes: grant, revoke and set, for one change or many.
//!
//! Every write goes through one planner. It reads the people a batch names, plays the changes
//! in order against a model of each person's state (so two changes to one person merge into one
//! request), turns the difference between the state read and the state wanted into the fewest
//! console requests (new invites grouped by role and seat type into bulk requests), then, unless
//! it is a dry run, sends them and reads the result back, reporting any mismatch as an error.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use crate::accounts::{
    INVITE_ID_PREFIX, REQUEST_ID_PREFIX, SNAPSHOT_THRESHOLD, group_id, invite_key, member_account,
    reference_key, request_account, request_key,
};
use crate::api::{ConsoleClient, ConsoleReads, Invite, InviteResponse, JoinRequest, Member};
use crate::catalog::{self, Role, Seat};
use crate::connector::{
    ChatGptConnector, JOIN_REQUESTS, Position, READ_ONLY, join_requests_unserved, scan, walk,
};
use crate::settings::MAX_PAGE_SIZE;
use crate::workspace::SeatChanges;
use connector_sdk::ConnectorError;
use connector_sdk::client::WriteError;
use connector_sdk::error::describe as describe_error;
use connector_sdk::transport::{Method, Transport};
use connector_sdk::types::{
    Account, AccountRef, AccountStatus, ChangeOutcome, ChangeResult, DataAccessLoss, Notice,
    PlannedRequest,
};
use connector_sdk::{ChangeAction, ChangeRequest};

/// Largest number of addresses sent in one bulk invite.
pub const INVITE_CHUNK: usize = 100;

/// What a lookup found for one reference: the member, the pending invite and the pending join
/// request, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Found {
    /// The member.
    pub member: Option<Member>,
    /// The pending invite.
    pub invite: Option<Invite>,
    /// The pending join request.
    pub request: Option<JoinRequest>,
}

/// How long each of the console's listings of people is; `requests` is `None` when the tenant
/// does not list join requests.
#[derive(Debug, Clone, Copy)]
struct Lengths {
    members: u64,
    invites: u64,
    requests: Option<u64>,
}

/// What an entitlement id names.
#[derive(Debug, Clone, Copy)]
enum Target {
    Workspace,
    Role(&'static Role),
    Seat(&'static Seat),
}

fn parse_target(id: &str) -> Result<Target, ConnectorError> {
    if id == catalog::WORKSPACE {
        return Ok(Target::Workspace);
    }
    if let Some(role) = catalog::ROLES.iter().find(|r| r.id == id) {
        return Ok(Target::Role(role));
    }
    if let Some(seat) = catalog::SEATS.iter().find(|s| s.id == id) {
        return Ok(Target::Seat(seat));
    }
    if id.trim().is_empty() {
        return Err(ConnectorError::InvalidArgument("the entitlement id is empty".to_string()));
    }
    Err(ConnectorError::NotFound(format!(
        "no entitlement {id:?}; see list-entitlements (workspace, role:*, seat:*, group:*)"
    )))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Absent,
    /// Asked to join; holds no role or seat until approved.
    Requested,
    Invited,
    Member,
}

/// A person's state as far as the entitlements go. `role` and `seat` are console values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    presence: Presence,
    role: String,
    seat: String,
}

impl State {
    /// Whether two states agree on everything that exists: someone absent, or who only asked
    /// to join, has no role or seat.
    fn agrees_with(&self, other: &State) -> bool {
        self.presence == other.presence
            && (matches!(self.presence, Presence::Absent | Presence::Requested)
                || (self.role == other.role && self.seat == other.seat))
    }
}

/// One person a batch touches.
#[derive(Debug, Clone)]
struct Subject {
    email: String,
    member: Option<Member>,
    invite: Option<Invite>,
    request: Option<JoinRequest>,
    initial: State,
    desired: State,
    planned: Vec<PlannedRequest>,
    sent: Vec<PlannedRequest>,
    error: Option<ConnectorError>,
    after: Option<Account>,
}

/// What one change did to the model.
struct Effect {
    changed: bool,
    replaced: Vec<String>,
    note: String,
    notices: Vec<Notice>,
}

impl<T: Transport> ChatGptConnector<T> {
    /// Applies `changes` in order and returns one result per change. The outer error means
    /// nothing was attempted.
    ///
    /// Group changes go to the SCIM directory after the console changes: the two surfaces
    /// share no state a change could depend on (SCIM-managed people, the only ones groups
    /// hold, cannot be invited or removed through the console).
    pub fn apply_batch(
        &self,
        changes: &[ChangeRequest],
        dry_run: bool,
    ) -> Result<Vec<Result<ChangeResult, ConnectorError>>, ConnectorError> {
        if self.settings.read_only() {
            return Err(ConnectorError::Unsupported(format!(
                "{READ_ONLY}, so it makes no change; changes need the console (`base-url`) and an Owner integration account"
            )));
        }
        let (group_changes, console_changes): (Vec<_>, Vec<_>) =
            changes.iter().enumerate().partition(|(_, c)| group_id(&c.entitlement).is_some());
        let console_only: Vec<ChangeRequest> =
            console_changes.iter().map(|(_, c)| (*c).clone()).collect();
        let mut results: Vec<Option<Result<ChangeResult, ConnectorError>>> =
            changes.iter().map(|_| None).collect();
        if !console_only.is_empty() {
            let mut console_results = self.apply_console_batch(&console_only, dry_run)?;
            self.add_groups_to_results(&mut console_results);
            for ((index, _), result) in console_changes.iter().zip(console_results) {
                results[*index] = Some(result);
            }
        }
        // Console groups are told from SCIM groups by reading each once; a failure to read
        // them fails their changes, never the console changes already made.
        match self.split_console_group_changes(&group_changes) {
            Ok((groups, console_group_changes, scim_changes)) => {
                let console_results =
                    self.apply_console_group_changes(&console_group_changes, &groups, dry_run);
                let scim_results = self.apply_group_changes(&scim_changes, dry_run);
                for (index, result) in console_results.into_iter().chain(scim_results) {
                    results[index] = Some(result);
                }
            }
            Err(error) => {
                for (index, _) in &group_changes {
                    results[*index] = Some(Err(error.clone()));
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ConnectorError::Internal("a change got no result".to_string()))
                })
            })
            .collect())
    }

    /// Adds group entitlements to the accounts of console results, so a result shows the whole
    /// account. The writes are done by then, so a failure to read the groups is reported in the
    /// result's detail, not as the change's failure.
    fn add_groups_to_results(&self, results: &mut [Result<ChangeResult, ConnectorError>]) {
        if self.settings.scim_base_url.is_none() {
            return;
        }
        let mut accounts: Vec<Account> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|r| r.account.clone()))
            .collect();
        if accounts.is_empty() {
            return;
        }
        let outcome = self.add_groups(&mut accounts);
        let mut accounts = accounts.into_iter();
        for result in results.iter_mut().filter_map(|r| r.as_mut().ok()) {
            if result.account.is_none() {
                continue;
            }
            match &outcome {
                Ok(()) => result.account = accounts.next(),
                Err(error) => result.detail.push_str(&format!(
                    " (group memberships not shown: {})",
                    describe_error(error)
                )),
            }
        }
    }

    /// [`apply_batch`](Self::apply_batch) for changes of console entitlements only.
    fn apply_console_batch(
        &self,
        changes: &[ChangeRequest],
        dry_run: bool,
    ) -> Result<Vec<Result<ChangeResult, ConnectorError>>, ConnectorError> {
        let console = self.console()?;

        // Resolve every account reference; a reference error belongs to its change only.
        let refs: Vec<Result<String, ConnectorError>> =
            changes.iter().map(|c| reference_key(&c.account)).collect();
        let wanted: Vec<&AccountRef> = changes
            .iter()
            .zip(&refs)
            .filter(|(_, key)| key.is_ok())
            .map(|(c, _)| &c.account)
            .collect();
        let found = self.lookup(&console, &wanted)?;

        let mut subjects: Vec<Subject> = Vec::new();
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut effects: Vec<Result<(usize, Effect), ConnectorError>> = Vec::new();
        for (change, key) in changes.iter().zip(refs) {
            let effect = key.and_then(|key| {
                let person = found.get(&key).cloned().unwrap_or_default();
                let subject = match (&change.account, &person) {
                    (AccountRef::Id(id), Found { member: None, invite: None, request: None }) => {
                        return Err(ConnectorError::NotFound(format!(
                            "no member, pending invite or join request has the id {id:?}"
                        )));
                    }
                    _ => new_subject(&key, person, self)?,
                };
                let identity = subject.email.clone();
                let index = *index_of.entry(identity).or_insert_with(|| {
                    subjects.push(subject);
                    subjects.len() - 1
                });
                let target = parse_target(&change.entitlement)?;
                apply(&change.action, target, &mut subjects[index], self)
                    .map(|effect| (index, effect))
            });
            effects.push(effect);
        }

        self.plan(&mut subjects);
        // Deliberate defect for the conformance kit's tests: write even in a dry run.
        #[cfg(feature = "bug-dry-run-writes")]
        let dry_run_writes = dry_run;
        #[cfg(not(feature = "bug-dry-run-writes"))]
        let dry_run_writes = false;
        if !dry_run || dry_run_writes {
            self.execute(&console, &mut subjects)?;
        }

        Ok(effects
            .into_iter()
            .map(|effect| {
                let (index, effect) = effect?;
                let subject = &subjects[index];
                if !effect.changed {
                    return Ok(ChangeResult {
                        outcome: ChangeOutcome::AlreadyInState,
                        replaced: Vec::new(),
                        account: self.project(subject, &subject.initial),
                        detail: effect.note,
                        requests: Vec::new(),
                        notices: Vec::new(),
                    });
                }
                if dry_run {
                    return Ok(ChangeResult {
                        outcome: ChangeOutcome::Planned,
                        replaced: effect.replaced,
                        account: self.project(subject, &subject.desired),
                        detail: format!("would {}", effect.note),
                        requests: subject.planned.clone(),
                        notices: effect.notices,
                    });
                }
                if let Some(error) = &subject.error {
                    return Err(error.clone());
                }
                let invites = subject.desired.presence == Presence::Invited
                    && subject.sent.iter().any(is_invite);
                Ok(ChangeResult {
                    outcome: if invites { ChangeOutcome::Pending } else { ChangeOutcome::Applied },
                    replaced: effect.replaced,
                    account: subject.after.clone(),
                    detail: effect.note,
                    requests: subject.sent.clone(),
                    notices: effect.notices,
                })
            })
            .collect())
    }

    /// Finds the member, invite and join request of every reference: one lookup each, or the
    /// whole workspace listed once when that waits for fewer round trips. For more than
    /// [`SNAPSHOT_THRESHOLD`] people the listings' lengths are read first (an item each): a
    /// lookup by email is a search of each listing (of the join requests only for someone who is
    /// neither a member nor invited), but one by id reads its listing until the id turns up, as
    /// the console looks up no one by id. A big workspace is then not listed for a few dozen
    /// emails.
    pub(crate) fn lookup(
        &self,
        console: &ConsoleClient<'_, T>,
        refs: &[&AccountRef],
    ) -> Result<HashMap<String, Found>, ConnectorError> {
        let mut found = HashMap::new();
        let distinct: std::collections::BTreeSet<String> =
            refs.iter().filter_map(|r| reference_key(r).ok()).collect();
        let concurrency = self.settings.read_concurrency;
        let lengths = if distinct.len() > SNAPSHOT_THRESHOLD {
            let members = listing_length::<T, Member>(console, "users")?;
            let invites = listing_length::<T, Invite>(console, "invites")?;
            let requests = match self.settings.join_requests {
                true => Some(
                    listing_length::<T, JoinRequest>(console, JOIN_REQUESTS)
                        .map_err(join_requests_unserved)?,
                ),
                false => None,
            };
            Some(Lengths { members, invites, requests })
        } else {
            None
        };
        if let Some(lengths) = lengths
            && listing_is_cheaper(&distinct, lengths, concurrency)
        {
            let members: Vec<Member> =
                list_everything(console, "users", concurrency, lengths.members)?;
            let invites: Vec<Invite> =
                list_everything(console, "invites", concurrency, lengths.invites)?;
            let requests: Vec<JoinRequest> = match lengths.requests {
                Some(total) => list_everything(console, JOIN_REQUESTS, concurrency, total)
                    .map_err(join_requests_unserved)?,
                None => Vec::new(),
            };
            for key in distinct {
                let member = members
                    .iter()
                    .find(|m| m.id == key || m.email.eq_ignore_ascii_case(&key))
                    .cloned();
                let invite = invites
                    .iter()
                    .find(|i| invite_key(i) == key || i.email_address.eq_ignore_ascii_case(&key))
                    .cloned();
                let request = requests
                    .iter()
                    .find(|r| request_key(r) == key || r.email.eq_ignore_ascii_case(&key))
                    .cloned();
                found.insert(key, Found { member, invite, request });
            }
            return Ok(found);
        }
        for key in distinct {
            let entry = if let Some(invite_id) = key.strip_prefix(INVITE_ID_PREFIX) {
                let invite =
                    scan(console, "invites", "", concurrency, |i: &Invite| i.id == invite_id)?;
                Found { invite, ..Found::default() }
            } else if let Some(request_id) = key.strip_prefix(REQUEST_ID_PREFIX) {
                let request = self.find_request(console, "", |r| r.id == request_id)?;
                Found { request, ..Found::default() }
            } else if key.contains('@') {
                let member = scan(console, "users", &key, concurrency, |m: &Member| {
                    m.email.eq_ignore_ascii_case(&key)
                })?;
                let invite = scan(console, "invites", &key, concurrency, |i: &Invite| {
                    i.email_address.eq_ignore_ascii_case(&key)
                })?;
                // The join requests are searched for someone neither a member nor invited,
                // unless their listing is known to be empty.
                let requests_empty = lengths.is_some_and(|l| l.requests == Some(0));
                let request = match (&member, &invite) {
                    (None, None) if !requests_empty => {
                        self.find_request(console, &key, |r| r.email.eq_ignore_ascii_case(&key))?
                    }
                    _ => None,
                };
                Found { member, invite, request }
            } else {
                let member = scan(console, "users", "", concurrency, |m: &Member| m.id == key)?;
                Found { member, ..Found::default() }
            };
            found.insert(key, entry);
        }
        Ok(found)
    }

    /// Fills each subject's planned requests, bulk invites last.
    fn plan(&self, subjects: &mut [Subject]) {
        for subject in subjects.iter_mut() {
            subject.planned = self.direct_requests(subject);
        }
        let chunks = invite_chunks(subjects.iter().enumerate().filter(|(_, s)| needs_invite(s)));
        for chunk in &chunks {
            let request = self.invite_request(chunk);
            for &index in &chunk.members {
                subjects[index].planned.push(request.clone());
            }
        }
    }

    /// The requests other than invites, in the order they must be sent.
    fn direct_requests(&self, subject: &Subject) -> Vec<PlannedRequest> {
        let (from, to) = (&subject.initial, &subject.desired);
        let account = &self.settings.account_id;
        let cancel = || PlannedRequest {
            method: "DELETE".to_string(),
            path: format!("/accounts/{account}/invites"),
            body: Some(json!({"email_address": subject.email}).to_string()),
        };
        let join_request = |verb: &str, body: Option<String>| {
            subject.request.as_ref().map(|r| PlannedRequest {
                method: "POST".to_string(),
                path: format!("/accounts/{account}/{JOIN_REQUESTS}/{}/{verb}", r.id),
                body,
            })
        };
        match (from.presence, to.presence, &subject.member) {
            (Presence::Requested, Presence::Member, _) => {
                let body = json!({"role": to.role, "seat_type": to.seat}).to_string();
                join_request("approve", Some(body)).into_iter().collect()
            }
            // Rejected, or rejected and invited within one batch.
            (Presence::Requested, Presence::Absent | Presence::Invited, _) => {
                join_request("reject", None).into_iter().collect()
            }
            // Removed, or removed and invited again within one batch.
            (Presence::Member, Presence::Absent | Presence::Invited, Some(m)) => {
                vec![PlannedRequest {
                    method: "DELETE".to_string(),
                    path: format!("/accounts/{account}/users/{}", m.id),
                    body: None,
                }]
            }
            (Presence::Invited, Presence::Absent, _) => vec![cancel()],
            (Presence::Invited, Presence::Invited, _) if !from.agrees_with(to) => vec![cancel()],
            (Presence::Member, Presence::Member, Some(m)) => {
                let mut requests = Vec::new();
                let path = format!("/accounts/{account}/users/{}", m.id);
                if from.role != to.role {
                    requests.push(PlannedRequest {
                        method: "PATCH".to_string(),
                        path: path.clone(),
                        body: Some(json!({"role": to.role}).to_string()),
                    });
                }
                if from.seat != to.seat {
                    requests.push(PlannedRequest {
                        method: "PATCH".to_string(),
                        path,
                        body: Some(json!({"seat_type": to.seat}).to_string()),
                    });
                }
                requests
            }
            _ => Vec::new(),
        }
    }

    fn invite_request(&self, chunk: &InviteChunk) -> PlannedRequest {
        PlannedRequest {
            method: "POST".to_string(),
            path: format!("/accounts/{}/invites", self.settings.account_id),
            body: Some(
                json!({
                    "email_addresses": chunk.emails,
                    "role": chunk.role,
                    "seat_type": chunk.seat,
                    "resend_emails": true,
                })
                .to_string(),
            ),
        }
    }

    /// Sends the plan, then reads every touched person back.
    fn execute(
        &self,
        console: &ConsoleClient<'_, T>,
        subjects: &mut [Subject],
    ) -> Result<(), ConnectorError> {
        let prefix = format!("/accounts/{}/", self.settings.account_id);
        for subject in subjects.iter_mut() {
            let direct: Vec<PlannedRequest> =
                subject.planned.iter().filter(|r| !is_invite(r)).cloned().collect();
            for request in direct {
                match self.send_confirmed(console, &prefix, &subject.email, &request) {
                    Ok(()) => subject.sent.push(request),
                    Err(error) => {
                        subject.error = Some(half_applied(&subject.sent, error));
                        break;
                    }
                }
            }
        }
        // Invites are regrouped from the people still on track, so a failure above is not
        // compounded by inviting someone whose old invite could not be cancelled.
        let chunks = invite_chunks(
            subjects.iter().enumerate().filter(|(_, s)| s.error.is_none() && needs_invite(s)),
        );
        for chunk in chunks {
            let request = self.invite_request(&chunk);
            let answer = self.invite_confirmed(console, &prefix, &chunk, subjects);
            for &index in &chunk.members {
                let subject = &mut subjects[index];
                match &answer {
                    Err(error) => subject.error = Some(half_applied(&subject.sent, error.clone())),
                    Ok(refused) => match refused.get(&subject.email) {
                        Some(reason) => {
                            let refused = ConnectorError::InvalidArgument(format!(
                                "the service refused to invite {}: {reason}",
                                subject.email
                            ));
                            subject.error = Some(half_applied(&subject.sent, refused));
                        }
                        None => subject.sent.push(request.clone()),
                    },
                }
            }
        }
        self.read_back(console, subjects)
    }

    /// Sends one direct write. When its outcome is unknown (a server error, a lost answer), reads
    /// the person back: if the change is there it was applied; if not, it is safe to repeat.
    fn send_confirmed(
        &self,
        console: &ConsoleClient<'_, T>,
        prefix: &str,
        email: &str,
        request: &PlannedRequest,
    ) -> Result<(), ConnectorError> {
        let method = match request.method.as_str() {
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Post,
        };
        let path = request.path.trim_start_matches(prefix);
        let mut attempt = 1;
        loop {
            let error =
                match console.send_write::<serde_json::Value>(method, path, request.body.clone()) {
                    Ok(_) => return Ok(()),
                    Err(WriteError::Rejected(error)) => return Err(error),
                    Err(WriteError::Unknown(error)) => error,
                };
            let found = self.lookup(console, &[&AccountRef::Email(email.to_string())])?;
            if visible(request, &found.get(email).cloned().unwrap_or_default()) {
                return Ok(());
            }
            if attempt >= console.policy().max_attempts || !console.backoff(attempt, None) {
                return Err(ConnectorError::Unavailable(format!(
                    "{}; the change is not visible after {attempt} attempts",
                    describe_error(&error)
                )));
            }
            attempt += 1;
        }
    }

    /// Sends a bulk invite; when its outcome is unknown, reads back who is invited and sends
    /// again only for the rest. Returns the addresses the service refused, with its reasons.
    fn invite_confirmed(
        &self,
        console: &ConsoleClient<'_, T>,
        prefix: &str,
        chunk: &InviteChunk,
        subjects: &[Subject],
    ) -> Result<HashMap<String, String>, ConnectorError> {
        let mut pending = chunk.clone();
        let mut attempt = 1;
        loop {
            let request = self.invite_request(&pending);
            let path = request.path.trim_start_matches(prefix);
            let error = match console.send_write::<InviteResponse>(Method::Post, path, request.body)
            {
                Ok(response) => {
                    return Ok(response
                        .errored_emails
                        .iter()
                        .map(|e| (e.email().to_lowercase(), e.reason().to_string()))
                        .collect());
                }
                Err(WriteError::Rejected(error)) => return Err(error),
                Err(WriteError::Unknown(error)) => error,
            };
            let refs: Vec<AccountRef> =
                pending.emails.iter().map(|e| AccountRef::Email(e.clone())).collect();
            let found = self.lookup(console, &refs.iter().collect::<Vec<_>>())?;
            let still: Vec<usize> = pending
                .members
                .iter()
                .copied()
                .filter(|&i| {
                    let invite = found.get(&subjects[i].email).and_then(|f| f.invite.as_ref());
                    !invite.is_some_and(|inv| {
                        inv.role == pending.role
                            && inv.seat_type.as_deref() == Some(pending.seat.as_str())
                    })
                })
                .collect();
            if still.is_empty() {
                return Ok(HashMap::new());
            }
            if attempt >= console.policy().max_attempts || !console.backoff(attempt, None) {
                return Err(ConnectorError::Unavailable(format!(
                    "{}; {} of {} invites are not visible after {attempt} attempts",
                    describe_error(&error),
                    still.len(),
                    chunk.emails.len()
                )));
            }
            pending.emails = still.iter().map(|&i| subjects[i].email.clone()).collect();
            pending.members = still;
            attempt += 1;
        }
    }

    /// Confirms every write: the service's 2xx is provisional. A failure to read back is
    /// reported on each person touched, never as an error of the whole batch.
    fn read_back(
        &self,
        console: &ConsoleClient<'_, T>,
        subjects: &mut [Subject],
    ) -> Result<(), ConnectorError> {
        let touched: Vec<AccountRef> = subjects
            .iter()
            .filter(|s| s.error.is_none() && !s.sent.is_empty())
            .map(|s| AccountRef::Email(s.email.clone()))
            .collect();
        if touched.is_empty() {
            return Ok(());
        }
        let refs: Vec<&AccountRef> = touched.iter().collect();
        let found = match self.lookup(console, &refs) {
            Ok(found) => found,
            Err(error) => {
                // The writes went out: say so on every person touched, never as "nothing done".
                for subject in
                    subjects.iter_mut().filter(|s| s.error.is_none() && !s.sent.is_empty())
                {
                    subject.error = Some(unconfirmed(subject, &error));
                }
                return Ok(());
            }
        };
        for subject in subjects.iter_mut().filter(|s| s.error.is_none() && !s.sent.is_empty()) {
            let person = found.get(&subject.email).cloned().unwrap_or_default();
            let actual = match state_of(&person, self) {
                Ok(actual) => actual,
                Err(error) => {
                    subject.error = Some(unconfirmed(subject, &error));
                    continue;
                }
            };
            if !actual.agrees_with(&subject.desired) {
                subject.error = Some(ConnectorError::Conflict(format!(
                    "the service accepted the change for {} but reading back shows {} instead of {}; it may have been overridden, check before retrying",
                    subject.email,
                    describe(&actual),
                    describe(&subject.desired)
                )));
                continue;
            }
            subject.after = match person {
                Found { member: Some(m), .. } => Some(member_account(m)),
                Found { invite: Some(i), .. } => Some(self.invite_account(&i)?),
                Found { request: Some(r), .. } => Some(request_account(r)),
                _ => None,
            };
        }
        Ok(())
    }

    /// The account as it would be in `state`.
    fn project(&self, subject: &Subject, state: &State) -> Option<Account> {
        let entitlements = vec![
            catalog::WORKSPACE.to_string(),
            catalog::role_entitlement(&state.role),
            catalog::seat_entitlement(&state.seat),
        ];
        match (state.presence, &subject.member, &subject.invite) {
            (Presence::Absent, _, _) => None,
            (Presence::Requested, _, _) => subject.request.clone().map(request_account),
            (Presence::Member, Some(m), _) => {
                Some(Account { entitlements, ..member_account(m.clone()) })
            }
            // An approved join request: a member whose id the service gives on approval.
            (Presence::Member, None, _) => subject.request.clone().map(|r| Account {
                status: AccountStatus::Active,
                entitlements,
                ..request_account(r)
            }),
            (_, _, Some(i)) if *state == subject.initial => {
                self.invite_account(i).ok().map(|a| Account { entitlements, ..a })
            }
            // A planned invite has no id yet.
            _ => Some(Account {
                id: format!("{}(new)", INVITE_ID_PREFIX),
                email: Some(subject.email.clone()),
                display_name: None,
                status: AccountStatus::Invited,
                entitlements,
                managed_by: None,
                created_at: None,
            }),
        }
    }
}

/// A bulk invite: up to [`INVITE_CHUNK`] addresses with one role and seat type.
#[derive(Debug, Clone)]
struct InviteChunk {
    role: String,
    seat: String,
    emails: Vec<String>,
    members: Vec<usize>,
}

fn needs_invite(subject: &Subject) -> bool {
    subject.desired.presence == Presence::Invited && !subject.initial.agrees_with(&subject.desired)
}

/// Groups the people to invite by (role, seat type), in first-seen order, in chunks.
fn invite_chunks<'a>(people: impl Iterator<Item = (usize, &'a Subject)>) -> Vec<InviteChunk> {
    let mut groups: BTreeMap<(usize, String, String), Vec<usize>> = BTreeMap::new();
    let mut order: HashMap<(String, String), usize> = HashMap::new();
    let mut people_of: Vec<(usize, &Subject)> = Vec::new();
    for (index, subject) in people {
        let key = (subject.desired.role.clone(), subject.desired.seat.clone());
        let next = order.len();
        let rank = *order.entry(key.clone()).or_insert(next);
        groups.entry((rank, key.0, key.1)).or_default().push(people_of.len());
        people_of.push((index, subject));
    }
    let mut chunks = Vec::new();
    for ((_, role, seat), positions) in groups {
        for slice in positions.chunks(INVITE_CHUNK) {
            chunks.push(InviteChunk {
                role: role.clone(),
                seat: seat.clone(),
                emails: slice.iter().map(|&p| people_of[p].1.email.clone()).collect(),
                members: slice.iter().map(|&p| people_of[p].0).collect(),
            });
        }
    }
    chunks
}

/// Whether a planned request is a bulk invite (the other writes go one person at a time).
fn is_invite(request: &PlannedRequest) -> bool {
    request.method == "POST" && request.path.ends_with("/invites")
}

/// Whether the effect of a direct write shows in the person's state.
fn visible(request: &PlannedRequest, person: &Found) -> bool {
    let body: serde_json::Value =
        request.body.as_deref().and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
    let holds = |m: &Member| {
        body.get("role").is_none_or(|r| r.as_str() == Some(m.role.as_str()))
            && body.get("seat_type").is_none_or(|s| s.as_str() == Some(m.seat_type.as_str()))
    };
    match request.method.as_str() {
        "PATCH" => person.member.as_ref().is_some_and(holds),
        "POST" if request.path.ends_with("/approve") => person.member.as_ref().is_some_and(holds),
        "POST" if request.path.ends_with("/reject") => {
            person.request.is_none() && person.member.is_none()
        }
        "DELETE" if request.path.ends_with("/invites") => person.invite.is_none(),
        "DELETE" => person.member.is_none(),
        _ => false,
    }
}

/// A person's writes went out but could not be read back: say so, never "nothing done".
fn unconfirmed(subject: &Subject, error: &ConnectorError) -> ConnectorError {
    let unconfirmed = ConnectorError::Unavailable(format!(
        "the change for {} was sent but could not be read back to confirm it ({}); check the account before retrying",
        subject.email,
        describe_error(error)
    ));
    half_applied(&subject.sent, unconfirmed)
}

/// Adds to an error what had already been done for the same person, so nothing half-applied
/// goes unreported; a cancelled invite that was not sent again is named as such.
fn half_applied(sent: &[PlannedRequest], error: ConnectorError) -> ConnectorError {
    let cancelled = sent.iter().any(|r| r.method == "DELETE" && r.path.ends_with("/invites"));
    let error = connector_sdk::error::half_applied(sent, error);
    if cancelled {
        connector_sdk::error::with_note(error, "; the cancelled invite was not restored")
    } else {
        error
    }
}

/// Every item of the console's `listing`, read in rounds of up to `concurrency` pages.
fn list_everything<T: Transport, I: serde::de::DeserializeOwned>(
    console: &ConsoleClient<'_, T>,
    listing: &str,
    concurrency: u32,
    total: u64,
) -> Result<Vec<I>, ConnectorError> {
    let mut all = Vec::new();
    // The length known, the first round asks for several pages at once.
    let start = Position { offset: 0, total: Some(total) };
    walk(console, listing, "", concurrency, start, u32::MAX, |item| {
        all.push(item);
        Ok(false)
    })?;
    Ok(all)
}

/// How many items the console's `listing` (`users` or `invites`) holds, asking for one.
fn listing_length<T: Transport, I: serde::de::DeserializeOwned>(
    console: &ConsoleClient<'_, T>,
    listing: &str,
) -> Result<u64, ConnectorError> {
    let first = console.list_pages::<I>(listing, "", &[(0, 1)]).into_iter().next();
    Ok(first.ok_or_else(|| ConnectorError::Internal(format!("no answer for {listing}")))??.total)
}

/// Whether listing each of the console's listings of people (`lengths` long, in rounds of
/// `concurrency` pages) waits for fewer round trips than looking each of `keys` up in turn: a
/// search of each listing per email, the rounds of its listing per id (upper bounds: a scan
/// stops with the round where the id turns up, and the join requests are searched only for
/// someone neither a member nor invited).
fn listing_is_cheaper(
    keys: &std::collections::BTreeSet<String>,
    lengths: Lengths,
    concurrency: u32,
) -> bool {
    let rounds = |items: u64| {
        items.div_ceil(u64::from(MAX_PAGE_SIZE)).max(1).div_ceil(u64::from(concurrency.max(1)))
    };
    let lookups: u64 = keys
        .iter()
        .map(|key| {
            if key.starts_with(INVITE_ID_PREFIX) {
                rounds(lengths.invites)
            } else if key.starts_with(REQUEST_ID_PREFIX) {
                lengths.requests.map_or(0, rounds)
            } else if key.contains('@') {
                2 + u64::from(lengths.requests.is_some_and(|n| n > 0))
            } else {
                rounds(lengths.members)
            }
        })
        .sum();
    let listing =
        rounds(lengths.members) + rounds(lengths.invites) + lengths.requests.map_or(0, rounds);
    listing <= lookups
}

/// A person's state as read. Someone absent holds no role or seat, so theirs are left empty.
fn state_of<T: Transport>(
    person: &Found,
    connector: &ChatGptConnector<T>,
) -> Result<State, ConnectorError> {
    let nothing = |presence| State { presence, role: String::new(), seat: String::new() };
    Ok(match (&person.member, &person.invite, &person.request) {
        (Some(m), _, _) => {
            State { presence: Presence::Member, role: m.role.clone(), seat: m.seat_type.clone() }
        }
        (None, Some(i), _) => State {
            presence: Presence::Invited,
            role: i.role.clone(),
            seat: match &i.seat_type {
                Some(seat) => seat.clone(),
                None => connector.default_seat()?.to_string(),
            },
        },
        (None, None, Some(_)) => nothing(Presence::Requested),
        (None, None, None) => nothing(Presence::Absent),
    })
}

fn new_subject<T: Transport>(
    key: &str,
    person: Found,
    connector: &ChatGptConnector<T>,
) -> Result<Subject, ConnectorError> {
    let state = state_of(&person, connector)?;
    let Found { member, invite, request } = person;
    let email = member
        .as_ref()
        .map(|m| m.email.to_lowercase())
        .or_else(|| invite.as_ref().map(|i| i.email_address.to_lowercase()))
        .or_else(|| request.as_ref().map(|r| r.email.to_lowercase()))
        .unwrap_or_else(|| key.to_string());
    Ok(Subject {
        email,
        member,
        invite,
        request,
        initial: state.clone(),
        desired: state,
        planned: Vec::new(),
        sent: Vec::new(),
        error: None,
        after: None,
    })
}

fn describe(state: &State) -> String {
    match state.presence {
        Presence::Absent => "no member or invite".to_string(),
        Presence::Requested => "a pending join request".to_string(),
        Presence::Invited => format!(
            "an invite with {} and {}",
            catalog::role_entitlement(&state.role),
            catalog::seat_entitlement(&state.seat)
        ),
        Presence::Member => format!(
            "a member with {} and {}",
            catalog::role_entitlement(&state.role),
            catalog::seat_entitlement(&state.seat)
        ),
    }
}

/// Plays one change on a person's modelled state, refusing before anything is sent what the
/// workspace's plan, the integration account's role or SCIM's ownership of the person rules out,
/// and noting what the person approving it must know.
fn apply<T: Transport>(
    action: &ChangeAction,
    target: Target,
    subject: &mut Subject,
    connector: &ChatGptConnector<T>,
) -> Result<Effect, ConnectorError> {
    let before = subject.desired.clone();
    let mut effect = play(action, target, subject, connector)?;
    if effect.changed
        && let Some(notice) = codex_notice(&before, &subject.desired, &subject.email)
    {
        effect.notices.push(notice);
    }
    Ok(effect)
}

/// The console value of the Codex seat.
const CODEX_SEAT: &str = "usage_based";

/// The notice for a change that moves someone from `before` onto a Codex seat: with it they
/// reach no chats, memories or projects (shared ones included); nothing is deleted, and access
/// returns with a ChatGPT seat.
fn codex_notice(before: &State, after: &State, email: &str) -> Option<Notice> {
    let onto_codex = after.presence != Presence::Absent
        && after.seat == CODEX_SEAT
        && (before.presence == Presence::Absent || before.seat != CODEX_SEAT);
    if !onto_codex {
        return None;
    }
    let message = if before.presence == Presence::Member && after.presence == Presence::Member {
        format!(
            "{email} loses access to their chats, memories and projects (shared ones included) while on a Codex seat; nothing is deleted, and access returns with a ChatGPT seat"
        )
    } else {
        format!(
            "{email} will have a Codex seat: no access to chats, memories or projects (shared ones included) until given a ChatGPT seat; nothing is deleted"
        )
    };
    Some(Notice::DataAccessLost(DataAccessLoss {
        data: ["chats", "memories", "projects"].map(String::from).to_vec(),
        deleted: false,
        restored_on_return: true,
        message,
    }))
}

/// [`apply`] without its notices.
fn play<T: Transport>(
    action: &ChangeAction,
    target: Target,
    subject: &mut Subject,
    connector: &ChatGptConnector<T>,
) -> Result<Effect, ConnectorError> {
    let email = subject.email.clone();
    let scim = subject.member.as_ref().map(|m| m.is_scim_managed).unwrap_or(false)
        || subject.invite.as_ref().map(|i| i.is_scim_managed).unwrap_or(false);
    let suspended = subject.member.as_ref().is_some_and(|m| m.deactivated_time.is_some());
    // A member in the model who was a join request is being approved: their role and seat go
    // in the approval, not in changes to an existing member.
    let approving = subject.initial.presence == Presence::Requested;
    let state = &mut subject.desired;
    let unchanged = |note: String| {
        Ok(Effect { changed: false, replaced: Vec::new(), note, notices: Vec::new() })
    };
    let changed = |replaced: Vec<String>, note: String| {
        Ok(Effect { changed: true, replaced, note, notices: Vec::new() })
    };
    let grant = match action {
        ChangeAction::Grant => true,
        ChangeAction::Revoke => false,
        ChangeAction::Set { group } => {
            let owner = match target {
                Target::Role(_) => catalog::ROLE_GROUP,
                Target::Seat(_) => catalog::SEAT_GROUP,
                Target::Workspace => "",
            };
            if owner != group {
                return Err(ConnectorError::InvalidArgument(format!(
                    "set-entitlement: the entitlement is not in exclusion group {group:?} (groups: role, seat)"
                )));
            }
            true
        }
    };
    // What the plan does not have is refused whatever the person's state.
    match target {
        Target::Role(role) if grant && role.enterprise_only => connector
            .workspace_rules()?
            .role_allowed(role)
            .map_err(ConnectorError::InvalidArgument)?,
        Target::Seat(seat) if grant && seat.codex => connector
            .workspace_rules()?
            .seat_allowed(seat)
            .map_err(ConnectorError::InvalidArgument)?,
        _ => {}
    }
    // Changing an invite's role or seat cancels it and invites again, through the console: a
    // SCIM-managed invite would leave the identity provider's hands.
    let scim_invite = state.presence == Presence::Invited && scim;
    let managed_invite = |what: &str| {
        Err(ConnectorError::ManagedExternally(format!(
            "{email}'s invite is managed by SCIM: changing its {what} would cancel it and invite them again through the console, out of the identity provider's hands; change it in the identity provider, or once they have accepted"
        )))
    };
    let member_seat_change = || -> Result<(), ConnectorError> {
        let rules = connector.workspace_rules()?;
        if rules.seat_changes == SeatChanges::AccountManager {
            return Err(ConnectorError::Unsupported(format!(
                "changing the seat type of {email}, a member, needs your OpenAI account manager on this workspace's plan ({}); the console cannot do it (the seat of a pending invite can still be changed here)",
                rules.plan.name()
            )));
        }
        connector.require_owner("changing a member's seat type")
    };
    let invite_new = |state: &mut State, role: &str, seat: &str| {
        *state =
            State { presence: Presence::Invited, role: role.to_string(), seat: seat.to_string() };
    };
    let approve = |state: &mut State, role: &str, seat: &str| {
        *state =
            State { presence: Presence::Member, role: role.to_string(), seat: seat.to_string() };
    };
    match (target, grant) {
        (Target::Workspace, true) => match state.presence {
            Presence::Absent => {
                invite_new(state, "standard-user", connector.default_seat()?);
                changed(Vec::new(), format!("invite {email}"))
            }
            Presence::Requested => {
                approve(state, "standard-user", connector.default_seat()?);
                changed(Vec::new(), format!("approve the join request of {email}"))
            }
            Presence::Member if suspended => Err(ConnectorError::Conflict(format!(
                "{email} is a deactivated member; reactivate them in the ChatGPT admin console"
            ))),
            _ => unchanged(format!("{email} already has workspace access")),
        },
        (Target::Workspace, false) => match state.presence {
            Presence::Absent => unchanged(format!("{email} has no workspace access")),
            Presence::Requested => {
                state.presence = Presence::Absent;
                changed(Vec::new(), format!("reject the join request of {email}"))
            }
            _ if scim => Err(ConnectorError::ManagedExternally(format!(
                "{email} is managed by SCIM; remove them in the identity provider, not the console"
            ))),
            Presence::Member => {
                state.presence = Presence::Absent;
                changed(Vec::new(), format!("remove {email}"))
            }
            Presence::Invited => {
                state.presence = Presence::Absent;
                changed(Vec::new(), format!("cancel the invite of {email}"))
            }
        },
        (Target::Role(role), true) => {
            if state.presence != Presence::Absent && state.role == role.console {
                return unchanged(format!("{email} already holds {}", role.id));
            }
            match state.presence {
                Presence::Invited if scim_invite => return managed_invite("role"),
                Presence::Member if !approving => {
                    connector.require_owner("changing a member's role")?
                }
                _ if role.console == catalog::OWNER.console => {
                    connector.require_owner("inviting or approving someone as Owner")?
                }
                _ => {}
            }
            match state.presence {
                Presence::Absent => {
                    invite_new(state, role.console, connector.default_seat()?);
                    return changed(Vec::new(), format!("invite {email} as {}", role.name));
                }
                Presence::Requested => {
                    approve(state, role.console, connector.default_seat()?);
                    let note = format!("approve the join request of {email} as {}", role.name);
                    return changed(Vec::new(), note);
                }
                _ => {}
            }
            let replaced = vec![catalog::role_entitlement(&state.role)];
            state.role = role.console.to_string();
            changed(replaced, format!("make {email} {}", role.name))
        }
        (Target::Role(role), false) => {
            if matches!(state.presence, Presence::Absent | Presence::Requested)
                || state.role != role.console
            {
                return unchanged(format!("{email} does not hold {}", role.id));
            }
            if role.console == "standard-user" {
                return Err(ConnectorError::InvalidArgument(
                    "role:member is the base role and cannot be revoked; revoke `workspace` to remove the person".to_string(),
                ));
            }
            match state.presence {
                Presence::Invited if scim_invite => return managed_invite("role"),
                Presence::Member if !approving => {
                    connector.require_owner("changing a member's role")?
                }
                _ => {}
            }
            state.role = "standard-user".to_string();
            changed(Vec::new(), format!("return {email} to role Member"))
        }
        (Target::Seat(seat), true) => {
            match state.presence {
                Presence::Absent => {
                    invite_new(state, "standard-user", seat.console);
                    let note = format!("invite {email} with a {} seat", seat.name);
                    return changed(Vec::new(), note);
                }
                Presence::Requested => {
                    approve(state, "standard-user", seat.console);
                    let note =
                        format!("approve the join request of {email} with a {} seat", seat.name);
                    return changed(Vec::new(), note);
                }
                _ => {}
            }
            if state.seat == seat.console {
                return unchanged(format!("{email} already holds {}", seat.id));
            }
            match state.presence {
                Presence::Invited if scim_invite => return managed_invite("seat type"),
                Presence::Member if !approving => member_seat_change()?,
                _ => {}
            }
            let replaced = vec![catalog::seat_entitlement(&state.seat)];
            state.seat = seat.console.to_string();
            changed(replaced, format!("give {email} a {} seat", seat.name))
        }
        (Target::Seat(seat), false) => {
            if matches!(state.presence, Presence::Absent | Presence::Requested)
                || state.seat != seat.console
            {
                return unchanged(format!("{email} does not hold {}", seat.id));
            }
            let default_seat = connector.default_seat()?;
            if seat.console == default_seat {
                return Err(ConnectorError::InvalidArgument(format!(
                    "{} is the workspace's default seat type and cannot be revoked; grant another seat type, or revoke `workspace`",
                    seat.id
                )));
            }
            match state.presence {
                Presence::Invited if scim_invite => return managed_invite("seat type"),
                Presence::Member if !approving => member_seat_change()?,
                _ => {}
            }
            state.seat = default_seat.to_string();
            changed(
                Vec::new(),
                format!(
                    "return {email} to the default seat ({})",
                    catalog::seat_entitlement(default_seat)
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::{Value, json};

    use super::*;
    use crate::settings::Settings;
    use connector_sdk::transport::{HttpRequest, HttpResponse, TransportError};

    #[test]
    fn the_workspace_is_listed_only_when_that_waits_for_fewer_round_trips() {
        let keys = |emails: usize, ids: usize| -> std::collections::BTreeSet<String> {
            let emails = (0..emails).map(|n| format!("p{n}@x.com"));
            emails.chain((0..ids).map(|n| format!("user-{n}"))).collect()
        };
        let lengths = |members, invites| Lengths { members, invites, requests: None };
        // 25 emails are 50 searches in turn; 3,000 members are 8 rounds of four pages, and the
        // (empty) invites one more.
        assert!(listing_is_cheaper(&keys(25, 0), lengths(3_000, 0), 4));
        // 25,000 members are 63 rounds.
        assert!(!listing_is_cheaper(&keys(25, 0), lengths(25_000, 0), 4));
        // One page at a time, 6,000 members and 100 invites are 61 round trips.
        assert!(!listing_is_cheaper(&keys(25, 0), lengths(6_000, 100), 1));
        // An id is found only by reading its listing, so 25 of them list even a big workspace.
        assert!(listing_is_cheaper(&keys(0, 25), lengths(25_000, 0), 4));
        assert!(listing_is_cheaper(&keys(20, 5), lengths(25_000, 0), 4));
        // Listing join requests too costs their rounds, and a search of them per new person.
        let with_requests = Lengths { members: 3_000, invites: 0, requests: Some(2_000) };
        assert!(!listing_is_cheaper(&keys(4, 0), with_requests, 4));
        assert!(listing_is_cheaper(&keys(25, 0), with_requests, 4));
    }

    /// A console in memory: members `(id, email, role, seat)`, invites `(email, role, seat)`.
    #[derive(Default)]
    struct FakeConsole {
        members: RefCell<Vec<(String, String, String, String)>>,
        invites: RefCell<Vec<(String, String, String)>>,
        writes: RefCell<Vec<String>>,
        /// Fail every read once something was written (a read-back that cannot happen).
        reads_fail_after_write: std::cell::Cell<bool>,
    }

    fn ok(body: Value) -> Result<HttpResponse, TransportError> {
        Ok(HttpResponse {
            status: 200,
            content_type: Some("application/json".into()),
            retry_after: None,
            body: body.to_string().into_bytes(),
        })
    }

    impl Transport for &FakeConsole {
        fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
            let path = request.url.trim_start_matches("https://x/accounts/ws/");
            let body: Value = request
                .body
                .as_deref()
                .map(|b| serde_json::from_str(b).unwrap())
                .unwrap_or(Value::Null);
            let query = path.split("query=").nth(1).unwrap_or("").replace("%40", "@");
            if request.method != Method::Get {
                self.writes.borrow_mut().push(format!("{} {path} {body}", request.method.as_str()));
            } else if self.reads_fail_after_write.get() && !self.writes.borrow().is_empty() {
                return Ok(HttpResponse {
                    status: 503,
                    content_type: Some("application/json".into()),
                    retry_after: None,
                    body: br#"{"detail":"upstream unavailable"}"#.to_vec(),
                });
            }
            match (request.method, path.split('?').next().unwrap_or("")) {
                (Method::Get, "settings") => ok(
                    json!({"id": "ws", "default_seat_type": "default", "plan_type": "business", "codex_seats_enabled": true}),
                ),
                (Method::Get, "users") => {
                    let items: Vec<Value> = self.members.borrow().iter()
                        .filter(|m| m.1.contains(&query))
                        .map(|(id, email, role, seat)| json!({"id": id, "email": email, "role": role, "seat_type": seat}))
                        .collect();
                    ok(json!({"items": items, "total": items.len()}))
                }
                (Method::Get, "invites") => {
                    let items: Vec<Value> = self.invites.borrow().iter()
                        .filter(|i| i.0.contains(&query))
                        .map(|(email, role, seat)| json!({"id": format!("i-{email}"), "email_address": email, "role": role, "seat_type": seat}))
                        .collect();
                    ok(json!({"items": items, "total": items.len()}))
                }
                (Method::Post, "invites") => {
                    for email in body["email_addresses"].as_array().unwrap() {
                        self.invites.borrow_mut().push((
                            email.as_str().unwrap().into(),
                            body["role"].as_str().unwrap().into(),
                            body["seat_type"].as_str().unwrap().into(),
                        ));
                    }
                    ok(json!({"account_invites": [], "errored_emails": []}))
                }
                (Method::Delete, "invites") => {
                    self.invites.borrow_mut().retain(|i| i.0 != body["email_address"]);
                    ok(json!({"success": true}))
                }
                (Method::Patch, p) => {
                    let id = p.trim_start_matches("users/");
                    for m in self.members.borrow_mut().iter_mut().filter(|m| m.0 == id) {
                        if let Some(role) = body["role"].as_str() {
                            m.2 = role.into();
                        }
                        if let Some(seat) = body["seat_type"].as_str() {
                            m.3 = seat.into();
                        }
                    }
                    ok(json!({"success": true}))
                }
                other => panic!("unexpected request {other:?}"),
            }
        }
    }

    fn connector(console: &FakeConsole) -> ChatGptConnector<&FakeConsole> {
        let retry = connector_sdk::settings::RetryPolicy {
            max_attempts: 3,
            base_delay: std::time::Duration::from_millis(1),
            budget: std::time::Duration::from_secs(1),
        };
        let settings = Settings {
            base_url: Some("https://x".into()),
            admin_api_base_url: None,
            plan_without_console: crate::workspace::Plan::Enterprise,
            account_id: "ws".into(),
            scim_base_url: None,
            page_size: 100,
            read_concurrency: 1,
            integration_account: None,
            seat_changes: None,
            join_requests: false,
            console_groups: false,
            retry,
        };
        ChatGptConnector::new(console, settings)
    }

    fn grant(email: &str, entitlement: &str) -> ChangeRequest {
        ChangeRequest {
            action: ChangeAction::Grant,
            account: AccountRef::Email(email.into()),
            entitlement: entitlement.into(),
        }
    }

    #[test]
    fn two_changes_to_a_new_person_become_one_invite() {
        let console = FakeConsole::default();
        let changes = [grant("new@x.com", "role:admin"), grant("New@X.com", "seat:codex")];
        let results = connector(&console).apply_batch(&changes, false).unwrap();
        assert!(results.iter().all(|r| r.as_ref().unwrap().outcome == ChangeOutcome::Pending));
        assert_eq!(
            *console.writes.borrow(),
            [
                r#"POST invites {"email_addresses":["new@x.com"],"resend_emails":true,"role":"account-admin","seat_type":"usage_based"}"#
            ]
        );
        assert_eq!(results[1].as_ref().unwrap().replaced, ["seat:chatgpt"]);
    }

    #[test]
    fn a_dry_run_plans_the_same_requests_and_writes_nothing() {
        let console = FakeConsole::default();
        console.members.borrow_mut().push((
            "u1".into(),
            "ann@x.com".into(),
            "standard-user".into(),
            "default".into(),
        ));
        console.invites.borrow_mut().push((
            "bob@x.com".into(),
            "standard-user".into(),
            "default".into(),
        ));
        let changes = [
            grant("ann@x.com", "role:admin"),
            grant("bob@x.com", "seat:codex"),
            grant("ann@x.com", "role:admin"),
        ];
        let plan = connector(&console).apply_batch(&changes, true).unwrap();
        assert!(console.writes.borrow().is_empty());
        let outcomes: Vec<ChangeOutcome> =
            plan.iter().map(|r| r.as_ref().unwrap().outcome).collect();
        assert_eq!(
            outcomes,
            [ChangeOutcome::Planned, ChangeOutcome::Planned, ChangeOutcome::AlreadyInState]
        );
        let done = connector(&console).apply_batch(&changes[..2], false).unwrap();
        for (planned, done) in plan.iter().zip(&done) {
            assert_eq!(planned.as_ref().unwrap().requests, done.as_ref().unwrap().requests);
        }
        assert_eq!(console.writes.borrow().len(), 3, "PATCH, cancel, re-invite");
        assert_eq!(console.invites.borrow()[0].2, "usage_based");
    }

    #[test]
    fn a_write_that_cannot_be_read_back_is_reported_per_person_not_as_nothing_done() {
        let console = FakeConsole::default();
        console.members.borrow_mut().push((
            "u1".into(),
            "ann@x.com".into(),
            "standard-user".into(),
            "default".into(),
        ));
        console.reads_fail_after_write.set(true);
        let results =
            connector(&console).apply_batch(&[grant("ann@x.com", "role:admin")], false).unwrap();
        match &results[0] {
            Err(ConnectorError::Unavailable(m)) => {
                assert!(m.contains("was sent but could not be read back"), "{m}");
                assert!(
                    m.contains("already sent for this person: PATCH /accounts/ws/users/u1"),
                    "{m}"
                );
            }
            other => panic!("expected an unconfirmed-write error, got {other:?}"),
        }
        assert_eq!(console.writes.borrow().len(), 1);
    }

    #[test]
    fn revoking_and_granting_again_in_one_batch_removes_then_invites() {
        let console = FakeConsole::default();
        console.members.borrow_mut().push((
            "u1".into(),
            "ann@x.com".into(),
            "account-admin".into(),
            "default".into(),
        ));
        let revoke = ChangeRequest {
            action: ChangeAction::Revoke,
            account: AccountRef::Email("ann@x.com".into()),
            entitlement: "workspace".into(),
        };
        let plan = connector(&console)
            .apply_batch(&[revoke, grant("ann@x.com", "workspace")], true)
            .unwrap();
        let requests = &plan[1].as_ref().unwrap().requests;
        let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(methods, ["DELETE", "POST"], "{requests:?}");
        assert!(requests[0].path.ends_with("/users/u1"));
    }
}

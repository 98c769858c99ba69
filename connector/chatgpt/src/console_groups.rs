//! Console groups (`group:<id>`, kind `console-group`): the groups Owners and Admins make in the
//! console, the only groups of a workspace without SCIM. Listed whether or not SCIM is
//! configured; a change of membership goes to the console, one bulk request per group and
//! direction (of up to [`GROUP_BULK`] people) per batch, and is read back.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::json;

use crate::accounts::{GROUP_PREFIX, INVITE_ID_PREFIX, REQUEST_ID_PREFIX, reference_key};
use crate::api::{ConsoleClient, ConsoleGroupInfo, GroupMember, ListPage, listing_path};
use crate::connector::{Beside, ChatGptConnector, Position, take_page, walk};
use crate::groups::Positioned;
use crate::settings::MAX_PAGE_SIZE;
use connector_sdk::ConnectorError;
use connector_sdk::client::{WriteError, encode_query};
use connector_sdk::error::describe;
use connector_sdk::transport::{Method, Transport};
use connector_sdk::types::{Account, AccountRef, ChangeOutcome, ChangeResult, PlannedRequest};
use connector_sdk::{ChangeAction, ChangeRequest};

/// The console's listing of groups.
pub(crate) const GROUPS: &str = "groups";
/// The most people one bulk membership request carries.
pub const GROUP_BULK: usize = 100;

/// The console path of group `id` (below the account), the id percent-encoded: an id from a
/// `group:<id>` entitlement is anything without spaces, and must not add path segments or a
/// query to the request.
fn group_path(id: &str) -> String {
    format!("{GROUPS}/{}", encode_query(id))
}

/// A console group listing the console does not serve (404) is a setting to change.
pub(crate) fn console_groups_unserved(error: ConnectorError) -> ConnectorError {
    crate::api::unserved(
        error,
        "this workspace's console serves no groups: set `console-groups = false` to work without them",
    )
}

/// What one change does to a group's membership.
struct Effect {
    group: String,
    user: String,
    changed: bool,
    note: String,
}

impl<T: Transport> ChatGptConnector<T> {
    /// Whether the tenant lists and changes console groups (it has a console, and the setting
    /// is not off).
    pub(crate) fn console_groups_enabled(&self) -> bool {
        self.settings.console_groups && !self.settings.read_only()
    }

    /// The first page of console groups, to be read beside a listing call's pages of members
    /// (which get their groups at the call's end) rather than in a round trip of its own; none
    /// when the tenant does not list console groups.
    pub(crate) fn console_groups_beside(&self) -> Option<Beside<'_, ListPage<ConsoleGroupInfo>>> {
        self.console_groups_enabled().then(|| Beside {
            path: listing_path(GROUPS, 0, MAX_PAGE_SIZE, ""),
            answer: &self.console_groups_first,
        })
    }

    /// One page of console groups from `at`, at most `limit`; `None` for the position: the
    /// listing ended.
    pub(crate) fn console_groups_page(
        &self,
        at: Position,
        limit: u32,
    ) -> Result<(Vec<ConsoleGroupInfo>, Option<Position>), ConnectorError> {
        let console = self.console()?;
        let mut groups = Vec::new();
        let mut at = at;
        // The first page, if it was read beside this call's listing of members.
        if at == Position::START
            && let Some(first) = self.console_groups_first.get()
        {
            let page = first.clone().map_err(console_groups_unserved)?;
            let (items, exhausted) = take_page(page.items, page.total, 0, MAX_PAGE_SIZE.min(limit));
            at = Position { offset: items.len() as u64, total: Some(page.total) };
            groups.extend(items);
            if exhausted || groups.len() as u32 >= limit {
                return Ok((groups, (!exhausted).then_some(at)));
            }
        }
        let concurrency = self.settings.read_concurrency;
        let left = limit - groups.len() as u32;
        let stopped = walk(&console, GROUPS, "", concurrency, at, left, |g| {
            groups.push(g);
            Ok(false)
        })
        .map_err(console_groups_unserved)?;
        Ok((groups, stopped))
    }

    /// Every console group.
    fn all_console_groups(&self) -> Result<Vec<ConsoleGroupInfo>, ConnectorError> {
        let (groups, _) = self.console_groups_page(Position::START, u32::MAX)?;
        Ok(groups)
    }

    /// The ids of every member of console group `group`; none when the group is gone (deleted
    /// since the groups were listed, or since the listing's first call read them).
    fn console_group_members(
        &self,
        console: &ConsoleClient<'_, T>,
        group: &str,
    ) -> Result<BTreeSet<String>, ConnectorError> {
        let mut members = BTreeSet::new();
        let listing = format!("{}/members", group_path(group));
        let concurrency = self.settings.read_concurrency;
        let walked = walk(
            console,
            &listing,
            "",
            concurrency,
            Position::START,
            u32::MAX,
            |m: GroupMember| {
                members.insert(m.id);
                Ok(false)
            },
        );
        match walked {
            Ok(_) => Ok(members),
            // Only a group that is itself gone has no members; a listing of members the console
            // does not serve for a group it has stays an error.
            Err(error @ ConnectorError::NotFound(_)) => {
                match console.get_json::<ConsoleGroupInfo>(&group_path(group)) {
                    Err(ConnectorError::NotFound(_)) => Ok(BTreeSet::new()),
                    _ => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// The ids of the console groups holding anyone: `carried` from the listing's first call
    /// when the cursor brought them, else read (the groups' first page may have come beside the
    /// call's members).
    fn held_console_groups(
        &self,
        carried: Option<Vec<String>>,
    ) -> Result<Vec<String>, ConnectorError> {
        match carried {
            Some(held) => Ok(held),
            None => Ok(self
                .all_console_groups()?
                .into_iter()
                .filter(|g| g.member_count > 0)
                .map(|g| g.id)
                .collect()),
        }
    }

    /// Adds the console groups each member among `accounts` is in: the groups holding anyone
    /// (`carried`, or listed once), and the members of each. Returns the groups it used, for a
    /// listing's cursor to carry on; none when it needed none (console groups off, or no member
    /// among `accounts`).
    pub(crate) fn add_console_groups(
        &self,
        accounts: &mut [Account],
        carried: Option<Vec<String>>,
    ) -> Result<Option<Vec<String>>, ConnectorError> {
        let is_member = |a: &Account| {
            !a.id.starts_with(INVITE_ID_PREFIX) && !a.id.starts_with(REQUEST_ID_PREFIX)
        };
        if !self.console_groups_enabled() || !accounts.iter().any(is_member) {
            return Ok(None);
        }
        let console = self.console()?;
        let groups = self.held_console_groups(carried)?;
        let mut held: HashMap<String, Vec<String>> = HashMap::new();
        for group in &groups {
            for member in self.console_group_members(&console, group)? {
                held.entry(member).or_default().push(format!("{GROUP_PREFIX}{group}"));
            }
        }
        // With no group holding anyone (the common case), no account's id need be hashed.
        if !held.is_empty() {
            for account in accounts.iter_mut().filter(|a| is_member(a)) {
                account.entitlements.extend(held.remove(&account.id).unwrap_or_default());
            }
        }
        Ok(Some(groups))
    }

    /// Which of the batch's group changes name console groups: each distinct group read once.
    /// Returns them with their groups, and the rest (SCIM groups, or unknown ones).
    #[allow(clippy::type_complexity)]
    pub(crate) fn split_console_group_changes<'c>(
        &self,
        changes: &[(usize, &'c ChangeRequest)],
    ) -> Result<
        (
            BTreeMap<String, ConsoleGroupInfo>,
            Vec<(usize, &'c ChangeRequest)>,
            Vec<(usize, &'c ChangeRequest)>,
        ),
        ConnectorError,
    > {
        let mut groups = BTreeMap::new();
        if !self.console_groups_enabled() {
            return Ok((groups, Vec::new(), changes.to_vec()));
        }
        let console = self.console()?;
        let (mut ours, mut rest) = (Vec::new(), Vec::new());
        let mut not_console = BTreeSet::new();
        for &(index, change) in changes {
            let Some(Ok(id)) = crate::accounts::group_id(&change.entitlement) else {
                rest.push((index, change));
                continue;
            };
            if !groups.contains_key(id) && !not_console.contains(id) {
                match console.get_json::<ConsoleGroupInfo>(&group_path(id)) {
                    Ok(group) => {
                        groups.insert(id.to_string(), group);
                    }
                    Err(ConnectorError::NotFound(_)) => {
                        not_console.insert(id.to_string());
                    }
                    Err(error) => return Err(console_groups_unserved(error)),
                }
            }
            match groups.contains_key(id) {
                true => ours.push((index, change)),
                false => rest.push((index, change)),
            }
        }
        Ok((groups, ours, rest))
    }

    /// Applies changes of console groups' membership (each with its position in the batch).
    /// Every failure belongs to the changes it affects.
    pub(crate) fn apply_console_group_changes(
        &self,
        changes: &[(usize, &ChangeRequest)],
        groups: &BTreeMap<String, ConsoleGroupInfo>,
        dry_run: bool,
    ) -> Positioned {
        match self.console_group_plan(changes, groups, dry_run) {
            Ok(results) => results,
            Err(error) => changes.iter().map(|(i, _)| (*i, Err(error.clone()))).collect(),
        }
    }

    fn console_group_plan(
        &self,
        changes: &[(usize, &ChangeRequest)],
        groups: &BTreeMap<String, ConsoleGroupInfo>,
        dry_run: bool,
    ) -> Result<Positioned, ConnectorError> {
        let console = self.console()?;
        let refs: Vec<&AccountRef> = changes
            .iter()
            .filter(|(_, c)| reference_key(&c.account).is_ok())
            .map(|(_, c)| &c.account)
            .collect();
        let found = self.lookup(&console, &refs)?;
        // The membership of each group the batch touches, as read and as wanted.
        let mut initial: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for id in
            changes.iter().filter_map(|(_, c)| crate::accounts::group_id(&c.entitlement)?.ok())
        {
            if !initial.contains_key(id) && groups.get(id).is_some_and(|g| !g.is_scim_managed) {
                initial.insert(id.to_string(), self.console_group_members(&console, id)?);
            }
        }
        let mut desired = initial.clone();
        let mut effects: Vec<(usize, Result<Effect, ConnectorError>)> = Vec::new();
        for &(index, change) in changes {
            let effect = (|| {
                let id = crate::accounts::group_id(&change.entitlement)
                    .unwrap_or_else(|| Err(ConnectorError::Internal("not a group".into())))?;
                let group = groups.get(id).ok_or_else(|| {
                    ConnectorError::Internal(format!("group {id:?} was not read"))
                })?;
                let grant = match change.action {
                    ChangeAction::Grant => true,
                    ChangeAction::Revoke => false,
                    ChangeAction::Set { .. } => {
                        return Err(ConnectorError::InvalidArgument(format!(
                            "{}: groups are not exclusive; grant or revoke them",
                            change.entitlement
                        )));
                    }
                };
                if group.is_scim_managed {
                    return Err(ConnectorError::ManagedExternally(format!(
                        "console group {:?} is synced by SCIM; change its members in the identity provider",
                        group.name
                    )));
                }
                let key = reference_key(&change.account)?;
                let person = found.get(&key).cloned().unwrap_or_default();
                let Some(member) = person.member else {
                    let what = if person.invite.is_some() {
                        "has a pending invite"
                    } else if person.request.is_some() {
                        "has only asked to join"
                    } else {
                        "is not in the workspace"
                    };
                    return Err(ConnectorError::Conflict(format!(
                        "{key} {what}; console groups hold members only"
                    )));
                };
                let set = desired.entry(id.to_string()).or_default();
                let changed =
                    if grant { set.insert(member.id.clone()) } else { set.remove(&member.id) };
                let verb = match (grant, changed) {
                    (true, true) => "add {who} to",
                    (true, false) => "{who} is already in",
                    (false, true) => "remove {who} from",
                    (false, false) => "{who} is not in",
                };
                let note = format!(
                    "{} console group {:?}",
                    verb.replace("{who}", &member.email),
                    group.name
                );
                Ok(Effect { group: id.to_string(), user: member.id, changed, note })
            })();
            effects.push((index, effect));
        }

        // One bulk request per group and direction, in chunks.
        let account = &self.settings.account_id;
        let mut requests: Vec<(String, bool, Vec<String>, PlannedRequest)> = Vec::new();
        let none = BTreeSet::new();
        for (group, wanted) in &desired {
            let had = initial.get(group).unwrap_or(&none);
            for (add, people) in [
                (true, wanted.difference(had).cloned().collect::<Vec<_>>()),
                (false, had.difference(wanted).cloned().collect::<Vec<_>>()),
            ] {
                for chunk in people.chunks(GROUP_BULK) {
                    let request = PlannedRequest {
                        method: if add { "POST" } else { "DELETE" }.to_string(),
                        path: format!("/accounts/{account}/{}/members", group_path(group)),
                        body: Some(json!({"user_ids": chunk}).to_string()),
                    };
                    requests.push((group.clone(), add, chunk.to_vec(), request));
                }
            }
        }
        let carrying = |group: &str, user: &str| -> Vec<PlannedRequest> {
            requests
                .iter()
                .filter(|(g, _, people, _)| g == group && people.iter().any(|p| p == user))
                .map(|(_, _, _, r)| r.clone())
                .collect()
        };

        let mut failures: HashMap<(String, String), ConnectorError> = HashMap::new();
        let mut after = initial.clone();
        if !dry_run && !requests.is_empty() {
            let prefix = format!("/accounts/{account}/");
            for (group, _, people, request) in &requests {
                let method = if request.method == "POST" { Method::Post } else { Method::Delete };
                let path = request.path.trim_start_matches(&prefix);
                if let Err(WriteError::Rejected(error)) =
                    console.send_write::<serde_json::Value>(method, path, request.body.clone())
                {
                    for person in people {
                        failures.insert((group.clone(), person.clone()), error.clone());
                    }
                }
                // An unknown outcome is settled by the read-back below.
            }
            for (group, wanted) in &desired {
                match self.console_group_members(&console, group) {
                    Ok(members) => {
                        after.insert(group.clone(), members);
                    }
                    Err(error) => {
                        let had = initial.get(group).unwrap_or(&none);
                        for person in wanted.symmetric_difference(had) {
                            failures.entry((group.clone(), person.clone())).or_insert_with(|| {
                                ConnectorError::Unavailable(format!(
                                    "the change was sent but the group could not be read back ({}); check it before retrying",
                                    describe(&error)
                                ))
                            });
                        }
                    }
                }
            }
        }

        Ok(effects
            .into_iter()
            .map(|(index, effect)| {
                let result = effect.and_then(|effect| {
                    if !effect.changed {
                        return Ok(ChangeResult {
                            outcome: ChangeOutcome::AlreadyInState,
                            replaced: Vec::new(),
                            account: None,
                            detail: effect.note,
                            requests: Vec::new(),
                            notices: Vec::new(),
                        });
                    }
                    let sent = carrying(&effect.group, &effect.user);
                    if dry_run {
                        return Ok(ChangeResult {
                            outcome: ChangeOutcome::Planned,
                            replaced: Vec::new(),
                            account: None,
                            detail: format!("would {}", effect.note),
                            requests: sent,
                            notices: Vec::new(),
                        });
                    }
                    if let Some(error) = failures.get(&(effect.group.clone(), effect.user.clone())) {
                        return Err(error.clone());
                    }
                    let holds = |state: &BTreeMap<String, BTreeSet<String>>| {
                        state.get(&effect.group).is_some_and(|m| m.contains(&effect.user))
                    };
                    if holds(&after) != holds(&desired) {
                        return Err(ConnectorError::Unavailable(format!(
                            "{}: the console accepted the change but reading the group back shows it did not take effect; try again",
                            effect.note
                        )));
                    }
                    Ok(ChangeResult {
                        outcome: ChangeOutcome::Applied,
                        replaced: Vec::new(),
                        account: None,
                        detail: effect.note,
                        requests: sent,
                        notices: Vec::new(),
                    })
                });
                (index, result)
            })
            .collect())
    }
}

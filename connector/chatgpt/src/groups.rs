//! Group entitlements (`group:<id>`): SCIM groups, read and changed through the workspace's SCIM
//! directory when the tenant configures `scim-base-url`.
//!
//! A person's SCIM id is found by their email (`userName eq`); only people the identity
//! provider provisioned can be group members, because the directory drops members that do not
//! resolve to one of its users. Changes to one group within a batch become one `PATCH`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::accounts::{GROUP_PREFIX, INVITE_ID_PREFIX, group_id, member_account, reference_key};
use crate::connector::ChatGptConnector;
use crate::scim::{ScimClient, ScimGroup, group_path, membership_patch};
use connector_sdk::ConnectorError;
use connector_sdk::client::WriteError;
use connector_sdk::error::describe;
use connector_sdk::types::{Account, ChangeOutcome, ChangeResult, PlannedRequest};
use connector_sdk::{ChangeAction, ChangeRequest};

use connector_sdk::transport::Transport;

/// Results tagged with the position of their change in the batch.
pub(crate) type Positioned = Vec<(usize, Result<ChangeResult, ConnectorError>)>;

/// The people of a batch: the position in the people list of each reference, or why it has none.
type People = (HashMap<String, Result<usize, ConnectorError>>, Vec<Person>);

/// Which groups each SCIM user belongs to.
struct Memberships(HashMap<String, Vec<String>>);

impl Memberships {
    fn of(groups: &[ScimGroup]) -> Self {
        let mut index: HashMap<String, Vec<String>> = HashMap::new();
        for group in groups {
            for member in &group.members {
                index.entry(member.value.clone()).or_default().push(group.id.clone());
            }
        }
        Memberships(index)
    }

    fn entitlements(&self, user_id: &str) -> impl Iterator<Item = String> + '_ {
        self.0.get(user_id).into_iter().flatten().map(|g| format!("{GROUP_PREFIX}{g}"))
    }
}

/// One person the group changes of a batch touch.
struct Person {
    account: Account,
    email: String,
    scim_id: String,
}

/// What one change does to the membership model.
struct GroupEffect {
    group: String,
    person: usize,
    changed: bool,
    note: String,
}

impl<T: Transport> ChatGptConnector<T> {
    /// A client of the tenant's SCIM directory, when one is configured.
    pub(crate) fn scim(&self) -> Option<ScimClient<'_, T>> {
        let base = self.settings.scim_base_url.clone()?;
        Some(ScimClient::new(
            &self.transport,
            base,
            self.settings.retry,
            self.retrying.clone(),
            self.settings.read_concurrency,
        ))
    }

    /// Adds the `group:*` entitlements each account holds. Only SCIM-managed people can be in
    /// groups; a member's SCIM id is their console id, an invite's is looked up by email.
    pub(crate) fn add_groups(&self, accounts: &mut [Account]) -> Result<(), ConnectorError> {
        let Some(scim) = self.scim() else { return Ok(()) };
        let mut managed: Vec<&mut Account> =
            accounts.iter_mut().filter(|a| a.managed_by.as_deref() == Some("scim")).collect();
        if managed.is_empty() {
            return Ok(());
        }
        let groups = scim.all_groups()?;
        if groups.iter().all(|g| g.members.is_empty()) {
            return Ok(());
        }
        let memberships = Memberships::of(&groups);
        let invited = |a: &Account| a.id.starts_with(INVITE_ID_PREFIX);
        let emails: Vec<&str> =
            managed.iter().filter(|a| invited(a)).filter_map(|a| a.email.as_deref()).collect();
        // Taken in the order `emails` was built: the invites with an email, as they come.
        let mut invite_ids = scim.users_by_email(&emails)?.into_iter();
        for account in &mut managed {
            let scim_id = match (invited(account), &account.email) {
                (false, _) => Some(account.id.clone()),
                (true, Some(_)) => invite_ids.next().flatten().map(|u| u.id),
                (true, None) => None,
            };
            if let Some(id) = scim_id {
                account.entitlements.extend(memberships.entitlements(&id));
            }
        }
        Ok(())
    }

    /// Applies the group changes of a batch (each with its position in the batch). Every
    /// failure belongs to the changes it affects: by the time this runs, the batch's console
    /// changes may have been sent, so nothing here may claim that nothing was done.
    pub(crate) fn apply_group_changes(
        &self,
        changes: &[(usize, &ChangeRequest)],
        dry_run: bool,
    ) -> Positioned {
        let Some(scim) = self.scim() else {
            // Console groups were told apart before: what is left names no console group.
            return changes
                .iter()
                .map(|(i, c)| {
                    let error = if self.console_groups_enabled() {
                        ConnectorError::NotFound(format!(
                            "{}: no console group has this id, and SCIM groups need the tenant's `scim-base-url` (and its SCIM token)",
                            c.entitlement
                        ))
                    } else {
                        ConnectorError::Unsupported(format!(
                            "{}: group entitlements need console groups or the workspace's SCIM directory; set the tenant's `scim-base-url` (and its SCIM token) to manage SCIM groups",
                            c.entitlement
                        ))
                    };
                    (*i, Err(error))
                })
                .collect();
        };
        match self.group_plan(&scim, changes, dry_run) {
            Ok(results) => results,
            Err(error) => changes.iter().map(|(i, _)| (*i, Err(error.clone()))).collect(),
        }
    }

    fn group_plan(
        &self,
        scim: &ScimClient<'_, T>,
        changes: &[(usize, &ChangeRequest)],
        dry_run: bool,
    ) -> Result<Positioned, ConnectorError> {
        let (people, list) = self.group_people(scim, changes)?;
        let groups: BTreeMap<String, ScimGroup> =
            scim.all_groups()?.into_iter().map(|g| (g.id.clone(), g)).collect();
        let initial: BTreeMap<String, BTreeSet<String>> =
            groups.values().map(|g| (g.id.clone(), g.member_ids())).collect();

        // Play the changes in order against the membership model.
        let mut desired = initial.clone();
        let mut effects = Vec::new();
        for (index, change) in changes {
            // The group first: a group that does not exist is the answer, whoever the person.
            let group = group_target(change).and_then(|group| {
                if desired.contains_key(group) {
                    Ok(group)
                } else {
                    Err(ConnectorError::NotFound(format!(
                        "no SCIM group {group:?} (entitlement {}); see list-entitlements",
                        change.entitlement
                    )))
                }
            });
            let effect = group.and_then(|group| {
                let key = reference_key(&change.account)?;
                let person = people.get(&key).cloned().unwrap_or_else(|| {
                    Err(ConnectorError::Internal(format!("{key:?} was not looked up")))
                })?;
                Ok((group, person))
            });
            let effect = effect.and_then(|(group, person)| {
                let Some(members) = desired.get_mut(group) else {
                    return Err(ConnectorError::Internal(format!("group {group:?} vanished")));
                };
                let who = &list[person].email;
                let name = &groups[group].display_name;
                let grant = matches!(change.action, ChangeAction::Grant);
                let scim_id = &list[person].scim_id;
                let changed =
                    if grant { members.insert(scim_id.clone()) } else { members.remove(scim_id) };
                let note = match (grant, changed) {
                    (true, true) => format!("add {who} to group {name:?}"),
                    (true, false) => format!("{who} already is in group {name:?}"),
                    (false, true) => format!("remove {who} from group {name:?}"),
                    (false, false) => format!("{who} is not in group {name:?}"),
                };
                Ok(GroupEffect { group: group.to_string(), person, changed, note })
            });
            effects.push((*index, effect));
        }

        // One PATCH per group whose membership changes.
        let mut requests: BTreeMap<String, PlannedRequest> = BTreeMap::new();
        for (group, wanted) in &desired {
            let before = &initial[group];
            let add: Vec<&str> = wanted.difference(before).map(String::as_str).collect();
            let remove: Vec<&str> = before.difference(wanted).map(String::as_str).collect();
            if !add.is_empty() || !remove.is_empty() {
                let body = membership_patch(&add, &remove);
                requests.insert(
                    group.clone(),
                    PlannedRequest {
                        method: "PATCH".to_string(),
                        path: format!("/{}", group_path(group)),
                        body: Some(body.to_string()),
                    },
                );
            }
        }

        // Send them and confirm each from the directory's answer (or a read-back).
        let mut after = if dry_run { desired.clone() } else { initial.clone() };
        let mut failures: BTreeMap<String, ConnectorError> = BTreeMap::new();
        if !dry_run {
            for (group, request) in &requests {
                match self.send_group_patch(scim, group, request, &desired[group]) {
                    Ok(members) => {
                        after.insert(group.clone(), members);
                    }
                    Err(error) => {
                        failures.insert(group.clone(), error);
                    }
                }
            }
        }

        Ok(effects
            .into_iter()
            .map(|(index, effect)| {
                let result = effect.and_then(|effect| {
                    let person = &list[effect.person];
                    let holds = |state: &BTreeMap<String, BTreeSet<String>>| {
                        project(&person.account, &person.scim_id, state)
                    };
                    if !effect.changed {
                        return Ok(ChangeResult {
                            outcome: ChangeOutcome::AlreadyInState,
                            replaced: Vec::new(),
                            account: Some(holds(&initial)),
                            detail: effect.note,
                            requests: Vec::new(),
                            notices: Vec::new(),
                        });
                    }
                    if let Some(error) = failures.get(&effect.group) {
                        return Err(error.clone());
                    }
                    let sent: Vec<PlannedRequest> =
                        requests.get(&effect.group).cloned().into_iter().collect();
                    let wanted = desired[&effect.group].contains(&person.scim_id);
                    if !dry_run && after[&effect.group].contains(&person.scim_id) != wanted {
                        return Err(ConnectorError::Unavailable(format!(
                            "{}: the directory accepted the change but reading group {} back shows {} {} a member; it did not take effect, try again",
                            effect.note,
                            effect.group,
                            person.email,
                            if wanted { "is not" } else { "still is" },
                        )));
                    }
                    Ok(ChangeResult {
                        outcome: if dry_run { ChangeOutcome::Planned } else { ChangeOutcome::Applied },
                        replaced: Vec::new(),
                        account: Some(holds(&after)),
                        detail: if dry_run { format!("would {}", effect.note) } else { effect.note },
                        requests: sent,
                        notices: Vec::new(),
                    })
                });
                (index, result)
            })
            .collect())
    }

    /// Finds the console account and SCIM user of every person the changes name.
    fn group_people(
        &self,
        scim: &ScimClient<'_, T>,
        changes: &[(usize, &ChangeRequest)],
    ) -> Result<People, ConnectorError> {
        let refs: Vec<_> = changes
            .iter()
            .filter(|(_, c)| reference_key(&c.account).is_ok())
            .map(|(_, c)| &c.account)
            .collect();
        let console = self.console()?;
        let found = self.lookup(&console, &refs)?;
        let mut people: HashMap<String, Result<usize, ConnectorError>> = HashMap::new();
        // Each person's key, console account and email, in the order the changes name them.
        let mut accounts: Vec<(String, Account, String)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (_, change) in changes {
            let Ok(key) = reference_key(&change.account) else { continue };
            if !seen.insert(key.clone()) {
                continue;
            }
            let crate::provision::Found { member, invite, .. } =
                found.get(&key).cloned().unwrap_or_default();
            let account = match (member, invite) {
                (Some(member), _) => member_account(member),
                (None, Some(invite)) => self.invite_account(&invite)?,
                (None, None) => {
                    people.insert(
                        key.clone(),
                        Err(ConnectorError::NotFound(format!(
                            "no member or pending invite is {key:?}"
                        ))),
                    );
                    continue;
                }
            };
            let email = account.email.clone().unwrap_or_default();
            accounts.push((key, account, email));
        }
        let emails: Vec<&str> = accounts.iter().map(|(_, _, email)| email.as_str()).collect();
        let users = scim.users_by_email(&emails)?;
        let mut list: Vec<Person> = Vec::new();
        for ((key, account, email), user) in accounts.into_iter().zip(users) {
            let person = match user {
                None => Err(ConnectorError::Conflict(format!(
                    "{email} is not provisioned through SCIM, so it cannot be in a SCIM group; provision them from the identity provider first"
                ))),
                Some(user) if user.active == Some(false) => Err(ConnectorError::Conflict(format!(
                    "{email} is deactivated in the identity provider; reactivate them there before changing their groups"
                ))),
                Some(user) => {
                    list.push(Person { account, email, scim_id: user.id });
                    Ok(list.len() - 1)
                }
            };
            people.insert(key, person);
        }
        Ok((people, list))
    }

    /// Sends one group's PATCH and returns the membership the directory then reports. An answer
    /// that may or may not have been applied is settled by reading the group back.
    fn send_group_patch(
        &self,
        scim: &ScimClient<'_, T>,
        group: &str,
        request: &PlannedRequest,
        wanted: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, ConnectorError> {
        match scim.patch_group(group, request.body.clone()) {
            Ok(Some(answer)) => Ok(answer.member_ids()),
            Ok(None) => Ok(scim.group(group)?.member_ids()),
            Err(WriteError::Rejected(error)) => Err(error),
            Err(WriteError::Unknown(error)) => {
                let now = scim.group(group).map_err(|read| {
                    ConnectorError::Unavailable(format!(
                        "PATCH {}: the answer was lost ({}) and reading the group back failed ({}); it may or may not have been applied",
                        request.path,
                        describe(&error),
                        describe(&read),
                    ))
                })?.member_ids();
                if &now == wanted {
                    Ok(now)
                } else {
                    Err(ConnectorError::Unavailable(format!(
                        "PATCH {}: {}; reading the group back shows it was not applied; try again",
                        request.path,
                        describe(&error),
                    )))
                }
            }
        }
    }
}

/// The group a change names; groups belong to no exclusion group, so `set` cannot name one.
fn group_target(change: &ChangeRequest) -> Result<&str, ConnectorError> {
    if let ChangeAction::Set { group } = &change.action {
        return Err(ConnectorError::InvalidArgument(format!(
            "set-entitlement: {} is in no exclusion group (not {group:?}); use grant or revoke",
            change.entitlement
        )));
    }
    group_id(&change.entitlement).unwrap_or_else(|| {
        Err(ConnectorError::Internal(format!("{} is not a group entitlement", change.entitlement)))
    })
}

/// The account with the groups it holds in `state` in place of those it held before.
fn project(
    account: &Account,
    scim_id: &str,
    state: &BTreeMap<String, BTreeSet<String>>,
) -> Account {
    let mut entitlements: Vec<String> =
        account.entitlements.iter().filter(|e| !e.starts_with(GROUP_PREFIX)).cloned().collect();
    entitlements.extend(
        state
            .iter()
            .filter(|(_, members)| members.contains(scim_id))
            .map(|(group, _)| format!("{GROUP_PREFIX}{group}")),
    );
    Account { entitlements, ..account.clone() }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use serde_json::{Value, json};

    use super::*;
    use crate::settings::Settings;
    use connector_sdk::settings::RetryPolicy;
    use connector_sdk::transport::{HttpRequest, HttpResponse, Method, TransportError};
    use connector_sdk::types::{AccountRef, PageRequest};

    /// How the fake directory answers a group PATCH.
    #[derive(Clone, Copy, PartialEq)]
    enum PatchAnswer {
        Resource,
        NoContent,
        /// A 502 after applying it (or not): the outcome is unknown to the client.
        Lost {
            applied: bool,
        },
        /// 200 with the group, but the change was silently dropped.
        Ignored,
    }

    /// One console member (`user-1`, ann@x.com, SCIM-managed) and a directory with one group.
    struct FakeDirectory {
        members: RefCell<Vec<String>>,
        answer: Cell<PatchAnswer>,
        /// `totalResults` the group listing claims.
        claimed_groups: Cell<u64>,
        patches: Cell<usize>,
    }

    fn answer(status: u16, body: Value) -> Result<HttpResponse, TransportError> {
        Ok(HttpResponse {
            status,
            content_type: Some("application/scim+json".into()),
            retry_after: None,
            body: if status == 204 { Vec::new() } else { body.to_string().into_bytes() },
        })
    }

    impl FakeDirectory {
        fn new(answer: PatchAnswer) -> Self {
            FakeDirectory {
                members: RefCell::new(Vec::new()),
                answer: Cell::new(answer),
                claimed_groups: Cell::new(1),
                patches: Cell::new(0),
            }
        }

        fn group(&self) -> Value {
            let members: Vec<Value> =
                self.members.borrow().iter().map(|m| json!({"value": m})).collect();
            json!({"id": "g1", "displayName": "Team", "members": members})
        }
    }

    impl Transport for &FakeDirectory {
        fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
            let url = request.url.as_str();
            if let Some(path) = url.strip_prefix("https://x/accounts/ws/") {
                if path == "settings" {
                    return answer(
                        200,
                        json!({"id": "ws", "default_seat_type": "default", "plan_type": "enterprise"}),
                    );
                }
                let items = if path.starts_with("users") {
                    json!([{"id": "user-1", "email": "ann@x.com", "role": "standard-user",
                        "seat_type": "default", "is_scim_managed": true}])
                } else {
                    json!([])
                };
                return answer(
                    200,
                    json!({"items": items, "total": items.as_array().unwrap().len()}),
                );
            }
            let path = url.strip_prefix("https://x/scim/").unwrap();
            match (request.method, path.split('?').next().unwrap()) {
                (Method::Get, "Users") => answer(
                    200,
                    json!({"totalResults": 1, "Resources": [{"id": "user-1", "userName": "ann@x.com", "active": true}]}),
                ),
                (Method::Get, "Groups") => {
                    let resources =
                        if path.contains("startIndex=1&") { vec![self.group()] } else { vec![] };
                    answer(
                        200,
                        json!({"totalResults": self.claimed_groups.get(), "Resources": resources}),
                    )
                }
                (Method::Get, "Groups/g1") => answer(200, self.group()),
                (Method::Patch, "Groups/g1") => {
                    self.patches.set(self.patches.get() + 1);
                    let body: Value =
                        serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
                    assert_eq!(request.content_type, "application/scim+json");
                    let apply = !matches!(
                        self.answer.get(),
                        PatchAnswer::Ignored | PatchAnswer::Lost { applied: false }
                    );
                    if apply {
                        for op in body["Operations"].as_array().unwrap() {
                            match op["op"].as_str().unwrap() {
                                "add" => self.members.borrow_mut().extend(
                                    op["value"]
                                        .as_array()
                                        .unwrap()
                                        .iter()
                                        .map(|v| v["value"].as_str().unwrap().to_string()),
                                ),
                                _ => self.members.borrow_mut().clear(),
                            }
                        }
                    }
                    match self.answer.get() {
                        PatchAnswer::Resource | PatchAnswer::Ignored => answer(200, self.group()),
                        PatchAnswer::NoContent => answer(204, Value::Null),
                        PatchAnswer::Lost { .. } => answer(502, json!({"detail": "bad gateway"})),
                    }
                }
                other => panic!("unexpected request {other:?}"),
            }
        }
    }

    fn connector(directory: &FakeDirectory) -> ChatGptConnector<&FakeDirectory> {
        let settings = Settings {
            base_url: Some("https://x".into()),
            admin_api_base_url: None,
            plan_without_console: crate::workspace::Plan::Enterprise,
            account_id: "ws".into(),
            scim_base_url: Some("https://x/scim".into()),
            page_size: 100,
            read_concurrency: 1,
            integration_account: None,
            seat_changes: None,
            join_requests: true,
            console_groups: false,
            retry: RetryPolicy {
                max_attempts: 2,
                base_delay: std::time::Duration::from_millis(1),
                budget: std::time::Duration::from_secs(1),
            },
        };
        ChatGptConnector::new(directory, settings)
    }

    fn join() -> ChangeRequest {
        ChangeRequest {
            action: ChangeAction::Grant,
            account: AccountRef::Email("ann@x.com".into()),
            entitlement: "group:g1".into(),
        }
    }

    fn outcome(directory: &FakeDirectory) -> Result<ChangeOutcome, ConnectorError> {
        let mut results = connector(directory).apply_batch(&[join()], false).unwrap();
        results.remove(0).map(|r| r.outcome)
    }

    #[test]
    fn a_204_or_a_lost_answer_is_settled_by_reading_the_group_back() {
        for answer in
            [PatchAnswer::Resource, PatchAnswer::NoContent, PatchAnswer::Lost { applied: true }]
        {
            let directory = FakeDirectory::new(answer);
            assert_eq!(outcome(&directory), Ok(ChangeOutcome::Applied));
            assert_eq!(*directory.members.borrow(), ["user-1"]);
            assert_eq!(
                directory.patches.get(),
                1,
                "a write whose outcome is unknown is not repeated"
            );
        }
    }

    #[test]
    fn a_change_the_directory_did_not_make_is_an_error_not_a_success() {
        for answer in [PatchAnswer::Ignored, PatchAnswer::Lost { applied: false }] {
            let directory = FakeDirectory::new(answer);
            match outcome(&directory) {
                Err(ConnectorError::Unavailable(msg)) => assert!(msg.contains("not"), "{msg}"),
                other => panic!("expected unavailable, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_directory_that_miscounts_its_groups_cannot_keep_the_listing_going() {
        let directory = FakeDirectory::new(PatchAnswer::Resource);
        directory.claimed_groups.set(1_000);
        let connector = connector(&directory);
        let mut cursor = None;
        let mut groups = 0;
        for _ in 0..10 {
            let page = connector.list_entitlements(&PageRequest { cursor, size: Some(4) }).unwrap();
            groups += page.items.iter().filter(|e| e.kind == "group").count();
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert!(cursor.is_none(), "the listing ended");
        assert_eq!(groups, 1);
    }

    #[test]
    fn group_ids_are_checked_and_set_is_refused() {
        assert!(matches!(group_id("group:"), Some(Err(ConnectorError::InvalidArgument(_)))));
        assert!(matches!(group_id("group:a b"), Some(Err(ConnectorError::InvalidArgument(_)))));
        assert_eq!(group_id("group:g-1").map(|r| r.ok()), Some(Some("g-1")));
        assert!(group_id("role:admin").is_none());
        let directory = FakeDirectory::new(PatchAnswer::Resource);
        let set = ChangeRequest { action: ChangeAction::Set { group: "role".into() }, ..join() };
        let results = connector(&directory).apply_batch(&[set], false).unwrap();
        assert!(
            matches!(&results[0], Err(ConnectorError::InvalidArgument(m)) if m.contains("grant or revoke"))
        );
        assert_eq!(directory.patches.get(), 0);
    }
}

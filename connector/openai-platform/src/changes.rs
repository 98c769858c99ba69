//! Writes: grant, revoke and set, for one change or many.
//!
//! One planner serves them all. It reads the organization and the people a batch names, plays
//! the changes in order against a model of each person's holdings (so several changes to one
//! person merge: two project roles for someone new become one invite carrying both), turns the
//! difference between what was read and what is wanted into Admin API writes, then, unless it
//! is a dry run, sends them and reads the people back, waiting briefly for reads that lag the
//! writes and reporting any mismatch as an error.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use connector_sdk::client::WriteError;
use connector_sdk::error::{describe, half_applied};
use connector_sdk::refs::reference_key;
use connector_sdk::transport::{Method, Transport};
use connector_sdk::types::{Account, AccountRef, ChangeOutcome, ChangeResult, PlannedRequest};
use connector_sdk::{ChangeAction, ChangeRequest, ConnectorError};

use crate::accounts::{
    Holdings, Presence, invite_account, person_account, service_account, user_account,
};
use crate::api::Client;
use crate::catalog::{self, Target};
use crate::directory::{Finder, Org, Person, assigned_roles, read_org};
use crate::settings::Settings;

/// One write to the Admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Write {
    RemoveMember { user: String },
    DeleteInvite { invite: String },
    Invite { email: String, role: String, projects: BTreeMap<String, String> },
    SetOrgRole { user: String, role: String },
    AddToProject { project: String, user: String, role: String },
    SetProjectRole { project: String, user: String, role: String },
    RemoveFromProject { project: String, user: String },
    AddToGroup { group: String, user: String },
    RemoveFromGroup { group: String, user: String },
    AssignRole { user: String, role: String },
    UnassignRole { user: String, role: String },
    DeleteServiceAccount { project: String, account: String },
}

impl Write {
    /// The request, its path relative to the base URL.
    fn request(&self) -> PlannedRequest {
        let (method, path, body) = match self {
            Write::RemoveMember { user } => ("DELETE", format!("/organization/users/{user}"), None),
            Write::DeleteInvite { invite } => {
                ("DELETE", format!("/organization/invites/{invite}"), None)
            }
            Write::Invite { email, role, projects } => {
                // `projects` is always sent: an invite without it adds the person to the
                // organization's default project, which no change asked for.
                let projects: Vec<_> =
                    projects.iter().map(|(id, role)| json!({"id": id, "role": role})).collect();
                let body = json!({"email": email, "role": role, "projects": projects});
                ("POST", "/organization/invites".to_string(), Some(body))
            }
            Write::SetOrgRole { user, role } => {
                ("POST", format!("/organization/users/{user}"), Some(json!({"role": role})))
            }
            Write::AddToProject { project, user, role } => (
                "POST",
                format!("/organization/projects/{project}/users"),
                Some(json!({"user_id": user, "role": role})),
            ),
            Write::SetProjectRole { project, user, role } => (
                "POST",
                format!("/organization/projects/{project}/users/{user}"),
                Some(json!({"role": role})),
            ),
            Write::RemoveFromProject { project, user } => {
                ("DELETE", format!("/organization/projects/{project}/users/{user}"), None)
            }
            Write::AddToGroup { group, user } => (
                "POST",
                format!("/organization/groups/{group}/users"),
                Some(json!({"user_id": user})),
            ),
            Write::RemoveFromGroup { group, user } => {
                ("DELETE", format!("/organization/groups/{group}/users/{user}"), None)
            }
            Write::AssignRole { user, role } => (
                "POST",
                format!("/organization/users/{user}/roles"),
                Some(json!({"role_id": role})),
            ),
            Write::UnassignRole { user, role } => {
                ("DELETE", format!("/organization/users/{user}/roles/{role}"), None)
            }
            Write::DeleteServiceAccount { project, account } => (
                "DELETE",
                format!("/organization/projects/{project}/service_accounts/{account}"),
                None,
            ),
        };
        PlannedRequest {
            method: method.to_string(),
            path,
            body: body.map(|b: serde_json::Value| b.to_string()),
        }
    }

    /// Whether a fresh read of the person shows this write's effect: how a write whose answer
    /// was lost is told applied from not.
    fn visible(&self, person: &Person, now: &Holdings) -> bool {
        let member = now.presence == Presence::Member;
        match self {
            Write::RemoveMember { user } => person.user.as_ref().is_none_or(|u| &u.id != user),
            Write::DeleteInvite { invite } => {
                person.invite.as_ref().is_none_or(|i| &i.id != invite)
            }
            Write::Invite { role, projects, .. } => {
                now.presence == Presence::Invited && &now.role == role && &now.projects == projects
            }
            Write::SetOrgRole { role, .. } => member && &now.role == role,
            Write::AddToProject { project, role, .. }
            | Write::SetProjectRole { project, role, .. } => {
                member && now.projects.get(project) == Some(role)
            }
            Write::RemoveFromProject { project, .. } => !now.projects.contains_key(project),
            Write::AddToGroup { group, .. } => member && now.groups.contains(group),
            Write::RemoveFromGroup { group, .. } => !now.groups.contains(group),
            Write::AssignRole { role, .. } => member && now.roles.contains(role),
            Write::UnassignRole { role, .. } => !now.roles.contains(role),
            Write::DeleteServiceAccount { .. } => person.service_account.is_none(),
        }
    }
}

/// One person a batch touches.
#[derive(Debug, Clone)]
struct Subject {
    /// How people and errors name them: their address, or a service account's id.
    name: String,
    /// The reference they are read back by.
    reference: AccountRef,
    person: Person,
    initial: Holdings,
    desired: Holdings,
    planned: Vec<Write>,
    sent: Vec<PlannedRequest>,
    error: Option<ConnectorError>,
    /// Whether reading back showed the writes.
    confirmed: bool,
    after: Option<Account>,
}

/// What one change did to the model.
struct Effect {
    changed: bool,
    replaced: Vec<String>,
    note: String,
}

/// Plans `changes` and, unless `dry_run`, makes them: one result per change, in order. The
/// outer error means nothing was attempted.
pub fn apply<T: Transport>(
    client: &Client<'_, T>,
    settings: &Settings,
    changes: &[ChangeRequest],
    dry_run: bool,
) -> Result<Vec<Result<ChangeResult, ConnectorError>>, ConnectorError> {
    let org = read_org(client)?;
    let mut finder = Finder::new(client);
    let mut found: HashMap<String, Result<Person, ConnectorError>> = HashMap::new();
    let mut subjects: Vec<Subject> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    // Who each change is about: a reference's error belongs to its change only.
    let mut whose: Vec<Result<usize, ConnectorError>> = Vec::new();
    for change in changes {
        let subject = reference_key(&change.account).and_then(|key| {
            let person =
                found.entry(key.clone()).or_insert_with(|| finder.find(&change.account)).clone()?;
            let (name, reference) = match (&person, &change.account) {
                (Person { service_account: Some((_, account)), .. }, _) => {
                    (account.id.clone(), AccountRef::Id(account.id.clone()))
                }
                (person, _) if person.email().is_some() => {
                    let email = person.email().unwrap_or_default().to_lowercase();
                    (email.clone(), AccountRef::Email(email))
                }
                (_, AccountRef::Email(_)) => (key.clone(), AccountRef::Email(key.clone())),
                (_, AccountRef::Id(id)) => {
                    return Err(ConnectorError::NotFound(format!(
                        "no member, invite or service account has the id {id:?}"
                    )));
                }
            };
            Ok(*index_of.entry(name.clone()).or_insert_with(|| {
                subjects.push(Subject {
                    name,
                    reference,
                    person,
                    initial: Holdings::absent(),
                    desired: Holdings::absent(),
                    planned: Vec::new(),
                    sent: Vec::new(),
                    error: None,
                    confirmed: false,
                    after: None,
                });
                subjects.len() - 1
            }))
        });
        whose.push(subject);
    }
    let members: Vec<&str> =
        subjects.iter().filter_map(|s| s.person.user.as_ref().map(|u| u.id.as_str())).collect();
    let roles = assigned_roles(client, &org, &members)?;
    for subject in &mut subjects {
        subject.initial = Holdings::of_person(&subject.person, &org, &roles);
        subject.desired = subject.initial.clone();
    }

    let effects: Vec<Result<(usize, Effect), ConnectorError>> = changes
        .iter()
        .zip(whose)
        .map(|(change, index)| {
            let index = index?;
            let target = catalog::parse(&change.entitlement)?;
            play(&change.action, &target, &mut subjects[index], &org, settings)
                .map(|effect| (index, effect))
        })
        .collect();
    for subject in &mut subjects {
        subject.planned = plan(subject);
    }
    // Deliberate defect for the conformance kit's tests: write even in a dry run.
    #[cfg(feature = "bug-dry-run-writes")]
    let writes = true;
    #[cfg(not(feature = "bug-dry-run-writes"))]
    let writes = !dry_run;
    if writes {
        for subject in subjects.iter_mut().filter(|s| !s.planned.is_empty()) {
            send(client, subject);
        }
        read_back(client, &mut subjects);
    }

    Ok(effects
        .into_iter()
        .map(|effect| {
            let (index, effect) = effect?;
            let subject = &subjects[index];
            let result = |outcome, account, requests, detail| ChangeResult {
                outcome,
                replaced: effect.replaced.clone(),
                account,
                detail,
                requests,
                notices: Vec::new(),
            };
            if !effect.changed {
                let account = shown(subject, &subject.initial);
                return Ok(result(ChangeOutcome::AlreadyInState, account, Vec::new(), effect.note));
            }
            if dry_run {
                let planned = subject.planned.iter().map(Write::request).collect();
                let account = shown(subject, &subject.desired);
                let detail = format!("would {}", effect.note);
                return Ok(result(ChangeOutcome::Planned, account, planned, detail));
            }
            if let Some(error) = &subject.error {
                return Err(error.clone());
            }
            let invited = subject.planned.iter().any(|w| matches!(w, Write::Invite { .. }));
            let outcome = if invited { ChangeOutcome::Pending } else { ChangeOutcome::Applied };
            Ok(result(outcome, subject.after.clone(), subject.sent.clone(), effect.note))
        })
        .collect())
}

/// The account as it would be with `holdings`; `None` for someone not yet invited.
fn shown(subject: &Subject, holdings: &Holdings) -> Option<Account> {
    if holdings.presence == Presence::Absent {
        return subject.person.expired.as_ref().map(invite_account);
    }
    let person = &subject.person;
    if let Some((project, account)) = &person.service_account {
        return Some(service_account(project, account));
    }
    match (&person.user, &person.invite) {
        (Some(user), _) if holdings.presence == Presence::Member => {
            Some(user_account(user, holdings))
        }
        (_, Some(invite)) => {
            let mut account = invite_account(invite);
            account.entitlements = holdings.entitlements();
            Some(account)
        }
        _ => None,
    }
}

/// Plays one change against the subject's model.
fn play(
    action: &ChangeAction,
    target: &Target,
    subject: &mut Subject,
    org: &Org,
    settings: &Settings,
) -> Result<Effect, ConnectorError> {
    let name = subject.name.clone();
    let unchanged = |note: String| Ok(Effect { changed: false, replaced: Vec::new(), note });
    let changed =
        |replaced: Vec<String>, note: String| Ok(Effect { changed: true, replaced, note });
    let grant = match action {
        ChangeAction::Grant => true,
        ChangeAction::Revoke => false,
        ChangeAction::Set { group } => {
            let owner = match target {
                Target::OrgRole(_) => Some(catalog::ORG_ROLE_GROUP.to_string()),
                Target::Project { id, .. } => Some(catalog::project_group(id)),
                _ => None,
            };
            if owner.as_ref() != Some(group) {
                return Err(ConnectorError::InvalidArgument(format!(
                    "set-entitlement: the entitlement is not in exclusion group {group:?} (groups: org-role, project:<id>)"
                )));
            }
            true
        }
    };
    match target {
        Target::EveryProject => {
            return Err(ConnectorError::InvalidArgument(format!(
                "{} is held by being an organization owner; grant or revoke org-role:owner instead",
                catalog::EVERY_PROJECT_OWNER
            )));
        }
        Target::Project { id, .. } => match org.project(id) {
            None => {
                return Err(ConnectorError::NotFound(format!(
                    "the organization has no project {id:?}"
                )));
            }
            Some(project) if project.is_archived() => {
                return Err(ConnectorError::Conflict(format!(
                    "project {} ({id}) is archived; archived projects refuse membership changes",
                    project.name
                )));
            }
            Some(_) => {}
        },
        Target::Group(id) => match org.group(id) {
            None => {
                return Err(ConnectorError::NotFound(format!(
                    "the organization has no group {id:?}"
                )));
            }
            Some(group) if group.scim_managed => {
                return Err(ConnectorError::ManagedExternally(format!(
                    "group {} ({id}) is managed by the identity provider through SCIM; change its membership there",
                    group.name
                )));
            }
            Some(_) => {}
        },
        Target::CustomRole(id) if org.custom_role(id).is_none() => {
            return Err(ConnectorError::NotFound(format!(
                "the organization has no custom role {id:?}"
            )));
        }
        _ => {}
    }
    if let Some((project, account)) = &subject.person.service_account {
        let holds = matches!(target, Target::Organization)
            || matches!(target, Target::Project { id, role } if *id == project.id && *role == account.role);
        return match (grant, holds && subject.desired.presence != Presence::Absent) {
            (true, _) => Err(ConnectorError::Unsupported(format!(
                "{name} is a service account of project {}: service accounts are created with their key in the project, never invited or granted anything; revoking `organization` or its project role deletes it",
                project.name
            ))),
            (false, true) => {
                subject.desired.presence = Presence::Absent;
                changed(
                    Vec::new(),
                    format!("delete service account {name} of project {}", project.name),
                )
            }
            (false, false) => unchanged(format!("service account {name} does not hold it")),
        };
    }
    let scim = subject.person.user.as_ref().is_some_and(|u| u.is_scim_managed);
    let state = &mut subject.desired;
    // Someone not in the organization is invited with a role only where the tenant allows it.
    let invite = |state: &mut Holdings, role: &str, project: Option<(&str, &str)>| {
        if !settings.invite_on_role_grant {
            return Err(ConnectorError::Conflict(format!(
                "{name} is not in the organization, and this tenant does not invite people for a role grant (`invite-on-role-grant` is false); grant `organization` first"
            )));
        }
        *state = Holdings {
            presence: Presence::Invited,
            role: role.to_string(),
            projects: project.map(|(p, r)| (p.to_string(), r.to_string())).into_iter().collect(),
            ..Holdings::absent()
        };
        Ok(())
    };
    let members_only = |state: &Holdings, what: &str| {
        if state.presence == Presence::Member {
            Ok(())
        } else {
            Err(ConnectorError::Conflict(format!(
                "{name} is not a member of the organization{}; {what} hold members only",
                if state.presence == Presence::Invited { " yet (invited, not joined)" } else { "" }
            )))
        }
    };
    match (target, grant) {
        (Target::Organization, true) => match state.presence {
            Presence::Absent => {
                *state = Holdings { presence: Presence::Invited, ..Holdings::absent() };
                changed(Vec::new(), format!("invite {name} as a reader"))
            }
            Presence::Invited => unchanged(format!("{name} is invited already")),
            Presence::Member => unchanged(format!("{name} is a member already")),
        },
        (Target::Organization, false) => match state.presence {
            Presence::Absent => unchanged(format!("{name} is not in the organization")),
            Presence::Member if scim => Err(ConnectorError::ManagedExternally(format!(
                "{name} is managed by the identity provider through SCIM; remove them there"
            ))),
            presence => {
                *state = Holdings::absent();
                let note =
                    if presence == Presence::Invited { "delete the invite of" } else { "remove" };
                changed(Vec::new(), format!("{note} {name}"))
            }
        },
        (Target::OrgRole(role), true) => {
            if state.presence == Presence::Absent {
                invite(state, role, None)?;
                return changed(Vec::new(), format!("invite {name} as {role}"));
            }
            if state.role == *role {
                return unchanged(format!("{name} is {role} already"));
            }
            let replaced = vec![catalog::org_role(&state.role)];
            state.role = role.to_string();
            changed(replaced, format!("make {name} {role}"))
        }
        (Target::OrgRole(role), false) => {
            if state.presence == Presence::Absent || state.role != *role {
                return unchanged(format!("{name} is not {role}"));
            }
            if *role == catalog::DEFAULT_ORG_ROLE {
                return Err(ConnectorError::InvalidArgument(format!(
                    "{name} must hold an organization role; revoke `organization` to remove them, or grant org-role:owner"
                )));
            }
            state.role = catalog::DEFAULT_ORG_ROLE.to_string();
            changed(Vec::new(), format!("make {name} a reader"))
        }
        (Target::Project { id, role }, true) => {
            if state.presence == Presence::Absent {
                invite(state, catalog::DEFAULT_ORG_ROLE, Some((id, role)))?;
                return changed(Vec::new(), format!("invite {name} to project {id} as {role}"));
            }
            match state.projects.insert(id.clone(), role.to_string()) {
                Some(old) if old == *role => {
                    unchanged(format!("{name} is {role} of project {id} already"))
                }
                Some(old) => changed(
                    vec![catalog::project_role(id, &old)],
                    format!("make {name} {role} of project {id}"),
                ),
                None => changed(Vec::new(), format!("add {name} to project {id} as {role}")),
            }
        }
        (Target::Project { id, role }, false) => {
            let held = state.projects.get(id).is_some_and(|r| r == role);
            if state.owns_every_project() && (held || *role == "owner") {
                return Err(ConnectorError::Conflict(format!(
                    "{name} is an organization owner, and owners are owners of every project whatever their project roles; revoking project:{id}:{role} would change nothing they can do (make them a reader first: revoke org-role:owner)"
                )));
            }
            if !held {
                return unchanged(format!("{name} is not {role} of project {id}"));
            }
            state.projects.remove(id);
            changed(Vec::new(), format!("remove {name} from project {id}"))
        }
        (Target::Group(id), true) => {
            members_only(state, "groups")?;
            if state.groups.insert(id.clone()) {
                changed(Vec::new(), format!("add {name} to group {id}"))
            } else {
                unchanged(format!("{name} is in group {id} already"))
            }
        }
        (Target::Group(id), false) => {
            if state.groups.remove(id) {
                changed(Vec::new(), format!("remove {name} from group {id}"))
            } else {
                unchanged(format!("{name} is not in group {id}"))
            }
        }
        (Target::CustomRole(id), true) => {
            members_only(state, "custom roles")?;
            if state.roles.insert(id.clone()) {
                changed(Vec::new(), format!("assign role {id} to {name}"))
            } else {
                unchanged(format!("{name} holds role {id} already"))
            }
        }
        (Target::CustomRole(id), false) => {
            if state.roles.remove(id) {
                changed(Vec::new(), format!("unassign role {id} from {name}"))
            } else {
                unchanged(format!("{name} does not hold role {id}"))
            }
        }
        (Target::EveryProject, _) => unchanged(String::new()),
    }
}

/// The writes that take the subject from what was read to what is wanted.
fn plan(subject: &Subject) -> Vec<Write> {
    let (from, to) = (&subject.initial, &subject.desired);
    if from == to {
        return Vec::new();
    }
    let person = &subject.person;
    if let Some((project, account)) = &person.service_account {
        return vec![Write::DeleteServiceAccount {
            project: project.id.clone(),
            account: account.id.clone(),
        }];
    }
    let invite = || Write::Invite {
        email: subject.name.clone(),
        role: to.role.clone(),
        projects: to.projects.clone(),
    };
    match (&person.user, &person.invite, to.presence) {
        (Some(user), _, Presence::Absent) => vec![Write::RemoveMember { user: user.id.clone() }],
        (_, Some(old), Presence::Absent) => vec![Write::DeleteInvite { invite: old.id.clone() }],
        // An invite's role and projects are changed by deleting it and inviting again.
        (_, Some(old), Presence::Invited) => {
            vec![Write::DeleteInvite { invite: old.id.clone() }, invite()]
        }
        (None, None, Presence::Invited) => vec![invite()],
        (Some(user), _, Presence::Member) => member_writes(&user.id, from, to),
        _ => Vec::new(),
    }
}

/// The writes that change a member's holdings from `from` to `to`.
fn member_writes(user: &str, from: &Holdings, to: &Holdings) -> Vec<Write> {
    let user = user.to_string();
    let mut writes = Vec::new();
    if from.role != to.role {
        writes.push(Write::SetOrgRole { user: user.clone(), role: to.role.clone() });
    }
    for (project, role) in &to.projects {
        let project = project.clone();
        match from.projects.get(&project) {
            None => {
                writes.push(Write::AddToProject { project, user: user.clone(), role: role.clone() })
            }
            Some(old) if old != role => writes.push(Write::SetProjectRole {
                project,
                user: user.clone(),
                role: role.clone(),
            }),
            Some(_) => {}
        }
    }
    for project in from.projects.keys().filter(|p| !to.projects.contains_key(*p)) {
        writes.push(Write::RemoveFromProject { project: project.clone(), user: user.clone() });
    }
    for group in to.groups.difference(&from.groups) {
        writes.push(Write::AddToGroup { group: group.clone(), user: user.clone() });
    }
    for group in from.groups.difference(&to.groups) {
        writes.push(Write::RemoveFromGroup { group: group.clone(), user: user.clone() });
    }
    for role in to.roles.difference(&from.roles) {
        writes.push(Write::AssignRole { user: user.clone(), role: role.clone() });
    }
    for role in from.roles.difference(&to.roles) {
        writes.push(Write::UnassignRole { user: user.clone(), role: role.clone() });
    }
    writes
}

/// Sends the subject's writes in order, stopping at the first that fails.
fn send<T: Transport>(client: &Client<'_, T>, subject: &mut Subject) {
    for write in subject.planned.clone() {
        match send_confirmed(client, subject, &write) {
            Ok(()) => subject.sent.push(write.request()),
            Err(error) => {
                subject.error = Some(half_applied(&subject.sent, error));
                return;
            }
        }
    }
}

/// Sends one write. When its outcome is unknown (a server error, a lost answer), reads the
/// person back: if the write shows it was applied; if not, it is safe to send again.
fn send_confirmed<T: Transport>(
    client: &Client<'_, T>,
    subject: &Subject,
    write: &Write,
) -> Result<(), ConnectorError> {
    let request = write.request();
    let method = match request.method.as_str() {
        "DELETE" => Method::Delete,
        _ => Method::Post,
    };
    let path = request.path.trim_start_matches('/');
    let mut attempt = 1;
    loop {
        let error = match client.send_write::<serde_json::Value>(method, path, request.body.clone())
        {
            Ok(_) => return Ok(()),
            Err(WriteError::Rejected(error)) => return Err(error),
            Err(WriteError::Unknown(error)) => error,
        };
        let org = read_org(client)?;
        let (person, now) = state_of(client, &mut Finder::new(client), &org, &subject.reference)?;
        if write.visible(&person, &now) {
            return Ok(());
        }
        if attempt >= client.policy().max_attempts || !client.backoff(attempt, None) {
            return Err(ConnectorError::Unavailable(format!(
                "{}; the change is not visible after {attempt} attempts",
                describe(&error)
            )));
        }
        attempt += 1;
    }
}

/// The person `reference` names, and what they hold, as the service shows them now.
fn state_of<T: Transport>(
    client: &Client<'_, T>,
    finder: &mut Finder<'_, '_, T>,
    org: &Org,
    reference: &AccountRef,
) -> Result<(Person, Holdings), ConnectorError> {
    let person = finder.find(reference)?;
    let ids: Vec<&str> = person.user.iter().map(|u| u.id.as_str()).collect();
    let roles = assigned_roles(client, org, &ids)?;
    let now = Holdings::of_person(&person, org, &roles);
    Ok((person, now))
}

/// Whether what was read back is what was wanted: an invite is compared on its role and
/// projects, a member on everything.
fn agrees(actual: &Holdings, wanted: &Holdings) -> bool {
    match wanted.presence {
        Presence::Absent => actual.presence == Presence::Absent,
        Presence::Invited => {
            actual.presence == Presence::Invited
                && actual.role == wanted.role
                && actual.projects == wanted.projects
        }
        Presence::Member => actual == wanted,
    }
}

/// Confirms every write: the service's 2xx is provisional, and its reads may lag its writes
/// for a moment, so a mismatch is read again (within the retry policy) before it is reported.
/// A failure to read back is reported on each person touched, never as nothing done.
fn read_back<T: Transport>(client: &Client<'_, T>, subjects: &mut [Subject]) {
    let mut attempt = 1;
    loop {
        let pending: Vec<usize> = subjects
            .iter()
            .enumerate()
            .filter(|(_, s)| s.error.is_none() && !s.sent.is_empty() && !s.confirmed)
            .map(|(i, _)| i)
            .collect();
        if pending.is_empty() {
            return;
        }
        let mut mismatched = Vec::new();
        let outcome = (|| -> Result<(), ConnectorError> {
            let org = read_org(client)?;
            let mut finder = Finder::new(client);
            for &index in &pending {
                let subject = &subjects[index];
                let (person, actual) = state_of(client, &mut finder, &org, &subject.reference)?;
                if agrees(&actual, &subject.desired) {
                    let subject = &mut subjects[index];
                    subject.confirmed = true;
                    subject.after = person_account(&person, &actual);
                } else {
                    mismatched.push((index, actual));
                }
            }
            Ok(())
        })();
        if let Err(error) = outcome {
            for &index in &pending {
                let subject = &mut subjects[index];
                if !subject.confirmed {
                    let unconfirmed = ConnectorError::Unavailable(format!(
                        "the change for {} was sent but could not be read back to confirm it ({}); check the account before retrying",
                        subject.name,
                        describe(&error)
                    ));
                    subject.error = Some(half_applied(&subject.sent, unconfirmed));
                }
            }
            break;
        }
        if mismatched.is_empty() {
            break;
        }
        if attempt >= client.policy().max_attempts || !client.backoff(attempt, None) {
            for (index, actual) in mismatched {
                let subject = &mut subjects[index];
                let conflict = ConnectorError::Conflict(format!(
                    "the service accepted the change for {} but reading back shows {:?} instead of {:?}; it may have been overridden, check before retrying",
                    subject.name,
                    actual.entitlements(),
                    subject.desired.entitlements()
                ));
                subject.error = Some(half_applied(&subject.sent, conflict));
            }
            break;
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Invite, Project, User};

    fn settings(invite_on_role_grant: bool) -> Settings {
        Settings {
            base_url: "https://api.test/v1".into(),
            page_size: 100,
            invite_on_role_grant,
            retry: connector_sdk::settings::RetryPolicy::default(),
        }
    }

    fn org() -> Org {
        let project = |id: &str, status: &str| Project {
            id: id.into(),
            name: id.to_uppercase(),
            status: status.into(),
        };
        Org {
            projects: vec![
                project("p1", "active"),
                project("p2", "active"),
                project("old", "archived"),
            ],
            ..Org::default()
        }
    }

    fn subject(person: Person, org: &Org) -> Subject {
        let initial = Holdings::of_person(&person, org, &HashMap::new());
        let name = person.email().unwrap_or("new@acme.com").to_lowercase();
        Subject {
            reference: AccountRef::Email(name.clone()),
            name,
            person,
            desired: initial.clone(),
            initial,
            planned: Vec::new(),
            sent: Vec::new(),
            error: None,
            confirmed: false,
            after: None,
        }
    }

    fn member(role: &str) -> Person {
        let user = User {
            id: "user-1".into(),
            name: None,
            email: "ann@acme.com".into(),
            role: role.into(),
            added_at: None,
            is_scim_managed: false,
        };
        Person { user: Some(user), ..Person::default() }
    }

    fn play_all(
        subject: &mut Subject,
        org: &Org,
        changes: &[(ChangeAction, &str)],
    ) -> Vec<Result<bool, ConnectorError>> {
        changes
            .iter()
            .map(|(action, id)| {
                let target = catalog::parse(id)?;
                play(action, &target, subject, org, &settings(true)).map(|e| e.changed)
            })
            .collect()
    }

    #[test]
    fn two_project_roles_for_someone_new_become_one_invite() {
        let org = org();
        let mut s = subject(Person::default(), &org);
        let grants =
            [(ChangeAction::Grant, "project:p1:member"), (ChangeAction::Grant, "project:p2:owner")];
        assert_eq!(play_all(&mut s, &org, &grants), [Ok(true), Ok(true)]);
        let writes = plan(&s);
        assert_eq!(writes.len(), 1, "{writes:?}");
        let body = writes[0].request().body.unwrap();
        assert!(
            body.contains(r#""projects":[{"id":"p1","role":"member"},{"id":"p2","role":"owner"}]"#),
            "{body}"
        );
        assert!(body.contains(r#""role":"reader""#), "{body}");
    }

    #[test]
    fn an_invites_role_changes_by_inviting_again() {
        let org = org();
        let invite = Invite {
            id: "invite-1".into(),
            email: "bo@acme.com".into(),
            role: "reader".into(),
            status: "pending".into(),
            created_at: None,
            projects: Vec::new(),
        };
        let mut s = subject(Person { invite: Some(invite), ..Person::default() }, &org);
        assert_eq!(play_all(&mut s, &org, &[(ChangeAction::Grant, "org-role:owner")]), [Ok(true)]);
        let paths: Vec<String> = plan(&s)
            .iter()
            .map(|w| format!("{} {}", w.request().method, w.request().path))
            .collect();
        assert_eq!(paths, ["DELETE /organization/invites/invite-1", "POST /organization/invites"]);
    }

    #[test]
    fn an_owners_project_role_is_not_revoked_and_an_archived_project_not_changed() {
        let org = org();
        let mut s = subject(member("owner"), &org);
        let results = play_all(
            &mut s,
            &org,
            &[
                (ChangeAction::Revoke, "project:p1:owner"),
                (ChangeAction::Grant, "project:old:member"),
            ],
        );
        assert!(
            matches!(&results[0], Err(ConnectorError::Conflict(m)) if m.contains("organization owner"))
        );
        assert!(matches!(&results[1], Err(ConnectorError::Conflict(m)) if m.contains("archived")));
        assert!(plan(&s).is_empty());
    }

    #[test]
    fn a_tenant_that_does_not_invite_for_roles_refuses_saying_so() {
        let org = org();
        let mut s = subject(Person::default(), &org);
        let target = catalog::parse("project:p1:member").unwrap();
        let refused = play(&ChangeAction::Grant, &target, &mut s, &org, &settings(false));
        assert!(
            matches!(refused, Err(ConnectorError::Conflict(m)) if m.contains("invite-on-role-grant"))
        );
        let access = catalog::parse("organization").unwrap();
        assert!(play(&ChangeAction::Grant, &access, &mut s, &org, &settings(false)).is_ok());
    }

    #[test]
    fn a_members_changes_merge_into_the_fewest_writes() {
        let org = org();
        let mut s = subject(member("reader"), &org);
        let changes = [
            (ChangeAction::Grant, "project:p1:member"),
            (ChangeAction::Set { group: "project:p1".into() }, "project:p1:owner"),
            (ChangeAction::Grant, "org-role:owner"),
            (ChangeAction::Grant, "org-role:owner"),
            (ChangeAction::Set { group: "org-role".into() }, "project:p2:owner"),
        ];
        let results = play_all(&mut s, &org, &changes);
        assert_eq!(results[..4], [Ok(true), Ok(true), Ok(true), Ok(false)]);
        assert!(matches!(&results[4], Err(ConnectorError::InvalidArgument(_))));
        let writes = plan(&s);
        assert_eq!(
            writes,
            [
                Write::SetOrgRole { user: "user-1".into(), role: "owner".into() },
                Write::AddToProject {
                    project: "p1".into(),
                    user: "user-1".into(),
                    role: "owner".into()
                },
            ]
        );
    }
}

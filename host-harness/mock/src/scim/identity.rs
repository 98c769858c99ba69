//! What SCIM changes do to the workspace, as the real service does it: a SCIM user is a person
//! of the console (same `user-...` id), a new active user is a SCIM-managed invite, deactivation
//! and deletion take the person out of the workspace and out of every group.
//!
//! The HTTP handlers, fixtures and [`MockService`](super::super::MockService) helpers all go
//! through these functions, so the console and SCIM views cannot drift apart.

use super::super::model::{Group, Invite, Member, ScimEmail, ScimUser, Workspace};
use super::super::seed::{invite_id, name_from_email, next_time, user_id};
use super::response::ScimError;

/// The writable attributes of a user, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFields {
    /// Lowercased.
    pub user_name: String,
    /// Client's id.
    pub external_id: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// At least one.
    pub emails: Vec<ScimEmail>,
    /// `None`: not given (true on create, unchanged on replace).
    pub active: Option<bool>,
}

/// The writable attributes of a group, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFields {
    /// Display name.
    pub display_name: String,
    /// Client's id.
    pub external_id: Option<String>,
    /// Member ids as given; those naming no active user are dropped.
    pub members: Vec<String>,
}

/// The address the workspace knows the person by: the primary email, else the first.
pub fn person_email(emails: &[ScimEmail]) -> Option<&str> {
    emails.iter().find(|e| e.primary).or_else(|| emails.first()).map(|e| e.value.as_str())
}

/// The position of the resource `id` among `items`, or a 404 naming `kind`.
fn position<T>(
    items: &[T],
    id_of: fn(&T) -> &str,
    kind: &str,
    id: &str,
) -> Result<usize, ScimError> {
    items.iter().position(|item| id_of(item) == id).ok_or_else(|| ScimError::not_found(kind, id))
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Refuses fields that clash with another user (`except`): userName and emails are unique.
fn check_unique(
    ws: &Workspace,
    fields: &UserFields,
    except: Option<&str>,
) -> Result<(), ScimError> {
    for other in ws.scim_users.iter().filter(|u| Some(u.id.as_str()) != except) {
        if same(&other.user_name, &fields.user_name) {
            return Err(ScimError::uniqueness(format!(
                "userName {} is already taken",
                fields.user_name
            )));
        }
        if let Some(email) =
            fields.emails.iter().find(|e| other.emails.iter().any(|o| same(&o.value, &e.value)))
        {
            return Err(ScimError::uniqueness(format!(
                "email {} belongs to another user",
                email.value
            )));
        }
    }
    Ok(())
}

/// The console member who is this person: same id, or same email.
fn member_index(ws: &Workspace, id: &str, email: Option<&str>) -> Option<usize> {
    ws.members
        .iter()
        .position(|m| m.id == id)
        .or_else(|| email.and_then(|e| ws.members.iter().position(|m| same(&m.email, e))))
}

/// Gives an active user access: marks their member SCIM-managed, or takes over their pending
/// invite, or invites them (role Member, the default seat type).
fn provision(ws: &mut Workspace, sequence: &mut u64, user: &ScimUser) {
    let email = person_email(&user.emails);
    if let Some(i) = member_index(ws, &user.id, email) {
        ws.members[i].is_scim_managed = true;
        return;
    }
    let Some(email) = email else { return };
    if let Some(invite) = ws.invites.iter_mut().find(|i| same(&i.email_address, email)) {
        invite.is_scim_managed = true;
        return;
    }
    let invite = Invite::pending(
        sequence,
        email.to_lowercase(),
        "standard-user".to_string(),
        ws.default_seat_type.clone(),
        true,
    );
    ws.invites.push(invite);
}

/// Takes a user's access away: their member or pending invite, and their group memberships.
fn deprovision(ws: &mut Workspace, sequence: &mut u64, user: &ScimUser) {
    let email = person_email(&user.emails);
    if let Some(i) = member_index(ws, &user.id, email) {
        ws.members.remove(i);
    }
    if let Some(email) = email {
        ws.invites.retain(|i| !same(&i.email_address, email));
    }
    let stamp = next_time(sequence);
    for group in ws.groups.iter_mut().filter(|g| g.members.contains(&user.id)) {
        group.members.retain(|m| m != &user.id);
        group.last_modified = stamp.clone();
    }
}

/// `POST /Users`.
pub fn create_user(
    ws: &mut Workspace,
    sequence: &mut u64,
    fields: UserFields,
) -> Result<ScimUser, ScimError> {
    check_unique(ws, &fields, None)?;
    let email = person_email(&fields.emails).map(str::to_string);
    let created = next_time(sequence);
    let taken_over =
        email.as_deref().and_then(|e| ws.members.iter().position(|m| same(&m.email, e)));
    let id = match taken_over {
        Some(i) => {
            let id = ws.members[i].id.clone();
            if ws.scim_users.iter().any(|u| u.id == id) {
                return Err(ScimError::uniqueness(format!(
                    "the workspace member {id} already has a SCIM user"
                )));
            }
            ws.members[i].is_scim_managed = true;
            id
        }
        None => user_id(*sequence),
    };
    let active = fields.active.unwrap_or(true);
    let user = ScimUser::from_fields(id, fields, active, created.clone(), created);
    ws.scim_users.push(user.clone());
    if user.active {
        provision(ws, sequence, &user);
    } else {
        // An inactive user has no access, whatever the console had.
        deprovision(ws, sequence, &user);
    }
    Ok(user)
}

impl ScimUser {
    fn from_fields(
        id: String,
        fields: UserFields,
        active: bool,
        created: String,
        last_modified: String,
    ) -> Self {
        ScimUser {
            id,
            user_name: fields.user_name,
            external_id: fields.external_id,
            display_name: fields.display_name,
            given_name: fields.given_name,
            family_name: fields.family_name,
            emails: fields.emails,
            active,
            created,
            last_modified,
        }
    }
}

/// `PUT /Users/{id}` and the result of a PATCH: replaces the writable attributes.
pub fn replace_user(
    ws: &mut Workspace,
    sequence: &mut u64,
    id: &str,
    fields: UserFields,
) -> Result<ScimUser, ScimError> {
    let index = position(&ws.scim_users, |u| &u.id, "User", id)?;
    check_unique(ws, &fields, Some(id))?;
    let before = ws.scim_users[index].clone();
    // Omitted `active` is not asserted (RFC 7644 §3.5.1 lets the provider keep it): a PUT that
    // forgets it must not re-admit or remove anyone.
    let active = fields.active.unwrap_or(before.active);
    let after = ScimUser::from_fields(
        before.id.clone(),
        fields,
        active,
        before.created.clone(),
        next_time(sequence),
    );
    ws.scim_users[index] = after.clone();
    let (old_email, new_email) = (person_email(&before.emails), person_email(&after.emails));
    match (before.active, after.active) {
        (true, false) => deprovision(ws, sequence, &before),
        (false, true) => provision(ws, sequence, &after),
        (true, true) if old_email.map(str::to_lowercase) != new_email.map(str::to_lowercase) => {
            if let Some(member) = ws.members.iter_mut().find(|m| m.id == after.id) {
                if let Some(email) = new_email {
                    member.email = email.to_lowercase();
                }
            } else {
                if let Some(old) = old_email {
                    ws.invites.retain(|i| !(i.is_scim_managed && same(&i.email_address, old)));
                }
                provision(ws, sequence, &after);
            }
        }
        _ => {}
    }
    Ok(after)
}

/// `DELETE /Users/{id}`.
pub fn delete_user(ws: &mut Workspace, sequence: &mut u64, id: &str) -> Result<(), ScimError> {
    let index = position(&ws.scim_users, |u| &u.id, "User", id)?;
    let user = ws.scim_users.remove(index);
    deprovision(ws, sequence, &user);
    Ok(())
}

/// `ids` without those naming no active user, and without repeats, in order.
fn live_members(ws: &Workspace, ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !out.contains(id) && ws.scim_users.iter().any(|u| &u.id == id && u.active) {
            out.push(id.clone());
        }
    }
    out
}

fn check_group_name(ws: &Workspace, name: &str, except: Option<&str>) -> Result<(), ScimError> {
    let taken =
        ws.groups.iter().any(|g| Some(g.id.as_str()) != except && same(&g.display_name, name));
    if taken {
        return Err(ScimError::uniqueness(format!("displayName {name} is already taken")));
    }
    Ok(())
}

/// `POST /Groups`.
pub fn create_group(
    ws: &mut Workspace,
    sequence: &mut u64,
    fields: GroupFields,
) -> Result<Group, ScimError> {
    check_group_name(ws, &fields.display_name, None)?;
    let created = next_time(sequence);
    let group = Group {
        id: invite_id(*sequence),
        display_name: fields.display_name,
        external_id: fields.external_id,
        members: live_members(ws, &fields.members),
        last_modified: created.clone(),
        created,
    };
    ws.groups.push(group.clone());
    Ok(group)
}

/// `PUT /Groups/{id}` and the result of a PATCH.
pub fn replace_group(
    ws: &mut Workspace,
    sequence: &mut u64,
    id: &str,
    fields: GroupFields,
) -> Result<Group, ScimError> {
    let index = position(&ws.groups, |g| &g.id, "Group", id)?;
    check_group_name(ws, &fields.display_name, Some(id))?;
    let members = live_members(ws, &fields.members);
    let last_modified = next_time(sequence);
    let group = &mut ws.groups[index];
    group.display_name = fields.display_name;
    group.external_id = fields.external_id;
    group.members = members;
    group.last_modified = last_modified;
    Ok(group.clone())
}

/// `DELETE /Groups/{id}`.
pub fn delete_group(ws: &mut Workspace, id: &str) -> Result<(), ScimError> {
    let index = position(&ws.groups, |g| &g.id, "Group", id)?;
    ws.groups.remove(index);
    Ok(())
}

/// The person invited as `email` accepts: the invite becomes a member, whose id is their SCIM
/// user's id when SCIM knows them.
pub fn accept_invite(ws: &mut Workspace, sequence: &mut u64, email: &str) -> Option<Member> {
    let index = ws.invites.iter().position(|i| same(&i.email_address, email))?;
    let invite = ws.invites.remove(index);
    let scim = ws
        .scim_users
        .iter()
        .find(|u| same(&u.user_name, email) || u.emails.iter().any(|e| same(&e.value, email)));
    let created_time = next_time(sequence);
    let name = scim.and_then(|u| {
        u.display_name
            .clone()
            .or_else(|| formatted_name(u.given_name.as_deref(), u.family_name.as_deref()))
    });
    let id = scim.map(|u| u.id.clone()).unwrap_or_else(|| user_id(*sequence));
    let member = Member {
        account_user_id: format!("{id}__{}", ws.account_id),
        id,
        name: name.unwrap_or_else(|| name_from_email(&invite.email_address)),
        email: invite.email_address,
        role: invite.role,
        seat_type: invite.seat_type,
        created_time,
        is_scim_managed: invite.is_scim_managed,
        deactivated_time: None,
    };
    ws.members.push(member.clone());
    Some(member)
}

/// `name.formatted`: given and family name, as far as they are known.
pub fn formatted_name(given: Option<&str>, family: Option<&str>) -> Option<String> {
    let parts: Vec<&str> =
        [given, family].into_iter().flatten().filter(|p| !p.is_empty()).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

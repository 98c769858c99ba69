//! The console's write endpoints: role and seat changes, removal, invites, settings.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Refusal, authorize};
use super::model::{
    AppliedChangeKind, ErroredEmailShape, Invite, Member, MockData, MockService, ROLES, SEAT_TYPES,
    SeatChanges, Workspace,
};

/// Most addresses one invite request may carry.
pub const MAX_INVITE_BATCH: usize = 100;

const OWNER: &str = "account-owner";
const ADMIN: &str = "account-admin";

/// The answer: the body with 200, or the refusal.
pub(super) fn reply(result: Result<Value, Refusal>) -> Response {
    match result {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err((status, body)) => (status, Json(body)).into_response(),
    }
}

/// A refusal in the console's `{"detail"}` shape.
pub(super) fn detail(status: StatusCode, text: &str) -> Refusal {
    (status, json!({"detail": text}))
}

/// The seat type a new person's request names (`seat_type`), the workspace default if none.
fn seat_of(ws: &Workspace, body: &Value) -> Result<String, Refusal> {
    match body.get("seat_type") {
        None | Some(Value::Null) => Ok(ws.default_seat_type.clone()),
        Some(Value::String(seat)) if SEAT_TYPES.contains(&seat.as_str()) => Ok(seat.clone()),
        Some(other) => Err(detail(StatusCode::BAD_REQUEST, &format!("Invalid seat type: {other}"))),
    }
}

/// The service's refusal of a seat type the plan does not have (*assumed* text).
const NO_CODEX: &str = "Codex seats are not available on this plan.";

/// Refuses a role or seat type the workspace's plan does not have.
fn check_plan(ws: &Workspace, role: Option<&str>, seat: Option<&str>) -> Result<(), Refusal> {
    if let Some(role) = role
        && !ws.allows_role(role)
    {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            &format!("Role {role} is not available on this plan."),
        ));
    }
    if let Some(seat) = seat
        && !ws.allows_seat(seat)
    {
        return Err(detail(StatusCode::BAD_REQUEST, NO_CODEX));
    }
    Ok(())
}

/// Parses a JSON body the way the real (FastAPI) service does: 422 with a `detail` list.
fn body_json(body: &Bytes) -> Result<Value, Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "json_invalid", "loc": ["body"], "msg": format!("JSON decode error: {e}")}]}),
        )
    })
}

fn field_missing(field: &str) -> Refusal {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"detail": [{"type": "missing", "loc": ["body", field], "msg": "Field required"}]}),
    )
}

/// Authorizes the request and runs `f` on the workspace, requiring one of `roles`.
pub(super) fn write<F>(
    service: &MockService,
    headers: &HeaderMap,
    account_id: &str,
    roles: &[&str],
    denied: &str,
    f: F,
) -> Response
where
    F: FnOnce(&mut Workspace, &mut u64, &str) -> Result<Value, Refusal>,
{
    let mut data = service.lock();
    let result = authorize(&data, headers, account_id).and_then(|grant| {
        if !roles.contains(&grant.role.as_str()) {
            return Err(detail(StatusCode::FORBIDDEN, denied));
        }
        let MockData { workspaces, sequence, .. } = &mut *data;
        match workspaces.get_mut(account_id) {
            Some(ws) if ws.drop_writes => {
                let kept = ws.clone();
                let answer = f(ws, sequence, &grant.role);
                *ws = kept;
                answer
            }
            Some(ws) => f(ws, sequence, &grant.role),
            None => Err(detail(StatusCode::NOT_FOUND, "Account not found")),
        }
    });
    reply(result)
}

/// `PATCH /accounts/{account_id}/users/{user_id}` with `role` and/or `seat_type`.
pub async fn patch_member(
    State(service): State<MockService>,
    Path((account_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let denied = "Only workspace owners can change member roles and seat types.";
    write(&service, &headers, &account_id, &[OWNER], denied, |ws, _, _| {
        let body = body_json(&body)?;
        let role = body.get("role").map(|r| r.as_str().unwrap_or_default().to_string());
        let seat = body.get("seat_type").map(|s| s.as_str().unwrap_or_default().to_string());
        if role.is_none() && seat.is_none() {
            return Err(detail(
                StatusCode::BAD_REQUEST,
                "Nothing to update: give role or seat_type",
            ));
        }
        if let Some(role) = &role {
            if !ROLES.contains(&role.as_str()) {
                return Err(detail(StatusCode::BAD_REQUEST, &format!("Invalid role: {role}")));
            }
            if role == OWNER && ws.owner_change_locked {
                return Err(detail(
                    StatusCode::BAD_REQUEST,
                    "Workspace owners for Business plans can only be changed 30 days after creation.",
                ));
            }
        }
        if let Some(seat) = &seat
            && !SEAT_TYPES.contains(&seat.as_str())
        {
            return Err(detail(StatusCode::BAD_REQUEST, &format!("Invalid seat type: {seat}")));
        }
        check_plan(ws, role.as_deref(), seat.as_deref())?;
        let seat_changes = ws.seat_changes;
        let member = ws
            .members
            .iter_mut()
            .find(|m| m.id == user_id)
            .ok_or_else(|| detail(StatusCode::NOT_FOUND, "User not found"))?;
        if seat.as_ref().is_some_and(|s| *s != member.seat_type)
            && seat_changes == SeatChanges::AccountManager
        {
            return Err(detail(
                StatusCode::FORBIDDEN,
                "Seat type changes are handled by your OpenAI account manager.",
            ));
        }
        let mut applied = Vec::new();
        if let Some(role) = role
            && role != member.role
        {
            let from = std::mem::replace(&mut member.role, role.clone());
            applied.push(AppliedChangeKind::Role { from, to: role });
        }
        if let Some(seat) = seat
            && seat != member.seat_type
        {
            let from = std::mem::replace(&mut member.seat_type, seat.clone());
            applied.push(AppliedChangeKind::Seat { from, to: seat });
        }
        let email = member.email.clone();
        for kind in applied {
            ws.log_change(&email, kind);
        }
        Ok(json!({"success": true}))
    })
}

/// `DELETE /accounts/{account_id}/users/{user_id}`.
pub async fn remove_member(
    State(service): State<MockService>,
    Path((account_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let denied = "Only workspace owners and admins can remove members.";
    write(&service, &headers, &account_id, &[OWNER, ADMIN], denied, |ws, _, _| {
        let index = ws
            .members
            .iter()
            .position(|m| m.id == user_id)
            .ok_or_else(|| detail(StatusCode::NOT_FOUND, "User not found"))?;
        if ws.members[index].is_scim_managed {
            return Err(detail(StatusCode::BAD_REQUEST, "User is managed by SCIM"));
        }
        let removed = ws.members.remove(index);
        for group in &mut ws.console_groups {
            group.members.retain(|m| *m != removed.id);
        }
        ws.log_change(&removed.email, AppliedChangeKind::Removed);
        Ok(json!({"success": true}))
    })
}

/// Why an address cannot be invited, if it cannot.
fn invite_error(ws: &Workspace, email: &str) -> Option<&'static str> {
    let valid = email.len() <= 320
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.ends_with('.')
        });
    if !valid {
        return Some("Invalid email address");
    }
    // RFC 2606 reserves `.invalid`: the mock's stand-in for domains the service refuses.
    if email.ends_with(".invalid") {
        return Some("Invalid email domain");
    }
    if ws.member_by_email(email).is_some() {
        return Some("User is already a member of this workspace");
    }
    None
}

fn errored(shape: ErroredEmailShape, email: &str, error: &str) -> Value {
    match shape {
        ErroredEmailShape::EmailAddress => json!({"email_address": email, "error": error}),
        ErroredEmailShape::Email => json!({"email": email, "error": error}),
        ErroredEmailShape::Bare => json!(email),
    }
}

/// `POST /accounts/{account_id}/invites`: many addresses, one role, an optional seat type.
pub async fn invite(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let denied = "Only workspace owners and admins can invite members.";
    write(&service, &headers, &account_id, &[OWNER, ADMIN], denied, |ws, sequence, inviter| {
        let body = body_json(&body)?;
        let emails: Vec<String> = match body.get("email_addresses").and_then(Value::as_array) {
            Some(list) => {
                list.iter().map(|e| e.as_str().unwrap_or_default().trim().to_lowercase()).collect()
            }
            None => return Err(field_missing("email_addresses")),
        };
        if emails.is_empty() || emails.len() > MAX_INVITE_BATCH {
            return Err(detail(
                StatusCode::BAD_REQUEST,
                &format!("email_addresses must hold 1 to {MAX_INVITE_BATCH} addresses"),
            ));
        }
        let role = match body.get("role").and_then(Value::as_str) {
            // An Admin cannot give the Owner role: the service makes the invite a Member's.
            Some(OWNER) if inviter != OWNER => "standard-user".to_string(),
            Some(role) if ROLES.contains(&role) => role.to_string(),
            Some(role) => {
                return Err(detail(StatusCode::BAD_REQUEST, &format!("Invalid role: {role}")));
            }
            None => return Err(field_missing("role")),
        };
        let seat = seat_of(ws, &body)?;
        check_plan(ws, Some(&role), Some(&seat))?;
        let mut fresh = Vec::new();
        let mut existing = Vec::new();
        let mut errors = Vec::new();
        for email in emails {
            if let Some(why) = invite_error(ws, &email) {
                errors.push(errored(ws.errored_email_shape, &email, why));
            } else if let Some(invite) = ws.invite_by_email(&email) {
                // Inviting again resends the pending invite; it does not change it.
                existing.push(invite.clone());
            } else if !fresh.contains(&email) {
                fresh.push(email);
            }
        }
        if let Some(limit) = ws.seat_limit
            && ws.seats_used() + fresh.len() > limit
        {
            let errored: Vec<Value> = fresh
                .iter()
                .map(|e| errored(ws.errored_email_shape, e, "seat_true_up_pending"))
                .collect();
            return Err((
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": "seat_true_up_pending"}, "account_invites": [], "errored_emails": errored}),
            ));
        }
        let mut created = existing;
        for email in fresh {
            let invite = Invite::pending(sequence, email, role.clone(), seat.clone(), false);
            let kind = AppliedChangeKind::Invited { role: role.clone(), seat: seat.clone() };
            ws.log_change(&invite.email_address, kind);
            ws.invites.push(invite.clone());
            created.push(invite);
        }
        Ok(json!({"account_invites": created, "errored_emails": errors}))
    })
}

/// `DELETE /accounts/{account_id}/invites` with `{"email_address": ..}`.
pub async fn cancel_invite(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let denied = "Only workspace owners and admins can cancel invites.";
    write(&service, &headers, &account_id, &[OWNER, ADMIN], denied, |ws, _, _| {
        let body = body_json(&body)?;
        let email = body
            .get("email_address")
            .and_then(Value::as_str)
            .ok_or_else(|| field_missing("email_address"))?;
        let index = ws
            .invites
            .iter()
            .position(|i| i.email_address.eq_ignore_ascii_case(email))
            .ok_or_else(|| detail(StatusCode::NOT_FOUND, "Invite not found"))?;
        // The identity provider owns a SCIM-managed invite (*assumed* answer).
        if ws.invites[index].is_scim_managed {
            return Err(detail(StatusCode::BAD_REQUEST, "User is managed by SCIM"));
        }
        let cancelled = ws.invites.remove(index);
        ws.log_change(&cancelled.email_address, AppliedChangeKind::InviteCancelled);
        Ok(json!({"success": true}))
    })
}

/// `POST /accounts/{account_id}/settings/default_seat_type` with `{"value": ..}`.
pub async fn set_default_seat(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let denied = "Only workspace owners can change the default seat type.";
    write(&service, &headers, &account_id, &[OWNER], denied, |ws, _, _| {
        let body = body_json(&body)?;
        match body.get("value").and_then(Value::as_str) {
            Some(seat) if SEAT_TYPES.contains(&seat) && !ws.allows_seat(seat) => {
                return Err(detail(StatusCode::BAD_REQUEST, NO_CODEX));
            }
            Some(seat) if SEAT_TYPES.contains(&seat) => ws.default_seat_type = seat.to_string(),
            Some(seat) => {
                return Err(detail(StatusCode::BAD_REQUEST, &format!("Invalid seat type: {seat}")));
            }
            None => return Err(field_missing("value")),
        }
        Ok(settings_json(ws))
    })
}

/// The settings object.
pub fn settings_json(ws: &Workspace) -> Value {
    json!({
        "id": ws.account_id,
        "default_seat_type": ws.default_seat_type,
        "plan_type": ws.plan.as_str(),
        "codex_seats_enabled": ws.codex_seats_enabled,
    })
}

/// The answer of a route the workspace does not serve: its join-request surface is switched off.
fn not_served() -> Refusal {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

/// `POST /accounts/{account_id}/join_requests/{request_id}/approve` with an optional `role` and
/// `seat_type`: the person becomes a member (*assumed* shapes).
pub async fn approve_join_request(
    State(service): State<MockService>,
    Path((account_id, request_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let denied = "Only workspace owners and admins can approve join requests.";
    write(&service, &headers, &account_id, &[OWNER, ADMIN], denied, |ws, sequence, approver| {
        if !ws.join_requests_served {
            return Err(not_served());
        }
        let body = if body.is_empty() { json!({}) } else { body_json(&body)? };
        let index = ws
            .join_requests
            .iter()
            .position(|r| r.id == request_id)
            .ok_or_else(|| detail(StatusCode::NOT_FOUND, "Join request not found"))?;
        let role = match body.get("role") {
            None | Some(Value::Null) => "standard-user".to_string(),
            Some(Value::String(role)) if ROLES.contains(&role.as_str()) => role.clone(),
            Some(other) => {
                return Err(detail(StatusCode::BAD_REQUEST, &format!("Invalid role: {other}")));
            }
        };
        let seat = seat_of(ws, &body)?;
        check_plan(ws, Some(&role), Some(&seat))?;
        if role == OWNER && approver != OWNER {
            return Err(detail(
                StatusCode::FORBIDDEN,
                "Only workspace owners can grant the Owner role.",
            ));
        }
        if ws.seat_limit.is_some_and(|limit| ws.seats_used() + 1 > limit) {
            return Err((
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": "seat_true_up_pending"}, "detail": "No seats left"}),
            ));
        }
        let request = ws.join_requests.remove(index);
        let created_time = super::seed::next_time(sequence);
        let id = super::seed::user_id(*sequence);
        ws.members.push(Member {
            account_user_id: format!("{id}__{}", ws.account_id),
            id,
            email: request.email.to_lowercase(),
            name: request.name,
            role: role.clone(),
            seat_type: seat.clone(),
            created_time,
            is_scim_managed: false,
            deactivated_time: None,
        });
        ws.log_change(&request.email, AppliedChangeKind::JoinApproved { role, seat });
        Ok(json!({"success": true}))
    })
}

/// `POST /accounts/{account_id}/join_requests/{request_id}/reject`: the request is dropped.
pub async fn reject_join_request(
    State(service): State<MockService>,
    Path((account_id, request_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let denied = "Only workspace owners and admins can reject join requests.";
    write(&service, &headers, &account_id, &[OWNER, ADMIN], denied, |ws, _, _| {
        if !ws.join_requests_served {
            return Err(not_served());
        }
        let index = ws
            .join_requests
            .iter()
            .position(|r| r.id == request_id)
            .ok_or_else(|| detail(StatusCode::NOT_FOUND, "Join request not found"))?;
        let request = ws.join_requests.remove(index);
        ws.log_change(&request.email, AppliedChangeKind::JoinRejected);
        Ok(json!({"success": true}))
    })
}

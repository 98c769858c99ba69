//! Console groups (*assumed* shapes): `/accounts/{account_id}/groups`, their members added and
//! removed in bulk, at most 10,000 groups a workspace; a group synced by SCIM refuses console
//! membership changes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Refusal, authorize};
use super::model::{AppliedChangeKind, ConsoleGroup, MockService, Workspace};
use super::writes::{detail, reply, write};

/// The most groups a workspace holds.
pub const MAX_CONSOLE_GROUPS: usize = 10_000;
/// The most user ids one bulk membership request carries.
pub const MAX_GROUP_BULK: usize = 100;

const OWNER: &str = "account-owner";
const ADMIN: &str = "account-admin";

const DENIED: &str = "Only workspace owners and admins can manage groups.";

/// Refuses a workspace whose console serves no groups (the switch), as a path it does not have.
fn served(ws: &Workspace) -> Result<(), Refusal> {
    match ws.console_groups_served {
        true => Ok(()),
        false => Err(detail(StatusCode::NOT_FOUND, "Not Found")),
    }
}

/// Runs `f` on the workspace once the request may read it and the console serves groups.
fn read(
    service: &MockService,
    headers: &HeaderMap,
    account_id: &str,
    f: impl FnOnce(&Workspace) -> Result<Value, Refusal>,
) -> Response {
    let data = service.lock();
    reply(authorize(&data, headers, account_id).and_then(|_| {
        let ws = data
            .workspaces
            .get(account_id)
            .ok_or_else(|| detail(StatusCode::NOT_FOUND, "Account not found"))?;
        served(ws)?;
        f(ws)
    }))
}

/// Runs `f` as the console's other writes run (an Owner or Admin, `drop_writes` honoured), once
/// the console serves groups.
fn change(
    service: &MockService,
    headers: &HeaderMap,
    account_id: &str,
    f: impl FnOnce(&mut Workspace, &mut u64) -> Result<Value, Refusal>,
) -> Response {
    write(service, headers, account_id, &[OWNER, ADMIN], DENIED, |ws, sequence, _| {
        served(ws)?;
        f(ws, sequence)
    })
}

fn group_json(ws: &Workspace, group: &ConsoleGroup) -> Value {
    json!({
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "member_count": group.members.len(),
        "is_scim_managed": ws.console_group_synced(group),
        "created_time": group.created_time,
    })
}

/// `offset` and `limit` (1 to 100) of a listing.
fn paging(params: &HashMap<String, String>) -> Result<(usize, usize), Refusal> {
    let number = |key: &str, default: usize, max: usize| {
        match params.get(key) {
        None => Ok(default),
        Some(raw) => raw.parse::<usize>().ok().filter(|n| *n <= max).ok_or_else(|| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"detail": [{"type": "int_parsing", "loc": ["query", key], "msg": format!("Input should be a whole number up to {max}"), "input": raw}]}),
            )
        }),
    }
    };
    let limit = number("limit", 25, 100)?;
    if limit == 0 {
        return Err(detail(StatusCode::UNPROCESSABLE_ENTITY, "limit must be 1 to 100"));
    }
    Ok((number("offset", 0, usize::MAX >> 1)?, limit))
}

fn page(items: Vec<Value>, total: usize, offset: usize, limit: usize) -> Value {
    json!({"items": items, "total": total, "limit": limit, "offset": offset})
}

/// Creates a group, as `POST /groups` does; returns its id.
pub fn create(
    ws: &mut Workspace,
    sequence: &mut u64,
    name: &str,
    description: Option<String>,
) -> Result<String, Refusal> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 256 {
        return Err(detail(StatusCode::BAD_REQUEST, "A group name is 1 to 256 characters."));
    }
    if ws.console_groups.len() >= MAX_CONSOLE_GROUPS {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            &format!("A workspace can have at most {MAX_CONSOLE_GROUPS} groups."),
        ));
    }
    if ws.console_groups.iter().any(|g| g.name.eq_ignore_ascii_case(name)) {
        return Err(detail(StatusCode::CONFLICT, "A group with this name already exists."));
    }
    let created_time = super::seed::next_time(sequence);
    let id = super::seed::invite_id(*sequence);
    ws.console_groups.push(ConsoleGroup {
        id: id.clone(),
        name: name.to_string(),
        description,
        members: Vec::new(),
        created_time,
    });
    Ok(id)
}

fn group_index(ws: &Workspace, group_id: &str) -> Result<usize, Refusal> {
    ws.console_groups
        .iter()
        .position(|g| g.id == group_id)
        .ok_or_else(|| detail(StatusCode::NOT_FOUND, "Group not found"))
}

/// `GET /accounts/{account_id}/groups?offset&limit`.
pub async fn list(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &account_id, |ws| {
        let (offset, limit) = paging(&params)?;
        let total = ws.console_groups.len();
        let items =
            ws.console_groups.iter().skip(offset).take(limit).map(|g| group_json(ws, g)).collect();
        Ok(page(items, total, offset, limit))
    })
}

/// `POST /accounts/{account_id}/groups` with `{"name", "description"}`.
pub async fn create_group(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change(&service, &headers, &account_id, |ws, sequence| {
        let body: Value = serde_json::from_slice(&body).map_err(|e| {
            detail(StatusCode::UNPROCESSABLE_ENTITY, &format!("JSON decode error: {e}"))
        })?;
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| detail(StatusCode::UNPROCESSABLE_ENTITY, "Field required: name"))?;
        let description = body.get("description").and_then(Value::as_str).map(str::to_string);
        let id = create(ws, sequence, name, description)?;
        let index = group_index(ws, &id)?;
        Ok(group_json(ws, &ws.console_groups[index]))
    })
}

/// `GET /accounts/{account_id}/groups/{group_id}`.
pub async fn one(
    State(service): State<MockService>,
    Path((account_id, group_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &account_id, |ws| {
        let index = group_index(ws, &group_id)?;
        Ok(group_json(ws, &ws.console_groups[index]))
    })
}

/// `DELETE /accounts/{account_id}/groups/{group_id}`.
pub async fn delete_group(
    State(service): State<MockService>,
    Path((account_id, group_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    change(&service, &headers, &account_id, |ws, _| {
        let index = group_index(ws, &group_id)?;
        ws.console_groups.remove(index);
        Ok(json!({"success": true}))
    })
}

/// `GET /accounts/{account_id}/groups/{group_id}/members?offset&limit`.
pub async fn members(
    State(service): State<MockService>,
    Path((account_id, group_id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &account_id, |ws| {
        let (offset, limit) = paging(&params)?;
        let group = &ws.console_groups[group_index(ws, &group_id)?];
        let items = group
            .members
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|id| ws.members.iter().find(|m| &m.id == id))
            .map(|m| json!({"id": m.id, "email": m.email, "name": m.name}))
            .collect();
        Ok(page(items, group.members.len(), offset, limit))
    })
}

/// The `user_ids` of a bulk membership request: 1 to [`MAX_GROUP_BULK`] members' ids.
fn user_ids(ws: &Workspace, body: &Bytes) -> Result<Vec<String>, Refusal> {
    let body: Value = serde_json::from_slice(body).map_err(|e| {
        detail(StatusCode::UNPROCESSABLE_ENTITY, &format!("JSON decode error: {e}"))
    })?;
    let ids: Vec<String> = body
        .get("user_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| detail(StatusCode::UNPROCESSABLE_ENTITY, "Field required: user_ids"))?
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    if ids.is_empty() || ids.len() > MAX_GROUP_BULK {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            &format!("user_ids must hold 1 to {MAX_GROUP_BULK} users"),
        ));
    }
    let unknown: Vec<&str> = ids
        .iter()
        .filter(|id| !ws.members.iter().any(|m| &m.id == *id))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            &format!("Not members of this workspace: {}", unknown.join(", ")),
        ));
    }
    Ok(ids)
}

/// Changes a group's membership: adds `ids`, or removes them.
fn change_members(
    ws: &mut Workspace,
    group_id: &str,
    ids: &[String],
    add: bool,
) -> Result<Value, Refusal> {
    let index = group_index(ws, group_id)?;
    if ws.console_group_synced(&ws.console_groups[index]) {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            "This group is managed by SCIM; change its members in your identity provider.",
        ));
    }
    let mut logged = Vec::new();
    let group = &mut ws.console_groups[index];
    for id in ids {
        let present = group.members.contains(id);
        if add && !present {
            group.members.push(id.clone());
            logged.push((id.clone(), AppliedChangeKind::AddedToGroup { group: group.id.clone() }));
        } else if !add && present {
            group.members.retain(|m| m != id);
            logged.push((
                id.clone(),
                AppliedChangeKind::RemovedFromGroup { group: group.id.clone() },
            ));
        }
    }
    for (id, kind) in logged {
        let email = ws.members.iter().find(|m| m.id == id).map(|m| m.email.clone()).unwrap_or(id);
        ws.log_change(&email, kind);
    }
    Ok(json!({"success": true}))
}

/// `POST /accounts/{account_id}/groups/{group_id}/members` with `{"user_ids": [...]}`.
pub async fn add_members(
    State(service): State<MockService>,
    Path((account_id, group_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change(&service, &headers, &account_id, |ws, _| {
        let ids = user_ids(ws, &body)?;
        change_members(ws, &group_id, &ids, true)
    })
}

/// `DELETE /accounts/{account_id}/groups/{group_id}/members` with `{"user_ids": [...]}`.
pub async fn remove_members(
    State(service): State<MockService>,
    Path((account_id, group_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change(&service, &headers, &account_id, |ws, _| {
        let ids = user_ids(ws, &body)?;
        change_members(ws, &group_id, &ids, false)
    })
}

/// `DELETE /accounts/{account_id}/groups/{group_id}/members/{user_id}`.
pub async fn remove_member(
    State(service): State<MockService>,
    Path((account_id, group_id, user_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    change(&service, &headers, &account_id, |ws, _| {
        change_members(ws, &group_id, &[user_id], false)
    })
}

//! The public ChatGPT Admin API (`/v1/manage/workspaces/{workspace_id}/...`): members and
//! directory groups read with workspace-scoped Admin keys, each holding only the permissions
//! chosen for it. Enterprise and Edu only; paged by key (`after`, `has_more`), 1,000 a page.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::auth::Refusal;
use super::kit::bearer;
use super::model::{Member, MockData, MockService, Plan, Workspace};
use super::writes::reply;

/// The permission member reads need.
pub const USER_READ: &str = "chatgpt.enterprise.user.read";
/// The permission directory (group) reads need.
pub const DIRECTORY_READ: &str = "chatgpt.enterprise.directory.read";
/// The most items one page holds.
pub const MAX_LIMIT: usize = 1000;

/// The routes.
pub fn routes() -> Router<MockService> {
    Router::new()
        .route("/v1/manage/workspaces/{workspace_id}/users", get(list_users))
        .route("/v1/manage/workspaces/{workspace_id}/users/{user_id}", get(one_user))
        .route("/v1/manage/workspaces/{workspace_id}/groups/{group_id}", get(one_group))
        .route("/v1/manage/workspaces/{workspace_id}/groups/{group_id}/users", get(group_users))
}

/// An error in the API's shape: `{"error": {"message", "type", "code"}}`.
fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Refusal {
    (status, json!({"error": {"message": message, "type": kind, "code": code}}))
}

/// Checks the key may use `permission` on `workspace_id` and runs `f` on the workspace.
fn with_permission(
    service: &MockService,
    headers: &HeaderMap,
    workspace_id: &str,
    permission: &str,
    f: impl FnOnce(&Workspace) -> Result<Value, Refusal>,
) -> Response {
    let data = service.lock();
    reply(check(&data, headers, workspace_id, permission).and_then(f))
}

fn check<'a>(
    data: &'a MockData,
    headers: &HeaderMap,
    workspace_id: &str,
    permission: &str,
) -> Result<&'a Workspace, Refusal> {
    let key = bearer(headers).and_then(|token| data.admin_keys.get(&token)).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided. Admin keys are created in the ChatGPT Admin Console.",
        )
    })?;
    // Only Enterprise and Edu workspaces have the Admin API; to the rest it answers as if
    // there were no such workspace.
    let served = data
        .workspaces
        .get(workspace_id)
        .filter(|ws| matches!(ws.plan, Plan::Enterprise | Plan::Edu));
    let Some(ws) = served else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "workspace_not_found",
            &format!(
                "Workspace {workspace_id} not found. The Admin API is available for ChatGPT Enterprise and Edu workspaces."
            ),
        ));
    };
    if key.workspace_id != workspace_id {
        return Err(error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "insufficient_permissions",
            &format!("This Admin key belongs to another workspace than {workspace_id}."),
        ));
    }
    if !key.permissions.iter().any(|p| p == permission) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "insufficient_permissions",
            &format!("This Admin key lacks the permission {permission}."),
        ));
    }
    Ok(ws)
}

/// `limit` (1 to 1,000, default 100).
fn limit(params: &HashMap<String, String>) -> Result<usize, Refusal> {
    match params.get("limit").map(|l| l.parse::<usize>()) {
        None => Ok(100),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_limit",
            &format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// A page of `items` (with their ids) after the one whose id is `after`, as the API lists it;
/// only the page's items are shown (`show`), so a page of a large listing costs the mock the
/// page, not the listing.
fn page<T>(
    items: &[(&str, T)],
    after: Option<&String>,
    limit: usize,
    show: impl Fn(&T) -> Value,
) -> Result<Value, Refusal> {
    let start = match after {
        None => 0,
        Some(after) => {
            1 + items.iter().position(|(id, _)| id == after).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "invalid_after",
                    &format!("Invalid 'after': no item has the id {after}"),
                )
            })?
        }
    };
    let end = (start + limit).min(items.len());
    let data: Vec<Value> = items[start..end].iter().map(|(_, item)| show(item)).collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "first_id": items.get(start).filter(|_| start < end).map(|(id, _)| id),
        "last_id": items.get(end.wrapping_sub(1)).filter(|_| start < end).map(|(id, _)| id),
        "has_more": end < items.len(),
    }))
}

/// A member as the API shows it: seat types `chatgpt`/`codex`, times in Unix seconds.
fn user_json(ws: &Workspace, member: &Member) -> Value {
    json!({
        "object": "workspace.user",
        "id": member.id,
        "account_user_id": format!("{}__{}", member.id, ws.account_id),
        "email": member.email,
        "name": member.name,
        "role": member.role,
        "seat_type": if member.seat_type == "usage_based" { "codex" } else { "chatgpt" },
        "created_at": super::seed::unix_seconds(&member.created_time),
        "is_scim_managed": member.is_scim_managed,
    })
}

/// `GET .../users?limit&after&email`: active members only.
async fn list_users(
    State(service): State<MockService>,
    Path(workspace_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    with_permission(&service, &headers, &workspace_id, USER_READ, |ws| {
        let limit = limit(&params)?;
        let email = params.get("email");
        let users: Vec<(&str, &Member)> = ws
            .members
            .iter()
            .filter(|m| m.deactivated_time.is_none())
            .filter(|m| email.is_none_or(|e| m.email.eq_ignore_ascii_case(e)))
            .map(|m| (m.id.as_str(), m))
            .collect();
        page(&users, params.get("after"), limit, |m| user_json(ws, m))
    })
}

/// `GET .../users/{user_id}`.
async fn one_user(
    State(service): State<MockService>,
    Path((workspace_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    with_permission(&service, &headers, &workspace_id, USER_READ, |ws| {
        ws.members
            .iter()
            .find(|m| m.id == user_id && m.deactivated_time.is_none())
            .map(|m| user_json(ws, m))
            .ok_or_else(|| {
                error(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "user_not_found",
                    "User not found",
                )
            })
    })
}

fn group_of<'a>(ws: &'a Workspace, group_id: &str) -> Result<&'a super::model::Group, Refusal> {
    ws.groups.iter().find(|g| g.id == group_id).ok_or_else(|| {
        error(StatusCode::NOT_FOUND, "invalid_request_error", "group_not_found", "Group not found")
    })
}

/// `GET .../groups/{group_id}`: a directory (SCIM) group.
async fn one_group(
    State(service): State<MockService>,
    Path((workspace_id, group_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    with_permission(&service, &headers, &workspace_id, DIRECTORY_READ, |ws| {
        let group = group_of(ws, &group_id)?;
        Ok(json!({
            "object": "directory.workspace.group",
            "id": group.id,
            "name": group.display_name,
            "created_at": super::seed::unix_seconds(&group.created),
        }))
    })
}

/// `GET .../groups/{group_id}/users?limit&after`: its members, `active` or `deactivated`.
async fn group_users(
    State(service): State<MockService>,
    Path((workspace_id, group_id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    with_permission(&service, &headers, &workspace_id, DIRECTORY_READ, |ws| {
        let limit = limit(&params)?;
        let group = group_of(ws, &group_id)?;
        let rows: Vec<(&str, &super::model::ScimUser)> = group
            .members
            .iter()
            .filter_map(|id| ws.scim_users.iter().find(|u| &u.id == id))
            .map(|user| (user.id.as_str(), user))
            .collect();
        page(&rows, params.get("after"), limit, |user| {
            json!({
                "object": "directory.workspace.group.user",
                "id": user.id,
                "email": user.user_name,
                "status": if user.active { "active" } else { "deactivated" },
            })
        })
    })
}

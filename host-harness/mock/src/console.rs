//! The admin console surface: `/backend-api/accounts/{account_id}/...`.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use serde::Serialize;
use serde_json::json;

use super::auth::{Refusal, authorize};
use super::model::{MockData, MockService, SEAT_TYPES, Workspace};
use super::writes::reply;
use super::{console_groups, writes};

/// The console routes.
pub fn routes() -> Router<MockService> {
    Router::new()
        .route("/backend-api/accounts/{account_id}/users", get(list_members))
        .route(
            "/backend-api/accounts/{account_id}/users/{user_id}",
            patch(writes::patch_member).delete(writes::remove_member),
        )
        .route("/backend-api/accounts/{account_id}/users/seat_type_counts", get(seat_type_counts))
        .route(
            "/backend-api/accounts/{account_id}/invites",
            get(list_invites).post(writes::invite).delete(writes::cancel_invite),
        )
        .route("/backend-api/accounts/{account_id}/join_requests", get(list_join_requests))
        .route(
            "/backend-api/accounts/{account_id}/join_requests/{request_id}/approve",
            post(writes::approve_join_request),
        )
        .route(
            "/backend-api/accounts/{account_id}/join_requests/{request_id}/reject",
            post(writes::reject_join_request),
        )
        .route(
            "/backend-api/accounts/{account_id}/groups",
            get(console_groups::list).post(console_groups::create_group),
        )
        .route(
            "/backend-api/accounts/{account_id}/groups/{group_id}",
            get(console_groups::one).delete(console_groups::delete_group),
        )
        .route(
            "/backend-api/accounts/{account_id}/groups/{group_id}/members",
            get(console_groups::members)
                .post(console_groups::add_members)
                .delete(console_groups::remove_members),
        )
        .route(
            "/backend-api/accounts/{account_id}/groups/{group_id}/members/{user_id}",
            delete(console_groups::remove_member),
        )
        .route("/backend-api/accounts/{account_id}/settings", get(settings))
        .route(
            "/backend-api/accounts/{account_id}/settings/default_seat_type",
            post(writes::set_default_seat),
        )
}

fn refused((status, body): Refusal) -> Response {
    (status, Json(body)).into_response()
}

/// The paging parameters of a listing, validated like the real (FastAPI) service does.
struct Paging {
    offset: usize,
    limit: usize,
    query: String,
}

fn validation_error(field: &str, kind: &str, msg: &str, input: &str) -> Refusal {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"detail": [{"type": kind, "loc": ["query", field], "msg": msg, "input": input}]}),
    )
}

fn paging(params: &HashMap<String, String>) -> Result<Paging, Refusal> {
    let number = |field: &str, default: usize, min: usize, max: usize| -> Result<usize, Refusal> {
        let Some(raw) = params.get(field) else { return Ok(default) };
        let value: i64 = raw.parse().map_err(|_| {
            validation_error(
                field,
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                raw,
            )
        })?;
        if value < min as i64 {
            return Err(validation_error(
                field,
                "greater_than_equal",
                &format!("Input should be greater than or equal to {min}"),
                raw,
            ));
        }
        if value > max as i64 {
            return Err(validation_error(
                field,
                "less_than_equal",
                &format!("Input should be less than or equal to {max}"),
                raw,
            ));
        }
        Ok(value as usize)
    };
    Ok(Paging {
        offset: number("offset", 0, 0, usize::MAX >> 1)?,
        limit: number("limit", 25, 1, 100)?,
        query: params.get("query").cloned().unwrap_or_default().to_lowercase(),
    })
}

/// One page of a listing, its keys in the service's order. Serialized straight from the
/// workspace's records: building a `Value` of every item first cost the mock more than the
/// serializing itself, CPU that benchmarks on shared cores took from what they measure.
#[derive(Serialize)]
struct Page<'a, T> {
    items: &'a [T],
    total: usize,
    limit: usize,
    offset: usize,
}

fn page<T: Serialize>(items: &[T], paging: &Paging) -> Response {
    let start = paging.offset.min(items.len());
    let end = start.saturating_add(paging.limit).min(items.len());
    let page = Page {
        items: &items[start..end],
        total: items.len(),
        limit: paging.limit,
        offset: paging.offset,
    };
    Json(page).into_response()
}

fn with_workspace<F, R>(
    service: &MockService,
    headers: &HeaderMap,
    account_id: &str,
    f: F,
) -> Result<R, Refusal>
where
    F: FnOnce(&MockData) -> Result<R, Refusal>,
{
    let data = service.lock();
    authorize(&data, headers, account_id)?;
    f(&data)
}

/// A listing: the items of the workspace whose searchable texts contain `query`, paged.
/// Without a query only the page is touched, so a sync of a large workspace costs the mock
/// O(page) per request, as a database-backed service's would.
fn listing<T: Serialize>(
    service: &MockService,
    headers: &HeaderMap,
    account_id: &str,
    params: &HashMap<String, String>,
    items: impl Fn(&Workspace) -> &[T],
    texts: impl Fn(&T) -> [&str; 2],
) -> Response {
    let listed = with_workspace(service, headers, account_id, |data| {
        let paging = paging(params)?;
        let all = items(&data.workspaces[account_id]);
        if paging.query.is_empty() {
            return Ok(page(all, &paging));
        }
        let matching: Vec<&T> = all
            .iter()
            .filter(|item| texts(item).iter().any(|t| t.to_lowercase().contains(&paging.query)))
            .collect();
        Ok(page(&matching, &paging))
    });
    listed.unwrap_or_else(refused)
}

async fn list_members(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    listing(&service, &headers, &account_id, &params, |ws| &ws.members, |m| [&m.email, &m.name])
}

async fn list_join_requests(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let served = service.lock().workspaces.get(&account_id).is_none_or(|w| w.join_requests_served);
    if !served {
        return refused((StatusCode::NOT_FOUND, json!({"detail": "Not Found"})));
    }
    listing(
        &service,
        &headers,
        &account_id,
        &params,
        |ws| &ws.join_requests,
        |r| [&r.email, &r.name],
    )
}

async fn list_invites(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    listing(&service, &headers, &account_id, &params, |ws| &ws.invites, |i| [&i.email_address, ""])
}

async fn settings(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    reply(with_workspace(&service, &headers, &account_id, |data| {
        let ws = &data.workspaces[&account_id];
        Ok(writes::settings_json(ws))
    }))
}

async fn seat_type_counts(
    State(service): State<MockService>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    reply(with_workspace(&service, &headers, &account_id, |data| {
        let ws = &data.workspaces[&account_id];
        let mut counts = serde_json::Map::new();
        for seat in SEAT_TYPES {
            let n = ws
                .members
                .iter()
                .filter(|m| m.seat_type == seat && m.deactivated_time.is_none())
                .count();
            counts.insert(seat.to_string(), json!(n));
        }
        Ok(json!({"seat_type_counts": counts}))
    }))
}

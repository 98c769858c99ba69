//! The directory service: the smallest HTTP API a connector can manage, served for the template
//! connector (`connector/template`) and for anyone learning to write one.
//!
//! People with an email and a set of roles, behind a bearer token:
//!
//! | request | answer |
//! |---|---|
//! | `GET /users?offset=&limit=` | `{"users": [...], "total": n}`, at most 100 a page |
//! | `GET /users?email=` | the same shape, holding the user with that email (any case) or none |
//! | `GET /users/{id}` | the user, or 404 |
//! | `POST /users` `{"email", "name"}` | 201 and the user, or 409 if the email is taken |
//! | `DELETE /users/{id}` | 204, or 404 |
//! | `PUT /users/{id}/roles/{role}` | 204 (holding it already is fine), 404 for no such user or role |
//! | `DELETE /users/{id}/roles/{role}` | 204 (not holding it is fine), 404 for no such user or role |
//!
//! Errors are `{"detail": "..."}`; a missing or wrong token is 401. Its traffic is recorded, and
//! faulted by plan, by the mock kit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::kit::{self, JsonVoice, Served, Traffic, bearer};
use accessgov_policy::{SettingValue, TenantConfig};

/// The roles the directory knows.
pub const ROLES: [&str; 2] = ["viewer", "editor"];
/// The largest page of users it serves.
pub const MAX_PAGE: u64 = 100;

/// A person in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// `u-<n>`.
    pub id: String,
    /// Email address, unique in any case.
    pub email: String,
    /// Name shown to people.
    pub name: String,
    /// Roles held, a subset of [`ROLES`], sorted.
    pub roles: Vec<String>,
}

#[derive(Debug, Default)]
struct Directory {
    token: String,
    users: Vec<User>,
    next_id: u64,
    writes: u64,
}

/// The directory's state and traffic, shared with the server and the tests.
#[derive(Debug, Clone, Default)]
pub struct DirectoryService {
    data: Arc<Mutex<Directory>>,
    traffic: Traffic,
}

impl DirectoryService {
    /// A directory of `people` users (`person<n>@directory.example.com`, every third an editor)
    /// accepting `token`.
    pub fn seeded(token: &str, people: u64) -> Self {
        let service = DirectoryService::default();
        {
            let mut data = service.lock();
            data.token = token.to_string();
            for n in 0..people {
                let roles = if n % 3 == 0 { vec!["editor".to_string()] } else { Vec::new() };
                let email = format!("person{n}@directory.example.com");
                let name = format!("Person {n}");
                add_user(&mut data, email, name, roles);
            }
        }
        service
    }

    fn lock(&self) -> MutexGuard<'_, Directory> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its request log and fault plan.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Every user, in the order listed.
    pub fn users(&self) -> Vec<User> {
        self.lock().users.clone()
    }

    /// How many writes (creations, removals, role changes) it has applied.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }
}

fn add_user(data: &mut Directory, email: String, name: String, roles: Vec<String>) -> User {
    data.next_id += 1;
    let user = User { id: format!("u-{}", data.next_id), email, name, roles };
    data.users.push(user.clone());
    user
}

/// A running directory server. Dropping it stops the server.
pub struct DirectoryServer {
    served: Served,
    service: DirectoryService,
}

impl DirectoryServer {
    /// Serves `service` on a free loopback port.
    pub async fn start_local(service: DirectoryService) -> std::io::Result<DirectoryServer> {
        Self::start(service, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves `service` on `addr` (port 0 picks a free port).
    pub async fn start(service: DirectoryService, addr: SocketAddr) -> std::io::Result<Self> {
        let served = Served::start(router(service.clone()), addr).await?;
        Ok(DirectoryServer { served, service })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    /// The state it serves.
    pub fn service(&self) -> &DirectoryService {
        &self.service
    }

    /// A tenant of `connector` (a name or a `.wasm` path) for this directory, holding `token`:
    /// the origin allowed, the token injected, loopback allowed (the mock lives there).
    pub fn tenant(&self, tenant_id: &str, connector: &str, token: &str) -> TenantConfig {
        let base_url = SettingValue::Text(format!("http://{}", self.addr()));
        let settings = BTreeMap::from([("base-url".to_string(), base_url)]);
        kit::loopback_tenant(tenant_id, connector, self.addr(), settings, token, BTreeMap::new())
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.served.stop().await;
    }
}

fn router(service: DirectoryService) -> Router {
    let routes = Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).delete(delete_user))
        .route("/users/{id}/roles/{role}", put(add_role).delete(remove_role))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "no such endpoint") });
    kit::with_traffic(routes, service.traffic.clone(), JsonVoice).with_state(service)
}

fn refuse(status: StatusCode, detail: &str) -> Response {
    kit::json_error(status, detail)
}

/// The locked state, if the request carries the directory's token.
fn authorized<'a>(
    service: &'a DirectoryService,
    headers: &HeaderMap,
) -> Option<MutexGuard<'a, Directory>> {
    let data = service.lock();
    (bearer(headers).as_deref() == Some(data.token.as_str())).then_some(data)
}

fn unauthorized() -> Response {
    refuse(StatusCode::UNAUTHORIZED, "invalid or missing token")
}

#[derive(Deserialize)]
struct Listing {
    offset: Option<u64>,
    limit: Option<u64>,
    email: Option<String>,
}

async fn list_users(
    State(service): State<DirectoryService>,
    headers: HeaderMap,
    Query(q): Query<Listing>,
) -> Response {
    let Some(data) = authorized(&service, &headers) else {
        return unauthorized();
    };
    if let Some(email) = q.email {
        let found: Vec<&User> =
            data.users.iter().filter(|u| u.email.eq_ignore_ascii_case(&email)).collect();
        return Json(json!({"users": found, "total": found.len()})).into_response();
    }
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return refuse(StatusCode::BAD_REQUEST, "limit must be from 1 to 100");
    }
    let offset = usize::try_from(q.offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let page: Vec<&User> = data.users.iter().skip(offset).take(limit as usize).collect();
    Json(json!({"users": page, "total": data.users.len()})).into_response()
}

async fn get_user(
    State(service): State<DirectoryService>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(data) = authorized(&service, &headers) else {
        return unauthorized();
    };
    match data.users.iter().find(|u| u.id == id) {
        Some(user) => Json(user).into_response(),
        None => refuse(StatusCode::NOT_FOUND, "no such user"),
    }
}

#[derive(Deserialize)]
struct NewUser {
    email: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create_user(
    State(service): State<DirectoryService>,
    headers: HeaderMap,
    body: Result<Json<NewUser>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(mut data) = authorized(&service, &headers) else {
        return unauthorized();
    };
    let Ok(Json(new)) = body else {
        return refuse(StatusCode::BAD_REQUEST, "the body must be {\"email\": ..., \"name\": ...}");
    };
    let email = new.email.trim().to_string();
    if !email.contains('@') || email.len() > 254 {
        return refuse(StatusCode::BAD_REQUEST, "email is not an address");
    }
    if data.users.iter().any(|u| u.email.eq_ignore_ascii_case(&email)) {
        return refuse(StatusCode::CONFLICT, "a user with this email exists");
    }
    let name = new.name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
    data.writes += 1;
    let user = add_user(&mut data, email, name, Vec::new());
    (StatusCode::CREATED, Json(user)).into_response()
}

async fn delete_user(
    State(service): State<DirectoryService>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(mut data) = authorized(&service, &headers) else {
        return unauthorized();
    };
    let before = data.users.len();
    data.users.retain(|u| u.id != id);
    if data.users.len() == before {
        return refuse(StatusCode::NOT_FOUND, "no such user");
    }
    data.writes += 1;
    StatusCode::NO_CONTENT.into_response()
}

async fn add_role(
    State(service): State<DirectoryService>,
    headers: HeaderMap,
    Path((id, role)): Path<(String, String)>,
) -> Response {
    change_role(&service, &headers, &id, &role, true)
}

async fn remove_role(
    State(service): State<DirectoryService>,
    headers: HeaderMap,
    Path((id, role)): Path<(String, String)>,
) -> Response {
    change_role(&service, &headers, &id, &role, false)
}

fn change_role(
    service: &DirectoryService,
    headers: &HeaderMap,
    id: &str,
    role: &str,
    hold: bool,
) -> Response {
    let Some(mut data) = authorized(service, headers) else {
        return unauthorized();
    };
    if !ROLES.contains(&role) {
        return refuse(StatusCode::NOT_FOUND, "no such role");
    }
    let Some(user) = data.users.iter_mut().find(|u| u.id == id) else {
        return refuse(StatusCode::NOT_FOUND, "no such user");
    };
    let held = user.roles.iter().any(|r| r == role);
    if held != hold {
        if hold {
            user.roles.push(role.to_string());
            user.roles.sort();
        } else {
            user.roles.retain(|r| r != role);
        }
        data.writes += 1;
    }
    StatusCode::NO_CONTENT.into_response()
}

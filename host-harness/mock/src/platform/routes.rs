//! The Admin API's endpoints, routed by hand from the path: a table of two dozen routes over
//! one organization reads more plainly as one `match` than as as many extractor functions.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::model::{INVITE_LIFETIME_SECS, OrgGroup, OrgInvite, OrgProject, Organization};
use super::{PlatformChange, PlatformData, PlatformService};
use crate::kit::{self, Voice, bearer};

/// Largest request body the mock reads.
const MAX_BODY: usize = 1 << 20;

/// The service's error shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, Copy, Default)]
struct OpenAiVoice;

impl Voice for OpenAiVoice {
    fn error(&self, _path: &str, status: StatusCode, detail: &str) -> Response {
        error(status, detail)
    }
}

/// An error answer in the service's shape.
fn error(status: StatusCode, message: &str) -> Response {
    let kind = match status.as_u16() {
        401 | 403 => "invalid_request_error",
        429 => "rate_limit_exceeded",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    (status, axum::Json(body)).into_response()
}

/// A request refused: its status and message, answered in the service's shape.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

fn bad(message: impl AsRef<str>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.as_ref().to_string())
}

fn missing(what: &str) -> Refusal {
    Refusal(StatusCode::NOT_FOUND, format!("No such {what}"))
}

pub(super) fn router(service: PlatformService) -> Router {
    let routes = Router::new().fallback(handle);
    kit::with_traffic(routes, service.traffic.clone(), OpenAiVoice).with_state(service)
}

/// A request's query, its keys as given (`emails[]` repeats).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    fn limit(&self, default: usize, max: usize) -> Result<usize, Refusal> {
        match self.get("limit") {
            None => Ok(default),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(bad(format!("Invalid 'limit': {raw:?}; it must be from 1 to {max}"))),
            },
        }
    }
}

async fn handle(State(service): State<PlatformService>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    };
    let path = parts.uri.path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let Some(route) = segments.strip_prefix(&["v1", "organization"]) else {
        return missing("endpoint").into_response();
    };
    let mut data = service.lock();
    let key = bearer(&parts.headers);
    if key.as_deref() != Some(data.admin_key.as_str()) {
        let message = match key {
            Some(k) if k.starts_with("sk-proj-") => {
                "Admin endpoints need an Admin API key; project API keys are refused"
            }
            _ => {
                "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
            }
        };
        return error(StatusCode::UNAUTHORIZED, message);
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    data.org.expire_invites(now);
    let rbac = matches!(route, ["groups", ..] | ["roles"] | ["users", _, "roles", ..]);
    if rbac && let Some(every) = data.switches.throttle_rbac_every {
        data.rbac_requests += 1;
        if every > 0 && data.rbac_requests % u64::from(every) == 0 {
            let mut response =
                error(StatusCode::TOO_MANY_REQUESTS, "Rate limit reached for requests");
            response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
            return response;
        }
    }
    let query = Query::parse(parts.uri.query());
    if parts.method == Method::GET {
        let view = match &mut data.stale {
            Some((old, left)) if *left > 0 => {
                *left -= 1;
                old.clone()
            }
            _ => data.org.clone(),
        };
        return read(&view, route, &query).unwrap_or_else(IntoResponse::into_response);
    }
    let body: Value = match body.is_empty() {
        true => Value::Null,
        false => match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(e) => {
                return bad(format!("We could not parse the JSON body of your request: {e}"))
                    .into_response();
            }
        },
    };
    let before = (data.switches.stale_reads_after_write > 0).then(|| data.org.clone());
    let changes_before = data.changes.len();
    let response = write(&mut data, &parts.method, route, &body, now)
        .unwrap_or_else(IntoResponse::into_response);
    if data.changes.len() > changes_before
        && let Some(before) = before
    {
        data.stale = Some((before, data.switches.stale_reads_after_write));
    }
    response
}

/// A classic page: `limit` and `after=<id>`, answering `first_id`, `last_id` and `has_more`.
fn classic(items: Vec<(String, Value)>, query: &Query) -> Result<Response, Refusal> {
    let limit = query.limit(20, 100)?;
    let start = match query.get("after") {
        None => 0,
        Some(after) => match items.iter().position(|(id, _)| id == after) {
            Some(i) => i + 1,
            None => return Err(bad(format!("Invalid 'after': no item has the id {after:?}"))),
        },
    };
    let page = &items[start.min(items.len())..(start + limit).min(items.len())];
    let has_more = start + limit < items.len();
    Ok(axum::Json(json!({
        "object": "list",
        "data": page.iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "first_id": page.first().map(|(id, _)| id),
        "last_id": page.last().map(|(id, _)| id),
        "has_more": has_more,
    }))
    .into_response())
}

/// An RBAC page: `limit`, `after=<next>` and `order`, answering `has_more` and an opaque `next`.
fn rbac(
    mut items: Vec<(String, Value)>,
    query: &Query,
    default_limit: usize,
    max_limit: usize,
    descending_by_default: bool,
) -> Result<Response, Refusal> {
    let limit = query.limit(default_limit, max_limit)?;
    match query.get("order") {
        None if descending_by_default => items.reverse(),
        Some("desc") => items.reverse(),
        None | Some("asc") => {}
        Some(other) => return Err(bad(format!("Invalid 'order': {other:?}"))),
    }
    let start = match query.get("after") {
        None => 0,
        Some(cursor) => {
            let id = cursor.strip_prefix("cur_").and_then(unhex);
            match id.and_then(|id| items.iter().position(|(i, _)| *i == id)) {
                Some(i) => i + 1,
                None => {
                    return Err(bad(format!(
                        "Invalid 'after': {cursor:?} is not a cursor of this list"
                    )));
                }
            }
        }
    };
    let page = &items[start.min(items.len())..(start + limit).min(items.len())];
    let has_more = start + limit < items.len();
    let next = has_more.then(|| page.last().map(|(id, _)| format!("cur_{}", hex(id)))).flatten();
    Ok(axum::Json(json!({
        "object": "list",
        "data": page.iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "has_more": has_more,
        "next": next,
    }))
    .into_response())
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

fn ok(value: Value) -> Result<Response, Refusal> {
    Ok(axum::Json(value).into_response())
}

fn keyed<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    id: impl Fn(&T) -> &str,
    json: impl Fn(&T) -> Value,
) -> Vec<(String, Value)> {
    items.into_iter().map(|item| (id(item).to_string(), json(item))).collect()
}

fn project_of<'a>(org: &'a Organization, id: &str) -> Result<&'a OrgProject, Refusal> {
    org.project(id).ok_or_else(|| missing("project"))
}

fn project_user_json(
    org: &Organization,
    project: &str,
    user: &str,
    role: &str,
    added_at: i64,
) -> Value {
    let person = org.users.iter().find(|u| u.id == user);
    json!({"object": "organization.project.user", "id": user, "project_id": project,
        "name": person.map(|p| p.name.as_str()), "email": person.map(|p| p.email.as_str()),
        "role": role, "added_at": added_at})
}

fn read(org: &Organization, route: &[&str], query: &Query) -> Result<Response, Refusal> {
    match route {
        ["users"] => {
            let emails = query.all("emails[]");
            let users = org.users.iter().filter(|u| {
                emails.is_empty() || emails.iter().any(|e| u.email.eq_ignore_ascii_case(e))
            });
            classic(keyed(users, |u| &u.id, |u| u.json()), query)
        }
        ["users", id] => {
            ok(org.users.iter().find(|u| u.id == *id).ok_or_else(|| missing("user"))?.json())
        }
        ["users", id, "roles"] => {
            if !org.users.iter().any(|u| u.id == *id) {
                return Err(missing("user"));
            }
            let held = org
                .roles
                .iter()
                .filter(|r| org.user_roles.iter().any(|(u, role)| u == id && *role == r.id));
            rbac(keyed(held, |r| &r.id, |r| r.json()), query, 1000, 1000, false)
        }
        ["invites"] => classic(keyed(&org.invites, |i| &i.id, OrgInvite::json), query),
        ["invites", id] => {
            ok(org.invites.iter().find(|i| i.id == *id).ok_or_else(|| missing("invite"))?.json())
        }
        ["projects"] => {
            let all = query.get("include_archived") == Some("true");
            let projects = org.projects.iter().filter(|p| all || !p.is_archived());
            classic(keyed(projects, |p| &p.id, OrgProject::json), query)
        }
        ["projects", id] => ok(project_of(org, id)?.json()),
        ["projects", id, "users"] => {
            let project = project_of(org, id)?;
            let users: Vec<(String, Value)> = project
                .users
                .iter()
                .map(|(u, role, at)| (u.clone(), project_user_json(org, id, u, role, *at)))
                .collect();
            classic(users, query)
        }
        ["projects", id, "service_accounts"] => {
            let project = project_of(org, id)?;
            classic(keyed(&project.service_accounts, |a| &a.id, |a| a.json()), query)
        }
        ["groups"] => rbac(keyed(&org.groups, |g| &g.id, OrgGroup::json), query, 100, 1000, false),
        ["groups", id, "users"] => {
            let group = org.group(id).ok_or_else(|| missing("group"))?;
            let users: Vec<(String, Value)> = group
                .users
                .iter()
                .map(|u| {
                    let person = org.users.iter().find(|p| p.id == *u);
                    let value = json!({"object": "group.user", "id": u,
                        "name": person.map(|p| p.name.as_str()), "email": person.map(|p| p.email.as_str())});
                    (u.clone(), value)
                })
                .collect();
            rbac(users, query, 100, 1000, true)
        }
        ["roles"] => rbac(keyed(&org.roles, |r| &r.id, |r| r.json()), query, 1000, 1000, false),
        _ => Err(missing("endpoint")),
    }
}

/// A text field of a request body.
fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, Refusal> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("Missing required parameter: '{name}'")))
}

fn one_of<'a>(value: &'a str, name: &str, allowed: &[&str]) -> Result<&'a str, Refusal> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(bad(format!("Invalid '{name}': {value:?}; expected one of {}", allowed.join(", "))))
    }
}

fn deleted(object: &str, id: &str) -> Result<Response, Refusal> {
    ok(json!({"object": object, "id": id, "deleted": true}))
}

fn record(data: &mut PlatformData, kind: &str, subject: String) {
    data.changes.push(PlatformChange { kind: kind.to_string(), subject });
}

fn write(
    data: &mut PlatformData,
    method: &Method,
    route: &[&str],
    body: &Value,
    now: i64,
) -> Result<Response, Refusal> {
    let org = &mut data.org;
    match (method.as_str(), route) {
        ("POST", ["users", id]) => {
            let role = one_of(field(body, "role")?, "role", &["owner", "reader"])?.to_string();
            let user = org.users.iter_mut().find(|u| u.id == *id).ok_or_else(|| missing("user"))?;
            user.role = role.clone();
            let answer = user.json();
            record(data, "set-role", format!("{id}/{role}"));
            ok(answer)
        }
        ("DELETE", ["users", id]) => {
            let index =
                org.users.iter().position(|u| u.id == *id).ok_or_else(|| missing("user"))?;
            org.users.remove(index);
            for project in &mut org.projects {
                project.users.retain(|(u, _, _)| u != id);
            }
            for group in &mut org.groups {
                group.users.retain(|u| u != id);
            }
            org.user_roles.retain(|(u, _)| u != id);
            record(data, "remove-user", id.to_string());
            deleted("organization.user.deleted", id)
        }
        ("POST", ["users", id, "roles"]) => {
            let role = field(body, "role_id")?.to_string();
            if !org.users.iter().any(|u| u.id == *id) {
                return Err(missing("user"));
            }
            if !org.roles.iter().any(|r| r.id == role && !r.predefined) {
                return Err(missing("role"));
            }
            if org.user_roles.iter().any(|(u, r)| u == id && *r == role) {
                return Err(bad("The role is already assigned to this user"));
            }
            org.user_roles.push((id.to_string(), role.clone()));
            record(data, "assign-role", format!("{id}/{role}"));
            ok(json!({"object": "user.role", "user": {"id": id}, "role": {"id": role}}))
        }
        ("DELETE", ["users", id, "roles", role]) => {
            let before = org.user_roles.len();
            org.user_roles.retain(|(u, r)| !(u == id && r == role));
            if org.user_roles.len() == before {
                return Err(missing("role assignment"));
            }
            record(data, "unassign-role", format!("{id}/{role}"));
            deleted("user.role.deleted", role)
        }
        ("POST", ["invites"]) => {
            let email = field(body, "email")?.trim().to_string();
            let role = one_of(field(body, "role")?, "role", &["owner", "reader"])?.to_string();
            if !email.contains('@') || email.len() > 254 {
                return Err(bad(format!("Invalid 'email': {email:?}")));
            }
            if org.user_by_email(&email).is_some() {
                return Err(bad(format!("{email} is already a member of this organization")));
            }
            if org.pending_invite(&email).is_some() {
                return Err(bad(format!("{email} already has a pending invite")));
            }
            let projects = match body.get("projects") {
                // Legacy: an invite that names no projects joins the default project.
                None | Some(Value::Null) => org
                    .projects
                    .iter()
                    .find(|p| !p.is_archived())
                    .map(|p| vec![(p.id.clone(), "member".to_string())])
                    .unwrap_or_default(),
                Some(Value::Array(items)) => {
                    let mut projects = Vec::new();
                    for item in items {
                        let id = field(item, "id")?;
                        let role =
                            one_of(field(item, "role")?, "projects.role", &["owner", "member"])?;
                        let project = org
                            .project(id)
                            .ok_or_else(|| bad(format!("Invalid project {id:?}")))?;
                        if project.is_archived() {
                            return Err(bad(format!("Project {id} is archived")));
                        }
                        projects.push((id.to_string(), role.to_string()));
                    }
                    projects
                }
                Some(_) => return Err(bad("Invalid 'projects': expected an array")),
            };
            let invite = OrgInvite {
                id: org.fresh_id("invite-"),
                email: email.clone(),
                role,
                status: "pending".to_string(),
                created_at: now,
                expires_at: now + INVITE_LIFETIME_SECS,
                accepted_at: None,
                projects,
            };
            let answer = invite.json();
            org.invites.push(invite);
            record(data, "invite", email.to_lowercase());
            ok(answer)
        }
        ("DELETE", ["invites", id]) => {
            let index =
                org.invites.iter().position(|i| i.id == *id).ok_or_else(|| missing("invite"))?;
            if org.invites[index].status == "accepted" {
                return Err(bad("Cannot delete an invite that has been accepted"));
            }
            let email = org.invites.remove(index).email.to_lowercase();
            record(data, "delete-invite", email);
            deleted("organization.invite.deleted", id)
        }
        ("POST", ["projects"]) => {
            let name = field(body, "name")?.to_string();
            let project = OrgProject {
                id: org.fresh_id("proj_"),
                name,
                created_at: now,
                archived_at: None,
                users: Vec::new(),
                service_accounts: Vec::new(),
            };
            let answer = project.json();
            record(data, "create-project", project.id.clone());
            data.org.projects.push(project);
            ok(answer)
        }
        ("POST", ["projects", id, "archive"]) => {
            let project =
                org.projects.iter_mut().find(|p| p.id == *id).ok_or_else(|| missing("project"))?;
            project.archived_at.get_or_insert(now);
            let answer = project.json();
            record(data, "archive-project", id.to_string());
            ok(answer)
        }
        ("POST", ["projects", id, "users", ..]) | ("DELETE", ["projects", id, "users", _]) => {
            project_membership(data, method, id, route.get(3).copied(), body, now)
        }
        ("DELETE", ["projects", id, "service_accounts", account]) => {
            let project =
                org.projects.iter_mut().find(|p| p.id == *id).ok_or_else(|| missing("project"))?;
            let before = project.service_accounts.len();
            project.service_accounts.retain(|a| a.id != *account);
            if project.service_accounts.len() == before {
                return Err(missing("service account"));
            }
            record(data, "delete-service-account", format!("{id}/{account}"));
            deleted("organization.project.service_account.deleted", account)
        }
        ("POST", ["groups"]) => {
            let name = field(body, "name")?.to_string();
            if name.is_empty() || name.chars().count() > 255 {
                return Err(bad("Invalid 'name': it must be 1 to 255 characters"));
            }
            if org.groups.iter().any(|g| g.name == name) {
                return Err(bad(format!("A group named {name:?} already exists")));
            }
            let group = OrgGroup {
                id: org.fresh_id("group_"),
                name,
                created_at: now,
                scim_managed: false,
                users: Vec::new(),
            };
            let answer = group.json();
            record(data, "create-group", group.id.clone());
            data.org.groups.push(group);
            ok(answer)
        }
        ("DELETE", ["groups", id]) => {
            let index =
                org.groups.iter().position(|g| g.id == *id).ok_or_else(|| missing("group"))?;
            org.groups.remove(index);
            record(data, "delete-group", id.to_string());
            deleted("group.deleted", id)
        }
        ("POST", ["groups", id, "users"]) => {
            let user = field(body, "user_id")?.to_string();
            if !org.users.iter().any(|u| u.id == user) {
                return Err(bad(format!("User {user} is not a member of this organization")));
            }
            let group =
                org.groups.iter_mut().find(|g| g.id == *id).ok_or_else(|| missing("group"))?;
            if group.users.contains(&user) {
                return Err(bad(format!("User {user} is already in the group")));
            }
            group.users.push(user.clone());
            record(data, "add-group-user", format!("{id}/{user}"));
            ok(json!({"object": "group.user", "user_id": user, "group_id": id}))
        }
        ("DELETE", ["groups", id, "users", user]) => {
            let group =
                org.groups.iter_mut().find(|g| g.id == *id).ok_or_else(|| missing("group"))?;
            let before = group.users.len();
            group.users.retain(|u| u != user);
            if group.users.len() == before {
                return Err(missing("group user"));
            }
            record(data, "remove-group-user", format!("{id}/{user}"));
            deleted("group.user.deleted", user)
        }
        _ => Err(missing("endpoint")),
    }
}

/// Adding, changing and removing a project's members: only organization members, and never
/// in an archived project.
fn project_membership(
    data: &mut PlatformData,
    method: &Method,
    project_id: &str,
    user_id: Option<&str>,
    body: &Value,
    now: i64,
) -> Result<Response, Refusal> {
    let org = &mut data.org;
    let project = org.project(project_id).ok_or_else(|| missing("project"))?;
    if project.is_archived() {
        return Err(bad(format!("Project {project_id} is archived; its members cannot change")));
    }
    match (method.as_str(), user_id) {
        ("POST", None) => {
            let role = one_of(field(body, "role")?, "role", &["owner", "member"])?.to_string();
            let user = match (
                body.get("user_id").and_then(Value::as_str),
                body.get("email").and_then(Value::as_str),
            ) {
                (Some(id), _) => org.users.iter().find(|u| u.id == id),
                (None, Some(email)) => org.user_by_email(email),
                (None, None) => return Err(bad("Missing required parameter: 'user_id'")),
            };
            let user = user
                .ok_or_else(|| {
                    bad("The user must be a member of the organization before joining a project")
                })?
                .id
                .clone();
            if org.project_role(project_id, &user).is_some() {
                return Err(bad(format!("User {user} is already a member of the project")));
            }
            if let Some(p) = org.projects.iter_mut().find(|p| p.id == project_id) {
                p.users.push((user.clone(), role.clone(), now));
            }
            let answer = project_user_json(org, project_id, &user, &role, now);
            record(data, "add-project-user", format!("{project_id}/{user}"));
            ok(answer)
        }
        ("POST", Some(user)) => {
            let role = one_of(field(body, "role")?, "role", &["owner", "member"])?.to_string();
            let p = org
                .projects
                .iter_mut()
                .find(|p| p.id == project_id)
                .ok_or_else(|| missing("project"))?;
            let member = p
                .users
                .iter_mut()
                .find(|(u, _, _)| u == user)
                .ok_or_else(|| missing("project user"))?;
            member.1 = role.clone();
            let added = member.2;
            let answer = project_user_json(org, project_id, user, &role, added);
            record(data, "set-project-role", format!("{project_id}/{user}/{role}"));
            ok(answer)
        }
        (_, Some(user)) => {
            let p = org
                .projects
                .iter_mut()
                .find(|p| p.id == project_id)
                .ok_or_else(|| missing("project"))?;
            let before = p.users.len();
            p.users.retain(|(u, _, _)| u != user);
            if p.users.len() == before {
                return Err(missing("project user"));
            }
            record(data, "remove-project-user", format!("{project_id}/{user}"));
            deleted("organization.project.user.deleted", user)
        }
        _ => Err(missing("endpoint")),
    }
}

//! The SCIM 2.0 surface (RFC 7643, RFC 7644) under `/scim/v2.0/{directory}`, on the same
//! workspaces as the console surface.
//!
//! Choices where the RFCs leave room:
//! - Auth: `Authorization: Bearer <token>` with a token registered for the directory. A missing
//!   or unknown token is 401 (checked first, so unknown directories are not revealed to
//!   strangers), an unknown directory 404, a token of another directory 403, a deactivated
//!   workspace 401. Console tokens are not SCIM tokens. Discovery endpoints need the token too.
//! - Request bodies are read as JSON whatever their `Content-Type` (RFC 7644 §3.1 requires
//!   `application/scim+json` and recommends `application/json`; refusing others helps no client).
//! - `schemas` must name the core schema in POST and PUT bodies (RFC 7643 §3: REQUIRED);
//!   other URNs (extensions) and unknown attributes are ignored.
//! - `/Bulk` and `/Me` are 501 (RFC 7644 §3.12, §3.11); bulk is advertised as unsupported.
//! - `POST /Users/.search` and `/Groups/.search` (RFC 7644 §3.4.3) take a `SearchRequest` and
//!   answer as `GET` does; the search of all resource types at once, `POST /.search`, is 501.
//! - Discovery says what is enforced: `emails` (with a `value`) is required of a user, and
//!   `active` cannot be removed (400 `invalidValue`, as for `userName`), only replaced.
//! - ETags and sorting are not implemented and advertised as such.

mod discovery;
mod filter;
mod groups;
pub(crate) mod identity;
mod patch;
mod query;
mod resource;
mod response;
mod schema;
mod users;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::Value;

use super::auth::bearer;
use super::model::{MockData, MockService, Workspace};
use resource::ScimResource;
pub use response::ScimError;
use response::answer;

/// Largest request body accepted: 2,000 KB (also advertised as `bulk.maxPayloadSize`).
pub const MAX_PAYLOAD_BYTES: usize = 2_048_000;
/// Largest page, and the default one (advertised as `filter.maxResults`).
pub const MAX_RESULTS: usize = 200;

/// The SCIM routes.
pub fn routes() -> Router<MockService> {
    const GET: &str = "GET";
    Router::new()
        .merge(resource_routes::<users::UserResource>())
        .merge(resource_routes::<groups::GroupResource>())
        .route(
            "/scim/v2.0/{directory}/ServiceProviderConfig",
            get(discovery::service_provider_config).fallback(|| not_allowed(GET)),
        )
        .route(
            "/scim/v2.0/{directory}/ResourceTypes",
            get(discovery::resource_types).fallback(|| not_allowed(GET)),
        )
        .route(
            "/scim/v2.0/{directory}/ResourceTypes/{name}",
            get(discovery::one_resource_type).fallback(|| not_allowed(GET)),
        )
        .route(
            "/scim/v2.0/{directory}/Schemas",
            get(discovery::schemas).fallback(|| not_allowed(GET)),
        )
        .route(
            "/scim/v2.0/{directory}/Schemas/{urn}",
            get(discovery::one_schema).fallback(|| not_allowed(GET)),
        )
        .route(
            "/scim/v2.0/{directory}/.search",
            any(|| {
                not_implemented(
                    "searching all resource types at once is not supported; POST /Users/.search or /Groups/.search",
                )
            }),
        )
        .route("/scim/v2.0/{directory}/Bulk", any(|| not_implemented("Bulk is not supported")))
        .route("/scim/v2.0/{directory}/Me", any(|| not_implemented("/Me is not supported")))
}

/// The routes of one resource type: its collection and its members.
fn resource_routes<R: ScimResource>() -> Router<MockService> {
    const ALL: &str = "GET, POST";
    const ONE: &str = "GET, PUT, PATCH, DELETE";
    let all = format!("/scim/v2.0/{{directory}}{}", R::KIND.endpoint());
    Router::new()
        .route(
            &all,
            get(resource::list::<R>).post(resource::create::<R>).fallback(|| not_allowed(ALL)),
        )
        .route(
            &format!("{all}/.search"),
            post(resource::search::<R>).fallback(|| not_allowed("POST")),
        )
        .route(
            &format!("{all}/{{id}}"),
            get(resource::get_one::<R>)
                .put(resource::replace::<R>)
                .patch(resource::patch::<R>)
                .delete(resource::delete::<R>)
                .fallback(|| not_allowed(ONE)),
        )
}

/// Whether `path` is on the SCIM surface (its errors are SCIM error bodies).
pub fn is_scim_path(path: &str) -> bool {
    path.starts_with("/scim/")
}

async fn not_allowed(allow: &'static str) -> Response {
    let mut response =
        ScimError::new(StatusCode::METHOD_NOT_ALLOWED, format!("Allowed methods: {allow}"))
            .into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

async fn not_implemented(detail: &'static str) -> Response {
    ScimError::new(StatusCode::NOT_IMPLEMENTED, detail).into_response()
}

/// Checks the bearer token against `directory`; returns the workspace's id.
fn authorize(data: &MockData, headers: &HeaderMap, directory: &str) -> Result<String, ScimError> {
    let unauthorized =
        || ScimError::new(StatusCode::UNAUTHORIZED, "Missing or invalid bearer token");
    let token_directory = bearer(headers)
        .and_then(|token| data.scim_tokens.get(&token).cloned())
        .ok_or_else(unauthorized)?;
    let ws = data
        .workspaces
        .values()
        .find(|ws| ws.scim_directory.as_deref() == Some(directory))
        .ok_or_else(|| {
            ScimError::new(StatusCode::NOT_FOUND, format!("Directory {directory} not found"))
        })?;
    if token_directory != directory {
        return Err(ScimError::new(
            StatusCode::FORBIDDEN,
            "The token is not valid for this directory",
        ));
    }
    if ws.deactivated {
        return Err(ScimError::new(
            StatusCode::UNAUTHORIZED,
            "This workspace has been deactivated.",
        ));
    }
    Ok(ws.account_id.clone())
}

/// `http://<host>/scim/v2.0/<directory>`, from the request's `Host`, for `meta.location`.
fn base_url(headers: &HeaderMap, directory: &str) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}/scim/v2.0/{directory}")
}

/// Runs a read on the authorized workspace.
fn read<F>(service: &MockService, headers: &HeaderMap, directory: &str, f: F) -> Response
where
    F: FnOnce(&Workspace, &str) -> Result<Response, ScimError>,
{
    let data = service.lock();
    answer(authorize(&data, headers, directory).and_then(|account| {
        let ws = data
            .workspaces
            .get(&account)
            .ok_or_else(|| ScimError::new(StatusCode::NOT_FOUND, "Workspace not found"))?;
        f(ws, &base_url(headers, directory))
    }))
}

/// Runs a write on the authorized workspace. With the workspace's `drop_writes` switch the
/// answer is the real one but the change is undone, as the console's writes do.
fn write<F>(
    service: &MockService,
    headers: &HeaderMap,
    directory: &str,
    body: &[u8],
    f: F,
) -> Response
where
    F: FnOnce(&mut Workspace, &mut u64, &str) -> Result<Response, ScimError>,
{
    if body.len() > MAX_PAYLOAD_BYTES {
        return ScimError::too_large().into_response();
    }
    let mut data = service.lock();
    let result = authorize(&data, headers, directory).and_then(|account| {
        let base = base_url(headers, directory);
        let MockData { workspaces, sequence, .. } = &mut *data;
        let ws = workspaces
            .get_mut(&account)
            .ok_or_else(|| ScimError::new(StatusCode::NOT_FOUND, "Workspace not found"))?;
        if ws.drop_writes {
            let kept = ws.clone();
            let answer = f(ws, sequence, &base);
            *ws = kept;
            answer
        } else {
            f(ws, sequence, &base)
        }
    });
    answer(result)
}

/// The JSON body of a request.
fn json_body(body: &[u8]) -> Result<Value, ScimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::bad("invalidSyntax", "A JSON body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("The body is not valid JSON: {e}")))
}

/// Refuses a resource body whose `schemas` does not name `urn`.
fn require_schema(doc: &Value, urn: &str) -> Result<(), ScimError> {
    let named = filter::field(doc, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn))));
    if named {
        Ok(())
    } else {
        Err(ScimError::bad("invalidSyntax", format!("schemas must contain {urn}")))
    }
}

/// The answer of an injected fault that stops a SCIM request: SCIM error bodies, except the
/// HTML pages, which come from the bot protection in front of every surface.
pub fn fault_refusal(status: StatusCode, detail: &str) -> Response {
    ScimError::new(status, detail).into_response()
}

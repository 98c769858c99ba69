//! The endpoints, their state, and the OpenAPI document generated from the same types.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use accessgov_host::Host;
use accessgov_host::call::CallReport;
use accessgov_host::types as contract;
use accessgov_policy::tenant::{CredentialConfig, LimitsConfig, TenantConfig};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use tokio::sync::watch;
use utoipa::OpenApi;

use crate::audit::{AuditLog, AuditRecord, SentRequest};
use crate::auth::{Keys, Principal, Refusal};
use crate::config::ServerLimits;
use crate::dispatch::{Answer, Backend, Operation, execute, sync_pages, wrong_answer};
use crate::error::ApiError;
use crate::jobs::{JobSpec, Jobs};
use crate::metrics::Metrics;
use crate::model::*;

/// What every handler shares.
pub struct AppState {
    /// The host.
    pub host: Arc<Host>,
    /// API keys.
    pub keys: Keys,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Metrics.
    pub metrics: Metrics,
    /// Batch jobs run by this server (none when a queue runs them).
    pub jobs: Arc<Jobs>,
    /// Where calls, syncs and jobs run.
    pub backend: Backend,
    /// Limits.
    pub limits: ServerLimits,
    /// Set once shutdown begins: new calls are refused with 503.
    pub draining: AtomicBool,
    /// Turns true when the drain's bound has passed: calls still running answer 503 at once.
    pub cut_off: watch::Receiver<bool>,
    /// Calls running now, by number, with what they are.
    pub running: Mutex<HashMap<u64, String>>,
    /// What was cut off by shutdown.
    pub cut: Mutex<Vec<String>>,
    next_call: AtomicU64,
}

impl AppState {
    /// State over `host`.
    pub fn new(
        host: Arc<Host>,
        backend: Backend,
        keys: Keys,
        audit: AuditLog,
        limits: ServerLimits,
        cut_off: watch::Receiver<bool>,
    ) -> Self {
        AppState {
            host,
            backend,
            keys,
            audit: Arc::new(audit),
            metrics: Metrics::default(),
            jobs: Arc::new(Jobs::default()),
            limits,
            draining: AtomicBool::new(false),
            cut_off,
            running: Mutex::new(HashMap::new()),
            cut: Mutex::new(Vec::new()),
            next_call: AtomicU64::new(0),
        }
    }

    /// Runs `work` as a call of its own task, so a client that disconnects does not stop a
    /// write half-way (the task finishes and writes its audit record). If shutdown's bound
    /// passes first, the caller is answered 503 at once and the call is listed as cut off.
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        what: String,
        work: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
    ) -> Result<T, ApiError> {
        let number = self.next_call.fetch_add(1, Ordering::SeqCst);
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(number, what.clone());
        let task = tokio::spawn(work);
        let mut cut_off = self.cut_off.clone();
        let outcome = tokio::select! {
            joined = task => joined.unwrap_or_else(|e| Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "host", format!("the call's task failed: {e}")))),
            _ = cut_off.wait_for(|cut| *cut) => {
                self.cut.lock().unwrap_or_else(|p| p.into_inner()).push(what.clone());
                tracing::error!(call = what.as_str(), "cut off by shutdown");
                Err(ApiError::draining(format!("{what} was cut off by the server's shutdown before it finished; its outcome is unknown (see the audit log)")))
            }
        };
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&number);
        outcome
    }

    /// Runs `operation` for `tenant`, here or on a worker.
    async fn call(&self, tenant: &str, operation: Operation) -> Result<Answer, ApiError> {
        match &self.backend {
            Backend::Local => execute(&self.host, tenant, operation).await,
            Backend::Queue(queue) => queue.call(tenant, operation).await,
        }
    }

    /// Job `id`, here or in the queue.
    async fn job(&self, id: &str, with_items: bool) -> Result<Job, ApiError> {
        match &self.backend {
            Backend::Local => self.jobs.get(id, with_items),
            Backend::Queue(queue) => queue.job(id, with_items).await?,
        }
        .ok_or_else(|| ApiError::not_found("such job"))
    }

    /// Whether tenant `id` is registered and in the key's scope.
    fn sees(&self, principal: &Principal, id: &str) -> bool {
        self.host.tenant_summary(id).is_some_and(|(_, c)| principal.may_use(id, c.as_deref()))
    }

    /// The tenant `id` if the key may use it; otherwise the same 404 as for no tenant.
    fn tenant_in_scope(&self, principal: &Principal, id: &str) -> Result<(), ApiError> {
        if self.sees(principal, id) { Ok(()) } else { Err(ApiError::not_found("such tenant")) }
    }
}

type Shared = Arc<AppState>;

/// The report of `$operation`, whose answer is `$answer`.
macro_rules! call_as {
    ($state:expr, $tenant:expr, $operation:expr, $answer:path) => {
        match $state.call($tenant, $operation).await? {
            $answer(report) => report,
            _ => return Err(wrong_answer()),
        }
    };
}

/// The errors an endpoint may answer, each in the one error shape.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum Failures {
    /// The request is malformed.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No key, or an unknown one.
    #[response(status = 401)]
    Unauthenticated(#[to_schema] ErrorBody),
    /// The key may not do this.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// No such tenant (or one the key may not see), account, job or connector.
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// The change conflicts with the current state.
    #[response(status = 409)]
    Conflict(#[to_schema] ErrorBody),
    /// The body is over the server's limit.
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    /// The connector, or the host, refused it.
    #[response(status = 422)]
    Refused(#[to_schema] ErrorBody),
    /// The key's rate, or the service's, is exceeded; see `Retry-After`.
    #[response(status = 429)]
    RateLimited(#[to_schema] ErrorBody),
    /// The service failed, or the call was stopped by the sandbox.
    #[response(status = 502)]
    BadGateway(#[to_schema] ErrorBody),
    /// The server is shutting down, or cut the call off doing so.
    #[response(status = 503)]
    Draining(#[to_schema] ErrorBody),
    /// The service or the call ran out of time.
    #[response(status = 504)]
    Timeout(#[to_schema] ErrorBody),
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "accessgov host", description = "Sandboxed access-governance connectors as a service: tenants, connectors and every operation of the accessgov:connector contract."),
    paths(
        healthz, readyz, metrics_text, list_connectors, put_connector, delete_connector,
        list_tenants, put_tenant, delete_tenant, info, test_connection, accounts, account,
        entitlements, grant, revoke, set, batch, sync, start_job, get_job, cancel_job, audit_records
    ),
    modifiers(&Security),
    tags((name = "accessgov"))
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router over `state`.
pub fn router(state: Shared) -> Router {
    let body_limit = state.limits.max_body_bytes;
    let upload_limit = state.limits.max_upload_bytes;
    let api = Router::new()
        .route("/v1/connectors", get(list_connectors))
        .route(
            "/v1/connectors/{name}",
            put(put_connector).delete(delete_connector).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/v1/tenants", get(list_tenants))
        .route("/v1/tenants/{tenant}", put(put_tenant).delete(delete_tenant))
        .route("/v1/tenants/{tenant}/info", get(info))
        .route("/v1/tenants/{tenant}/test-connection", post(test_connection))
        .route("/v1/tenants/{tenant}/accounts", get(accounts))
        .route("/v1/tenants/{tenant}/accounts/{account}", get(account))
        .route("/v1/tenants/{tenant}/entitlements", get(entitlements))
        .route("/v1/tenants/{tenant}/grant", post(grant))
        .route("/v1/tenants/{tenant}/revoke", post(revoke))
        .route("/v1/tenants/{tenant}/set", post(set))
        .route("/v1/tenants/{tenant}/batch", post(batch))
        .route("/v1/tenants/{tenant}/sync", get(sync))
        .route("/v1/tenants/{tenant}/jobs", post(start_job))
        .route("/v1/jobs/{job}", get(get_job).delete(cancel_job))
        .route("/v1/audit", get(audit_records))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .merge(api)
        .fallback(|| async { ApiError::not_found("such endpoint") })
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

/// Counts every answer by route and status.
async fn count(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.http(&route, response.status().as_u16());
    response
}

/// Checks the key and its rate, refuses new work while draining, and hands the handler the
/// key's principal.
async fn authenticate(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        return ApiError::draining(
            "the server is shutting down; send this again to another instance",
        )
        .into_response();
    }
    let header = request.headers().get("authorization").and_then(|v| v.to_str().ok());
    match state.keys.authenticate(header) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(Refusal::Unauthenticated) => ApiError::unauthenticated().into_response(),
        Err(Refusal::RateLimited(seconds)) => {
            ApiError::rate_limited(seconds, "this key's rate limit is reached").into_response()
        }
    }
}

/// The answer of a call: its result, or the error it ended in; the call is counted.
fn answered<T, U>(
    state: &AppState,
    tenant: &str,
    operation: &str,
    report: CallReport<T>,
    lift: impl FnOnce(T) -> U,
) -> Result<U, ApiError> {
    let error = report.result.as_ref().err();
    state.metrics.report(tenant, operation, error, report.duration_ms, &report.egress);
    report.result.map(lift).map_err(|e| ApiError::call(&e))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 503 once shutdown has begun.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "ready", body = String), (status = 503, description = "shutting down", body = ErrorBody)))]
async fn readyz(State(state): State<Shared>) -> Result<&'static str, ApiError> {
    if state.draining.load(Ordering::SeqCst) {
        return Err(ApiError::draining("shutting down"));
    }
    Ok("ready")
}

async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(text) => ([("content-type", "application/json")], text).into_response(),
        Err(e) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "host", e.to_string()).into_response()
        }
    }
}

/// Prometheus metrics (an operator's key).
#[utoipa::path(get, path = "/metrics", security(("api_key" = [])), responses((status = 200, description = "Prometheus text", body = String), Failures))]
async fn metrics_text(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, ApiError> {
    if !principal.operator {
        return Err(ApiError::forbidden("metrics name every tenant: they need an operator's key"));
    }
    let running = state.running.lock().unwrap_or_else(|p| p.into_inner()).len();
    let text = state.metrics.render(running, state.host.idle_connections());
    Ok(([("content-type", "text/plain; version=0.0.4")], text).into_response())
}

/// The registered connectors.
#[utoipa::path(get, path = "/v1/connectors", security(("api_key" = [])), responses((status = 200, body = [ConnectorSummary]), Failures))]
async fn list_connectors(State(state): State<Shared>) -> Json<Vec<ConnectorSummary>> {
    Json(state.host.connector_names().into_iter().map(|name| ConnectorSummary { name }).collect())
}

/// Uploads or replaces a connector (a WebAssembly component), checked as the host checks any:
/// its imports, its exports, the tenants running it.
#[utoipa::path(put, path = "/v1/connectors/{name}", security(("api_key" = [])), request_body(content = Vec<u8>, content_type = "application/wasm"), params(("name" = String, Path, description = "The connector's name")),
    responses((status = 200, body = ConnectorSummary), Failures))]
async fn put_connector(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(name): UrlPath<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<ConnectorSummary>, ApiError> {
    operator_writes(&principal)?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!(
                "the component is larger than this server's limit of {} bytes",
                state.limits.max_upload_bytes
            ),
        ),
        _ => ApiError::bad_request(e.body_text()),
    })?;
    check_name(&name, "connector name")?;
    let host = state.host.clone();
    let (n, bytes) = (name.clone(), body.clone());
    state
        .run(format!("upload of connector {name}"), async move {
            tokio::task::spawn_blocking(move || host.add_connector(&n, &bytes))
                .await
                .map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "host", e.to_string())
                })?
                .map_err(|e| ApiError::host(&e))
        })
        .await?;
    // Checked here first: only a component this host accepts reaches the workers.
    if let Backend::Queue(queue) = &state.backend {
        queue.share_connector(&name, body.to_vec()).await?;
    }
    let mut record = AuditRecord::new(&principal.key_id, "", "put-connector", false);
    record.outcomes.push(format!("connector {name} registered"));
    audit(&state, &record);
    Ok(Json(ConnectorSummary { name }))
}

/// Removes a connector no tenant runs.
#[utoipa::path(delete, path = "/v1/connectors/{name}", security(("api_key" = [])), params(("name" = String, Path)),
    responses((status = 204), Failures))]
async fn delete_connector(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    operator_writes(&principal)?;
    match state.host.remove_connector(&name) {
        Ok(true) => {
            if let Backend::Queue(queue) = &state.backend {
                queue.withdraw_connector(&name).await?;
            }
            let mut record = AuditRecord::new(&principal.key_id, "", "delete-connector", false);
            record.outcomes.push(format!("connector {name} removed"));
            audit(&state, &record);
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(ApiError::not_found("such connector")),
        Err(e) => Err(ApiError::host(&e)),
    }
}

fn operator_writes(principal: &Principal) -> Result<(), ApiError> {
    if !principal.operator || !principal.may_write() {
        return Err(ApiError::forbidden(
            "connectors are shared by every tenant: managing them needs an operator's read-write key",
        ));
    }
    Ok(())
}

/// Names and ids: 1 to 128 letters, digits, `-`, `_` or `.`.
fn check_name(name: &str, what: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} {name:?} must be 1 to 128 letters, digits, `-`, `_` or `.`"
        )))
    }
}

/// The tenants the key may use.
#[utoipa::path(get, path = "/v1/tenants", security(("api_key" = [])), responses((status = 200, body = [TenantSummary]), Failures))]
async fn list_tenants(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
) -> Json<Vec<TenantSummary>> {
    let tenants = state
        .host
        .tenant_ids()
        .into_iter()
        .filter_map(|id| {
            let (connector, customer) = state.host.tenant_summary(&id)?;
            principal.may_use(&id, customer.as_deref()).then_some(TenantSummary {
                id,
                connector,
                customer,
            })
        })
        .collect();
    Json(tenants)
}

/// Registers or replaces a tenant, validated as a tenants file's tenant is; its settings are
/// checked against its connector's settings schema.
#[utoipa::path(put, path = "/v1/tenants/{tenant}", security(("api_key" = [])), request_body = TenantSpec, params(("tenant" = String, Path)),
    responses((status = 200, body = TenantSummary), Failures))]
async fn put_tenant(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
    body: Result<Json<TenantSpec>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<TenantSummary>, ApiError> {
    let Json(spec) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_name(&tenant, "tenant id")?;
    if !principal.may_use(&tenant, spec.customer.as_deref()) {
        return Err(ApiError::forbidden(format!(
            "this key may not register tenant {tenant} (customer {:?})",
            spec.customer
        )));
    }
    if let Some((_, customer)) = state.host.tenant_summary(&tenant)
        && !principal.may_use(&tenant, customer.as_deref())
    {
        return Err(ApiError::forbidden(format!("this key may not register tenant {tenant}")));
    }
    if !principal.may_write() {
        return Err(ApiError::forbidden("this key is read-only"));
    }
    if matches!(state.backend, Backend::Queue(_)) {
        secrets_by_reference(&spec)?;
    }
    let shared = spec.clone();
    let config = tenant_config(&tenant, spec)?;
    let host = state.host.clone();
    let summary = TenantSummary {
        id: tenant.clone(),
        connector: config.connector.clone(),
        customer: config.customer.clone(),
    };
    state
        .run(format!("registration of tenant {tenant}"), async move {
            host.add_tenant_checked(&config, Path::new(".")).await.map_err(|e| ApiError::host(&e))
        })
        .await?;
    // Checked here first: only a tenant this host accepts reaches the workers.
    if let Backend::Queue(queue) = &state.backend {
        queue.share_tenant(&tenant, &shared).await?;
    }
    let mut record = AuditRecord::new(&principal.key_id, &tenant, "put-tenant", false);
    record.outcomes.push(format!("tenant registered with connector {}", summary.connector));
    audit(&state, &record);
    Ok(Json(summary))
}

/// Refuses a secret in `spec` itself: tenants shared with workers are stored in the queue's
/// key-value store, which must hold no secret, only the name of the environment variable each
/// worker reads it from.
fn secrets_by_reference(spec: &TenantSpec) -> Result<(), ApiError> {
    for (n, c) in spec.credentials.iter().enumerate() {
        if c.bearer_token.is_some() || c.bearer_token_file.is_some() {
            return Err(ApiError::bad_request(format!(
                "credentials[{n}]: workers share tenants through the queue, which holds no \
                 secrets: give `bearer_token_env`, set on the server and every worker"
            )));
        }
    }
    Ok(())
}

/// The host's tenant of `spec`, secrets resolved: a file's token read now, an environment
/// variable's by the host's validation.
pub fn tenant_config(id: &str, spec: TenantSpec) -> Result<TenantConfig, ApiError> {
    if spec.connector.ends_with(".wasm") {
        return Err(ApiError::bad_request(
            "`connector` must name a registered connector; upload components to /v1/connectors",
        ));
    }
    let mut credentials = Vec::new();
    for (n, c) in spec.credentials.into_iter().enumerate() {
        let given =
            [c.bearer_token.is_some(), c.bearer_token_env.is_some(), c.bearer_token_file.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(ApiError::bad_request(format!(
                "credentials[{n}]: give one of `bearer_token`, `bearer_token_env`, `bearer_token_file`"
            )));
        }
        let token = match &c.bearer_token_file {
            Some(path) => Some(
                accessgov_policy::bounded_read::read_text(Path::new(path), 64 << 10)
                    .map_err(|e| {
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "invalid",
                            format!("credentials[{n}].bearer_token_file: {e}"),
                        )
                    })?
                    .trim()
                    .to_string(),
            ),
            None => c.bearer_token,
        };
        credentials.push(CredentialConfig {
            origin: c.origin,
            path_prefix: c.path_prefix,
            bearer_token: token,
            bearer_token_env: c.bearer_token_env,
            headers: c.headers,
        });
    }
    let settings = spec
        .settings
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                SettingValue::Text(t) => accessgov_policy::tenant::SettingValue::Text(t),
                SettingValue::Integer(n) => accessgov_policy::tenant::SettingValue::Integer(n),
                SettingValue::Flag(b) => accessgov_policy::tenant::SettingValue::Flag(b),
            };
            (k, value)
        })
        .collect::<BTreeMap<_, _>>();
    Ok(TenantConfig {
        id: id.to_string(),
        connector: spec.connector,
        customer: spec.customer,
        allowed_origins: spec.allowed_origins,
        settings,
        credentials,
        allow_private_addresses: spec.allow_private_addresses,
        limits: LimitsConfig {
            call_timeout_ms: spec.limits.call_timeout_ms,
            memory_mib: spec.limits.memory_mib,
            max_response_bytes: spec.limits.max_response_bytes,
            max_concurrent_requests: spec.limits.max_concurrent_requests,
            ..LimitsConfig::default()
        },
    })
}

/// Removes a tenant.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}", security(("api_key" = [])), params(("tenant" = String, Path)),
    responses((status = 204), Failures))]
async fn delete_tenant(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    state.tenant_in_scope(&principal, &tenant)?;
    if !principal.may_write() {
        return Err(ApiError::forbidden("this key is read-only"));
    }
    state.host.remove_tenant(&tenant);
    if let Backend::Queue(queue) = &state.backend {
        queue.withdraw_tenant(&tenant).await?;
    }
    audit(&state, &AuditRecord::new(&principal.key_id, &tenant, "delete-tenant", false));
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's connector, as it describes itself for the tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/info", security(("api_key" = [])), params(("tenant" = String, Path)),
    responses((status = 200, body = ConnectorInfo), Failures))]
async fn info(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
) -> Result<Json<ConnectorInfo>, ApiError> {
    state.tenant_in_scope(&principal, &tenant)?;
    let (s, t) = (state.clone(), tenant.clone());
    let info = state
        .run(format!("info of {tenant}"), async move {
            let report = call_as!(s, &t, Operation::Info, Answer::Info);
            answered(&s, &t, "info", report, ConnectorInfo::from)
        })
        .await?;
    Ok(Json(info))
}

/// Checks the tenant's settings and credentials against the service.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/test-connection", security(("api_key" = [])), params(("tenant" = String, Path)),
    responses((status = 200, body = ConnectionReport), Failures))]
async fn test_connection(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
) -> Result<Json<ConnectionReport>, ApiError> {
    state.tenant_in_scope(&principal, &tenant)?;
    let (s, t) = (state.clone(), tenant.clone());
    let report = state
        .run(format!("test-connection of {tenant}"), async move {
            let report = call_as!(s, &t, Operation::TestConnection, Answer::TestConnection);
            answered(&s, &t, "test-connection", report, |r| ConnectionReport {
                limitations: r.limitations,
            })
        })
        .await?;
    Ok(Json(report))
}

/// A page's position.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items wanted (the connector may give fewer).
    size: Option<u32>,
}

fn page_query(
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<contract::PageRequest, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if q.size == Some(0) {
        return Err(ApiError::bad_request("`size` must be at least 1"));
    }
    Ok(contract::PageRequest { cursor: q.cursor, size: q.size })
}

/// One page of accounts.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/accounts", security(("api_key" = [])), params(("tenant" = String, Path), PageQuery),
    responses((status = 200, body = AccountPage), Failures))]
async fn accounts(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AccountPage>, ApiError> {
    state.tenant_in_scope(&principal, &tenant)?;
    let page = page_query(query)?;
    let (s, t) = (state.clone(), tenant.clone());
    let page = state
        .run(format!("accounts of {tenant}"), async move {
            let report = call_as!(s, &t, Operation::ListAccounts { page }, Answer::Accounts);
            answered(&s, &t, "list-accounts", report, |p| AccountPage {
                accounts: p.accounts.into_iter().map(Account::from).collect(),
                next_cursor: p.next_cursor,
            })
        })
        .await?;
    Ok(Json(page))
}

/// One account, by id, or by email when it has an `@`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/accounts/{account}", security(("api_key" = [])), params(("tenant" = String, Path), ("account" = String, Path, description = "An account id, or an email address")),
    responses((status = 200, body = Account), Failures))]
async fn account(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath((tenant, account)): UrlPath<(String, String)>,
) -> Result<Json<Account>, ApiError> {
    state.tenant_in_scope(&principal, &tenant)?;
    let reference = if account.contains('@') {
        contract::AccountRef::Email(account)
    } else {
        contract::AccountRef::Id(account)
    };
    let (s, t) = (state.clone(), tenant.clone());
    let found = state
        .run(format!("account of {tenant}"), async move {
            let report =
                call_as!(s, &t, Operation::GetAccount { account: reference }, Answer::Account);
            answered(&s, &t, "get-account", report, Account::from)
        })
        .await?;
    Ok(Json(found))
}

/// One page of entitlements.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/entitlements", security(("api_key" = [])), params(("tenant" = String, Path), PageQuery),
    responses((status = 200, body = EntitlementPage), Failures))]
async fn entitlements(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EntitlementPage>, ApiError> {
    state.tenant_in_scope(&principal, &tenant)?;
    let page = page_query(query)?;
    let (s, t) = (state.clone(), tenant.clone());
    let page = state
        .run(format!("entitlements of {tenant}"), async move {
            let report =
                call_as!(s, &t, Operation::ListEntitlements { page }, Answer::Entitlements);
            answered(&s, &t, "list-entitlements", report, |p| EntitlementPage {
                entitlements: p.entitlements.into_iter().map(Entitlement::from).collect(),
                next_cursor: p.next_cursor,
            })
        })
        .await?;
    Ok(Json(page))
}

fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    body.map(|Json(v)| v).map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", e.body_text())
        }
        _ => ApiError::bad_request(e.body_text()),
    })
}

/// Runs changes as one `apply-batch` call in a task of its own, auditing what was sent.
async fn apply_changes(
    state: &Shared,
    principal: &Principal,
    tenant: String,
    operation: &'static str,
    changes: Vec<BatchChange>,
    dry_run: bool,
) -> Result<Vec<Result<ChangeResult, ApiError>>, ApiError> {
    state.tenant_in_scope(principal, &tenant)?;
    if !principal.may_write() {
        return Err(ApiError::forbidden(
            "this key is read-only: it may not change anything, even in a dry run",
        ));
    }
    let contract_changes = changes
        .iter()
        .map(BatchChange::to_contract)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::bad_request)?;
    let s = state.clone();
    let key = principal.key_id.clone();
    let what = format!("{operation} for {tenant} ({} change(s))", changes.len());
    state
        .run(what, async move {
            let mut record = AuditRecord::new(&key, &tenant, operation, dry_run);
            record.changes = changes;
            let operation_call = Operation::ApplyBatch { changes: contract_changes, dry_run };
            let answer = s.call(&tenant, operation_call).await.and_then(|answer| match answer {
                Answer::Changes(report) => Ok(report),
                _ => Err(wrong_answer()),
            });
            let report = match answer {
                Ok(report) => report,
                Err(e) => {
                    record.error = Some(e.body.message.clone());
                    audit(&s, &record);
                    return Err(e);
                }
            };
            record.calls.push(report.call_id);
            record.sent = report
                .egress
                .iter()
                .filter(|r| r.may_have_written())
                .map(SentRequest::from)
                .collect();
            match &report.result {
                Ok(results) => {
                    record.outcomes = results
                        .iter()
                        .map(|r| match r {
                            Ok(result) => {
                                serde_json::to_value(ChangeResult::from(result.clone()).outcome)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_string))
                                    .unwrap_or_default()
                            }
                            Err(error) => {
                                format!("error: {}", ApiError::connector(error).body.message)
                            }
                        })
                        .collect()
                }
                Err(error) => record.error = Some(error.to_string()),
            }
            audit(&s, &record);
            answered(&s, &tenant, operation, report, |results| {
                results
                    .into_iter()
                    .map(|r| r.map(ChangeResult::from).map_err(|e| ApiError::connector(&e)))
                    .collect()
            })
        })
        .await
}

/// The one result of a single change, or its error.
fn single(
    mut results: Vec<Result<ChangeResult, ApiError>>,
) -> Result<Json<ChangeResult>, ApiError> {
    match (results.pop(), results.is_empty()) {
        (Some(result), true) => result.map(Json),
        _ => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "call",
            "the connector answered a change with other than one result",
        )),
    }
}

/// A grant or revoke of one entitlement.
async fn one_change(
    state: &Shared,
    principal: &Principal,
    tenant: String,
    action: Action,
    body: Result<Json<ChangeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ChangeResult>, ApiError> {
    let r = json_body(body)?;
    let operation = if action == Action::Grant { "grant" } else { "revoke" };
    let change = BatchChange {
        action,
        account: r.account,
        entitlement: r.entitlement,
        exclusion_group: None,
    };
    single(apply_changes(state, principal, tenant, operation, vec![change], r.dry_run).await?)
}

/// Grants an entitlement (an email not yet an account is invited).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/grant", security(("api_key" = [])), request_body = ChangeRequest, params(("tenant" = String, Path)),
    responses((status = 200, body = ChangeResult), Failures))]
async fn grant(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
    body: Result<Json<ChangeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ChangeResult>, ApiError> {
    one_change(&state, &principal, tenant, Action::Grant, body).await
}

/// Revokes an entitlement.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/revoke", security(("api_key" = [])), request_body = ChangeRequest, params(("tenant" = String, Path)),
    responses((status = 200, body = ChangeResult), Failures))]
async fn revoke(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
    body: Result<Json<ChangeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ChangeResult>, ApiError> {
    one_change(&state, &principal, tenant, Action::Revoke, body).await
}

/// Makes an entitlement the one the account holds in its exclusion group.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/set", security(("api_key" = [])), request_body = SetRequest, params(("tenant" = String, Path)),
    responses((status = 200, body = ChangeResult), Failures))]
async fn set(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
    body: Result<Json<SetRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ChangeResult>, ApiError> {
    let r = json_body(body)?;
    let change = BatchChange {
        action: Action::Set,
        account: r.account,
        entitlement: r.entitlement,
        exclusion_group: Some(r.exclusion_group),
    };
    single(apply_changes(&state, &principal, tenant, "set", vec![change], r.dry_run).await?)
}

/// Applies changes in one call of the connector's batch operation: a result or an error per
/// change, in order. For thousands of changes, with progress and cancellation, start a job.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/batch", security(("api_key" = [])), request_body = BatchRequest, params(("tenant" = String, Path)),
    responses((status = 200, body = BatchResponse), Failures))]
async fn batch(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
    body: Result<Json<BatchRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<BatchResponse>, ApiError> {
    let r = json_body(body)?;
    if r.changes.is_empty() {
        return Err(ApiError::bad_request("`changes` is empty"));
    }
    let results = apply_changes(&state, &principal, tenant, "batch", r.changes, r.dry_run).await?;
    let results = results
        .into_iter()
        .map(|r| match r {
            Ok(result) => BatchItemResult { result: Some(result), error: None },
            Err(error) => BatchItemResult { result: None, error: Some(error.body) },
        })
        .collect();
    Ok(Json(BatchResponse { results }))
}

/// Every account of the tenant, as NDJSON: one account a line, read page by page so memory
/// stays bounded however large the workspace. A failure part-way ends the stream with one
/// line `{"error": {...}}` in the error shape.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/sync", security(("api_key" = [])), params(("tenant" = String, Path), ("size" = Option<u32>, Query, description = "Accounts per page read from the connector")),
    responses((status = 200, description = "NDJSON: one Account a line, or a last line {\"error\": ErrorBody}", content_type = "application/x-ndjson", body = Account), Failures))]
async fn sync(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    state.tenant_in_scope(&principal, &tenant)?;
    let first = page_query(query)?;
    if let Backend::Queue(queue) = &state.backend {
        let stream = queue.sync(&tenant, first).await?;
        return Ok(
            ([("content-type", "application/x-ndjson")], Body::from_stream(stream)).into_response()
        );
    }
    // Two pages may wait in the channel: the reader is never more than that behind.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(2);
    let s = state.clone();
    tokio::spawn(async move {
        let cut_off = || {
            s.cut_off.borrow().then(|| {
                ApiError::draining("the sync was cut off by the server's shutdown; start it again")
            })
        };
        sync_pages(&s.host, &s.metrics, &tenant, first, cut_off, sender).await;
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|bytes| (Ok::<_, std::io::Error>(bytes), receiver))
    });
    Ok(([("content-type", "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

/// Query of a job.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct JobQuery {
    /// Include every item reported so far.
    #[serde(default)]
    items: bool,
}

/// Starts a batch of any size as a job, run in calls of a bounded number of changes; poll it
/// for progress and cancel it with DELETE.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/jobs", security(("api_key" = [])), request_body = BatchRequest,
    params(("tenant" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Names the job: sent again with the same key, the job already started is answered and nothing new starts")),
    responses((status = 202, body = Job), Failures))]
async fn start_job(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(tenant): UrlPath<String>,
    headers: axum::http::HeaderMap,
    body: Result<Json<BatchRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let r = json_body(body)?;
    let id = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key =
                value.to_str().ok().filter(|k| (1..=256).contains(&k.len())).ok_or_else(|| {
                    ApiError::bad_request("`Idempotency-Key` must be 1 to 256 visible characters")
                })?;
            Some(crate::jobs::job_id_for(&principal.key_id, &tenant, key))
        }
    };
    state.tenant_in_scope(&principal, &tenant)?;
    if !principal.may_write() {
        return Err(ApiError::forbidden("this key is read-only"));
    }
    if r.changes.is_empty() {
        return Err(ApiError::bad_request("`changes` is empty"));
    }
    let contract = r
        .changes
        .iter()
        .map(BatchChange::to_contract)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::bad_request)?;
    let spec = JobSpec {
        id,
        tenant,
        key: principal.key_id.clone(),
        changes: r.changes,
        contract,
        dry_run: r.dry_run,
        per_call: state.limits.job_items_per_call,
    };
    let job = match &state.backend {
        Backend::Local => state.jobs.start(state.host.clone(), state.audit.clone(), spec),
        Backend::Queue(queue) => queue.start_job(spec).await?,
    };
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// A job's progress, and with `items=true` every item reported so far.
#[utoipa::path(get, path = "/v1/jobs/{job}", security(("api_key" = [])), params(("job" = String, Path), JobQuery),
    responses((status = 200, body = Job), Failures))]
async fn get_job(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(job): UrlPath<String>,
    query: Result<Query<JobQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Job>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let found = state.job(&job, q.items).await?;
    state
        .tenant_in_scope(&principal, &found.tenant)
        .map_err(|_| ApiError::not_found("such job"))?;
    Ok(Json(found))
}

/// Cancels a job: no call starts after this, the call under way finishes, and every change not
/// sent is reported `not-attempted`.
#[utoipa::path(delete, path = "/v1/jobs/{job}", security(("api_key" = [])), params(("job" = String, Path)),
    responses((status = 202, body = Job), Failures))]
async fn cancel_job(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    UrlPath(job): UrlPath<String>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let found = state.job(&job, false).await?;
    state
        .tenant_in_scope(&principal, &found.tenant)
        .map_err(|_| ApiError::not_found("such job"))?;
    if !principal.may_write() {
        return Err(ApiError::forbidden("this key is read-only"));
    }
    let cancelled = match &state.backend {
        Backend::Local => state.jobs.cancel(&job, &principal.key_id),
        Backend::Queue(queue) => queue.cancel_job(&job).await?,
    }
    .ok_or_else(|| ApiError::not_found("such job"))?;
    Ok((StatusCode::ACCEPTED, Json(cancelled)))
}

/// Which audit records to read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only this tenant's.
    tenant: Option<String>,
    /// The last this many (default 100, at most 10,000).
    limit: Option<usize>,
}

/// The audit log's last records of the tenants the key may use, oldest first.
#[utoipa::path(get, path = "/v1/audit", security(("api_key" = [])), params(AuditQuery), responses((status = 200, body = [AuditRecord]), Failures))]
async fn audit_records(
    State(state): State<Shared>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be from 1 to 10000"));
    }
    if let Some(tenant) = &q.tenant {
        state.tenant_in_scope(&principal, tenant)?;
    }
    let keep = {
        let (s, tenant) = (state.clone(), q.tenant.clone());
        move |r: &AuditRecord| {
            s.sees(&principal, &r.tenant) && tenant.as_ref().is_none_or(|t| *t == r.tenant)
        }
    };
    let (s, k) = (state.clone(), keep.clone());
    let mut records = tokio::task::spawn_blocking(move || s.audit.read_last(limit, k))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "host", e.to_string()))?
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "host", format!("audit log: {e}"))
        })?;
    // With a queue, the records of the jobs the workers ran are in the queue's audit stream.
    if let Backend::Queue(queue) = &state.backend {
        records.extend(queue.audit_records(limit, &keep).await?);
        records.sort_by_key(|r| r.at_ms);
        let extra = records.len().saturating_sub(limit);
        records.drain(..extra);
    }
    Ok(Json(records))
}

fn audit(state: &AppState, record: &AuditRecord) {
    if let Err(e) = state.audit.write(record) {
        tracing::error!("audit log: {e}");
    }
}

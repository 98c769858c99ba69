//! The one error shape (`type`, `message`, the contract's or the host's error class) and the
//! HTTP status each error gets.

use accessgov_host::call::CallError;
use accessgov_host::error::HostError;
use accessgov_host::types::ConnectorError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::model::ErrorBody;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error of `status` and class `kind`.
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                kind: kind.to_string(),
                message: message.into(),
                error: None,
                retry_after_seconds: None,
            },
        }
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// 401.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "give an API key of this server as `Authorization: Bearer <key>`",
        )
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: what the key may not see answers the same as what does not exist.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", format!("no {what}"))
    }

    /// 429.
    pub fn rate_limited(retry_after_seconds: u64, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", message);
        error.body.retry_after_seconds = Some(retry_after_seconds);
        error
    }

    /// 503: the server is shutting down.
    pub fn draining(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "draining", message)
    }

    /// The error of a connector's answer: its own refusal is 422, except what HTTP has a
    /// status for (not found, conflict, throttled, the service failing or timing out).
    pub fn connector(error: &ConnectorError) -> Self {
        let (status, case) = match error {
            ConnectorError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ConnectorError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ConnectorError::InvalidArgument(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-argument")
            }
            ConnectorError::InvalidConfig(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-config")
            }
            ConnectorError::ManagedExternally(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "managed-externally")
            }
            ConnectorError::Unsupported(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unsupported"),
            // The service refused the tenant's credential: the upstream's failure, not the
            // caller's key.
            ConnectorError::Unauthenticated(_) => (StatusCode::BAD_GATEWAY, "unauthenticated"),
            ConnectorError::PermissionDenied(_) => (StatusCode::BAD_GATEWAY, "permission-denied"),
            ConnectorError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            ConnectorError::Unavailable(_) => (StatusCode::BAD_GATEWAY, "unavailable"),
            ConnectorError::Internal(_) => (StatusCode::BAD_GATEWAY, "internal"),
            ConnectorError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        };
        let mut api = Self::new(
            status,
            "connector",
            accessgov_host::call::CallError::Connector(error.clone()).to_string(),
        );
        api.body.error = Some(case.to_string());
        if let ConnectorError::RateLimited(limit) = error {
            api.body.retry_after_seconds = limit.retry_after_ms.map(|ms| ms.div_ceil(1000).max(1));
        }
        api
    }

    /// The error of a call the host stopped or could not answer.
    pub fn call(error: &CallError) -> Self {
        let (status, class) = match error {
            CallError::Connector(error) => return Self::connector(error),
            CallError::Deadline(_) => (StatusCode::GATEWAY_TIMEOUT, "deadline"),
            CallError::EgressDenied(_) => (StatusCode::BAD_GATEWAY, "egress-denied"),
            CallError::MemoryLimit { .. } => (StatusCode::BAD_GATEWAY, "memory-limit"),
            CallError::StackOverflow => (StatusCode::BAD_GATEWAY, "stack-overflow"),
            CallError::ResponseTooLarge { .. } => (StatusCode::BAD_GATEWAY, "response-too-large"),
            CallError::Trap { .. } => (StatusCode::BAD_GATEWAY, "trap"),
            CallError::Instantiate(_) => (StatusCode::BAD_GATEWAY, "instantiate"),
        };
        let mut api = Self::new(status, "call", error.to_string());
        api.body.error = Some(class.to_string());
        api
    }

    /// The error of the host refusing a request (an invalid tenant, a component it refuses).
    pub fn host(error: &HostError) -> Self {
        match error {
            HostError::UnknownTenant(_) => Self::not_found("such tenant"),
            HostError::UnknownCustomer(_) => Self::not_found("such customer"),
            HostError::ConnectorInUse { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            HostError::InvalidTenant { .. }
            | HostError::UnknownConnector { .. }
            | HostError::InvalidComponent { .. }
            | HostError::ForbiddenImport { .. }
            | HostError::MissingExport { .. }
            | HostError::TenantsBelowInitialMemory { .. }
            | HostError::ReadConnector { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", error.to_string())
            }
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "host", error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.body.retry_after_seconds;
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(seconds) = retry
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}

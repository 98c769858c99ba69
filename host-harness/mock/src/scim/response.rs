//! SCIM answers: `application/scim+json` bodies and RFC 7644 §3.12 error objects.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// URN of error bodies.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// URN of list bodies.
pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The media type of every SCIM body.
pub const MEDIA_TYPE: &str = "application/scim+json";

/// A SCIM error: status, `scimType` where RFC 7644 §3.12 defines one, and a human detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    /// HTTP status.
    pub status: StatusCode,
    /// `invalidFilter`, `uniqueness`, `mutability`, `invalidSyntax`, `invalidPath`,
    /// `noTarget`, `invalidValue`, ...
    pub scim_type: Option<&'static str>,
    /// What went wrong.
    pub detail: String,
}

impl ScimError {
    /// An error without `scimType`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ScimError { status, scim_type: None, detail: detail.into() }
    }

    /// A 400 with `scimType`.
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        ScimError {
            status: StatusCode::BAD_REQUEST,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// A 409 `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        ScimError {
            status: StatusCode::CONFLICT,
            scim_type: Some("uniqueness"),
            detail: detail.into(),
        }
    }

    /// A 404 for a resource id.
    pub fn not_found(kind: &str, id: &str) -> Self {
        ScimError::new(StatusCode::NOT_FOUND, format!("{kind} {id} not found"))
    }

    /// A 413: the body is over the payload limit.
    pub fn too_large() -> Self {
        ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body exceeds {} bytes", super::MAX_PAYLOAD_BYTES),
        )
    }

    /// The error object.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let (Some(kind), Some(map)) = (self.scim_type, body.as_object_mut()) {
            map.insert("scimType".into(), json!(kind));
        }
        body
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut response = scim_json(self.status, &self.body());
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 to a bearer-token client names the scheme.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"SCIM\""),
            );
        }
        response
    }
}

/// A SCIM JSON answer.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, MEDIA_TYPE)], body.to_string()).into_response()
}

/// `201 Created` with the resource and its `Location` (RFC 7644 §3.3).
pub fn created(body: &Value) -> Response {
    let mut response = scim_json(StatusCode::CREATED, body);
    if let Some(location) = body["meta"]["location"].as_str()
        && let Ok(value) = HeaderValue::from_str(location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Unwraps a handler's outcome into an answer.
pub fn answer(result: Result<Response, ScimError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

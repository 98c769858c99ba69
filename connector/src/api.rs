//! The ChatGPT admin console API: its JSON shapes, and how its answers map to typed errors.

use serde::Deserialize;

use crate::error::ConnectorError;
use crate::transport::{HttpRequest, HttpResponse, Method, Transport};

/// A workspace member as the console lists it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// `user-...` id.
    pub id: String,
    /// Email address.
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Console role value.
    pub role: String,
    /// Console seat type value.
    pub seat_type: String,
    /// Creation time.
    #[serde(default)]
    pub created_time: Option<String>,
    /// Whether SCIM owns the member.
    #[serde(default)]
    pub is_scim_managed: bool,
    /// Set when deactivated.
    #[serde(default)]
    pub deactivated_time: Option<String>,
}

/// A pending invite as the console lists it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Invite {
    /// Invite id (a UUID).
    pub id: String,
    /// Invited address.
    pub email_address: String,
    /// Console role value.
    pub role: String,
    /// Console seat type value; absent means the workspace default.
    #[serde(default)]
    pub seat_type: Option<String>,
    /// Creation time.
    #[serde(default)]
    pub created_time: Option<String>,
    /// Whether SCIM created it.
    #[serde(default)]
    pub is_scim_managed: bool,
}

/// One page of a console listing.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ListPage<T> {
    /// Items of the page.
    pub items: Vec<T>,
    /// Total matching items.
    pub total: u64,
}

/// Workspace settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct WorkspaceSettings {
    /// Workspace id.
    pub id: String,
    /// Seat type new invites get when they name none.
    pub default_seat_type: String,
}

/// A typed client of the console API over any [`Transport`].
pub struct ConsoleClient<'a, T: Transport> {
    transport: &'a T,
    base: String,
}

impl<'a, T: Transport> ConsoleClient<'a, T> {
    /// A client for the workspace whose console URL prefix is `account_base`
    /// (`{base-url}/accounts/{account-id}`).
    pub fn new(transport: &'a T, account_base: String) -> Self {
        ConsoleClient { transport, base: account_base }
    }

    /// `GET users?offset&limit&query`.
    pub fn list_members(
        &self,
        offset: u64,
        limit: u32,
        query: &str,
    ) -> Result<ListPage<Member>, ConnectorError> {
        self.get_json(&format!("users?offset={offset}&limit={limit}&query={}", encode_query(query)))
    }

    /// `GET invites?offset&limit&query`.
    pub fn list_invites(
        &self,
        offset: u64,
        limit: u32,
        query: &str,
    ) -> Result<ListPage<Invite>, ConnectorError> {
        self.get_json(&format!(
            "invites?offset={offset}&limit={limit}&query={}",
            encode_query(query)
        ))
    }

    /// `GET settings`.
    pub fn settings(&self) -> Result<WorkspaceSettings, ConnectorError> {
        self.get_json("settings")
    }

    fn get_json<R: serde::de::DeserializeOwned>(&self, path: &str) -> Result<R, ConnectorError> {
        self.send_json(Method::Get, path, None)
    }

    /// Sends a request to `path` (below the workspace URL) and reads its JSON answer.
    pub fn send_json<R: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<R, ConnectorError> {
        let request = HttpRequest { method, url: format!("{}/{path}", self.base), body };
        let endpoint = format!("{} {}", method.as_str(), path.split('?').next().unwrap_or(path));
        let response = self
            .transport
            .send(&request)
            .map_err(|e| ConnectorError::Unavailable(format!("{endpoint}: request failed: {e}")))?;
        if response.status == 400 && is_seat_true_up(&response) {
            return Err(ConnectorError::Conflict(format!(
                "{endpoint}: the workspace has no paid seats left (seat_true_up_pending); buy seats or free some, then retry"
            )));
        }
        parse_json(&endpoint, &response)
    }
}

/// The answer to a bulk invite: who was invited and who was not.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct InviteResponse {
    /// Invites created (or resent).
    #[serde(default)]
    pub account_invites: Vec<Invite>,
    /// Addresses that failed, in any of the shapes the service uses.
    #[serde(default)]
    pub errored_emails: Vec<ErroredEmail>,
}

/// One failed address of a bulk invite. The service has been seen answering
/// `{"email_address", "error"}`, `{"email", "error"}` and a bare string.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ErroredEmail {
    /// `{"email_address": .., "error": ..}`
    WithAddress {
        /// The address.
        email_address: String,
        /// Why.
        #[serde(default)]
        error: Option<String>,
    },
    /// `{"email": .., "error": ..}`
    WithEmail {
        /// The address.
        email: String,
        /// Why.
        #[serde(default)]
        error: Option<String>,
    },
    /// The bare address.
    Bare(String),
}

impl ErroredEmail {
    /// The address that failed.
    pub fn email(&self) -> &str {
        match self {
            ErroredEmail::WithAddress { email_address, .. } => email_address,
            ErroredEmail::WithEmail { email, .. } => email,
            ErroredEmail::Bare(email) => email,
        }
    }

    /// Why, as the service said.
    pub fn reason(&self) -> &str {
        match self {
            ErroredEmail::WithAddress { error, .. } | ErroredEmail::WithEmail { error, .. } => {
                error.as_deref().unwrap_or("no reason given")
            }
            ErroredEmail::Bare(_) => "no reason given",
        }
    }
}

fn is_seat_true_up(response: &HttpResponse) -> bool {
    serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|b| b.pointer("/error/code").and_then(|c| c.as_str()).map(str::to_string))
        .is_some_and(|code| code == "seat_true_up_pending")
}

/// Percent-encodes a query-string value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Reads a successful JSON answer, or classifies the failure.
pub fn parse_json<R: serde::de::DeserializeOwned>(
    endpoint: &str,
    response: &HttpResponse,
) -> Result<R, ConnectorError> {
    if !(200..300).contains(&response.status) {
        return Err(classify_failure(endpoint, response));
    }
    if looks_like_html(response) {
        return Err(ConnectorError::Unavailable(format!(
            "{endpoint}: the service answered {} with an HTML page (bot protection or an outage) instead of JSON; try again later",
            response.status
        )));
    }
    serde_json::from_slice(&response.body).map_err(|e| {
        ConnectorError::Internal(format!(
            "{endpoint}: could not read the service's answer ({e}); body starts {:?}",
            snippet(&response.body)
        ))
    })
}

/// Maps a non-2xx answer to the error a person can act on.
pub fn classify_failure(endpoint: &str, response: &HttpResponse) -> ConnectorError {
    let status = response.status;
    let html = looks_like_html(response);
    let body: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
    let code = body
        .as_ref()
        .and_then(|b| b.pointer("/error/code"))
        .and_then(|c| c.as_str())
        .map(str::to_string);
    let detail = body
        .as_ref()
        .and_then(|b| {
            b.get("detail")
                .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string))
                .or_else(|| {
                    b.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_string)
                })
        })
        .unwrap_or_else(|| snippet(&response.body));
    match status {
        401 => match code.as_deref() {
            Some("account_deactivated") => ConnectorError::Unauthenticated(format!(
                "{endpoint}: the workspace has been deactivated (account_deactivated); check the tenant's `account-id`"
            )),
            Some(code) => ConnectorError::Unauthenticated(format!(
                "{endpoint}: the admin token was rejected ({code}: {detail}); renew the tenant's ChatGPT token"
            )),
            None => ConnectorError::Unauthenticated(format!(
                "{endpoint}: the admin token was rejected ({detail}); renew the tenant's ChatGPT token"
            )),
        },
        403 if html => ConnectorError::Unavailable(format!(
            "{endpoint}: the service answered 403 with a bot-protection page; this is transient, try again later"
        )),
        403 => ConnectorError::PermissionDenied(format!(
            "{endpoint}: {detail}; the token must belong to an Owner of this workspace and `account-id` must be that workspace"
        )),
        404 => ConnectorError::NotFound(format!("{endpoint}: {detail}")),
        409 => ConnectorError::Conflict(format!(
            "{endpoint}: {detail} (a concurrent change to the same member); try again"
        )),
        429 => ConnectorError::RateLimited {
            retry_after_ms: response
                .retry_after
                .as_deref()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| s.saturating_mul(1000)),
            message: format!("{endpoint}: throttled by the service ({detail})"),
        },
        400 | 422 => ConnectorError::InvalidArgument(format!("{endpoint}: {detail}")),
        500..=599 => ConnectorError::Unavailable(format!(
            "{endpoint}: the service failed with {status} ({detail}); try again later"
        )),
        _ => ConnectorError::Internal(format!("{endpoint}: unexpected status {status} ({detail})")),
    }
}

fn looks_like_html(response: &HttpResponse) -> bool {
    let typed_html = response
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("text/html"));
    let starts_html = response
        .body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| response.body[i] == b'<');
    typed_html || starts_html
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
    if text.is_empty() { "empty body".to_string() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, ct: &str, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            content_type: Some(ct.to_string()),
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn classifies_the_services_failures() {
        let e = classify_failure(
            "GET users",
            &response(
                401,
                "application/json",
                r#"{"error":{"code":"token_invalidated","message":"Your authentication token has been invalidated."}}"#,
            ),
        );
        assert!(matches!(&e, ConnectorError::Unauthenticated(m) if m.contains("renew")), "{e:?}");
        let e = classify_failure("GET users", &response(403, "text/html", "<html>challenge"));
        assert!(matches!(e, ConnectorError::Unavailable(_)));
        let e =
            classify_failure("GET users", &response(403, "application/json", r#"{"detail":"no"}"#));
        assert!(matches!(e, ConnectorError::PermissionDenied(_)));
        let e = classify_failure(
            "GET users",
            &response(429, "application/json", r#"{"detail":"too many requests"}"#),
        );
        assert!(matches!(e, ConnectorError::RateLimited { retry_after_ms: None, .. }));
        let e = classify_failure("GET users", &response(502, "text/plain", ""));
        assert!(matches!(e, ConnectorError::Unavailable(_)));
    }

    #[test]
    fn a_200_html_page_or_broken_json_is_a_typed_error() {
        let r: Result<ListPage<Member>, _> =
            parse_json("GET users", &response(200, "text/html", "<!doctype html>"));
        assert!(matches!(r, Err(ConnectorError::Unavailable(_))));
        let r: Result<ListPage<Member>, _> =
            parse_json("GET users", &response(200, "application/json", r#"{"items":[{"id":1"#));
        assert!(matches!(r, Err(ConnectorError::Internal(m)) if m.contains("GET users")));
    }

    #[test]
    fn reads_all_three_errored_email_shapes() {
        let r: InviteResponse = serde_json::from_str(
            r#"{"account_invites":[],"errored_emails":[{"email_address":"a@x.com","error":"Invalid email domain"},{"email":"b@x.com","error":"e"},"c@x.com"]}"#,
        )
        .unwrap();
        let emails: Vec<&str> = r.errored_emails.iter().map(ErroredEmail::email).collect();
        assert_eq!(emails, ["a@x.com", "b@x.com", "c@x.com"]);
        assert_eq!(r.errored_emails[0].reason(), "Invalid email domain");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query("a+b@x.com"), "a%2Bb%40x.com");
    }
}

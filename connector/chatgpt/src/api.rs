//! The ChatGPT admin console API: its JSON shapes, and how its answers map to typed errors.
//!
//! The same client, retry policy and error mapping serve the SCIM surface (see `scim`); a
//! [`Surface`] says which one a client talks to, for media types and for what to tell people.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use connector_sdk::ConnectorError;
use connector_sdk::client::{
    ApiRules, JsonClient, RetryClock, classify_status, encode_query, error_code, error_detail,
};
use connector_sdk::settings::RetryPolicy;
use connector_sdk::transport::{HttpResponse, Transport};

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

/// A pending request to join the workspace, as the console lists it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct JoinRequest {
    /// Request id (a UUID).
    pub id: String,
    /// The address of the person asking.
    pub email: String,
    /// Their name.
    #[serde(default)]
    pub name: Option<String>,
    /// When they asked.
    #[serde(default)]
    pub created_time: Option<String>,
}

/// A workspace member as the public Admin API lists it: active members only.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AdminUser {
    /// `user-...` id, the console's.
    pub id: String,
    /// Email address; the API may answer `null`.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Role, as the console names it.
    pub role: String,
    /// `chatgpt` or `codex` (the console's `default` and `usage_based`).
    pub seat_type: String,
    /// Creation time, Unix seconds.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Whether SCIM owns the member (*assumed* field).
    #[serde(default)]
    pub is_scim_managed: bool,
}

/// One page of an Admin API listing, paged by key (`after`, `has_more`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AdminList<T> {
    /// The items.
    pub data: Vec<T>,
    /// The id of the last item, from which the next page continues.
    #[serde(default)]
    pub last_id: Option<String>,
    /// Whether more items follow.
    pub has_more: bool,
}

/// A console group, as the console lists it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ConsoleGroupInfo {
    /// Group id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// How many members it has.
    #[serde(default)]
    pub member_count: u64,
    /// Whether a SCIM group of the same name syncs it: its membership is the identity
    /// provider's.
    #[serde(default)]
    pub is_scim_managed: bool,
}

/// A member of a console group, as the console lists them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupMember {
    /// The member's console id.
    pub id: String,
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
    /// The plan: `business`, `enterprise`, `edu`, `teachers` or `healthcare`.
    #[serde(default)]
    pub plan_type: Option<String>,
    /// Whether a Business workspace may hold Codex seats (it had one before 2026-06-24).
    #[serde(default)]
    pub codex_seats_enabled: Option<bool>,
}

/// Which of the service's HTTP surfaces a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The admin console API (`base-url`).
    Console,
    /// The SCIM 2.0 directory (`scim-base-url`).
    Scim,
    /// The public ChatGPT Admin API (`admin-api-base-url`).
    AdminApi,
}

impl Surface {
    /// The media type of request bodies (RFC 7644 §3.1 names `application/scim+json`).
    pub fn media_type(self) -> &'static str {
        match self {
            Surface::Console | Surface::AdminApi => "application/json",
            Surface::Scim => "application/scim+json",
        }
    }

    /// Which credential a 401 or 403 is about, for the operator who must fix it.
    fn credential(self) -> &'static str {
        match self {
            Surface::Console => "the tenant's ChatGPT admin token",
            Surface::Scim => "the tenant's SCIM token",
            Surface::AdminApi => "the tenant's ChatGPT Admin API key",
        }
    }

    /// What a 403 means on this surface.
    fn permission_hint(self) -> &'static str {
        match self {
            Surface::Console => {
                "the token must belong to an Owner of this workspace and `account-id` must be that workspace"
            }
            Surface::Scim => "the SCIM token must belong to the directory in `scim-base-url`",
            Surface::AdminApi => {
                "the Admin key must belong to this workspace and hold the permission named (member reads need `chatgpt.enterprise.user.read`)"
            }
        }
    }
}

/// A client of the console API (or, on [`Surface::Scim`], the SCIM directory): the SDK's retrying
/// JSON client, reading answers by the ChatGPT surface's rules.
pub type ConsoleClient<'a, T> = JsonClient<'a, T, Surface>;

/// A console client for the workspace whose console URL prefix is `account_base`
/// (`{base-url}/accounts/{account-id}`).
pub fn console_client<T: Transport>(
    transport: &T,
    account_base: String,
    policy: RetryPolicy,
    retrying: RetryClock,
) -> ConsoleClient<'_, T> {
    JsonClient::on(Surface::Console, transport, account_base, policy, retrying)
}

/// The console's own reads, on its client.
pub trait ConsoleReads {
    /// Pages of the console's `listing` (`users` or `invites`) of the items matching `query`
    /// (empty: all), each `(offset, limit)`, sent together; outcomes in the order of `pages`.
    fn list_pages<I: DeserializeOwned>(
        &self,
        listing: &str,
        query: &str,
        pages: &[(u64, u32)],
    ) -> Vec<Result<ListPage<I>, ConnectorError>>;

    /// [`Self::list_pages`], and a `GET` of `beside` (a console path) in the same round.
    #[allow(clippy::type_complexity)]
    fn list_pages_beside<I: DeserializeOwned, B: DeserializeOwned>(
        &self,
        listing: &str,
        query: &str,
        pages: &[(u64, u32)],
        beside: &str,
    ) -> (Vec<Result<ListPage<I>, ConnectorError>>, Result<B, ConnectorError>);

    /// `GET settings`.
    fn settings(&self) -> Result<WorkspaceSettings, ConnectorError>;
}

impl<T: Transport> ConsoleReads for ConsoleClient<'_, T> {
    fn list_pages<I: DeserializeOwned>(
        &self,
        listing: &str,
        query: &str,
        pages: &[(u64, u32)],
    ) -> Vec<Result<ListPage<I>, ConnectorError>> {
        self.get_json_all(&page_paths(listing, query, pages))
    }

    fn list_pages_beside<I: DeserializeOwned, B: DeserializeOwned>(
        &self,
        listing: &str,
        query: &str,
        pages: &[(u64, u32)],
        beside: &str,
    ) -> (Vec<Result<ListPage<I>, ConnectorError>>, Result<B, ConnectorError>) {
        self.get_json_all_beside(&page_paths(listing, query, pages), beside)
    }

    fn settings(&self) -> Result<WorkspaceSettings, ConnectorError> {
        self.get_json("settings")
    }
}

impl ApiRules for Surface {
    fn media_type(&self) -> &'static str {
        Surface::media_type(*self)
    }

    fn classify(&self, endpoint: &str, response: &HttpResponse) -> ConnectorError {
        classify_failure_from(*self, endpoint, response)
    }

    fn refusal(&self, endpoint: &str, response: &HttpResponse) -> Option<ConnectorError> {
        if *self != Surface::Console || !matches!(response.status, 400 | 403) {
            return None;
        }
        if is_seat_true_up(response) {
            return Some(ConnectorError::Conflict(format!(
                "{endpoint}: the workspace has no paid seats left (seat_true_up_pending); buy seats or free some, then retry"
            )));
        }
        // The console's own refusals of what the plan or SCIM rules out, told apart from a
        // token problem by their text: they must not send anyone to renew a credential.
        let detail = error_detail(response);
        let lower = detail.to_ascii_lowercase();
        if lower.contains("account manager") {
            return Some(ConnectorError::Unsupported(format!(
                "{endpoint}: {detail} (on this plan an existing member's seat type is changed by your OpenAI account manager, not through the console)"
            )));
        }
        if lower.contains("not available on this plan") {
            return Some(ConnectorError::InvalidArgument(format!("{endpoint}: {detail}")));
        }
        if lower.contains("managed by scim") {
            return Some(ConnectorError::ManagedExternally(format!(
                "{endpoint}: {detail}; change this person in the identity provider"
            )));
        }
        None
    }
}

/// The paths of `pages` (each `(offset, limit)`) of the console's `listing` matching `query`.
fn page_paths(listing: &str, query: &str, pages: &[(u64, u32)]) -> Vec<String> {
    pages.iter().map(|&(offset, limit)| listing_path(listing, offset, limit, query)).collect()
}

/// The path of one page of the console's `users` or `invites` listing.
pub(crate) fn listing_path(listing: &str, offset: u64, limit: u32, query: &str) -> String {
    format!("{listing}?offset={offset}&limit={limit}&query={}", encode_query(query))
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
    error_code(response).is_some_and(|code| code == "seat_true_up_pending")
}

/// A 404 from a surface or listing the workspace does not have: the tenant's settings, not a
/// missing object, are at fault, so it is `invalid-config` with `advice` (which setting to
/// change); any other error is left as it is.
pub fn unserved(error: ConnectorError, advice: &str) -> ConnectorError {
    match error {
        ConnectorError::NotFound(message) => {
            ConnectorError::InvalidConfig(format!("{message}; {advice}"))
        }
        other => other,
    }
}

/// Reads a successful JSON answer, or classifies the failure.
pub fn parse_json<R: DeserializeOwned>(
    endpoint: &str,
    response: &HttpResponse,
) -> Result<R, ConnectorError> {
    connector_sdk::client::parse_json(&Surface::Console, endpoint, response)
}

/// Maps a non-2xx answer to the error a person can act on.
pub fn classify_failure(endpoint: &str, response: &HttpResponse) -> ConnectorError {
    classify_failure_from(Surface::Console, endpoint, response)
}

/// [`classify_failure`] for an answer of `surface`: the SDK's generic reading, naming the
/// surface's credential and what a 403 means on it, plus the console's deactivated workspace.
pub fn classify_failure_from(
    surface: Surface,
    endpoint: &str,
    response: &HttpResponse,
) -> ConnectorError {
    if response.status == 401 && error_code(response).as_deref() == Some("account_deactivated") {
        return ConnectorError::Unauthenticated(format!(
            "{endpoint}: the workspace has been deactivated (account_deactivated); check the tenant's `account-id`"
        ));
    }
    classify_status(endpoint, response, surface.credential(), surface.permission_hint())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, ct: &str, body: &str) -> HttpResponse {
        HttpResponse::text(status, ct, body)
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
        assert!(matches!(
            e,
            ConnectorError::RateLimited(connector_sdk::types::RateLimit {
                retry_after_ms: None,
                ..
            })
        ));
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
        // A body that is not UTF-8 is named as such, not left to the parser.
        let mut latin1 = response(200, "application/json", "");
        latin1.body = b"{\"items\":[{\"name\":\"Ren\xe9\"}],\"total\":1}".to_vec();
        let r: Result<ListPage<Member>, _> = parse_json("GET users", &latin1);
        assert!(
            matches!(&r, Err(ConnectorError::Internal(m)) if m.contains("GET users") && m.contains("not UTF-8")),
            "{r:?}"
        );
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
}

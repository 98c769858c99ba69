//! The ChatGPT admin console API: its JSON shapes, and how its answers map to typed errors.
//!
//! The same client, retry policy and error mapping serve the SCIM surface (see `scim`); a
//! [`Surface`] says which one a client talks to, for media types and for what to tell people.

use serde::Deserialize;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::ConnectorError;
use crate::settings::RetryPolicy;
use crate::transport::{HttpRequest, HttpResponse, Method, Transport, TransportError};

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

/// Which of the service's HTTP surfaces a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The admin console API (`base-url`).
    Console,
    /// The SCIM 2.0 directory (`scim-base-url`).
    Scim,
}

impl Surface {
    /// The media type of request bodies (RFC 7644 §3.1 names `application/scim+json`).
    pub fn media_type(self) -> &'static str {
        match self {
            Surface::Console => "application/json",
            Surface::Scim => "application/scim+json",
        }
    }

    /// Which credential a 401 or 403 is about, for the operator who must fix it.
    fn credential(self) -> &'static str {
        match self {
            Surface::Console => "the tenant's ChatGPT admin token",
            Surface::Scim => "the tenant's SCIM token",
        }
    }

    /// What a 403 means on this surface.
    fn permission_hint(self) -> &'static str {
        match self {
            Surface::Console => {
                "the token must belong to an Owner of this workspace and `account-id` must be that workspace"
            }
            Surface::Scim => "the SCIM token must belong to the directory in `scim-base-url`",
        }
    }
}

/// A typed client of the console API (or the SCIM surface) over any [`Transport`], retrying as
/// its policy says.
pub struct ConsoleClient<'a, T: Transport> {
    transport: &'a T,
    base: String,
    surface: Surface,
    policy: RetryPolicy,
    jitter: Cell<u64>,
    retrying: RetryClock,
}

/// The time a call has spent retrying, across all its requests and clients: waits between
/// attempts, and the repeated attempts themselves. The policy's budget bounds this total, so a
/// call against a service that is down gives up within the budget instead of retrying every
/// request of a long batch in turn.
#[derive(Debug, Clone, Default)]
pub struct RetryClock(Rc<Cell<Duration>>);

impl RetryClock {
    fn spent(&self) -> Duration {
        self.0.get()
    }

    fn add(&self, time: Duration) {
        self.0.set(self.0.get().saturating_add(time));
    }
}

/// Why a write did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The service refused it, or it was never applied; nothing changed.
    Rejected(ConnectorError),
    /// The service may or may not have applied it (5xx, a lost or unreadable answer): read the
    /// state back before repeating it.
    Unknown(ConnectorError),
}

impl WriteError {
    /// The error, whether or not the change may have been applied.
    pub fn into_error(self) -> ConnectorError {
        match self {
            WriteError::Rejected(e) | WriteError::Unknown(e) => e,
        }
    }
}

/// One request's retries: how errors name it, whether an unknown outcome may be retried (reads),
/// and when its retry budget started.
struct Exchange {
    endpoint: String,
    retry_unknown: bool,
    started: Instant,
}

/// How one attempt failed.
enum Failure {
    /// Not applied; worth another attempt after `wait` (the service's `Retry-After`, if any).
    Retry(ConnectorError, Option<Duration>),
    /// Perhaps applied.
    Unknown(ConnectorError),
    /// Another attempt would fail the same way.
    Final(ConnectorError),
}

impl<'a, T: Transport> ConsoleClient<'a, T> {
    /// A client for the workspace whose console URL prefix is `account_base`
    /// (`{base-url}/accounts/{account-id}`).
    pub fn new(
        transport: &'a T,
        account_base: String,
        policy: RetryPolicy,
        retrying: RetryClock,
    ) -> Self {
        Self::on(Surface::Console, transport, account_base, policy, retrying)
    }

    /// A client of `surface` whose paths sit below `base`, its retries counted on `retrying`.
    pub fn on(
        surface: Surface,
        transport: &'a T,
        base: String,
        policy: RetryPolicy,
        retrying: RetryClock,
    ) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_f491_4f6c_dd1d, |d| d.as_nanos() as u64 | 1);
        ConsoleClient { transport, base, surface, policy, jitter: Cell::new(seed), retrying }
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Waits before attempt `attempt + 1`: exponential from the base delay, with jitter, at least
    /// what the service asked for. Returns false when the call's retry budget would be exceeded.
    pub fn backoff(&self, attempt: u32, asked: Option<Duration>) -> bool {
        let exponential =
            self.policy.base_delay.saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let capped = exponential.min(Duration::from_secs(10));
        // xorshift: jitter between 50% and 150% of the delay, so tenants do not retry in step.
        let mut x = self.jitter.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.set(x);
        let jittered = capped.mul_f64(0.5 + (x % 1000) as f64 / 1000.0);
        let wait = asked.map_or(jittered, |a| a.max(jittered));
        if self.retrying.spent().saturating_add(wait) > self.policy.budget {
            return false;
        }
        std::thread::sleep(wait);
        self.retrying.add(wait);
        true
    }

    /// Runs a repeated attempt, counting its time on the call's retry clock.
    pub fn retried<R>(&self, attempt: impl FnOnce() -> R) -> R {
        let started = Instant::now();
        let outcome = attempt();
        self.retrying.add(started.elapsed());
        outcome
    }

    /// Pages of the console's `listing` (`users` or `invites`) of the items matching `query`
    /// (empty: all), each `(offset, limit)`, sent together; outcomes in the order of `pages`.
    pub fn list_pages<I: serde::de::DeserializeOwned>(
        &self,
        listing: &str,
        query: &str,
        pages: &[(u64, u32)],
    ) -> Vec<Result<ListPage<I>, ConnectorError>> {
        let paths: Vec<String> = pages
            .iter()
            .map(|&(offset, limit)| listing_path(listing, offset, limit, query))
            .collect();
        self.get_json_all(&paths)
    }

    /// `GET settings`.
    pub fn settings(&self) -> Result<WorkspaceSettings, ConnectorError> {
        self.get_json("settings")
    }

    fn get_json<R: serde::de::DeserializeOwned>(&self, path: &str) -> Result<R, ConnectorError> {
        self.send_json(Method::Get, path, None)
    }

    /// Sends a read to `path` (below the workspace URL) and reads its JSON answer, retrying
    /// throttling, conflicts, challenge pages, server errors and lost answers.
    pub fn send_json<R: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<R, ConnectorError> {
        self.run(method, path, body, true).map_err(WriteError::into_error)
    }

    /// Sends a write, retrying only attempts that certainly were not applied (throttled,
    /// conflicting, stopped by a challenge page). An outcome that is unknown is returned as
    /// such, for the caller to read back before repeating it.
    pub fn send_write<R: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<R, WriteError> {
        self.run(method, path, body, false)
    }

    /// `GET`s of `paths` (below the workspace URL) sent together, as many at once as the
    /// transport can; each answer is read as [`Self::send_json`] reads one, and a failed one is
    /// retried on its own. Outcomes come in the order of `paths`.
    pub fn get_json_all<R: serde::de::DeserializeOwned>(
        &self,
        paths: &[String],
    ) -> Vec<Result<R, ConnectorError>> {
        let started = Instant::now();
        let requests: Vec<_> = paths.iter().map(|p| self.request(Method::Get, p, None)).collect();
        let responses = self.transport.send_all(&requests);
        paths
            .iter()
            .zip(&requests)
            .zip(responses)
            .map(|((path, request), response)| {
                let exchange = Exchange {
                    endpoint: endpoint(Method::Get, path),
                    retry_unknown: true,
                    started,
                };
                let first = self.interpret(&exchange.endpoint, response);
                self.retry(&exchange, request, first).map_err(WriteError::into_error)
            })
            .collect()
    }

    fn run<R: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        retry_unknown: bool,
    ) -> Result<R, WriteError> {
        let exchange =
            Exchange { endpoint: endpoint(method, path), retry_unknown, started: Instant::now() };
        let request = self.request(method, path, body);
        let first = self.attempt(&exchange.endpoint, &request);
        self.retry(&exchange, &request, first)
    }

    /// Goes on from the outcome of `request`'s first attempt until it succeeds, fails for good
    /// or runs out of attempts or of the retry budget.
    fn retry<R: serde::de::DeserializeOwned>(
        &self,
        exchange: &Exchange,
        request: &HttpRequest,
        first: Result<R, Failure>,
    ) -> Result<R, WriteError> {
        let Exchange { endpoint, retry_unknown, started } = exchange;
        let mut outcome = first;
        let mut attempt = 1;
        loop {
            let failure = match outcome {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let (error, asked) = match failure {
                Failure::Final(error) => return Err(WriteError::Rejected(error)),
                Failure::Unknown(error) if !retry_unknown => {
                    return Err(WriteError::Unknown(error));
                }
                Failure::Unknown(error) => (error, None),
                Failure::Retry(error, asked) => (error, asked),
            };
            if attempt >= self.policy.max_attempts || !self.backoff(attempt, asked) {
                let spent = self.retrying.spent()
                    >= self.policy.budget.saturating_sub(Duration::from_millis(1));
                return Err(WriteError::Rejected(exhausted(attempt, *started, spent, error)));
            }
            attempt += 1;
            outcome = self.retried(|| self.attempt(endpoint, request));
        }
    }

    fn request(&self, method: Method, path: &str, body: Option<String>) -> HttpRequest {
        HttpRequest {
            method,
            url: format!("{}/{path}", self.base),
            content_type: self.surface.media_type(),
            body,
        }
    }

    fn attempt<R: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
        request: &HttpRequest,
    ) -> Result<R, Failure> {
        self.interpret(endpoint, self.transport.send(request))
    }

    /// What one attempt's outcome means: the answer, or whether trying again may help.
    fn interpret<R: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
        response: Result<HttpResponse, TransportError>,
    ) -> Result<R, Failure> {
        let response = response.map_err(|e| {
            if e.denied {
                Failure::Final(ConnectorError::PermissionDenied(format!(
                    "{endpoint}: the host refused to send the request ({e}); check the tenant's allowed origins"
                )))
            } else {
                Failure::Unknown(ConnectorError::Unavailable(format!("{endpoint}: request failed: {e}")))
            }
        })?;
        if response.status == 400 && is_seat_true_up(&response) {
            return Err(Failure::Final(ConnectorError::Conflict(format!(
                "{endpoint}: the workspace has no paid seats left (seat_true_up_pending); buy seats or free some, then retry"
            ))));
        }
        let html = looks_like_html(&response);
        parse_json_from(self.surface, endpoint, &response).map_err(|error| {
            match (response.status, &error) {
                // A challenge page or throttling stops the request before the application sees it.
                (429, _) | (409, _) | (403, _) if html || response.status != 403 => {
                    let asked = match &error {
                        ConnectorError::RateLimited { retry_after_ms, .. } => {
                            retry_after_ms.map(Duration::from_millis)
                        }
                        _ => None,
                    };
                    Failure::Retry(error, asked)
                }
                (200..=299, ConnectorError::Unavailable(_)) => Failure::Retry(error, None),
                // A server error, or a 2xx whose answer cannot be read: perhaps applied.
                (500..=599, _) | (200..=299, _) => Failure::Unknown(error),
                _ => Failure::Final(error),
            }
        })
    }
}

/// The path of one page of the console's `users` or `invites` listing.
fn listing_path(listing: &str, offset: u64, limit: u32, query: &str) -> String {
    format!("{listing}?offset={offset}&limit={limit}&query={}", encode_query(query))
}

/// How a request is named in errors: the method and the path without its query.
fn endpoint(method: Method, path: &str) -> String {
    format!("{} {}", method.as_str(), path.split('?').next().unwrap_or(path))
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

/// The error after the last attempt, saying what was tried, and whether the call's retry budget
/// is what ran out.
fn exhausted(
    attempts: u32,
    started: Instant,
    budget_spent: bool,
    last: ConnectorError,
) -> ConnectorError {
    let tried = format!(
        "gave up after {attempts} attempt{} over {:.1} s{}",
        if attempts == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64(),
        if budget_spent { ", the call's retry budget (retry-budget-ms) spent" } else { "" }
    );
    match last {
        ConnectorError::RateLimited { retry_after_ms, message } => {
            ConnectorError::RateLimited { retry_after_ms, message: format!("{message}; {tried}") }
        }
        ConnectorError::Unavailable(m)
        | ConnectorError::Conflict(m)
        | ConnectorError::Internal(m) => ConnectorError::Unavailable(format!("{m}; {tried}")),
        other => other,
    }
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
    parse_json_from(Surface::Console, endpoint, response)
}

/// [`parse_json`] for an answer of `surface`. `204 No Content` (which SCIM allows for PATCH)
/// reads as JSON `null`, so callers expecting `Option<_>` get `None`.
pub fn parse_json_from<R: serde::de::DeserializeOwned>(
    surface: Surface,
    endpoint: &str,
    response: &HttpResponse,
) -> Result<R, ConnectorError> {
    if !(200..300).contains(&response.status) {
        return Err(classify_failure_from(surface, endpoint, response));
    }
    if response.status == 204 {
        return serde_json::from_slice(b"null").map_err(|_| {
            ConnectorError::Internal(format!(
                "{endpoint}: the service answered {} with an empty body where an answer was expected",
                response.status
            ))
        });
    }
    if looks_like_html(response) {
        return Err(ConnectorError::Unavailable(format!(
            "{endpoint}: the service answered {} with an HTML page (bot protection or an outage) instead of JSON; try again later",
            response.status
        )));
    }
    // One UTF-8 check of the whole body, then a parse that need not check each string again:
    // in the component, checking string by string cost as much as the rest of the parse.
    let unreadable = |why: String| {
        ConnectorError::Internal(format!(
            "{endpoint}: could not read the service's answer ({why}); body starts {:?}",
            snippet(&response.body)
        ))
    };
    let text = std::str::from_utf8(&response.body)
        .map_err(|e| unreadable(format!("it is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))
}

/// Maps a non-2xx answer to the error a person can act on.
pub fn classify_failure(endpoint: &str, response: &HttpResponse) -> ConnectorError {
    classify_failure_from(Surface::Console, endpoint, response)
}

/// [`classify_failure`] for an answer of `surface`.
pub fn classify_failure_from(
    surface: Surface,
    endpoint: &str,
    response: &HttpResponse,
) -> ConnectorError {
    let credential = surface.credential();
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
                "{endpoint}: {credential} was rejected ({code}: {detail}); renew it"
            )),
            None => ConnectorError::Unauthenticated(format!(
                "{endpoint}: {credential} was rejected ({detail}); renew it"
            )),
        },
        403 if html => ConnectorError::Unavailable(format!(
            "{endpoint}: the service answered 403 with a bot-protection page; this is transient, try again later"
        )),
        403 => ConnectorError::PermissionDenied(format!(
            "{endpoint}: {detail}; {}",
            surface.permission_hint()
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
    use serde_json::Value;

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

    /// A service that is down: every request is refused at once; counts the attempts.
    struct Down(Cell<usize>);

    impl Transport for Down {
        fn send(&self, _: &HttpRequest) -> Result<HttpResponse, TransportError> {
            self.0.set(self.0.get() + 1);
            Err(TransportError::failed("connection refused"))
        }
    }

    #[test]
    fn the_retry_budget_bounds_a_whole_calls_retrying_not_each_requests() {
        let down = Down(Cell::new(0));
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(2),
            budget: Duration::from_millis(60),
        };
        let clock = RetryClock::default();
        // Two clients of one call share its clock, as the console and SCIM clients do.
        let console = ConsoleClient::new(&down, "https://x/a".into(), policy, clock.clone());
        let scim = ConsoleClient::on(Surface::Scim, &down, "https://x/s".into(), policy, clock);
        let started = Instant::now();
        for n in 0..40 {
            let client = if n % 2 == 0 { &console } else { &scim };
            let error = client.send_json::<Value>(Method::Get, &format!("users/{n}"), None);
            assert!(matches!(error, Err(ConnectorError::Unavailable(_))), "{error:?}");
        }
        // Each request alone would have had the whole budget: up to 10 attempts each, 400 in all.
        let attempts = down.0.get();
        assert!(attempts < 40 + 20, "{attempts} attempts for 40 requests");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        let last = console.send_json::<Value>(Method::Get, "users/last", None).unwrap_err();
        assert!(
            matches!(&last, ConnectorError::Unavailable(m) if m.contains("retry budget")),
            "{last:?}"
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query("a+b@x.com"), "a%2Bb%40x.com");
    }
}

//! A JSON client over any [`Transport`] that retries what is worth retrying, and the rules for
//! reading a service's answers.
//!
//! Reads are retried after throttling, conflicts, challenge pages, server errors and lost
//! answers. Writes are retried only when the attempt certainly was not applied; a write whose
//! outcome is unknown (a server error, a lost or unreadable answer) comes back as
//! [`WriteError::Unknown`], for the connector to read the state back before repeating it. Waits
//! grow exponentially with jitter, honour `Retry-After` (seconds or an HTTP date), and all of a
//! call's retrying shares one budget ([`RetryClock`]).
//!
//! What a service's failures mean (its error bodies, its credentials' names, refusals peculiar to
//! it) is the connector's [`ApiRules`].

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use serde::de::DeserializeOwned;

use crate::error::rate_limited;
use crate::settings::RetryPolicy;
use crate::transport::{HttpRequest, HttpResponse, Method, Transport, TransportError};
use crate::types::{ConnectorError, RateLimit};

/// How a service's answers read: the media type it speaks, and what a failed answer means for
/// the person who must act on it. The defaults suit a JSON API whose errors carry `detail` or
/// `error.message`.
pub trait ApiRules {
    /// The media type of request bodies and of the answers accepted.
    fn media_type(&self) -> &'static str {
        "application/json"
    }

    /// The error for a non-2xx answer to `endpoint` (`METHOD path`).
    fn classify(&self, endpoint: &str, response: &HttpResponse) -> ConnectorError {
        classify_status(
            endpoint,
            response,
            "the tenant's credential",
            "the credential lacks the permission",
        )
    }

    /// An answer the service gives when it refuses a request for good before applying it, that
    /// the generic reading would take for something else (e.g. a quota reported as a 400 whose
    /// body names it); `None` for the generic reading.
    fn refusal(&self, endpoint: &str, response: &HttpResponse) -> Option<ConnectorError> {
        let _ = (endpoint, response);
        None
    }
}

/// The default [`ApiRules`]: a JSON API with the generic reading of its answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonApi;

impl ApiRules for JsonApi {}

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

/// A typed JSON client of one service surface over any [`Transport`], its paths below one base
/// URL, retrying as its policy says and reading answers by its [`ApiRules`].
pub struct JsonClient<'a, T: Transport, R: ApiRules> {
    transport: &'a T,
    base: String,
    rules: R,
    policy: RetryPolicy,
    jitter: Cell<u64>,
    retrying: RetryClock,
    /// How long the last round of `GET`s took to come back (see [`Self::last_round_trip`]).
    last_round_trip: Cell<Duration>,
}

impl<'a, T: Transport, R: ApiRules> JsonClient<'a, T, R> {
    /// A client of the service `rules` describe, whose paths sit below `base`, its retries
    /// counted on `retrying` (shared by every client of one call).
    pub fn on(
        rules: R,
        transport: &'a T,
        base: String,
        policy: RetryPolicy,
        retrying: RetryClock,
    ) -> Self {
        let seed = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_f491_4f6c_dd1d, |d| d.as_nanos() as u64 | 1);
        JsonClient {
            transport,
            base,
            rules,
            policy,
            jitter: Cell::new(seed),
            retrying,
            last_round_trip: Cell::new(Duration::ZERO),
        }
    }

    /// How long the last round of [`Self::get_json_all`] (or its `_beside`) took from sending
    /// its requests to the last answer read, by the transport's clock: the service's round trip
    /// and the answers' transfer, without parsing them or retrying any; zero before the first.
    pub fn last_round_trip(&self) -> Duration {
        self.last_round_trip.get()
    }

    /// Sends one round of requests, timing it.
    fn send_round(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
        let sent = self.transport.now();
        let responses = self.transport.send_all(requests);
        self.last_round_trip.set(self.transport.now().saturating_duration_since(sent));
        responses
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// The rules the answers are read by.
    pub fn rules(&self) -> &R {
        &self.rules
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
    pub fn retried<O>(&self, attempt: impl FnOnce() -> O) -> O {
        let started = Instant::now();
        let outcome = attempt();
        self.retrying.add(started.elapsed());
        outcome
    }

    /// Sends a read to `path` (below the base URL) and reads its JSON answer, retrying
    /// throttling, conflicts, challenge pages, server errors and lost answers.
    pub fn send_json<O: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<O, ConnectorError> {
        self.run(method, path, body, true).map_err(WriteError::into_error)
    }

    /// `GET path`, read as [`Self::send_json`] reads.
    pub fn get_json<O: DeserializeOwned>(&self, path: &str) -> Result<O, ConnectorError> {
        self.send_json(Method::Get, path, None)
    }

    /// Sends a write, retrying only attempts that certainly were not applied (throttled,
    /// conflicting, stopped by a challenge page). An outcome that is unknown is returned as
    /// such, for the caller to read back before repeating it.
    pub fn send_write<O: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<O, WriteError> {
        self.run(method, path, body, false)
    }

    /// `GET`s of `paths` (below the base URL) sent together, as many at once as the transport
    /// can; each answer is read as [`Self::send_json`] reads one, and a failed one is retried on
    /// its own. Outcomes come in the order of `paths`.
    pub fn get_json_all<O: DeserializeOwned>(
        &self,
        paths: &[String],
    ) -> Vec<Result<O, ConnectorError>> {
        let started = Instant::now();
        let requests: Vec<_> = paths.iter().map(|p| self.request(Method::Get, p, None)).collect();
        let responses = self.send_round(&requests);
        paths
            .iter()
            .zip(&requests)
            .zip(responses)
            .map(|((path, request), response)| self.read_answer(path, request, response, started))
            .collect()
    }

    /// [`Self::get_json_all`] of `paths` with one more `GET`, of `beside`, whose answer is of
    /// another type, in the same round: a read that would otherwise take a round trip of its
    /// own rides along with a listing's pages.
    pub fn get_json_all_beside<O: DeserializeOwned, B: DeserializeOwned>(
        &self,
        paths: &[String],
        beside: &str,
    ) -> (Vec<Result<O, ConnectorError>>, Result<B, ConnectorError>) {
        let started = Instant::now();
        let mut requests: Vec<_> =
            paths.iter().map(|p| self.request(Method::Get, p, None)).collect();
        requests.push(self.request(Method::Get, beside, None));
        let mut responses = self.send_round(&requests);
        let beside_answer = match (responses.pop(), requests.last()) {
            (Some(response), Some(request)) => self.read_answer(beside, request, response, started),
            _ => {
                Err(ConnectorError::Internal(format!("GET {beside}: the transport gave no answer")))
            }
        };
        let answers = paths
            .iter()
            .zip(&requests)
            .zip(responses)
            .map(|((path, request), response)| self.read_answer(path, request, response, started))
            .collect();
        (answers, beside_answer)
    }

    /// The answer of a `GET` of `path` sent in a round that started at `started`, retried on
    /// its own if it failed.
    fn read_answer<O: DeserializeOwned>(
        &self,
        path: &str,
        request: &HttpRequest,
        response: Result<HttpResponse, TransportError>,
        started: Instant,
    ) -> Result<O, ConnectorError> {
        let exchange =
            Exchange { endpoint: endpoint(Method::Get, path), retry_unknown: true, started };
        let first = self.interpret(&exchange.endpoint, response);
        self.retry(&exchange, request, first).map_err(WriteError::into_error)
    }

    fn run<O: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        retry_unknown: bool,
    ) -> Result<O, WriteError> {
        let exchange =
            Exchange { endpoint: endpoint(method, path), retry_unknown, started: Instant::now() };
        let request = self.request(method, path, body);
        let first = self.attempt(&exchange.endpoint, &request);
        self.retry(&exchange, &request, first)
    }

    /// Goes on from the outcome of `request`'s first attempt until it succeeds, fails for good
    /// or runs out of attempts or of the retry budget.
    fn retry<O: DeserializeOwned>(
        &self,
        exchange: &Exchange,
        request: &HttpRequest,
        first: Result<O, Failure>,
    ) -> Result<O, WriteError> {
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
            if attempt >= self.policy.max_attempts {
                return Err(WriteError::Rejected(exhausted(attempt, *started, false, error)));
            }
            // `backoff` refuses a wait only when the call's retry budget has no room for it, even
            // with much of the budget unspent: the budget is what stopped the request.
            if !self.backoff(attempt, asked) {
                return Err(WriteError::Rejected(exhausted(attempt, *started, true, error)));
            }
            attempt += 1;
            outcome = self.retried(|| self.attempt(endpoint, request));
        }
    }

    fn request(&self, method: Method, path: &str, body: Option<String>) -> HttpRequest {
        HttpRequest {
            method,
            url: format!("{}/{path}", self.base),
            content_type: self.rules.media_type(),
            body,
        }
    }

    fn attempt<O: DeserializeOwned>(
        &self,
        endpoint: &str,
        request: &HttpRequest,
    ) -> Result<O, Failure> {
        self.interpret(endpoint, self.transport.send(request))
    }

    /// What one attempt's outcome means: the answer, or whether trying again may help.
    fn interpret<O: DeserializeOwned>(
        &self,
        endpoint: &str,
        response: Result<HttpResponse, TransportError>,
    ) -> Result<O, Failure> {
        let response = response.map_err(|e| {
            if e.denied {
                Failure::Final(ConnectorError::PermissionDenied(format!(
                    "{endpoint}: the host refused to send the request ({e}); check the tenant's allowed origins"
                )))
            } else {
                Failure::Unknown(ConnectorError::Unavailable(format!("{endpoint}: request failed: {e}")))
            }
        })?;
        if let Some(refusal) = self.rules.refusal(endpoint, &response) {
            return Err(Failure::Final(refusal));
        }
        parse_json(&self.rules, endpoint, &response).map_err(|error| {
            match (response.status, &error) {
                // A challenge page or throttling stops the request before the application sees it.
                (429, _) | (409, _) | (403, _)
                    if response.status != 403 || looks_like_html(&response) =>
                {
                    let asked = match &error {
                        ConnectorError::RateLimited(RateLimit { retry_after_ms, .. }) => {
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

/// How a request is named in errors: the method and the path without its query.
pub fn endpoint(method: Method, path: &str) -> String {
    format!("{} {}", method.as_str(), path.split('?').next().unwrap_or(path))
}

/// Reads a successful JSON answer, or classifies the failure by `rules`. `204 No Content` reads
/// as JSON `null`, so callers expecting `Option<_>` get `None`.
pub fn parse_json<O: DeserializeOwned>(
    rules: &impl ApiRules,
    endpoint: &str,
    response: &HttpResponse,
) -> Result<O, ConnectorError> {
    if !(200..300).contains(&response.status) {
        return Err(rules.classify(endpoint, response));
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
    let text =
        utf8_text(&response.body).map_err(|e| unreadable(format!("it is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))
}

/// `bytes` as text. A service's JSON is nearly always ASCII, checked here 32 bytes at a time in
/// 64-bit words before any UTF-8 decoding. Hand-written because core's check steps by `usize`,
/// four bytes in the component, where it cost four times its native share of a sync
/// (`docs/benchmarks.md`).
fn utf8_text(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let (blocks, rest) = bytes.as_chunks::<32>();
    let ascii = blocks.iter().all(|block| {
        let (words, _) = block.as_chunks::<8>();
        words.iter().fold(0, |seen, word| seen | u64::from_ne_bytes(*word)) & HIGH_BITS == 0
    }) && rest.is_ascii();
    if ascii {
        #[allow(unsafe_code)]
        // SAFETY: every byte is below 0x80, and ASCII is UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes)
}

/// What a failed answer says of itself: its JSON `detail` or `error.message`, else the start of
/// its body.
pub fn error_detail(response: &HttpResponse) -> String {
    let body: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
    body.as_ref()
        .and_then(|b| {
            b.get("detail")
                .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string))
                .or_else(|| {
                    b.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_string)
                })
        })
        .unwrap_or_else(|| snippet(&response.body))
}

/// The JSON `error.code` of a failed answer, if it has one.
pub fn error_code(response: &HttpResponse) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|b| b.pointer("/error/code").and_then(|c| c.as_str()).map(str::to_string))
}

/// The generic reading of a non-2xx answer: 401 `unauthenticated` (naming `credential`), 403
/// `permission-denied` (with `permission_hint`; `unavailable` for a challenge page), 404, 409,
/// 429 (with its `Retry-After`), 400 and 422, 5xx, and anything else `internal`.
pub fn classify_status(
    endpoint: &str,
    response: &HttpResponse,
    credential: &str,
    permission_hint: &str,
) -> ConnectorError {
    let status = response.status;
    let detail = error_detail(response);
    match status {
        401 => match error_code(response) {
            Some(code) => ConnectorError::Unauthenticated(format!(
                "{endpoint}: {credential} was rejected ({code}: {detail}); renew it"
            )),
            None => ConnectorError::Unauthenticated(format!(
                "{endpoint}: {credential} was rejected ({detail}); renew it"
            )),
        },
        403 if looks_like_html(response) => ConnectorError::Unavailable(format!(
            "{endpoint}: the service answered 403 with a bot-protection page; this is transient, try again later"
        )),
        403 => ConnectorError::PermissionDenied(format!("{endpoint}: {detail}; {permission_hint}")),
        404 => ConnectorError::NotFound(format!("{endpoint}: {detail}")),
        409 => ConnectorError::Conflict(format!(
            "{endpoint}: {detail} (a concurrent change to the same member); try again"
        )),
        429 => rate_limited(
            response.retry_after.as_deref().and_then(|v| retry_after_ms(v, SystemTime::now())),
            format!("{endpoint}: throttled by the service ({detail})"),
        ),
        400 | 422 => ConnectorError::InvalidArgument(format!("{endpoint}: {detail}")),
        500..=599 => ConnectorError::Unavailable(format!(
            "{endpoint}: the service failed with {status} ({detail}); try again later"
        )),
        _ => ConnectorError::Internal(format!("{endpoint}: unexpected status {status} ({detail})")),
    }
}

/// A `Retry-After` value in milliseconds: a number of seconds, or an HTTP date (RFC 9110 §10.2.3)
/// measured from `now` (a date already past is no wait). `None` when it is neither.
pub fn retry_after_ms(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).map_or(0, |wait| wait.as_millis().min(u128::from(u64::MAX)) as u64))
}

/// Whether an answer is an HTML page (a challenge or an outage page) rather than the API's.
pub fn looks_like_html(response: &HttpResponse) -> bool {
    // Every answer is checked, so the media type is matched in place: lowering it into a new
    // string and searching that cost an allocation and a substring searcher's set-up each time.
    const HTML: &[u8] = b"text/html";
    let typed_html = response
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.as_bytes().windows(HTML.len()).any(|w| w.eq_ignore_ascii_case(HTML)));
    let starts_html = response
        .body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| response.body[i] == b'<');
    typed_html || starts_html
}

/// The start of a body, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
    if text.is_empty() { "empty body".to_string() } else { text }
}

/// The error after the last attempt, saying what was tried, and whether the call's retry budget
/// is what stopped it (no room left for the next wait).
fn exhausted(
    attempts: u32,
    started: Instant,
    budget_stopped: bool,
    last: ConnectorError,
) -> ConnectorError {
    let tried = format!(
        "gave up after {attempts} attempt{} over {:.1} s{}",
        if attempts == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64(),
        if budget_stopped {
            ", the call's retry budget (retry-budget-ms) leaving no room for another wait"
        } else {
            ""
        }
    );
    match last {
        ConnectorError::RateLimited(RateLimit { retry_after_ms, message }) => {
            rate_limited(retry_after_ms, format!("{message}; {tried}"))
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::transport::FakeTransport;

    fn response(status: u16, ct: &str, body: &str) -> HttpResponse {
        HttpResponse::text(status, ct, body)
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            budget: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_200_html_page_or_broken_json_is_a_typed_error() {
        let r: Result<Value, _> =
            parse_json(&JsonApi, "GET users", &response(200, "text/html", "<!doctype html>"));
        assert!(matches!(r, Err(ConnectorError::Unavailable(_))));
        let r: Result<Value, _> = parse_json(
            &JsonApi,
            "GET users",
            &response(200, "application/json", r#"{"items":[{"id":1"#),
        );
        assert!(matches!(r, Err(ConnectorError::Internal(m)) if m.contains("GET users")));
        let mut latin1 = response(200, "application/json", "");
        latin1.body = b"{\"name\":\"Ren\xe9\"}".to_vec();
        let r: Result<Value, _> = parse_json(&JsonApi, "GET users", &latin1);
        assert!(matches!(&r, Err(ConnectorError::Internal(m)) if m.contains("not UTF-8")), "{r:?}");
    }

    #[test]
    fn an_answer_is_html_by_its_media_type_in_any_case_or_by_its_first_character() {
        let json = "{\"a\":1}";
        for (ct, body, html) in [
            ("text/html", json, true),
            ("Text/HTML; charset=utf-8", json, true),
            ("application/xhtml+xml, TEXT/html", json, true),
            ("text/htm", json, false),
            ("application/json", json, false),
            ("", json, false),
            ("application/json", " \r\n\t<html>", true),
            ("application/json", "  ", false),
        ] {
            assert_eq!(looks_like_html(&response(200, ct, body)), html, "{ct:?} {body:?}");
        }
        let mut untyped = response(200, "", "<p>");
        untyped.content_type = None;
        assert!(looks_like_html(&untyped));
        untyped.body = json.into();
        assert!(!looks_like_html(&untyped));
    }

    #[test]
    fn a_body_is_text_exactly_when_it_is_utf8_wherever_its_non_ascii_byte_lies() {
        // Lengths around the 32-byte blocks and 8-byte words of the ASCII check, with one
        // non-ASCII character (valid) or byte (invalid) at every position.
        for len in [0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 100] {
            let ascii = vec![b'a'; len];
            assert_eq!(utf8_text(&ascii).ok(), std::str::from_utf8(&ascii).ok(), "{len}");
            for at in 0..len {
                let mut invalid = ascii.clone();
                invalid[at] = 0xe9;
                assert!(utf8_text(&invalid).is_err(), "0xe9 at {at} of {len}");
                let mut valid = ascii.clone();
                valid.splice(at..=at, "é".bytes());
                assert_eq!(utf8_text(&valid), Ok(std::str::from_utf8(&valid).unwrap()));
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(retry_after_ms("7", now), Some(7000));
        assert_eq!(retry_after_ms("Wed, 02 Dec 2026 10:00:30 GMT", now), Some(30_000));
        assert_eq!(retry_after_ms("Wed, 02 Dec 2026 09:00:00 GMT", now), Some(0));
        assert_eq!(retry_after_ms("soon", now), None);
        let mut throttled = response(429, "application/json", r#"{"detail":"slow down"}"#);
        throttled.retry_after = Some("3".to_string());
        let error = JsonApi.classify("GET users", &throttled);
        assert_eq!(
            error,
            rate_limited(Some(3000), "GET users: throttled by the service (slow down)".to_string())
        );
    }

    #[test]
    fn a_read_is_retried_through_failures_and_a_write_of_unknown_outcome_is_not() {
        let transport = FakeTransport::new();
        transport.answer(Ok(response(503, "application/json", r#"{"detail":"busy"}"#)));
        transport.answer(Err(TransportError::failed("reset")));
        transport.answer(Ok(response(200, "application/json", r#"{"ok":true}"#)));
        let client = JsonClient::on(
            JsonApi,
            &transport,
            "https://x/api".into(),
            policy(4),
            RetryClock::default(),
        );
        let read: Value = client.get_json("things?limit=1").unwrap();
        assert_eq!(read["ok"], true);
        assert_eq!(transport.requests().len(), 3);

        transport.answer(Ok(response(502, "text/plain", "")));
        let write = client.send_write::<Value>(Method::Post, "things", Some("{}".into()));
        assert!(
            matches!(write, Err(WriteError::Unknown(ConnectorError::Unavailable(_)))),
            "{write:?}"
        );
        assert_eq!(transport.requests().len(), 4, "a write of unknown outcome is not repeated");

        transport.answer(Ok(response(429, "application/json", "{}")));
        transport.answer(Ok(response(201, "application/json", r#"{"id":"t-1"}"#)));
        let made: Value = client.send_write(Method::Post, "things", Some("{}".into())).unwrap();
        assert_eq!(made["id"], "t-1", "a throttled write was not applied, so it is repeated");

        transport.answer(Ok(response(404, "application/json", r#"{"detail":"gone"}"#)));
        let missing = client.get_json::<Value>("things/9").unwrap_err();
        assert_eq!(missing, ConnectorError::NotFound("GET things/9: gone".to_string()));
        let denied = TransportError { message: "origin not allowed".into(), denied: true };
        transport.answer(Err(denied));
        let refused = client.get_json::<Value>("things").unwrap_err();
        assert!(
            matches!(&refused, ConnectorError::PermissionDenied(m) if m.contains("allowed origins"))
        );
    }

    #[test]
    fn the_retry_budget_bounds_a_whole_calls_retrying_not_each_requests() {
        let down = FakeTransport::new();
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(2),
            budget: Duration::from_millis(60),
        };
        let clock = RetryClock::default();
        let one = JsonClient::on(JsonApi, &down, "https://x/a".into(), policy, clock.clone());
        let two = JsonClient::on(JsonApi, &down, "https://x/s".into(), policy, clock);
        for n in 0..40 {
            let client = if n % 2 == 0 { &one } else { &two };
            let error = client.get_json::<Value>(&format!("users/{n}"));
            assert!(matches!(error, Err(ConnectorError::Unavailable(_))), "{error:?}");
        }
        let attempts = down.requests().len();
        // Without a shared budget each request would retry nine times: 400 attempts.
        assert!(attempts < 40 + 20, "{attempts} attempts for 40 requests");
        let last = one.get_json::<Value>("users/last").unwrap_err();
        assert!(
            matches!(&last, ConnectorError::Unavailable(m) if m.contains("retry budget")),
            "{last:?}"
        );
    }

    #[test]
    fn a_wait_the_budget_has_no_room_for_is_named_as_the_budget_running_out() {
        let down = FakeTransport::new();
        // The first wait (50 to 150 ms) is longer than the whole budget, none of it spent.
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            budget: Duration::from_millis(20),
        };
        let client =
            JsonClient::on(JsonApi, &down, "https://x".into(), policy, RetryClock::default());
        let error = client.get_json::<Value>("users").unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Unavailable(m)
                if m.contains("after 1 attempt") && m.contains("retry budget (retry-budget-ms) leaving no room")),
            "{error:?}"
        );
        assert_eq!(down.requests().len(), 1);
        // Out of attempts, with the budget to spare, names no budget.
        let policy = RetryPolicy { max_attempts: 1, ..policy };
        let client =
            JsonClient::on(JsonApi, &down, "https://x".into(), policy, RetryClock::default());
        let error = client.get_json::<Value>("users").unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Unavailable(m)
                if m.contains("after 1 attempt") && !m.contains("budget")),
            "{error:?}"
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query("a+b@x.com"), "a%2Bb%40x.com");
    }
}

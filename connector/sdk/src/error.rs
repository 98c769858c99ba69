//! The contract's `connector-error`, and how it reads to people.

use crate::types::{ConnectorError, PlannedRequest, RateLimit};

/// The error as a person reads it: the contract's case, then its message, e.g.
/// `not found: GET users/u-1: no such user`. (The generated `Display` prints the Rust value.)
pub fn describe(error: &ConnectorError) -> String {
    format!("{}: {}", case(error), message(error))
}

/// The error's case as people read it, e.g. `invalid configuration` for `invalid-config`.
pub fn case(error: &ConnectorError) -> &'static str {
    match error {
        ConnectorError::InvalidConfig(_) => "invalid configuration",
        ConnectorError::Unauthenticated(_) => "unauthenticated",
        ConnectorError::PermissionDenied(_) => "permission denied",
        ConnectorError::NotFound(_) => "not found",
        ConnectorError::InvalidArgument(_) => "invalid argument",
        ConnectorError::Conflict(_) => "conflict",
        ConnectorError::ManagedExternally(_) => "managed externally",
        ConnectorError::RateLimited(_) => "rate limited",
        ConnectorError::Unavailable(_) => "unavailable",
        ConnectorError::Timeout(_) => "timeout",
        ConnectorError::Unsupported(_) => "unsupported",
        ConnectorError::Internal(_) => "internal",
    }
}

/// The message of any case.
pub fn message(error: &ConnectorError) -> &str {
    match error {
        ConnectorError::InvalidConfig(m)
        | ConnectorError::Unauthenticated(m)
        | ConnectorError::PermissionDenied(m)
        | ConnectorError::NotFound(m)
        | ConnectorError::InvalidArgument(m)
        | ConnectorError::Conflict(m)
        | ConnectorError::ManagedExternally(m)
        | ConnectorError::Unavailable(m)
        | ConnectorError::Timeout(m)
        | ConnectorError::Unsupported(m)
        | ConnectorError::Internal(m)
        | ConnectorError::RateLimited(RateLimit { message: m, .. }) => m,
    }
}

/// A `rate-limited` error: the service throttled the connector and asked it to wait
/// `retry_after_ms`, if it said.
pub fn rate_limited(retry_after_ms: Option<u64>, message: String) -> ConnectorError {
    ConnectorError::RateLimited(RateLimit { retry_after_ms, message })
}

/// `error` with `note` added to its message, its case kept; an `internal` error says which
/// case it came from.
pub fn with_note(error: ConnectorError, note: &str) -> ConnectorError {
    match error {
        ConnectorError::InvalidConfig(m) => ConnectorError::InvalidConfig(m + note),
        ConnectorError::Unauthenticated(m) => ConnectorError::Unauthenticated(m + note),
        ConnectorError::PermissionDenied(m) => ConnectorError::PermissionDenied(m + note),
        ConnectorError::NotFound(m) => ConnectorError::NotFound(m + note),
        ConnectorError::InvalidArgument(m) => ConnectorError::InvalidArgument(m + note),
        ConnectorError::Conflict(m) => ConnectorError::Conflict(m + note),
        ConnectorError::ManagedExternally(m) => ConnectorError::ManagedExternally(m + note),
        ConnectorError::Unavailable(m) => ConnectorError::Unavailable(m + note),
        ConnectorError::Timeout(m) => ConnectorError::Timeout(m + note),
        ConnectorError::Unsupported(m) => ConnectorError::Unsupported(m + note),
        ConnectorError::Internal(m) => ConnectorError::Internal(m + note),
        ConnectorError::RateLimited(RateLimit { retry_after_ms, message }) => {
            ConnectorError::RateLimited(RateLimit { retry_after_ms, message: message + note })
        }
    }
}

/// `error` of a change some of whose writes (`sent`) had already gone out, saying which: a
/// failure part-way through a person's writes is never reported as if nothing was done.
pub fn half_applied(sent: &[PlannedRequest], error: ConnectorError) -> ConnectorError {
    if sent.is_empty() {
        return error;
    }
    let done: Vec<String> = sent.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    with_note(error, &format!(" (already sent for this person: {})", done.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_case_then_message() {
        let error = ConnectorError::NotFound("GET users/u-1: no such user".to_string());
        assert_eq!(describe(&error), "not found: GET users/u-1: no such user");
        let throttled = rate_limited(Some(2000), "slow down".to_string());
        assert_eq!(describe(&throttled), "rate limited: slow down");
        assert_eq!(message(&throttled), "slow down");
    }

    #[test]
    fn a_half_applied_error_keeps_its_case_and_names_what_was_sent() {
        let sent =
            [PlannedRequest { method: "DELETE".into(), path: "invites/i-1".into(), body: None }];
        let error = half_applied(&sent, rate_limited(Some(5), "slow down".into()));
        assert_eq!(
            error,
            rate_limited(
                Some(5),
                "slow down (already sent for this person: DELETE invites/i-1)".into()
            )
        );
        let untouched = ConnectorError::Conflict("no".into());
        assert_eq!(half_applied(&[], untouched.clone()), untouched);
    }
}

//! The contract's `connector-error`, and how it reads to people.

use crate::types::{ConnectorError, RateLimit};

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
}

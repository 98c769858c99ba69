//! The connector's typed errors, one case per `connector-error` case of the contract.

/// Why an operation failed; mirrors the contract's `connector-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// A setting is missing or malformed.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The credential was rejected.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The credential may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The object named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// An argument is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The change conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An external system owns the account.
    #[error("managed externally: {0}")]
    ManagedExternally(String),
    /// The service throttled the connector.
    #[error("rate limited: {message}")]
    RateLimited {
        /// How long the service asked to wait, in milliseconds.
        retry_after_ms: Option<u64>,
        /// What was throttled.
        message: String,
    },
    /// The service is unreachable or failing.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Out of time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// Not supported by this connector.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A defect, or an answer the connector cannot understand.
    #[error("internal: {0}")]
    Internal(String),
}

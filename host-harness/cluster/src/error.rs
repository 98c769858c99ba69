//! The cluster's errors.

use accessgov_server::error::ApiError;
use axum::http::StatusCode;

/// What went wrong between a process and NATS, or in what the store holds.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS could not be reached.
    #[error("NATS at {url}: {message}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A JetStream request failed.
    #[error("JetStream: {what}: {message}")]
    JetStream {
        /// What was being done.
        what: String,
        /// What NATS said.
        message: String,
    },
    /// A record in the store could not be read.
    #[error("the store's {what} could not be read: {message}")]
    Record {
        /// The record.
        what: String,
        /// Why.
        message: String,
    },
    /// The host refused a connector or tenant of the store.
    #[error("host: {0}")]
    Host(String),
}

impl ClusterError {
    /// A failed JetStream request doing `what`.
    pub fn jetstream(what: impl Into<String>, error: impl std::fmt::Display) -> Self {
        ClusterError::JetStream { what: what.into(), message: error.to_string() }
    }

    /// An unreadable record `what`.
    pub fn record(what: impl Into<String>, error: impl std::fmt::Display) -> Self {
        ClusterError::Record { what: what.into(), message: error.to_string() }
    }
}

impl From<ClusterError> for ApiError {
    fn from(error: ClusterError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue", error.to_string())
    }
}

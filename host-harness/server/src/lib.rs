//! `harness serve`: the host as a long-running HTTP/JSON service, so a governance platform in
//! any language loads connectors, registers tenants and runs every contract operation, with the
//! same sandbox and guarantees as the library.
//!
//! - [`config`]: the server's configuration file: where it listens, TLS, limits, the audit log,
//!   API keys (stored hashed, each scoped to tenants or customers, read-only or read-write) and
//!   the tenants registered at start.
//! - [`auth`]: API keys checked in constant time, their scopes, and per-key rate limits.
//! - [`model`]: the JSON shapes of the API, which the OpenAPI document is generated from.
//! - [`error`]: the one error shape, with HTTP statuses that mean what they say.
//! - [`audit`]: every write, as JSON lines.
//! - [`metrics`]: Prometheus metrics.
//! - [`dispatch`]: where calls run: in the server's host, or on workers behind a queue.
//! - [`jobs`]: long batches as job resources with progress and cancellation.
//! - [`routes`]: the endpoints and the OpenAPI document.
//! - [`listen`]: serving over HTTP/1.1 and HTTP/2, with TLS when given a certificate, and
//!   draining on shutdown within a bound; connections close lingering (`linger`), so an
//!   answer given before a request's body was read still reaches the client.

pub mod audit;
pub mod auth;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod jobs;
mod linger;
pub mod listen;
pub mod metrics;
pub mod model;
pub mod routes;

pub use config::ServerConfig;
pub use listen::{Server, ServerError};
pub use routes::ApiDoc;

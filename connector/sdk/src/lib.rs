//! The guest SDK for `accessgov:connector` components: what every connector needs beyond its
//! service, in one place.
//!
//! - [`types`]: the contract's types, generated once from `wit/` (no hand-kept copies).
//! - [`Connector`]: one trait whose operations default to `unsupported`, and
//!   [`export_connector!`] to export it as the component's implementation of the contract.
//! - [`transport`]: the HTTP seam ([`transport::Transport`]), sent over `wasi:http` by
//!   [`wasi_http::WasiHttpTransport`] in the component and by [`transport::FakeTransport`] in
//!   native unit tests.
//! - [`client`]: a JSON client that retries with backoff and jitter, honours `Retry-After`, and
//!   never repeats a write whose outcome is unknown.
//! - [`paging`] and [`cursor`]: offset paging and opaque, tenant-bound, tamper-checked cursors.
//! - [`refs`]: email addresses and ids as callers give them, checked before use.
//! - [`settings`]: typed settings from `wasi:config`, and a check of a connector's settings
//!   schema against what it loads.
//! - [`time`]: RFC 3339 times from Unix timestamps.
//! - [`alloc`]: the allocator [`export_connector!`] installs in the component.
//!
//! A connector's logic runs over [`transport::Transport`] and [`settings::ConfigSource`], never
//! over `wasi:*` directly, so it is unit-tested and benchmarked natively.

#[allow(unsafe_code)]
pub mod alloc;
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings;
pub mod client;
pub mod connector;
pub mod cursor;
pub mod error;
#[doc(hidden)]
pub mod guest;
pub mod paging;
pub mod refs;
pub mod settings;
pub mod time;
pub mod transport;
pub mod wasi_http;

/// The contract's types (`accessgov:connector/types`).
pub use bindings::accessgov::connector::types;
pub use connector::{ChangeAction, ChangeRequest, Connector};
pub use paging::Page;
pub use types::ConnectorError;

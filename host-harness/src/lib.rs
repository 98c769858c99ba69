//! The host harness: runs `accessgov:connector` WebAssembly components for many tenants at once,
//! each call sandboxed, and a faithful mock of the ChatGPT admin console for tests and demos.
//!
//! A platform embeds [`Host`]: create it once, register connectors and tenants, then call
//! operations concurrently from many tasks. The `harness` binary is a thin client of this API.

pub mod batch;
pub mod bindings;
pub mod bounded_read;
pub mod bundled;
pub mod cache;
pub mod call;
pub mod conformance;
pub mod egress;
pub mod engine;
pub mod error;
pub mod host;
pub mod imports;
pub mod logs;
pub mod mock;
pub mod settings_schema;
pub mod tenant;

pub use bindings::types;
pub use call::{CallError, CallReport};
pub use error::HostError;
pub use host::{Host, HostConfig};
pub use tenant::{TenantConfig, TenantsFile};

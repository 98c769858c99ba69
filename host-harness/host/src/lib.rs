//! The embeddable host: runs `accessgov:connector` WebAssembly components for many tenants at
//! once, each call sandboxed (egress policy, credentials injected at the egress hook, time,
//! memory and response limits, captured logs).
//!
//! A platform embeds [`Host`]: create it once, register connectors and tenants, then call
//! operations concurrently from many tasks. Tenants are plain data ([`TenantConfig`], from the
//! `accessgov-policy` crate); the host validates them at registration. This crate bundles no
//! component, serves nothing and parses no command line: the `harness` binary, the mock services
//! and the conformance suite are crates of their own, clients of this one.

pub mod batch;
pub mod bindings;
pub mod cache;
pub mod call;
pub mod contract;
pub mod egress;
pub mod engine;
pub mod error;
pub mod host;
pub mod imports;
mod lift;
pub mod logs;
pub mod people;
pub mod post_return;
pub mod settings_schema;
pub mod tenant;

pub use bindings::types;
pub use call::{CallError, CallReport};
pub use error::HostError;
pub use host::{Host, HostConfig, NamedComponent};
pub use tenant::{TenantConfig, TenantsFile};

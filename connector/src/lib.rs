//! The ChatGPT Business/Enterprise workspace connector.
//!
//! The logic lives in plain Rust modules that know nothing of WebAssembly: they talk HTTP through
//! the [`transport::Transport`] trait and read settings through [`settings::ConfigSource`], so they
//! are unit-tested natively and can be benchmarked natively. The `guest` module (only on
//! `wasm32`) binds them to the `accessgov:connector` contract, `wasi:http` and `wasi:config`.

pub mod api;
pub mod catalog;
pub mod connector;
pub mod cursor;
pub mod error;
pub mod groups;
pub mod model;
pub mod provision;
pub mod scim;
pub mod settings;
#[allow(unsafe_code)]
pub mod size_classes;
pub mod transport;

// The generated component bindings and the component's allocator (`size_classes`) are the only
// unsafe code in the connector.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod guest;

pub use connector::{ChatGptConnector, info};
pub use error::ConnectorError;

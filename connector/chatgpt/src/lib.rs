//! The ChatGPT Business/Enterprise workspace connector, built on the connector SDK.
//!
//! The logic knows nothing of WebAssembly: it talks HTTP through the SDK's
//! [`Transport`](connector_sdk::transport::Transport) and reads settings through its
//! [`ConfigSource`](connector_sdk::settings::ConfigSource), so it is unit-tested and benchmarked
//! natively. [`connector_sdk::export_connector!`] makes it the component's implementation of the
//! `accessgov:connector` contract over `wasi:http` and `wasi:config`.
//!
//! Modules, none importing one that imports it: `catalog`, `cursor`, `settings`, `api` (the
//! console's shapes and rules) and `accounts` (ids, and records mapped to accounts) are leaves;
//! `scim` reads and writes the directory; `connector` holds the connector and its reads;
//! `provision` plans and makes console changes; `groups` plans group changes and completes
//! accounts with their groups.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod catalog;
pub mod connector;
pub mod console_groups;
pub mod cursor;
pub mod groups;
pub mod provision;
pub mod scim;
pub mod settings;
pub mod workspace;

pub use connector::{ChatGptConnector, info};
pub use connector_sdk::ConnectorError;

connector_sdk::export_connector!(ChatGptConnector<connector_sdk::wasi_http::WasiHttpTransport>);

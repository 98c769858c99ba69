//! The OpenAI API Platform organization connector, built on the connector SDK, over the
//! organization's Admin API (`../shared/openai-platform-api.md`).
//!
//! Accounts are the organization's users, its invites (pending, and expired ones shown as
//! suspended: they hold nothing and can be invited again) and its projects' service accounts.
//! Entitlements are `organization` (access), `org-role:owner|reader`, `project:<id>:owner|member`
//! per project, `project:*:owner` (held by organization owners, who own every project
//! implicitly), `group:<id>` and the organization's custom roles `role:<id>`.
//!
//! Modules, none importing one that imports it: `settings`, `catalog` (entitlement ids) and
//! `api` (the Admin API's shapes, rules and paging) are leaves; `directory` reads the
//! organization and finds people; `accounts` maps what it read to the contract's accounts;
//! `listing` pages accounts and entitlements; `changes` plans and makes changes; `connector`
//! ties them to the contract.

pub mod accounts;
pub mod api;
pub mod catalog;
pub mod changes;
pub mod connector;
pub mod directory;
pub mod listing;
pub mod settings;

pub use connector::{PlatformConnector, info};
pub use connector_sdk::ConnectorError;

connector_sdk::export_connector!(PlatformConnector<connector_sdk::wasi_http::WasiHttpTransport>);

//! A test connector that reports, through `info().application`, everything a guest can read:
//! every `wasi:config` value, the environment and the arguments. Tests use it to prove that
//! credentials never reach the guest.

#![cfg(target_arch = "wasm32")]
#![allow(unsafe_code, missing_docs)]

wit_bindgen::generate!({
    path: "../../../wit",
    world: "accessgov:connector/app-connector",
    generate_all,
});

use accessgov::connector::types as wit;
use exports::accessgov::connector::connector::Guest;

struct Probe;
export!(Probe);

fn unsupported<T>() -> Result<T, wit::ConnectorError> {
    Err(wit::ConnectorError::Unsupported("the probe only answers info".to_string()))
}

impl Guest for Probe {
    fn info() -> wit::ConnectorInfo {
        let config = wasi::config::store::get_all().unwrap_or_default();
        let seen = serde_json::json!({
            "config": config,
            "env": std::env::vars().collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
        });
        wit::ConnectorInfo {
            name: "probe".to_string(),
            version: "0.0.0".to_string(),
            application: seen.to_string(),
            entitlement_kinds: Vec::new(),
            exclusion_groups: Vec::new(),
            capabilities: wit::Capabilities {
                read_accounts: false,
                read_entitlements: false,
                write: false,
                batch: false,
                dry_run: false,
            },
            config_schema: "{}".to_string(),
        }
    }
    fn test_connection() -> Result<(), wit::ConnectorError> {
        unsupported()
    }
    fn list_accounts(_: wit::PageRequest) -> Result<wit::AccountPage, wit::ConnectorError> {
        unsupported()
    }
    fn get_account(_: wit::AccountRef) -> Result<wit::Account, wit::ConnectorError> {
        unsupported()
    }
    fn list_entitlements(_: wit::PageRequest) -> Result<wit::EntitlementPage, wit::ConnectorError> {
        unsupported()
    }
    fn grant(
        _: wit::AccountRef,
        _: String,
        _: wit::ChangeOptions,
    ) -> Result<wit::ChangeResult, wit::ConnectorError> {
        unsupported()
    }
    fn revoke(
        _: wit::AccountRef,
        _: String,
        _: wit::ChangeOptions,
    ) -> Result<wit::ChangeResult, wit::ConnectorError> {
        unsupported()
    }
    fn set_entitlement(
        _: wit::AccountRef,
        _: String,
        _: String,
        _: wit::ChangeOptions,
    ) -> Result<wit::ChangeResult, wit::ConnectorError> {
        unsupported()
    }
    fn apply_batch(
        _: Vec<wit::Change>,
        _: wit::ChangeOptions,
    ) -> Result<Vec<Result<wit::ChangeResult, wit::ConnectorError>>, wit::ConnectorError> {
        unsupported()
    }
}

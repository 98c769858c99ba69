//! Binds the connector to the `accessgov:connector` contract, `wasi:http` (see `http`) and
//! `wasi:config/store`. Only conversions live here; the logic is in the transport-free modules.

mod http;

use std::alloc::System;

use crate::connector::{ChatGptConnector, info};
use crate::error::ConnectorError;
use crate::model;
use crate::settings::{ConfigSource, Settings};
use crate::size_classes::SizeClasses;
use http::WasiHttpTransport;

wit_bindgen::generate!({
    path: "../wit",
    world: "accessgov:connector/http-connector",
    generate_all,
});

use accessgov::connector::types as wit;
use exports::accessgov::connector::connector::Guest;

/// The component's allocator: size classes over wasi-libc's `malloc` (see `size_classes`).
#[global_allocator]
static ALLOCATOR: SizeClasses<System> = SizeClasses::new(System);

/// The exported component.
struct Component;

export!(Component);

/// Settings from `wasi:config/store`.
struct WasiConfig;

impl ConfigSource for WasiConfig {
    fn get(&self, key: &str) -> Result<Option<String>, String> {
        wasi::config::store::get(key).map_err(|e| match e {
            wasi::config::store::Error::Upstream(m) | wasi::config::store::Error::Io(m) => m,
        })
    }
}

fn connector() -> Result<ChatGptConnector<WasiHttpTransport>, wit::ConnectorError> {
    let settings = Settings::load(&WasiConfig).map_err(to_wit_error)?;
    Ok(ChatGptConnector::new(WasiHttpTransport, settings))
}

impl Guest for Component {
    fn info() -> wit::ConnectorInfo {
        let info = info();
        let c = info.capabilities;
        let capabilities = wit::Capabilities {
            read_accounts: c.read_accounts,
            read_entitlements: c.read_entitlements,
            write: c.write,
            batch: c.batch,
            dry_run: c.dry_run,
        };
        wit::ConnectorInfo {
            name: info.name,
            version: info.version,
            application: info.application,
            entitlement_kinds: info.entitlement_kinds,
            exclusion_groups: info
                .exclusion_groups
                .into_iter()
                .map(|g| wit::ExclusionGroup {
                    id: g.id,
                    required: g.required,
                    description: g.description,
                })
                .collect(),
            capabilities,
            config_schema: info.config_schema,
        }
    }

    fn test_connection() -> Result<(), wit::ConnectorError> {
        connector()?.test_connection().map_err(to_wit_error)
    }

    fn list_accounts(page: wit::PageRequest) -> Result<wit::AccountPage, wit::ConnectorError> {
        let page = connector()?.list_accounts(&from_wit_page(page)).map_err(to_wit_error)?;
        Ok(wit::AccountPage {
            accounts: page.items.into_iter().map(to_wit_account).collect(),
            next_cursor: page.next_cursor,
        })
    }

    fn get_account(account: wit::AccountRef) -> Result<wit::Account, wit::ConnectorError> {
        connector()?.get_account(&from_wit_ref(account)).map(to_wit_account).map_err(to_wit_error)
    }

    fn list_entitlements(
        page: wit::PageRequest,
    ) -> Result<wit::EntitlementPage, wit::ConnectorError> {
        let page = connector()?.list_entitlements(&from_wit_page(page)).map_err(to_wit_error)?;
        Ok(wit::EntitlementPage {
            entitlements: page
                .items
                .into_iter()
                .map(|e| wit::Entitlement {
                    id: e.id,
                    kind: e.kind,
                    display_name: e.display_name,
                    description: e.description,
                    exclusion_group: e.exclusion_group,
                    grantable: e.grantable,
                })
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    fn grant(
        account: wit::AccountRef,
        entitlement: String,
        options: wit::ChangeOptions,
    ) -> Result<wit::ChangeResult, wit::ConnectorError> {
        single(model::ChangeAction::Grant, account, entitlement, options)
    }

    fn revoke(
        account: wit::AccountRef,
        entitlement: String,
        options: wit::ChangeOptions,
    ) -> Result<wit::ChangeResult, wit::ConnectorError> {
        single(model::ChangeAction::Revoke, account, entitlement, options)
    }

    fn set_entitlement(
        account: wit::AccountRef,
        exclusion_group: String,
        entitlement: String,
        options: wit::ChangeOptions,
    ) -> Result<wit::ChangeResult, wit::ConnectorError> {
        single(model::ChangeAction::Set { group: exclusion_group }, account, entitlement, options)
    }

    fn apply_batch(
        changes: Vec<wit::Change>,
        options: wit::ChangeOptions,
    ) -> Result<Vec<Result<wit::ChangeResult, wit::ConnectorError>>, wit::ConnectorError> {
        let changes: Vec<model::Change> = changes.into_iter().map(from_wit_change).collect();
        let results = connector()?.apply_batch(&changes, options.dry_run).map_err(to_wit_error)?;
        Ok(results.into_iter().map(|r| r.map(to_wit_result).map_err(to_wit_error)).collect())
    }
}

/// One change, through the same planner as a batch.
fn single(
    action: model::ChangeAction,
    account: wit::AccountRef,
    entitlement: String,
    options: wit::ChangeOptions,
) -> Result<wit::ChangeResult, wit::ConnectorError> {
    let change = model::Change { action, account: from_wit_ref(account), entitlement };
    let mut results = connector()?.apply_batch(&[change], options.dry_run).map_err(to_wit_error)?;
    match results.pop() {
        Some(result) => result.map(to_wit_result).map_err(to_wit_error),
        None => Err(wit::ConnectorError::Internal("the planner returned no result".to_string())),
    }
}

fn from_wit_change(change: wit::Change) -> model::Change {
    let (action, inner) = match change {
        wit::Change::Grant(c) => (model::ChangeAction::Grant, c),
        wit::Change::Revoke(c) => (model::ChangeAction::Revoke, c),
        wit::Change::Set(c) => {
            return model::Change {
                action: model::ChangeAction::Set { group: c.exclusion_group },
                account: from_wit_ref(c.account),
                entitlement: c.entitlement,
            };
        }
    };
    model::Change { action, account: from_wit_ref(inner.account), entitlement: inner.entitlement }
}

fn to_wit_result(result: model::ChangeResult) -> wit::ChangeResult {
    wit::ChangeResult {
        outcome: match result.outcome {
            model::Outcome::Applied => wit::ChangeOutcome::Applied,
            model::Outcome::AlreadyInState => wit::ChangeOutcome::AlreadyInState,
            model::Outcome::Pending => wit::ChangeOutcome::Pending,
            model::Outcome::Planned => wit::ChangeOutcome::Planned,
        },
        replaced: result.replaced,
        account: result.account.map(to_wit_account),
        detail: result.detail,
        requests: result
            .requests
            .into_iter()
            .map(|r| wit::PlannedRequest { method: r.method, path: r.path, body: r.body })
            .collect(),
    }
}

fn from_wit_page(page: wit::PageRequest) -> model::PageRequest {
    model::PageRequest { cursor: page.cursor, size: page.size }
}

fn from_wit_ref(reference: wit::AccountRef) -> model::AccountRef {
    match reference {
        wit::AccountRef::Id(id) => model::AccountRef::Id(id),
        wit::AccountRef::Email(email) => model::AccountRef::Email(email),
    }
}

fn to_wit_account(account: model::Account) -> wit::Account {
    wit::Account {
        id: account.id,
        email: account.email,
        display_name: account.display_name,
        status: match account.status {
            model::AccountStatus::Active => wit::AccountStatus::Active,
            model::AccountStatus::Invited => wit::AccountStatus::Invited,
            model::AccountStatus::Suspended => wit::AccountStatus::Suspended,
        },
        entitlements: account.entitlements,
        managed_by: account.managed_by,
        created_at: account.created_at,
    }
}

fn to_wit_error(error: ConnectorError) -> wit::ConnectorError {
    use wit::ConnectorError as W;
    match error {
        ConnectorError::InvalidConfig(m) => W::InvalidConfig(m),
        ConnectorError::Unauthenticated(m) => W::Unauthenticated(m),
        ConnectorError::PermissionDenied(m) => W::PermissionDenied(m),
        ConnectorError::NotFound(m) => W::NotFound(m),
        ConnectorError::InvalidArgument(m) => W::InvalidArgument(m),
        ConnectorError::Conflict(m) => W::Conflict(m),
        ConnectorError::ManagedExternally(m) => W::ManagedExternally(m),
        ConnectorError::RateLimited { retry_after_ms, message } => {
            W::RateLimited(wit::RateLimit { retry_after_ms, message })
        }
        ConnectorError::Unavailable(m) => W::Unavailable(m),
        ConnectorError::Timeout(m) => W::Timeout(m),
        ConnectorError::Unsupported(m) => W::Unsupported(m),
        ConnectorError::Internal(m) => W::Internal(m),
    }
}

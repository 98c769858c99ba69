//! The contract implemented over a [`Connector`]: what [`export_connector!`](crate::export_connector)
//! exports. Each operation loads the connector from the tenant's settings in `wasi:config`.

use std::marker::PhantomData;

use crate::bindings::exports::accessgov::connector::connector::Guest;
use crate::connector::{ChangeAction, ChangeRequest, Connector};
use crate::settings::WasiConfig;
use crate::types::{
    AccountPage, AccountRef, Change, ChangeOptions, ChangeResult, ConnectorError, ConnectorInfo,
    EntitlementPage, PageRequest,
};

/// The exported component of connector `C`.
pub struct Exported<C>(PhantomData<C>);

fn load<C: Connector>() -> Result<C, ConnectorError> {
    C::load(&WasiConfig::read())
}

/// One change, through the same planner as a batch.
fn single<C: Connector>(
    change: ChangeRequest,
    options: ChangeOptions,
) -> Result<ChangeResult, ConnectorError> {
    let mut results = load::<C>()?.apply_batch(&[change], options.dry_run)?;
    match (results.pop(), results.is_empty()) {
        (Some(result), true) => result,
        _ => Err(ConnectorError::Internal(
            "the planner did not return exactly one result for one change".to_string(),
        )),
    }
}

impl<C: Connector> Guest for Exported<C> {
    fn info() -> ConnectorInfo {
        C::tenant_info(&WasiConfig::read())
    }

    fn test_connection() -> Result<crate::types::ConnectionReport, ConnectorError> {
        load::<C>()?.test_connection()
    }

    fn list_accounts(page: PageRequest) -> Result<AccountPage, ConnectorError> {
        let page = load::<C>()?.list_accounts(&page)?;
        Ok(AccountPage { accounts: page.items, next_cursor: page.next_cursor })
    }

    fn get_account(account: AccountRef) -> Result<crate::types::Account, ConnectorError> {
        load::<C>()?.get_account(&account)
    }

    fn list_entitlements(page: PageRequest) -> Result<EntitlementPage, ConnectorError> {
        let page = load::<C>()?.list_entitlements(&page)?;
        Ok(EntitlementPage { entitlements: page.items, next_cursor: page.next_cursor })
    }

    fn grant(
        account: AccountRef,
        entitlement: String,
        options: ChangeOptions,
    ) -> Result<ChangeResult, ConnectorError> {
        single::<C>(ChangeRequest { action: ChangeAction::Grant, account, entitlement }, options)
    }

    fn revoke(
        account: AccountRef,
        entitlement: String,
        options: ChangeOptions,
    ) -> Result<ChangeResult, ConnectorError> {
        single::<C>(ChangeRequest { action: ChangeAction::Revoke, account, entitlement }, options)
    }

    fn set_entitlement(
        account: AccountRef,
        exclusion_group: String,
        entitlement: String,
        options: ChangeOptions,
    ) -> Result<ChangeResult, ConnectorError> {
        let action = ChangeAction::Set { group: exclusion_group };
        single::<C>(ChangeRequest { action, account, entitlement }, options)
    }

    fn apply_batch(
        changes: Vec<Change>,
        options: ChangeOptions,
    ) -> Result<Vec<Result<ChangeResult, ConnectorError>>, ConnectorError> {
        let changes: Vec<ChangeRequest> = changes.into_iter().map(ChangeRequest::from).collect();
        load::<C>()?.apply_batch(&changes, options.dry_run)
    }
}

/// Exports `$connector` (a type implementing [`Connector`](crate::Connector)) as the component's implementation of
/// the contract, and installs the SDK's allocator ([`alloc::SizeClasses`](crate::alloc)) as the
/// component's. Off `wasm32` it expands to nothing, so the connector's crate also builds natively
/// for its unit tests and benchmarks.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[global_allocator]
            static ALLOCATOR: $crate::alloc::SizeClasses<::std::alloc::System> =
                $crate::alloc::SizeClasses::new(::std::alloc::System);
            type ExportedConnector = $crate::guest::Exported<$connector>;
    $crate::bindings::export!(ExportedConnector with_types_in $crate::bindings);
        };
    };
}

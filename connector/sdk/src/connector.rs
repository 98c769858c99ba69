//! The [`Connector`] trait a connector implements, and the normalized change it plans.

use crate::paging::Page;
use crate::settings::ConfigSource;
use crate::types::{
    Account, AccountRef, Capabilities, Change, ChangeResult, ConnectionReport, ConnectorError,
    ConnectorInfo, Entitlement, PageRequest,
};

/// A connector: the contract's operations over one tenant's settings. Every operation but
/// [`Connector::load`] and [`Connector::info`] defaults to `unsupported`, so a connector
/// implements what its service can do and says so in its [`ConnectorInfo::capabilities`].
///
/// A value lives for one call: the component builds it from the tenant's settings at the start
/// of each operation ([`export_connector!`](crate::export_connector)).
pub trait Connector: Sized {
    /// Builds the connector from its settings, naming the setting that is missing or malformed.
    fn load(config: &dyn ConfigSource) -> Result<Self, ConnectorError>;

    /// Describes the connector: name, version, entitlement kinds, capabilities, settings schema.
    fn info() -> ConnectorInfo;

    /// [`Connector::info`] for a tenant whose settings are `config`: a connector whose
    /// capabilities depend on the settings (a read-only tenant) says so here. Settings that do
    /// not load leave the plain description (the operations then report what is wrong).
    fn tenant_info(config: &dyn ConfigSource) -> ConnectorInfo {
        let _ = config;
        Self::info()
    }

    /// Checks the settings and credentials against the service; the report says what they
    /// leave out of reach.
    fn test_connection(&self) -> Result<ConnectionReport, ConnectorError> {
        Err(unsupported("test-connection"))
    }

    /// One page of accounts.
    fn list_accounts(&self, page: &PageRequest) -> Result<Page<Account>, ConnectorError> {
        let _ = page;
        Err(unsupported("list-accounts"))
    }

    /// One account, by id or email.
    fn get_account(&self, account: &AccountRef) -> Result<Account, ConnectorError> {
        let _ = account;
        Err(unsupported("get-account"))
    }

    /// One page of entitlements.
    fn list_entitlements(&self, page: &PageRequest) -> Result<Page<Entitlement>, ConnectorError> {
        let _ = page;
        Err(unsupported("list-entitlements"))
    }

    /// Plans and (unless `dry_run`) makes `changes`, one result per change in their order.
    /// `grant`, `revoke` and `set-entitlement` are batches of one, so a connector plans every
    /// change in one place.
    fn apply_batch(
        &self,
        changes: &[ChangeRequest],
        dry_run: bool,
    ) -> Result<Vec<Result<ChangeResult, ConnectorError>>, ConnectorError> {
        let _ = (changes, dry_run);
        Err(unsupported("changes"))
    }
}

/// Capabilities of a connector that implements every operation: reads, writes, batches and dry
/// runs.
pub fn every_capability() -> Capabilities {
    Capabilities {
        read_accounts: true,
        read_entitlements: true,
        write: true,
        batch: true,
        dry_run: true,
    }
}

/// The `unsupported` error of an operation the connector does not implement.
pub fn unsupported(operation: &str) -> ConnectorError {
    ConnectorError::Unsupported(format!("this connector does not support {operation}"))
}

/// What a change does to its entitlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeAction {
    /// Make the account hold it.
    Grant,
    /// Make the account stop holding it.
    Revoke,
    /// Make it the one the account holds in this exclusion group.
    Set {
        /// The exclusion group named by the caller.
        group: String,
    },
}

/// One requested change, whichever operation asked for it: the contract's [`Change`] flattened
/// so a planner matches on the action alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRequest {
    /// Grant, revoke or set.
    pub action: ChangeAction,
    /// The account.
    pub account: AccountRef,
    /// The entitlement id.
    pub entitlement: String,
}

impl From<Change> for ChangeRequest {
    fn from(change: Change) -> Self {
        match change {
            Change::Grant(c) => ChangeRequest {
                action: ChangeAction::Grant,
                account: c.account,
                entitlement: c.entitlement,
            },
            Change::Revoke(c) => ChangeRequest {
                action: ChangeAction::Revoke,
                account: c.account,
                entitlement: c.entitlement,
            },
            Change::Set(c) => ChangeRequest {
                action: ChangeAction::Set { group: c.exclusion_group },
                account: c.account,
                entitlement: c.entitlement,
            },
        }
    }
}

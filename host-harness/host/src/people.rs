//! One view of people across a customer's tenants: every account each person (matched by
//! address, in any case) holds in each of the customer's ChatGPT workspaces and API Platform
//! organizations, with its entitlements.
//!
//! The view streams tenant by tenant and page by page, so a large customer is never held in
//! memory: what a caller wants grouped by person it groups itself, or it asks for one person.
//! A tenant that fails is reported with its error, and the others are still listed.

use serde::Serialize;

use crate::call::CallError;
use crate::error::HostError;
use crate::host::Host;
use crate::types::{Account, AccountRef, ConnectorError, PageRequest};

/// One account a person holds in one tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonAccount {
    /// The person's address, in lowercase.
    pub email: String,
    /// The tenant holding the account.
    pub tenant: String,
    /// The account, with its entitlements.
    pub account: Account,
}

/// How one tenant's part of the view ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantOutcome {
    /// The tenant.
    pub tenant: String,
    /// Accounts of people (with an address) shown from it.
    pub accounts: u64,
    /// Accounts without an address (service accounts), left out of a view of people.
    pub without_email: u64,
    /// Why the tenant could not be listed (whole), if it could not; what came before the
    /// failure was shown.
    pub error: Option<String>,
}

/// What the view streams, in order: a tenant's accounts, then its outcome, tenant by tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum PeopleEvent {
    /// An account of a person.
    Account(PersonAccount),
    /// A tenant is done, listed whole or not.
    Tenant(TenantOutcome),
}

impl Host {
    /// Streams to `emit` every account of every person in `customer`'s tenants, or only
    /// `email`'s, tenant by tenant; a whole listing is read in pages of `page_size` (the
    /// connector's default when `None`). Returns each tenant's outcome. The outer error means
    /// the customer has no tenant.
    pub async fn people(
        &self,
        customer: &str,
        email: Option<&str>,
        page_size: Option<u32>,
        mut emit: impl FnMut(PeopleEvent),
    ) -> Result<Vec<TenantOutcome>, HostError> {
        let tenants = self.customer_tenants(customer);
        if tenants.is_empty() {
            return Err(HostError::UnknownCustomer(customer.to_string()));
        }
        let wanted = email.map(str::to_lowercase);
        let mut outcomes = Vec::new();
        for tenant in tenants {
            let mut outcome = TenantOutcome {
                tenant: tenant.clone(),
                accounts: 0,
                without_email: 0,
                error: None,
            };
            let mut show = |account: Account, outcome: &mut TenantOutcome| match &account.email {
                Some(address) => {
                    outcome.accounts += 1;
                    emit(PeopleEvent::Account(PersonAccount {
                        email: address.to_lowercase(),
                        tenant: tenant.clone(),
                        account,
                    }));
                }
                None => outcome.without_email += 1,
            };
            match &wanted {
                Some(address) => {
                    let reference = AccountRef::Email(address.clone());
                    match self.get_account(&tenant, reference).await.map(|r| r.result) {
                        Ok(Ok(account)) => show(account, &mut outcome),
                        Ok(Err(CallError::Connector(ConnectorError::NotFound(_)))) => {}
                        Ok(Err(error)) => outcome.error = Some(error.to_string()),
                        Err(error) => outcome.error = Some(error.to_string()),
                    }
                }
                None => {
                    let mut cursor = None;
                    loop {
                        let request = PageRequest { cursor: cursor.take(), size: page_size };
                        let page = match self.list_accounts(&tenant, request).await {
                            Ok(report) => report.result.map_err(|e| e.to_string()),
                            Err(error) => Err(error.to_string()),
                        };
                        match page {
                            Ok(page) => {
                                for account in page.accounts {
                                    show(account, &mut outcome);
                                }
                                match page.next_cursor {
                                    Some(next) => cursor = Some(next),
                                    None => break,
                                }
                            }
                            Err(error) => {
                                outcome.error = Some(error);
                                break;
                            }
                        }
                    }
                }
            }
            emit(PeopleEvent::Tenant(outcome.clone()));
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}

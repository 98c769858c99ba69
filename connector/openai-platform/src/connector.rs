//! The connector: the contract's operations over one organization's Admin API.

use connector_sdk::client::{JsonClient, RetryClock};
use connector_sdk::connector::every_capability;
use connector_sdk::settings::ConfigSource;
use connector_sdk::transport::Transport;
use connector_sdk::types::{
    Account, AccountRef, ConnectionReport, ConnectorInfo, Entitlement, PageRequest,
};
use connector_sdk::{ChangeRequest, Connector, ConnectorError, Page};

use crate::accounts::account_of;
use crate::api::{Client, PlatformApi, Reads, User};
use crate::directory::{Finder, Org, read_org};
use crate::settings::{CONFIG_SCHEMA, Settings};
use crate::{catalog, changes, listing};

/// What the connector is.
pub fn info() -> ConnectorInfo {
    ConnectorInfo {
        name: "openai-platform".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        application: "OpenAI API Platform organization".to_string(),
        entitlement_kinds: catalog::KINDS.map(String::from).to_vec(),
        exclusion_groups: catalog::exclusion_groups(),
        capabilities: every_capability(),
        config_schema: CONFIG_SCHEMA.to_string(),
    }
}

/// The connector for one organization.
pub struct PlatformConnector<T: Transport> {
    transport: T,
    settings: Settings,
    retrying: RetryClock,
}

impl<T: Transport> PlatformConnector<T> {
    /// A connector sending through `transport` with validated `settings`.
    pub fn new(transport: T, settings: Settings) -> Self {
        PlatformConnector { transport, settings, retrying: RetryClock::default() }
    }

    /// A client of the Admin API; every client of one call shares its retry budget.
    fn client(&self) -> Client<'_, T> {
        JsonClient::on(
            PlatformApi,
            &self.transport,
            self.settings.base_url.clone(),
            self.settings.retry,
            self.retrying.clone(),
        )
    }
}

impl<T: Transport + Default> Connector for PlatformConnector<T> {
    fn load(config: &dyn ConfigSource) -> Result<Self, ConnectorError> {
        Ok(PlatformConnector::new(T::default(), Settings::load(config)?))
    }

    fn info() -> ConnectorInfo {
        info()
    }

    fn test_connection(&self) -> Result<ConnectionReport, ConnectorError> {
        let client = self.client();
        Reads(&client).classic_page::<User>("organization/users", None, 1)?;
        let mut limitations = Vec::new();
        if !self.settings.invite_on_role_grant {
            limitations.push(
                "a role grant to someone not in the organization is refused rather than inviting them (`invite-on-role-grant` is false)".to_string(),
            );
        }
        Ok(ConnectionReport { limitations })
    }

    fn list_accounts(&self, page: &PageRequest) -> Result<Page<Account>, ConnectorError> {
        listing::accounts(&self.client(), &self.settings, page)
    }

    fn get_account(&self, account: &AccountRef) -> Result<Account, ConnectorError> {
        let client = self.client();
        let person = Finder::new(&client).find(account)?;
        if person.is_nobody() {
            return Err(ConnectorError::NotFound(match account {
                AccountRef::Email(email) => {
                    format!("no member or invite has the address {email:?}")
                }
                AccountRef::Id(id) => {
                    format!("no member, invite or service account has the id {id:?}")
                }
            }));
        }
        // Only a member's holdings need the organization's projects and groups.
        let org = if person.user.is_some() { read_org(&client)? } else { Org::default() };
        account_of(&client, &org, &person)?
            .ok_or_else(|| ConnectorError::Internal("a person found has no account".to_string()))
    }

    fn list_entitlements(&self, page: &PageRequest) -> Result<Page<Entitlement>, ConnectorError> {
        listing::entitlements(&self.client(), &self.settings, page)
    }

    fn apply_batch(
        &self,
        changes: &[ChangeRequest],
        dry_run: bool,
    ) -> Result<Vec<Result<connector_sdk::types::ChangeResult, ConnectorError>>, ConnectorError>
    {
        changes::apply(&self.client(), &self.settings, changes, dry_run)
    }
}

//! The connector's settings, read from `wasi:config` through the SDK.

use connector_sdk::ConnectorError;
use connector_sdk::settings::{ConfigSource, RetryPolicy, SettingsReader};

/// The Admin API of the public service.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The largest page of accounts or entitlements one call returns.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The settings schema `info` publishes.
pub const CONFIG_SCHEMA: &str = concat!(
    r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "OpenAI API Platform organization connector settings",
  "type": "object",
  "properties": {
    "base-url": {"type": "string", "format": "uri", "pattern": "^https?://", "description": "The Admin API base (default https://api.openai.com/v1); the organization's Admin API key is injected by the host for its origin"},
    "page-size": {"type": "string", "pattern": "^[0-9]+$", "description": "Default page size of listings, 1 to 1000 (default 100)"},
    "invite-on-role-grant": {"type": "string", "enum": ["true", "false"], "description": "Whether a grant of an organization or project role to someone not in the organization invites them with it (default true); false refuses such a grant, so only a grant of `organization` invites"},
    "#,
    connector_sdk::retry_schema_properties!(),
    r#"
  },
  "additionalProperties": false
}"#
);

/// One tenant's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The Admin API base, without a trailing slash.
    pub base_url: String,
    /// Default page size of listings.
    pub page_size: u32,
    /// Whether a role grant to someone not in the organization invites them.
    pub invite_on_role_grant: bool,
    /// How requests are retried.
    pub retry: RetryPolicy,
}

impl Settings {
    /// Reads the settings, naming any that is malformed.
    pub fn load(config: &dyn ConfigSource) -> Result<Self, ConnectorError> {
        Self::read(&SettingsReader::new(config))
    }

    /// Reads the settings from `settings`.
    pub fn read(settings: &SettingsReader<'_>) -> Result<Self, ConnectorError> {
        let base_url =
            settings.optional_base_url("base-url")?.unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let page_size = settings.number("page-size", 1, u64::from(MAX_PAGE_SIZE), 100)? as u32;
        let invite_on_role_grant = settings.flag("invite-on-role-grant", true)?;
        Ok(Settings {
            base_url,
            page_size,
            invite_on_role_grant,
            retry: RetryPolicy::load(settings)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_sdk::settings::check_schema;

    #[test]
    fn the_schema_describes_exactly_what_is_read() {
        let sample = [
            ("base-url", "https://api.openai.com/v1"),
            ("page-size", "250"),
            ("invite-on-role-grant", "false"),
            ("max-attempts", "3"),
            ("retry-base-ms", "10"),
            ("retry-budget-ms", "1000"),
        ];
        check_schema(CONFIG_SCHEMA, &sample, Settings::read).unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let config: std::collections::HashMap<String, String> =
            [("invite-on-role-grant".to_string(), "maybe".to_string())].into();
        let error = Settings::load(&config).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::InvalidConfig(m) if m.contains("invite-on-role-grant"))
        );
        let config: std::collections::HashMap<String, String> =
            [("base-url".to_string(), "ftp://api.openai.com".to_string())].into();
        assert!(matches!(Settings::load(&config), Err(ConnectorError::InvalidConfig(_))));
        let defaults = Settings::load(&std::collections::HashMap::<String, String>::new()).unwrap();
        assert_eq!(defaults.base_url, DEFAULT_BASE_URL);
        assert!(defaults.invite_on_role_grant);
    }
}

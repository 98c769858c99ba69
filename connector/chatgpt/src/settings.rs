//! The connector's settings, read from the host's configuration store and validated once per call.

use crate::accounts::validate_email;
use crate::workspace::{Plan, SeatChanges};
use connector_sdk::ConnectorError;
use connector_sdk::settings::{ConfigSource, RetryPolicy, SettingsReader};

/// Largest page the console API serves.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Largest page a listing hands its caller. A larger page than the console's is filled from
/// several console pages in one call, so a sync of a big workspace pays the per-call cost (a
/// fresh instance, its settings, its connection) once per thousand accounts, not per hundred;
/// the guest still holds one page at a time.
pub const MAX_LIST_SIZE: u32 = 1000;
/// Page size used when neither the caller nor the settings name one.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Console pages one listing call asks for at once when the settings do not say. Against the
/// real service a page takes tens to hundreds of milliseconds, so a call filled from ten pages
/// waits for three rounds instead of ten (four in a listing's first call, whose first page goes
/// alone to learn the listing's length). Four is a modest load: how much the service throttles a
/// workspace is not known, and a throttled page is retried on its own.
pub const DEFAULT_READ_CONCURRENCY: u32 = 4;
/// The most console pages a listing call may ask for at once.
pub const MAX_READ_CONCURRENCY: u32 = 16;

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Base URL of the admin console API without a trailing slash, e.g.
    /// `https://chatgpt.com/backend-api`; `None` for a read-only review tenant, which reads
    /// members through the public Admin API alone.
    pub base_url: Option<String>,
    /// Base URL of the public ChatGPT Admin API, e.g. `https://api.chatgpt.com/v1`: members are
    /// read through it (1,000 a request, with a read-only key) when set.
    pub admin_api_base_url: Option<String>,
    /// The plan of a workspace read without a console (which would say it): `enterprise` or
    /// `edu`, the plans the Admin API serves.
    pub plan_without_console: Plan,
    /// The workspace (account) id.
    pub account_id: String,
    /// Base URL of the workspace's SCIM 2.0 directory, e.g.
    /// `https://<host>/scim/v2.0/<directory>`; `None` leaves groups out.
    pub scim_base_url: Option<String>,
    /// Default page size for listings, 1 to [`MAX_LIST_SIZE`].
    pub page_size: u32,
    /// Console pages a listing call or a lookup scanning the console asks for at once, 1 to
    /// [`MAX_READ_CONCURRENCY`].
    pub read_concurrency: u32,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
    /// The email of the integration account the customer invited and made Owner (the account
    /// the token acts as); `None` leaves it unchecked.
    pub integration_account: Option<String>,
    /// How an existing member's seat type changes, when the tenant says; `None` follows the
    /// plan (self-service on Business, the account manager elsewhere).
    pub seat_changes: Option<SeatChanges>,
    /// Whether the workspace's pending join requests are listed and approved (default true).
    pub join_requests: bool,
    /// Whether the workspace's console groups are listed and changed (default true).
    pub console_groups: bool,
}

/// JSON Schema of the settings, published by `info`.
pub const CONFIG_SCHEMA: &str = concat!(
    r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "ChatGPT workspace connector settings",
  "type": "object",
  "properties": {
    "base-url": {"type": "string", "format": "uri", "pattern": "^https?://", "description": "Admin console API base, e.g. https://chatgpt.com/backend-api; leave it out (with admin-api-base-url set) for a read-only review tenant"},
    "admin-api-base-url": {"type": "string", "format": "uri", "pattern": "^https?://", "description": "Public ChatGPT Admin API base, e.g. https://api.chatgpt.com/v1 (Enterprise and Edu): members are read through it with a workspace-scoped Admin key holding chatgpt.enterprise.user.read, injected by the host for its origin"},
    "plan": {"type": "string", "enum": ["enterprise", "edu"], "description": "The workspace's plan, for a read-only tenant without base-url (default enterprise); with a console the plan is read from the workspace"},
    "account-id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$", "description": "The workspace id"},
    "scim-base-url": {"type": "string", "format": "uri", "pattern": "^https?://", "description": "The workspace's SCIM 2.0 directory, e.g. https://<host>/scim/v2.0/<directory>; enables group entitlements (its token is injected by the host like the console's)"},
    "page-size": {"type": "string", "pattern": "^[0-9]+$", "description": "Default page size of listings, 1 to 1000 (default 100)"},
    "integration-account": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$", "description": "Email of the integration account the customer invited and made Owner; test-connection checks it is an active Owner, and writes that need an Owner are refused before sending when it is not"},
    "seat-changes": {"type": "string", "enum": ["account-manager", "self-service"], "description": "How an existing member's seat type changes: through the OpenAI account manager, or in the console (default: self-service on Business, the account manager on other plans)"},
    "console-groups": {"type": "string", "enum": ["true", "false"], "description": "List console groups as group:<id> entitlements (kind console-group), report the members in them and change their membership through the console (default true); false for a workspace whose console serves none"},
    "join-requests": {"type": "string", "enum": ["true", "false"], "description": "List pending join requests as accounts with status requested, approved by a grant and rejected by revoking `workspace` (default true); false for a workspace whose console serves none"},
    "read-concurrency": {"type": "string", "pattern": "^[0-9]+$", "description": "Console pages fetched at once by a listing of more than 100 accounts or a lookup scanning the console, 1 to 16 (default 4)"},
    "#,
    connector_sdk::retry_schema_properties!(),
    r#"
  },
  "required": ["account-id"],
  "additionalProperties": false
}"#,
);

impl Settings {
    /// Reads and validates the settings; the error names the offending key.
    pub fn load(source: &dyn ConfigSource) -> Result<Self, ConnectorError> {
        Self::read(&SettingsReader::new(source))
    }

    /// [`Settings::load`] through `settings`, which remembers the keys read.
    pub fn read(settings: &SettingsReader<'_>) -> Result<Self, ConnectorError> {
        let base_url = settings.optional_base_url("base-url")?;
        let admin_api_base_url = settings.optional_base_url("admin-api-base-url")?;
        if base_url.is_none() && admin_api_base_url.is_none() {
            return Err(ConnectorError::InvalidConfig(
                "setting `base-url` is required (or, for a read-only review tenant, `admin-api-base-url`)"
                    .to_string(),
            ));
        }
        let plan_without_console = match settings.optional("plan")?.as_deref() {
            None | Some("enterprise") => Plan::Enterprise,
            Some("edu") => Plan::Edu,
            Some(other) => {
                return Err(ConnectorError::InvalidConfig(format!(
                    "setting `plan` must be `enterprise` or `edu` (the plans the Admin API serves), got {other:?}"
                )));
            }
        };
        let scim_base_url = settings.optional_base_url("scim-base-url")?;
        let account_id = settings.required("account-id")?;
        if account_id.len() > 128
            || !account_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConnectorError::InvalidConfig(format!(
                "setting `account-id` must be 1 to 128 letters, digits, `-` or `_`, got {account_id:?}"
            )));
        }
        let page_size = match settings.raw("page-size")? {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => parse_page_size(raw.trim()).map_err(|why| {
                ConnectorError::InvalidConfig(format!("setting `page-size` {why}"))
            })?,
        };
        let retry = RetryPolicy::load(settings)?;
        let read_concurrency = settings.number(
            "read-concurrency",
            1,
            u64::from(MAX_READ_CONCURRENCY),
            u64::from(DEFAULT_READ_CONCURRENCY),
        )? as u32;
        let integration_account = match settings.raw("integration-account")? {
            None => None,
            Some(raw) => Some(validate_email(raw.trim()).map_err(|_| {
                ConnectorError::InvalidConfig(format!(
                    "setting `integration-account` must be an email address, got {raw:?}"
                ))
            })?),
        };
        let seat_changes = match settings.raw("seat-changes")? {
            None => None,
            Some(raw) => Some(SeatChanges::parse(raw.trim()).ok_or_else(|| {
                ConnectorError::InvalidConfig(format!(
                    "setting `seat-changes` must be `account-manager` or `self-service`, got {raw:?}"
                ))
            })?),
        };
        let join_requests = settings.flag("join-requests", true)?;
        let console_groups = settings.flag("console-groups", true)?;
        Ok(Settings {
            join_requests,
            console_groups,
            base_url,
            admin_api_base_url,
            plan_without_console,
            account_id,
            scim_base_url,
            page_size,
            read_concurrency,
            retry,
            integration_account,
            seat_changes,
        })
    }

    /// The URL every console path of this workspace sits below: `{base-url}/accounts/{id}`;
    /// `None` for a tenant without a console.
    pub fn account_base(&self) -> Option<String> {
        self.base_url.as_ref().map(|base| format!("{base}/accounts/{}", self.account_id))
    }

    /// The URL every Admin API path of this workspace sits below:
    /// `{admin-api-base-url}/manage/workspaces/{id}`.
    pub fn admin_base(&self) -> Option<String> {
        let base = self.admin_api_base_url.as_ref()?;
        Some(format!("{base}/manage/workspaces/{}", self.account_id))
    }

    /// Whether the tenant reads through the Admin API alone: no console, so no invites, no join
    /// requests and no writes.
    pub fn read_only(&self) -> bool {
        self.base_url.is_none()
    }

    /// Page size to use for a request that asked for `requested`.
    pub fn effective_page_size(&self, requested: Option<u32>) -> Result<u32, ConnectorError> {
        connector_sdk::paging::page_size(requested, self.page_size, MAX_LIST_SIZE)
    }
}

fn parse_page_size(raw: &str) -> Result<u32, String> {
    match raw.parse::<u32>() {
        Ok(n) if (1..=MAX_LIST_SIZE).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {MAX_LIST_SIZE}, got {raw:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_published_schema_matches_what_the_settings_read() {
        let sample = [
            ("base-url", "https://chatgpt.com/backend-api"),
            ("account-id", "ws-1"),
            ("integration-account", "ops@acme.com"),
            ("seat-changes", "self-service"),
            ("join-requests", "false"),
            ("console-groups", "true"),
            ("admin-api-base-url", "https://api.chatgpt.com/v1"),
            ("plan", "edu"),
        ];
        connector_sdk::settings::check_schema(CONFIG_SCHEMA, &sample, Settings::read).unwrap();
    }

    fn source(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_base_url_with_credentials_is_refused_without_echoing_them() {
        let error = Settings::load(&source(&[
            ("base-url", "https://admin:hunter2@chatgpt.com/backend-api"),
            ("account-id", "ws-1"),
        ]))
        .unwrap_err();
        let ConnectorError::InvalidConfig(message) = &error else { panic!("{error:?}") };
        assert!(message.contains("must not carry credentials"), "{message}");
        assert!(!message.contains("hunter2") && !message.contains("admin"), "{message}");
    }

    #[test]
    fn loads_valid_settings_and_trims_the_base_url() {
        let s = Settings::load(&source(&[
            ("base-url", "https://chatgpt.com/backend-api/"),
            ("account-id", "ws-1"),
            ("page-size", "25"),
        ]))
        .unwrap();
        assert_eq!(s.base_url.as_deref(), Some("https://chatgpt.com/backend-api"));
        assert_eq!(s.page_size, 25);
        assert_eq!(s.read_concurrency, DEFAULT_READ_CONCURRENCY);
        assert_eq!(s.account_base().unwrap(), "https://chatgpt.com/backend-api/accounts/ws-1");
    }

    #[test]
    fn names_the_bad_setting() {
        let cases = [
            (vec![("account-id", "a")], "`base-url` is required (or, for a read-only"),
            (
                vec![
                    ("admin-api-base-url", "https://x"),
                    ("account-id", "a"),
                    ("plan", "business"),
                ],
                "`plan` must be `enterprise` or `edu`",
            ),
            (vec![("base-url", "ftp://x"), ("account-id", "a")], "`base-url` must start"),
            (vec![("base-url", "https://x")], "`account-id` is required"),
            (
                vec![("base-url", "https://x"), ("account-id", "a"), ("scim-base-url", "scim")],
                "`scim-base-url` must start",
            ),
            (vec![("base-url", "https://x"), ("account-id", "a/b")], "`account-id` must be"),
            (
                vec![("base-url", "https://x"), ("account-id", "a"), ("page-size", "1001")],
                "`page-size` must be",
            ),
            (
                vec![("base-url", "https://x"), ("account-id", "a"), ("page-size", "ten")],
                "`page-size` must be",
            ),
            (
                vec![("base-url", "https://x"), ("account-id", "a"), ("read-concurrency", "0")],
                "`read-concurrency` must be a whole number from 1 to 16, got \"0\"",
            ),
            (
                vec![("base-url", "https://x"), ("account-id", "a"), ("read-concurrency", "17")],
                "`read-concurrency` must be a whole number from 1 to 16",
            ),
            (
                vec![
                    ("base-url", "https://x"),
                    ("account-id", "a"),
                    ("integration-account", "ops"),
                ],
                "`integration-account` must be an email address, got \"ops\"",
            ),
            (
                vec![("base-url", "https://x"), ("account-id", "a"), ("seat-changes", "manual")],
                "`seat-changes` must be `account-manager` or `self-service`",
            ),
        ];
        for (pairs, want) in cases {
            let err = Settings::load(&source(&pairs)).unwrap_err();
            match err {
                ConnectorError::InvalidConfig(msg) => assert!(msg.contains(want), "{msg}"),
                other => panic!("expected invalid-config, got {other:?}"),
            }
        }
    }
}

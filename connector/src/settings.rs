//! The connector's settings, read from the host's configuration store and validated once per call.

use crate::error::ConnectorError;

/// Where settings come from (`wasi:config/store` in the component, a map in native tests).
pub trait ConfigSource {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Result<Option<String>, String>;
}

impl ConfigSource for std::collections::HashMap<String, String> {
    fn get(&self, key: &str) -> Result<Option<String>, String> {
        Ok(std::collections::HashMap::get(self, key).cloned())
    }
}

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
    /// Base URL of the admin console API without a trailing slash, e.g. `https://chatgpt.com/backend-api`.
    pub base_url: String,
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
}

/// How the connector retries requests that failed in a way worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 to 10).
    pub max_attempts: u32,
    /// First backoff; it doubles each attempt, with jitter, up to 10 s.
    pub base_delay: std::time::Duration,
    /// Total time one call may spend retrying, across all its requests: the waits between
    /// attempts and the repeated attempts. Once spent, a failure is final at once.
    pub budget: std::time::Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: std::time::Duration::from_millis(500),
            budget: std::time::Duration::from_secs(30),
        }
    }
}

/// JSON Schema of the settings, published by `info`.
pub const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "ChatGPT workspace connector settings",
  "type": "object",
  "properties": {
    "base-url": {"type": "string", "format": "uri", "pattern": "^https?://", "description": "Admin console API base, e.g. https://chatgpt.com/backend-api"},
    "account-id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$", "description": "The workspace id"},
    "scim-base-url": {"type": "string", "format": "uri", "pattern": "^https?://", "description": "The workspace's SCIM 2.0 directory, e.g. https://<host>/scim/v2.0/<directory>; enables group entitlements (its token is injected by the host like the console's)"},
    "page-size": {"type": "string", "pattern": "^[0-9]+$", "description": "Default page size of listings, 1 to 1000 (default 100)"},
    "read-concurrency": {"type": "string", "pattern": "^[0-9]+$", "description": "Console pages fetched at once by a listing of more than 100 accounts or a lookup scanning the console, 1 to 16 (default 4)"},
    "max-attempts": {"type": "string", "pattern": "^[0-9]+$", "description": "Attempts per request when the service throttles or fails, 1 to 10 (default 4)"},
    "retry-base-ms": {"type": "string", "pattern": "^[0-9]+$", "description": "First retry backoff in milliseconds, doubling with jitter (default 500)"},
    "retry-budget-ms": {"type": "string", "pattern": "^[0-9]+$", "description": "Total time one call may spend retrying, across all its requests (waits and repeated attempts), in milliseconds (default 30000); once spent, failures are reported at once"}
  },
  "required": ["base-url", "account-id"],
  "additionalProperties": false
}"#;

impl Settings {
    /// Reads and validates the settings; the error names the offending key.
    pub fn load(source: &dyn ConfigSource) -> Result<Self, ConnectorError> {
        let read = |key: &str| {
            source.get(key).map_err(|e| {
                ConnectorError::InvalidConfig(format!("could not read setting `{key}`: {e}"))
            })
        };
        let required = |key: &str| {
            read(key)?.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).ok_or_else(|| {
                ConnectorError::InvalidConfig(format!("setting `{key}` is required"))
            })
        };

        let base_url = required("base-url")?;
        let base_url = validate_base_url("base-url", &base_url)?;
        let scim_base_url = match read("scim-base-url")?.map(|v| v.trim().to_string()) {
            Some(raw) if !raw.is_empty() => Some(validate_base_url("scim-base-url", &raw)?),
            _ => None,
        };
        let account_id = required("account-id")?;
        if account_id.len() > 128
            || !account_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConnectorError::InvalidConfig(format!(
                "setting `account-id` must be 1 to 128 letters, digits, `-` or `_`, got {account_id:?}"
            )));
        }
        let page_size = match read("page-size")? {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => parse_page_size(raw.trim()).map_err(|why| {
                ConnectorError::InvalidConfig(format!("setting `page-size` {why}"))
            })?,
        };
        let number = |key: &str, min: u64, max: u64, default: u64| -> Result<u64, ConnectorError> {
            match read(key)? {
                None => Ok(default),
                Some(raw) => match raw.trim().parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(ConnectorError::InvalidConfig(format!(
                        "setting `{key}` must be a whole number from {min} to {max}, got {raw:?}"
                    ))),
                },
            }
        };
        let defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            max_attempts: number("max-attempts", 1, 10, u64::from(defaults.max_attempts))? as u32,
            base_delay: std::time::Duration::from_millis(number(
                "retry-base-ms",
                0,
                60_000,
                defaults.base_delay.as_millis() as u64,
            )?),
            budget: std::time::Duration::from_millis(number(
                "retry-budget-ms",
                0,
                600_000,
                defaults.budget.as_millis() as u64,
            )?),
        };
        let read_concurrency = number(
            "read-concurrency",
            1,
            u64::from(MAX_READ_CONCURRENCY),
            u64::from(DEFAULT_READ_CONCURRENCY),
        )? as u32;
        Ok(Settings { base_url, account_id, scim_base_url, page_size, read_concurrency, retry })
    }

    /// The URL every console path of this workspace sits below: `{base-url}/accounts/{id}`.
    pub fn account_base(&self) -> String {
        format!("{}/accounts/{}", self.base_url, self.account_id)
    }

    /// Page size to use for a request that asked for `requested`.
    pub fn effective_page_size(&self, requested: Option<u32>) -> Result<u32, ConnectorError> {
        match requested {
            None => Ok(self.page_size),
            Some(0) => {
                Err(ConnectorError::InvalidArgument("page size must be at least 1".to_string()))
            }
            Some(n) => Ok(n.min(MAX_LIST_SIZE)),
        }
    }
}

fn parse_page_size(raw: &str) -> Result<u32, String> {
    match raw.parse::<u32>() {
        Ok(n) if (1..=MAX_LIST_SIZE).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {MAX_LIST_SIZE}, got {raw:?}")),
    }
}

fn validate_base_url(key: &str, raw: &str) -> Result<String, ConnectorError> {
    let bad =
        |why: &str| ConnectorError::InvalidConfig(format!("setting `{key}` {why}, got {raw:?}"));
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with https:// or http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.contains('@') {
        // Not echoed: what stands before the `@` is a user name and perhaps a password.
        return Err(ConnectorError::InvalidConfig(format!(
            "setting `{key}` must not carry credentials (`user:password@`); the host injects the tenant's credentials"
        )));
    }
    if host.is_empty() {
        return Err(bad("must name a host"));
    }
    if raw.contains(['?', '#', ' ']) {
        return Err(bad("must not contain a query, fragment or spaces"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        assert_eq!(s.base_url, "https://chatgpt.com/backend-api");
        assert_eq!(s.page_size, 25);
        assert_eq!(s.read_concurrency, DEFAULT_READ_CONCURRENCY);
        assert_eq!(s.account_base(), "https://chatgpt.com/backend-api/accounts/ws-1");
    }

    #[test]
    fn names_the_bad_setting() {
        let cases = [
            (vec![("account-id", "a")], "`base-url` is required"),
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

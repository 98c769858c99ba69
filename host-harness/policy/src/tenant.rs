//! Tenants as plain data: who a call runs for, which connector, its settings, the origins it may
//! reach and the credentials the host injects for them. Read from a TOML file or built in code;
//! the host validates them when they are registered.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// A file of tenants: `[[tenant]]` tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantsFile {
    /// The tenants.
    #[serde(rename = "tenant", default)]
    pub tenants: Vec<TenantConfig>,
}

/// One tenant as written in the tenants file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TenantConfig {
    /// Unique id: letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// A registered connector name (`chatgpt` and `openai-platform` are bundled) or a path to a
    /// `.wasm` component.
    pub connector: String,
    /// The customer the tenant belongs to (letters, digits, `-`, `_`, `.`): one customer's
    /// ChatGPT workspaces and API Platform organizations, viewed together by `harness people`.
    #[serde(default)]
    pub customer: Option<String>,
    /// Origins (`scheme://host[:port]`) the connector may send requests to; nothing else.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Settings served to the connector through `wasi:config/store`.
    #[serde(default)]
    pub settings: BTreeMap<String, SettingValue>,
    /// Credentials injected into requests to an origin.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    /// Let the connector reach private, loopback and link-local addresses (off by default).
    #[serde(default)]
    pub allow_private_addresses: bool,
    /// Per-call limits; unset fields use the host's defaults.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// A setting value: TOML strings, integers and booleans are all served as strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    /// A string.
    Text(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Flag(bool),
}

impl<'de> Deserialize<'de> for SettingValue {
    /// By hand rather than `untagged`, whose error ("did not match any variant") names neither
    /// what was found nor what is accepted.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SettingValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a setting value: a string, an integer or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SettingValue, E> {
                Ok(SettingValue::Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SettingValue, E> {
                Ok(SettingValue::Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SettingValue, E> {
                i64::try_from(v)
                    .map(SettingValue::Integer)
                    .map_err(|_| E::custom(format!("the integer {v} is too large for a setting")))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<SettingValue, E> {
                Ok(SettingValue::Flag(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Text(s) => f.write_str(s),
            SettingValue::Integer(n) => write!(f, "{n}"),
            SettingValue::Flag(b) => write!(f, "{b}"),
        }
    }
}

/// Credentials for one origin, or for the paths below a prefix of it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CredentialConfig {
    /// The origin they are sent to.
    pub origin: String,
    /// Only requests whose path is this prefix or below it get these credentials, e.g.
    /// `/scim/v2.0/dir-1` when the SCIM directory shares its origin with the console and takes
    /// another token. Of several matching credentials of an origin the longest prefix wins.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// A bearer token, sent as `Authorization: Bearer ...`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// The name of a host environment variable holding the bearer token (keeps secrets out of files).
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// Further headers to set, e.g. `chatgpt-account-id`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("origin", &self.origin)
            .field("path_prefix", &self.path_prefix)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "<redacted>"))
            .field("bearer_token_env", &self.bearer_token_env)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Per-call limits of a tenant.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Wall-clock budget of one call, in milliseconds.
    pub call_timeout_ms: Option<u64>,
    /// Largest linear memory of the guest, in MiB.
    pub memory_mib: Option<u64>,
    /// Largest HTTP response body, in bytes.
    pub max_response_bytes: Option<u64>,
    /// Captured stdout/stderr kept per call, in bytes.
    pub max_log_bytes: Option<usize>,
    /// Connect timeout of outgoing requests, in milliseconds.
    pub connect_timeout_ms: Option<u64>,
    /// Time to the first response byte, in milliseconds.
    pub first_byte_timeout_ms: Option<u64>,
    /// Largest gap between response bytes, in milliseconds.
    pub between_bytes_timeout_ms: Option<u64>,
    /// Outgoing requests of the tenant in flight at once.
    pub max_concurrent_requests: Option<usize>,
}

/// The largest tenants file read.
pub const MAX_TENANTS_FILE_BYTES: u64 = 4 << 20;

impl TenantsFile {
    /// Reads and parses a tenants file.
    pub fn read(path: &Path) -> Result<Self, TenantsFileError> {
        let fail = |message: String| TenantsFileError { path: path.to_path_buf(), message };
        let text = crate::bounded_read::read_text(path, MAX_TENANTS_FILE_BYTES)
            .map_err(|e| fail(e.to_string()))?;
        let file: TenantsFile = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        if file.tenants.is_empty() {
            return Err(fail("defines no [[tenant]]".to_string()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for tenant in &file.tenants {
            if !seen.insert(tenant.id.as_str()) {
                return Err(fail(format!("tenant id `{}` appears twice", tenant.id)));
            }
        }
        Ok(file)
    }

    /// The tenant with `id`; with `None`, the only tenant of the file.
    pub fn select(&self, id: Option<&str>) -> Result<&TenantConfig, String> {
        match id {
            Some(id) => self.tenants.iter().find(|t| t.id == id).ok_or_else(|| {
                let ids: Vec<&str> = self.tenants.iter().map(|t| t.id.as_str()).collect();
                format!("no tenant `{id}` in the file (it has: {})", ids.join(", "))
            }),
            None if self.tenants.len() == 1 => Ok(&self.tenants[0]),
            None => Err("the file has several tenants; name one with --tenant".to_string()),
        }
    }
}

/// Why a tenants file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("tenants file {}: {message}", path.display())]
pub struct TenantsFileError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What is wrong.
    pub message: String,
}

//! The server's configuration file (TOML).
//!
//! ```toml
//! listen = "127.0.0.1:8443"          # loopback by default
//! audit-log = "audit.jsonl"
//! [tls]                               # optional: serve HTTPS
//! certificate = "server.crt"          # PEM chain
//! private-key = "server.key"          # PEM key
//! [limits]                            # optional
//! max-body-bytes = 1048576
//! max-upload-bytes = 33554432
//! drain-timeout-ms = 10000
//! [[key]]
//! id = "platform-a"
//! sha256 = "<hex of the key's SHA-256>"
//! customers = ["acme"]                # and/or tenants = ["acme-chatgpt"]
//! access = "read-write"               # or "read-only"
//! requests-per-minute = 600
//! [[tenant]]                          # registered at start, as in a tenants file
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use accessgov_policy::tenant::TenantConfig;
use serde::Deserialize;

/// The most a configuration file may hold.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Why the configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A value is wrong; the message names the field.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Whether a key may change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Reads only; every write is 403.
    ReadOnly,
    /// Reads and writes (and managing tenants and connectors in its scope).
    ReadWrite,
}

/// One API key as configured: its hash, never the key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyConfig {
    /// Names the key in the audit log and metrics.
    pub id: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// Tenants it may use, by id.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Customers whose tenants it may use.
    #[serde(default)]
    pub customers: Vec<String>,
    /// Whether it may change anything.
    pub access: Access,
    /// Requests a minute it may make (default 600).
    #[serde(default = "default_rate")]
    pub requests_per_minute: u32,
    /// Whether it is an operator's key: it may upload, replace and remove connectors (which every
    /// tenant shares) and read the metrics (which name every tenant).
    #[serde(default)]
    pub operator: bool,
}

fn default_rate() -> u32 {
    600
}

/// TLS: a certificate chain and its key, PEM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub private_key: PathBuf,
}

/// Size and time limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerLimits {
    /// Largest JSON request body.
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Largest connector upload.
    #[serde(default = "default_upload")]
    pub max_upload_bytes: usize,
    /// How long calls in flight may run on after shutdown begins.
    #[serde(default = "default_drain")]
    pub drain_timeout_ms: u64,
    /// Changes per call of a batch job (progress and cancellation happen between calls).
    #[serde(default = "default_job_call")]
    pub job_items_per_call: usize,
}

fn default_body() -> usize {
    1 << 20
}
fn default_upload() -> usize {
    32 << 20
}
fn default_drain() -> u64 {
    10_000
}
fn default_job_call() -> usize {
    100
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_body_bytes: default_body(),
            max_upload_bytes: default_upload(),
            drain_timeout_ms: default_drain(),
            job_items_per_call: default_job_call(),
        }
    }
}

/// The configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// Where to listen (default `127.0.0.1:8443`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The audit log, JSON lines, appended to.
    pub audit_log: PathBuf,
    /// Limits.
    #[serde(default)]
    pub limits: ServerLimits,
    /// API keys.
    #[serde(rename = "key", default)]
    pub keys: Vec<KeyConfig>,
    /// Tenants registered at start.
    #[serde(rename = "tenant", default)]
    pub tenants: Vec<TenantConfig>,
    /// Paths in the file are relative to this directory (the file's own).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}

impl ServerConfig {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = accessgov_policy::bounded_read::read_text(path, MAX_CONFIG_BYTES)
            .map_err(|e| ConfigError::Read { path: path.to_path_buf(), message: e.to_string() })?;
        let mut config = Self::parse(&text)
            .map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &mut PathBuf, base: &Path| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let base = config.base_dir.clone();
        resolve(&mut config.audit_log, &base);
        if let Some(tls) = &mut config.tls {
            resolve(&mut tls.certificate, &base);
            resolve(&mut tls.private_key, &base);
        }
        Ok(config)
    }

    /// Parses and checks configuration text; the error names the field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: ServerConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let mut ids = std::collections::BTreeSet::new();
        for (n, key) in self.keys.iter().enumerate() {
            let at = format!("key[{n}] ({})", key.id);
            if key.id.is_empty() || !ids.insert(key.id.clone()) {
                return Err(format!("{at}: `id` must be given and unique"));
            }
            if key.sha256.len() != 64 || !key.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("{at}: `sha256` must be 64 hex digits (the key's SHA-256)"));
            }
            if key.tenants.is_empty() && key.customers.is_empty() && !key.operator {
                return Err(format!(
                    "{at}: give `tenants` or `customers` it may use (or make it an `operator` key)"
                ));
            }
            if key.requests_per_minute == 0 {
                return Err(format!("{at}: `requests-per-minute` must be more than 0"));
            }
        }
        let l = &self.limits;
        if l.max_body_bytes == 0 || l.max_upload_bytes == 0 || l.job_items_per_call == 0 {
            return Err("`limits`: sizes and `job-items-per-call` must be more than 0".into());
        }
        Ok(())
    }
}

/// The hex SHA-256 of `key`, as `sha256` in the configuration holds it.
pub fn key_hash(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_is_read_and_each_mistake_named() {
        let hash = key_hash("k");
        let good = format!(
            "audit-log = \"a.jsonl\"\n[[key]]\nid = \"a\"\nsha256 = \"{hash}\"\ncustomers = [\"acme\"]\naccess = \"read-only\"\n"
        );
        let config = ServerConfig::parse(&good).unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.keys[0].access, Access::ReadOnly);
        for (bad, why) in [
            (good.replace(&hash, "abc"), "64 hex digits"),
            (good.replace("customers = [\"acme\"]\n", ""), "give `tenants` or `customers`"),
            (good.replace("read-only", "root"), "unknown variant"),
            (
                format!(
                    "{good}[[key]]\nid = \"a\"\nsha256 = \"{hash}\"\ntenants = [\"t\"]\naccess = \"read-only\"\n"
                ),
                "unique",
            ),
            (good.replace("audit-log", "audit-file"), "unknown field"),
        ] {
            let error = ServerConfig::parse(&bad).unwrap_err();
            assert!(error.contains(why), "{why}: {error}");
        }
    }
}

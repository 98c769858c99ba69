//! Validated tenants: the policy a call runs under (origins, credentials, limits), built from the
//! plain data of [`TenantConfig`], and the runtime state that goes with one registration (its
//! request slots, whose connections it may reuse).

use std::fmt;
use std::time::Duration;

pub use accessgov_policy::tenant::{
    CredentialConfig, LimitsConfig, SettingValue, TenantConfig, TenantsFile, TenantsFileError,
};

use crate::egress::Origin;
use crate::error::HostError;

/// The most requests one tenant may have in flight at once.
pub const MAX_CONCURRENT_REQUESTS: usize = 1024;
/// The most captured output one call may keep.
pub const MAX_LOG_BYTES: usize = 64 << 20;

/// Effective per-call limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of a call.
    pub call_timeout: Duration,
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Largest response body, in bytes.
    pub max_response_bytes: u64,
    /// Captured output kept, in bytes.
    pub max_log_bytes: usize,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// First-byte timeout.
    pub first_byte_timeout: Duration,
    /// Between-bytes timeout.
    pub between_bytes_timeout: Duration,
    /// Outgoing requests of one tenant in flight at once, across all its calls.
    pub max_concurrent_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(60),
            memory_bytes: 128 << 20,
            max_response_bytes: 16 << 20,
            max_log_bytes: 64 << 10,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
            max_concurrent_requests: 8,
        }
    }
}

impl Limits {
    /// These limits with the tenant's overrides applied.
    pub fn with(self, overrides: &LimitsConfig) -> Limits {
        let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
        Limits {
            call_timeout: ms(overrides.call_timeout_ms, self.call_timeout),
            memory_bytes: overrides.memory_mib.map_or(self.memory_bytes, |m| {
                m.checked_mul(1 << 20).and_then(|b| usize::try_from(b).ok()).unwrap_or(usize::MAX)
            }),
            max_response_bytes: overrides.max_response_bytes.unwrap_or(self.max_response_bytes),
            max_log_bytes: overrides.max_log_bytes.unwrap_or(self.max_log_bytes),
            connect_timeout: ms(overrides.connect_timeout_ms, self.connect_timeout),
            first_byte_timeout: ms(overrides.first_byte_timeout_ms, self.first_byte_timeout),
            between_bytes_timeout: ms(
                overrides.between_bytes_timeout_ms,
                self.between_bytes_timeout,
            ),
            max_concurrent_requests: overrides
                .max_concurrent_requests
                .unwrap_or(self.max_concurrent_requests),
        }
    }

    /// Whether the memory cap leaves room for `initial_bytes` of initial linear memory, which
    /// a component needs before its first instruction runs.
    pub fn holds_initial_memory(&self, initial_bytes: u64) -> bool {
        initial_bytes <= self.memory_bytes as u64
    }

    /// The first limit above what the host can honour, by its key, with its ceiling: a request
    /// slot count beyond what a semaphore holds, a timeout of more than a day, a log cap that
    /// would let one call's output hold gigabytes.
    pub fn over_limit(&self) -> Option<(&'static str, String)> {
        const DAY: Duration = Duration::from_secs(86_400);
        [
            ("call-timeout-ms", self.call_timeout > DAY, "86400000 (a day)"),
            ("connect-timeout-ms", self.connect_timeout > DAY, "86400000 (a day)"),
            ("first-byte-timeout-ms", self.first_byte_timeout > DAY, "86400000 (a day)"),
            ("between-bytes-timeout-ms", self.between_bytes_timeout > DAY, "86400000 (a day)"),
            ("max-log-bytes", self.max_log_bytes > MAX_LOG_BYTES, "67108864 (64 MiB)"),
            (
                "max-concurrent-requests",
                self.max_concurrent_requests > MAX_CONCURRENT_REQUESTS,
                "1024",
            ),
        ]
        .into_iter()
        .find_map(|(key, over, ceiling)| over.then(|| (key, ceiling.to_string())))
    }

    /// The first limit set to zero that would fail every call (a zero budget, memory cap,
    /// response cap or timeout; zero requests in flight would wait out every call's budget), by
    /// its key in a tenants file. A zero log cap only drops the guest's output, so it is allowed.
    pub fn zero_limit(&self) -> Option<&'static str> {
        [
            ("call-timeout-ms", self.call_timeout.is_zero()),
            ("memory-mib", self.memory_bytes == 0),
            ("max-response-bytes", self.max_response_bytes == 0),
            ("connect-timeout-ms", self.connect_timeout.is_zero()),
            ("first-byte-timeout-ms", self.first_byte_timeout.is_zero()),
            ("between-bytes-timeout-ms", self.between_bytes_timeout.is_zero()),
            ("max-concurrent-requests", self.max_concurrent_requests == 0),
        ]
        .into_iter()
        .find_map(|(key, zero)| zero.then_some(key))
    }
}

/// A secret that never shows in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Secret(value)
    }
    /// The secret itself; only the egress hook calls this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Validated credentials for one origin: header name and value pairs, values secret.
#[derive(Debug, Clone)]
pub struct OriginCredentials {
    /// The origin.
    pub origin: Origin,
    /// The path prefix they are limited to, without a trailing `/`; empty for the whole origin.
    pub path_prefix: String,
    /// Headers to set on every request to it.
    pub headers: Vec<(http::HeaderName, Secret)>,
}

/// A validated tenant, ready to run calls.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Tenant id.
    pub id: String,
    /// Connector name.
    pub connector: String,
    /// The customer it belongs to, if any.
    pub customer: Option<String>,
    /// Allowed origins.
    pub allowed_origins: Vec<Origin>,
    /// Settings served through `wasi:config`.
    pub settings: Vec<(String, String)>,
    /// Credentials per origin.
    pub credentials: Vec<OriginCredentials>,
    /// Limits.
    pub limits: Limits,
    /// Whether private, loopback and link-local addresses may be reached.
    pub allow_private_addresses: bool,
    /// Slots for the tenant's outgoing requests in flight.
    pub request_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Whose idle connections a call may reuse: this registration of the tenant (its id and a
    /// number no other registration in the process has). A tenant registered again may have a
    /// stricter policy than the one its earlier connections were vetted under.
    pub connection_owner: std::sync::Arc<str>,
}

impl Tenant {
    /// The credentials to inject into a request to `path` at `origin`: of those of the origin
    /// whose prefix covers the path (on a segment boundary), the one with the longest prefix.
    pub fn credentials_for(&self, origin: &Origin, path: &str) -> Option<&OriginCredentials> {
        self.credentials
            .iter()
            .filter(|c| &c.origin == origin && path_is_below(path, &c.path_prefix))
            .max_by_key(|c| c.path_prefix.len())
    }
}

/// Whether `path` is `prefix` or below it; the empty prefix covers every path.
fn path_is_below(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A path prefix as written in a tenant file, normalized without its trailing `/`.
fn validate_path_prefix(raw: &str) -> Result<String, &'static str> {
    if !raw.starts_with('/') {
        return Err("must start with `/`");
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#') {
        return Err("must not contain spaces, a query or a fragment");
    }
    if crate::egress::has_dot_segment(raw) {
        return Err("must not contain `.` or `..` segments");
    }
    Ok(raw.trim_end_matches('/').to_string())
}

impl Tenant {
    /// Validates `config` against the host's default limits, resolving environment credentials.
    pub fn validate(config: &TenantConfig, defaults: Limits) -> Result<Tenant, HostError> {
        let fail =
            |message: String| HostError::InvalidTenant { tenant: config.id.clone(), message };
        if !is_id(&config.id) {
            return Err(fail("`id` must be 1 to 128 letters, digits, `-`, `_` or `.`".to_string()));
        }
        if let Some(customer) = &config.customer
            && !is_id(customer)
        {
            return Err(fail(format!(
                "`customer` {customer:?} must be 1 to 128 letters, digits, `-`, `_` or `.`"
            )));
        }
        if config.connector.trim().is_empty() {
            return Err(fail("`connector` must name a connector or a .wasm file".to_string()));
        }
        let allowed_origins = config
            .allowed_origins
            .iter()
            .map(|raw| Origin::parse(raw).map_err(|e| fail(format!("`allowed-origins`: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut credentials = Vec::new();
        for (index, cred) in config.credentials.iter().enumerate() {
            let at = format!("`credentials[{index}]`");
            let origin =
                Origin::parse(&cred.origin).map_err(|e| fail(format!("{at}.origin: {e}")))?;
            if !allowed_origins.contains(&origin) {
                return Err(fail(format!(
                    "{at}.origin {origin} is not in `allowed-origins`, so it could never be used"
                )));
            }
            let path_prefix = match &cred.path_prefix {
                None => String::new(),
                Some(raw) => validate_path_prefix(raw)
                    .map_err(|why| fail(format!("{at}.path-prefix {raw:?} {why}")))?,
            };
            if credentials
                .iter()
                .any(|c: &OriginCredentials| c.origin == origin && c.path_prefix == path_prefix)
            {
                return Err(fail(format!(
                    "{at}: another credential already covers {origin}{path_prefix}; give each a different `path-prefix`"
                )));
            }
            let mut headers = Vec::new();
            let token = match (&cred.bearer_token, &cred.bearer_token_env) {
                (Some(_), Some(_)) => {
                    return Err(fail(format!(
                        "{at}: set `bearer-token` or `bearer-token-env`, not both"
                    )));
                }
                (Some(token), None) => Some(token.clone()),
                (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                    fail(format!("{at}.bearer-token-env: environment variable `{var}` is not set"))
                })?),
                (None, None) => None,
            };
            if let Some(token) = token {
                if token.trim().is_empty() || token.chars().any(|c| c.is_control()) {
                    return Err(fail(format!(
                        "{at}: the bearer token is empty or has control characters"
                    )));
                }
                headers.push((http::header::AUTHORIZATION, Secret::new(format!("Bearer {token}"))));
            }
            for (name, value) in &cred.headers {
                let header = http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| fail(format!("{at}.headers: `{name}` is not a header name")))?;
                if header == http::header::AUTHORIZATION && headers.iter().any(|(h, _)| h == header)
                {
                    return Err(fail(format!(
                        "{at}.headers: `authorization` is already set by the bearer token"
                    )));
                }
                if http::HeaderValue::from_str(value).is_err() {
                    return Err(fail(format!(
                        "{at}.headers: the value of `{name}` is not a valid header value"
                    )));
                }
                headers.push((header, Secret::new(value.clone())));
            }
            credentials.push(OriginCredentials { origin, path_prefix, headers });
        }
        let limits = defaults.with(&config.limits);
        // The host refuses zero defaults (`Host::new`), so a zero here is the tenant's own.
        if let Some(key) = limits.zero_limit() {
            return Err(fail(format!("`limits.{key}` must be more than 0: every call would fail")));
        }
        if let Some((key, ceiling)) = limits.over_limit() {
            return Err(fail(format!("`limits.{key}` must be at most {ceiling}")));
        }
        Ok(Tenant {
            id: config.id.clone(),
            connector: config.connector.clone(),
            customer: config.customer.clone(),
            allowed_origins,
            settings: config.settings.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
            credentials,
            limits,
            allow_private_addresses: config.allow_private_addresses,
            request_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                limits.max_concurrent_requests,
            )),
            connection_owner: connection_owner(&config.id),
        })
    }
}

/// Whether `raw` may be a tenant or customer id: 1 to 128 letters, digits, `-`, `_` or `.`.
fn is_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 128
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A connection owner no other tenant registration in this process has.
fn connection_owner(id: &str) -> std::sync::Arc<str> {
    static REGISTRATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = REGISTRATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::sync::Arc::from(format!("{id}#{n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[tenant]]
id = "acme"
connector = "chatgpt"
allowed-origins = ["http://127.0.0.1:8080"]
[tenant.settings]
base-url = "http://127.0.0.1:8080/backend-api"
account-id = "ws-1"
page-size = 50
[[tenant.credentials]]
origin = "http://127.0.0.1:8080"
bearer-token = "tok-secret"
headers = { chatgpt-account-id = "ws-1" }
"#;

    #[test]
    fn parses_and_validates_a_tenant_without_leaking_the_token() {
        let file: TenantsFile = toml::from_str(FILE).unwrap();
        let tenant = Tenant::validate(file.select(None).unwrap(), Limits::default()).unwrap();
        assert_eq!(tenant.settings[2], ("page-size".to_string(), "50".to_string()));
        assert_eq!(tenant.credentials[0].headers.len(), 2);
        assert!(!format!("{tenant:?}{file:?}").contains("tok-secret"));
        assert_eq!(tenant.customer, None);
        let file: TenantsFile =
            toml::from_str(&FILE.replace("id = \"acme\"", "id = \"acme\"\ncustomer = \"acme\""))
                .unwrap();
        let tenant = Tenant::validate(&file.tenants[0], Limits::default()).unwrap();
        assert_eq!(tenant.customer.as_deref(), Some("acme"));
    }

    #[test]
    fn names_what_is_wrong() {
        let cases = [
            (FILE.replace("http://127.0.0.1:8080\"]", "ftp://x\"]"), "allowed-origins"),
            (
                FILE.replace("origin = \"http://127.0.0.1:8080\"", "origin = \"http://other:1\""),
                "not in `allowed-origins`",
            ),
            (FILE.replace("id = \"acme\"", "id = \"a b\""), "`id` must be"),
            (
                FILE.replace("id = \"acme\"", "id = \"acme\"\ncustomer = \"acme corp\""),
                "`customer` \"acme corp\" must be",
            ),
            (
                FILE.replace(
                    "bearer-token = \"tok-secret\"",
                    "bearer-token-env = \"NO_SUCH_VAR_XYZ\"",
                ),
                "NO_SUCH_VAR_XYZ",
            ),
        ];
        for (text, want) in cases {
            let file: TenantsFile = toml::from_str(&text).unwrap();
            let err =
                Tenant::validate(&file.tenants[0], Limits::default()).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        assert!(toml::from_str::<TenantsFile>(&FILE.replace("connector =", "conector =")).is_err());
    }

    #[test]
    fn a_zero_limit_is_refused_by_name_and_a_zero_log_cap_is_not() {
        let keys = [
            "call-timeout-ms",
            "memory-mib",
            "max-response-bytes",
            "connect-timeout-ms",
            "first-byte-timeout-ms",
            "between-bytes-timeout-ms",
            "max-concurrent-requests",
        ];
        for key in keys {
            let file: TenantsFile =
                toml::from_str(&format!("{FILE}[tenant.limits]\n{key} = 0\n")).unwrap();
            let err =
                Tenant::validate(&file.tenants[0], Limits::default()).unwrap_err().to_string();
            assert!(err.contains(&format!("`limits.{key}` must be more than 0")), "{key}: {err}");
            let file: TenantsFile =
                toml::from_str(&format!("{FILE}[tenant.limits]\n{key} = 1\n")).unwrap();
            Tenant::validate(&file.tenants[0], Limits::default()).unwrap();
        }
        let file: TenantsFile =
            toml::from_str(&format!("{FILE}[tenant.limits]\nmax-log-bytes = 0\n")).unwrap();
        assert_eq!(
            Tenant::validate(&file.tenants[0], Limits::default()).unwrap().limits.max_log_bytes,
            0
        );
    }

    #[test]
    fn a_setting_of_the_wrong_type_says_what_was_found_and_what_is_accepted() {
        let text =
            FILE.replace("[tenant.settings]\n", "[tenant.settings]\nread-concurrency = [5]\n");
        assert!(text.contains("read-concurrency = [5]"), "the fixture has a settings table");
        let error = toml::from_str::<TenantsFile>(&text).unwrap_err().to_string();
        assert!(error.contains("invalid type: sequence"), "{error}");
        assert!(error.contains("a string, an integer or a boolean"), "{error}");
    }

    #[test]
    fn a_limit_beyond_what_the_host_can_honour_is_refused_not_a_panic() {
        for (key, value) in [
            ("max-concurrent-requests", "2305843009213693952"),
            ("call-timeout-ms", "18446744073709551615"),
            ("between-bytes-timeout-ms", "86400001"),
            ("max-log-bytes", "9223372036854775807"),
        ] {
            let file: TenantsFile =
                toml::from_str(&format!("{FILE}[tenant.limits]\n{key} = {value}\n")).unwrap();
            let err =
                Tenant::validate(&file.tenants[0], Limits::default()).unwrap_err().to_string();
            assert!(err.contains(&format!("`limits.{key}` must be at most")), "{key}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_as_a_tenants_file_are_a_typed_error_or_tenants(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        ) {
            let path = std::env::temp_dir().join(format!("tenants-prop-{}.toml", std::process::id()));
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(file) = TenantsFile::read(&path) {
                for tenant in &file.tenants {
                    let _ = Tenant::validate(tenant, Limits::default());
                }
            }
        }

        #[test]
        fn any_limits_validate_or_are_refused(
            limits in proptest::collection::vec(proptest::num::u64::ANY, 8),
        ) {
            let keys = [
                "call-timeout-ms", "memory-mib", "max-response-bytes", "max-log-bytes",
                "connect-timeout-ms", "first-byte-timeout-ms", "between-bytes-timeout-ms",
                "max-concurrent-requests",
            ];
            let mut text = format!("{FILE}[tenant.limits]\n");
            for (key, value) in keys.iter().zip(&limits) {
                text.push_str(&format!("{key} = {}\n", value >> 1));
            }
            if let Ok(file) = toml::from_str::<TenantsFile>(&text)
                && let Ok(tenant) = Tenant::validate(&file.tenants[0], Limits::default())
            {
                proptest::prop_assert!(tenant.limits.max_concurrent_requests <= MAX_CONCURRENT_REQUESTS);
            }
        }
    }

    const SCIM_CREDENTIAL: &str = r#"
[[tenant.credentials]]
origin = "http://127.0.0.1:8080"
path-prefix = "/scim/v2.0/dir-1/"
bearer-token = "scim-secret"
"#;

    #[test]
    fn the_longest_matching_path_prefix_picks_the_credential() {
        let file: TenantsFile = toml::from_str(&format!("{FILE}{SCIM_CREDENTIAL}")).unwrap();
        let tenant = Tenant::validate(&file.tenants[0], Limits::default()).unwrap();
        let origin = tenant.allowed_origins[0].clone();
        let token = |path: &str| {
            let creds = tenant.credentials_for(&origin, path).unwrap();
            creds
                .headers
                .iter()
                .find(|(h, _)| h == http::header::AUTHORIZATION)
                .map(|(_, v)| v.expose().to_string())
                .unwrap()
        };
        assert_eq!(token("/scim/v2.0/dir-1/Groups"), "Bearer scim-secret");
        assert_eq!(token("/scim/v2.0/dir-1"), "Bearer scim-secret");
        // A segment boundary, not a string prefix: `dir-10` is another directory.
        assert_eq!(token("/scim/v2.0/dir-10/Groups"), "Bearer tok-secret");
        assert_eq!(token("/backend-api/accounts/a/users"), "Bearer tok-secret");
    }

    #[test]
    fn a_bad_or_duplicate_path_prefix_is_named() {
        let cases = [
            (SCIM_CREDENTIAL.replace("/scim/v2.0/dir-1/", "scim"), "must start with `/`"),
            (SCIM_CREDENTIAL.replace("/scim/v2.0/dir-1/", "/scim/../x"), "`..` segments"),
            (
                SCIM_CREDENTIAL.replace("path-prefix = \"/scim/v2.0/dir-1/\"\n", ""),
                "another credential",
            ),
        ];
        for (extra, want) in cases {
            let file: TenantsFile = toml::from_str(&format!("{FILE}{extra}")).unwrap();
            let err =
                Tenant::validate(&file.tenants[0], Limits::default()).unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}

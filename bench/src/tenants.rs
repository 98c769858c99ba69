//! Tenants of the bundled ChatGPT connector for a mock served by another process, and the names
//! and tokens the benchmark's mock gives its workspaces.

use std::net::SocketAddr;

use host_harness::TenantConfig;

/// The Owner token the benchmark's mock gives workspace `account_id`.
pub fn token_for(account_id: &str) -> String {
    format!("token-{account_id}")
}

/// The console API base URL of the mock at `addr`.
pub fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}/backend-api")
}

/// A tenant `id` of the bundled `chatgpt` connector for workspace `account_id` of the mock at
/// `addr`, as `MockServer::chatgpt_tenant` builds one: the origin allowed (loopback too), the
/// Owner token and the `chatgpt-account-id` header injected.
pub fn chatgpt_tenant(
    id: &str,
    addr: SocketAddr,
    account_id: &str,
) -> Result<TenantConfig, toml::de::Error> {
    let origin = format!("http://{addr}");
    let text = format!(
        r#"
id = "{id}"
connector = "chatgpt"
allowed-origins = ["{origin}"]
allow-private-addresses = true

[settings]
base-url = "{base}"
account-id = "{account_id}"

[[credentials]]
origin = "{origin}"
bearer-token = "{token}"
headers = {{ chatgpt-account-id = "{account_id}" }}
"#,
        base = base_url(addr),
        token = token_for(account_id),
    );
    toml::from_str(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_valid_tenant() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8080));
        let tenant = chatgpt_tenant("t-1", addr, "ws-1").unwrap();
        assert_eq!(tenant.allowed_origins, vec!["http://127.0.0.1:8080".to_string()]);
        let validated = tenant.validate(host_harness::tenant::Limits::default()).unwrap();
        assert_eq!(validated.id, "t-1");
        assert_eq!(validated.credentials.len(), 1);
    }
}

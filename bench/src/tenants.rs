//! Tenants of the bundled connectors for a mock served by another process, and the names and
//! tokens the benchmark's mock gives its workspaces.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use accessgov_host::TenantConfig;
use accessgov_host::tenant::SettingValue;
use accessgov_mock::chatgpt_tenant_at;
use accessgov_mock::kit::loopback_tenant;

/// The Owner token the benchmark's mock gives workspace `account_id`.
pub fn token_for(account_id: &str) -> String {
    format!("token-{account_id}")
}

/// A tenant `id` of the bundled `chatgpt` connector for workspace `account_id` of the mock at
/// `addr`, holding that workspace's Owner token.
pub fn chatgpt_tenant(id: &str, addr: SocketAddr, account_id: &str) -> TenantConfig {
    chatgpt_tenant_at(addr, id, account_id, &token_for(account_id))
}

/// The Admin API key (`chatgpt.enterprise.user.read` only) the benchmark's mock gives
/// workspace `account_id`.
pub fn admin_key_for(account_id: &str) -> String {
    format!("admin-key-{account_id}")
}

/// A tenant `id` of the bundled `openai-platform` connector for the organization served at
/// `addr` (the API Platform's paths under `/v1`).
pub fn platform_tenant(id: &str, addr: SocketAddr) -> TenantConfig {
    let base_url = SettingValue::Text(format!("http://{addr}/v1"));
    let settings = BTreeMap::from([("base-url".to_string(), base_url)]);
    loopback_tenant(id, "openai-platform", addr, settings, "platform-admin-key", BTreeMap::new())
}

/// A read-only review tenant `id` of workspace `account_id`: members through the public Admin
/// API of the mock at `addr`, with the workspace's read-only key, and no console.
pub fn review_tenant(id: &str, addr: SocketAddr, account_id: &str) -> TenantConfig {
    use accessgov_host::tenant::CredentialConfig;
    let mut tenant = chatgpt_tenant(id, addr, account_id);
    let origin = format!("http://{addr}");
    tenant.settings.remove("base-url");
    tenant.settings.insert("admin-api-base-url".into(), SettingValue::Text(format!("{origin}/v1")));
    tenant.credentials = vec![CredentialConfig {
        origin,
        path_prefix: Some("/v1".to_string()),
        bearer_token: Some(admin_key_for(account_id)),
        bearer_token_env: None,
        headers: BTreeMap::new(),
    }];
    tenant
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_valid_tenant() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8080));
        let tenant = chatgpt_tenant("t-1", addr, "ws-1");
        assert_eq!(tenant.allowed_origins, vec!["http://127.0.0.1:8080".to_string()]);
        let validated = accessgov_host::tenant::Tenant::validate(
            &tenant,
            accessgov_host::tenant::Limits::default(),
        )
        .unwrap();
        assert_eq!(validated.id, "t-1");
        assert_eq!(validated.credentials.len(), 1);
    }
}

//! Shared set-up of the end-to-end tests: a host with a warm compile cache, seeded mocks.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use host_harness::mock::{GenerateSpec, MockServer, MockService, seed};
use host_harness::types::{Account, AccountPage, PageRequest};
use host_harness::{CallError, Host, HostConfig, TenantConfig};

/// The owner token of seeded workspaces.
pub const OWNER_TOKEN: &str = "owner-token-7f3a9c";

/// A host whose compile cache lives in the test target directory, shared by all test binaries.
pub fn host() -> Arc<Host> {
    let cache_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    Arc::new(Host::new(HostConfig { cache_dir: Some(cache_dir), ..HostConfig::default() }).unwrap())
}

/// A mock serving one generated workspace, with an Owner token.
pub async fn mock(account_id: &str, members: usize, invites: usize) -> MockServer {
    let service = MockService::new();
    service.put_workspace(seed::generate(account_id, GenerateSpec { members, invites, seed: 11 }));
    service.add_token(OWNER_TOKEN, account_id, "account-owner");
    MockServer::start_local(service).await.unwrap()
}

/// Registers `tenant` on `host`.
pub fn add(host: &Host, tenant: &TenantConfig) {
    host.add_tenant(tenant, Path::new(".")).unwrap();
}

/// Lists every account of `tenant`, asserting no cursor repeats; returns accounts and page count.
pub async fn list_all(
    host: &Host,
    tenant: &str,
    size: Option<u32>,
) -> Result<(Vec<Account>, usize), CallError> {
    let mut accounts = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen_cursors = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let page: AccountPage = host
            .list_accounts(tenant, PageRequest { cursor: cursor.clone(), size })
            .await
            .unwrap()
            .result?;
        pages += 1;
        accounts.extend(page.accounts);
        match page.next_cursor {
            Some(next) => {
                assert!(seen_cursors.insert(next.clone()), "cursor repeated: {next}");
                cursor = Some(next);
            }
            None => return Ok((accounts, pages)),
        }
    }
}

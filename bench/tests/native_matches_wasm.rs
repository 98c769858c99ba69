//! The bench's own pieces against the mock on loopback: the native transport lists exactly what
//! the component in the host lists, with the same requests, and the floor's replay of them
//! gets the same answers.

use std::path::{Path, PathBuf};

use connector_bench::native::{self, NativeTransport};
use connector_bench::tenants::{chatgpt_tenant, token_for};
use host_harness::mock::console_base_url;
use host_harness::mock::{GenerateSpec, MockServer, MockService, seed};
use host_harness::types::PageRequest;
use host_harness::{Host, HostConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_wasm_list_the_same_accounts_with_the_same_requests() {
    let account = "ws-bench";
    let service = MockService::new();
    service.put_workspace(seed::generate(
        account,
        GenerateSpec { members: 250, invites: 30, seed: 3 },
    ));
    service.add_token(&token_for(account), account, "account-owner");
    let server = MockServer::start_local(service.clone()).await.unwrap();
    let addr = server.addr();

    let (native_ids, recorded, connections) = tokio::task::spawn_blocking(move || {
        let transport = NativeTransport::new(addr, &token_for(account), account, true);
        let settings = native::settings_map(&console_base_url(addr), account);
        // Pages of 200: each call fills its page from two console pages of 100.
        let (ids, pages) = native::sync(&transport, &settings, Some(200)).unwrap();
        assert_eq!(pages, 2);
        let recorded = transport.take_recorded();
        native::replay(&transport, &recorded).unwrap();
        (ids, recorded, transport.connections_opened())
    })
    .await
    .unwrap();
    assert_eq!(connections, 1, "one kept-alive connection for the sync and the replay");
    assert_eq!(native_ids.len(), 280);
    let native_requests = service.requests();
    assert_eq!(native_requests.len(), 2 * recorded.len());
    assert!(native_requests.iter().all(|r| r.status == 200
        && r.bearer_token.as_deref() == Some(token_for(account).as_str())
        && r.account_header.as_deref() == Some(account)));
    service.clear_requests();

    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-component-cache");
    let host = Host::new(HostConfig { cache_dir: Some(cache), ..HostConfig::default() }).unwrap();
    host.add_tenant(&chatgpt_tenant("bench", addr, account), Path::new(".")).unwrap();
    let mut wasm_ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = host
            .list_accounts("bench", PageRequest { cursor, size: Some(200) })
            .await
            .unwrap()
            .result
            .unwrap();
        wasm_ids.extend(page.accounts.into_iter().map(|a| a.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(wasm_ids, native_ids);
    let wasm_requests = service.requests();
    let targets = |rs: &[host_harness::mock::RecordedRequest]| -> Vec<String> {
        rs.iter().map(|r| format!("{} {}?{}", r.method, r.path, r.query)).collect()
    };
    assert_eq!(targets(&wasm_requests), targets(&native_requests[..recorded.len()]));
}

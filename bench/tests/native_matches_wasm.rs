//! The bench's own pieces against the mock on loopback: the native transport lists exactly what
//! the component in the host lists, with the same requests, and the floor's replay of them
//! gets the same answers.

use std::path::{Path, PathBuf};

use accessgov_host::types::PageRequest;
use accessgov_host::{Host, HostConfig};
use accessgov_mock::console_base_url;
use accessgov_mock::{GenerateSpec, MockServer, MockService, seed};
use connector_bench::native::{self, NativeTransport};
use connector_bench::tenants::{chatgpt_tenant, token_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_wasm_list_the_same_accounts_with_the_same_requests() {
    let account = "ws-bench";
    let service = MockService::new();
    service.put_workspace(seed::generate(
        account,
        GenerateSpec { members: 650, invites: 30, seed: 3, join_requests: 0 },
    ));
    service.add_token(&token_for(account), account, "account-owner");
    let server = MockServer::start_local(service.clone()).await.unwrap();
    let addr = server.addr();

    let (native_ids, recorded, connections) = tokio::task::spawn_blocking(move || {
        let transport = NativeTransport::new(addr, &token_for(account), account, true);
        let settings = native::settings_map(&console_base_url(addr), account);
        // One call of 1,000 fills its page from console pages of 100: the first alone (it tells
        // the total), then rounds of up to four sent together.
        let (ids, pages) = native::sync(&transport, &settings, Some(1000)).unwrap();
        assert_eq!(pages, 1);
        let recorded = transport.take_recorded();
        native::replay(&transport, &recorded).unwrap();
        (ids, recorded, transport.connections_opened())
    })
    .await
    .unwrap();
    let rounds: Vec<usize> = recorded.chunk_by(|a, b| a.round == b.round).map(<[_]>::len).collect();
    assert_eq!(
        rounds,
        [2, 4, 2, 1, 1],
        "users 0 with the console groups' first page beside it; 100-400; 500-600; invites; join requests"
    );
    assert_eq!(connections, 4, "one per request of a round, kept for the next and the replay");
    assert_eq!(native_ids.len(), 680);
    let native_requests = service.requests();
    assert_eq!(native_requests.len(), 2 * recorded.len());
    assert!(native_requests.iter().all(|r| r.status == 200
        && r.bearer_token.as_deref() == Some(token_for(account).as_str())
        && r.scope_header.as_deref() == Some(account)));
    service.clear_requests();

    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-component-cache");
    let host = Host::new(HostConfig {
        cache_dir: Some(cache),
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })
    .unwrap();
    host.add_tenant(&chatgpt_tenant("bench", addr, account), Path::new(".")).unwrap();
    let mut wasm_ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = host
            .list_accounts("bench", PageRequest { cursor, size: Some(1000) })
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
    // The requests of a round arrive in any order.
    let targets = |rs: &[accessgov_mock::RecordedRequest]| -> Vec<String> {
        let mut targets: Vec<_> =
            rs.iter().map(|r| format!("{} {}?{}", r.method, r.path, r.query)).collect();
        targets.sort();
        targets
    };
    assert_eq!(targets(&wasm_requests), targets(&native_requests[..recorded.len()]));
}

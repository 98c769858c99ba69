//! Measurement 3 against a distant service: the mock answers every request [`LATENCY`] late, as
//! a real service across a network does, so a sync waits on round trips rather than on CPU. It
//! shows what the connector's `read-concurrency` buys and what the sandbox costs there.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accessgov_host::Host;
use accessgov_host::tenant::SettingValue;
use accessgov_mock::console_base_url;
use anyhow::ensure;

use super::sandbox::{LARGEST_SYNC_PAGE, count, list, transport};
use crate::mock_process::MockProcess;
use crate::report::Row;
use crate::scale::Scale;
use crate::wasm;
use chatgpt_connector::settings::DEFAULT_READ_CONCURRENCY;
use connector_bench::native;
use connector_bench::stats::summarize;
use connector_bench::tenants::chatgpt_tenant;

/// How late the distant mock answers each request.
pub const LATENCY: Duration = Duration::from_millis(20);
/// How late the far mock answers, for the goal judged against the round trips' floor.
pub const FAR_LATENCY: Duration = Duration::from_millis(50);
/// Syncs of the far workspace: each takes about fifteen seconds.
const FAR_RUNS: usize = 2;
/// Syncs per side: each takes seconds, and round trips vary little.
const RUNS: usize = 3;

/// Syncs the smaller sync workspace from a mock [`LATENCY`] away at pages of 1,000: in the host
/// with `read-concurrency` 1 and with the default, and natively with the default, alternating.
pub async fn distant_syncs(
    scale: &Scale,
    host: &Arc<Host>,
) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let members = scale.sync_members[0];
    let spec = Scale::sync_workspace("ws-distant", members);
    let mock = MockProcess::start_with(std::slice::from_ref(&spec), Some(LATENCY))?;
    let mut one_at_a_time = chatgpt_tenant("distant-1", mock.addr, &spec.account_id);
    one_at_a_time.settings.insert("read-concurrency".to_string(), SettingValue::Text("1".into()));
    host.add_tenant(&one_at_a_time, Path::new("."))?;
    host.add_tenant(&chatgpt_tenant("distant", mock.addr, &spec.account_id), Path::new("."))?;
    let settings = native::settings_map(&console_base_url(mock.addr), &spec.account_id);
    let page = Some(LARGEST_SYNC_PAGE);
    let (mut sequential, mut concurrent, mut natives) = (Vec::new(), Vec::new(), Vec::new());
    let mut requests = [0; 2];
    for _ in 0..RUNS {
        let started = Instant::now();
        let one = wasm::sync(host, "distant-1", page).await?;
        sequential.push(started.elapsed());
        let started = Instant::now();
        let default = wasm::sync(host, "distant", page).await?;
        concurrent.push(started.elapsed());
        let started = Instant::now();
        let (native_ids, _) =
            native::sync(&transport(mock.addr, &spec.account_id), &settings, page)?;
        natives.push(started.elapsed());
        ensure!(one.ids == default.ids, "read-concurrency 1 and 4 listed different accounts");
        ensure!(native_ids == default.ids, "wasm and native listed different accounts");
        // The requests may differ: at 4 a call far enough away ends before a round it could
        // not fill (pages of 800), which takes a call more.
        requests = [one.requests, default.requests];
    }
    let median = |v: &[Duration]| summarize(v).median;
    let (sequential_time, concurrent_time, native_time) =
        (median(&sequential), median(&concurrent), median(&natives));
    let what = format!(
        "sync {} members, pages of {}, every answer {} ms late (a distant service)",
        count(members),
        count(LARGEST_SYNC_PAGE as usize),
        LATENCY.as_millis()
    );
    let rows = vec![
        Row::times(
            &format!(
                "3 {what}: wasm in host, read-concurrency {DEFAULT_READ_CONCURRENCY} (baseline: 1)"
            ),
            concurrent_time,
            sequential_time,
        ),
        Row::times(
            &format!(
                "3 {what}, read-concurrency {DEFAULT_READ_CONCURRENCY}: wasm in host (baseline: native)"
            ),
            concurrent_time,
            native_time,
        ),
    ];
    let mut notes = vec![format!(
        "{what} (median of {RUNS} runs): wasm at read-concurrency 1 {} ({} requests), wasm at {DEFAULT_READ_CONCURRENCY} {} ({} requests), native at {DEFAULT_READ_CONCURRENCY} {}",
        list(&sequential),
        requests[0],
        list(&concurrent),
        requests[1],
        list(&natives)
    )];
    drop(mock);
    let (far_rows, far_note) = far_sync(scale, host).await?;
    let mut rows = rows;
    rows.extend(far_rows);
    notes.push(far_note);
    Ok((rows, notes))
}

/// The larger sync workspace from a mock [`FAR_LATENCY`] away at the default
/// `read-concurrency`, in the host and natively (alternating), against the floor its round trips
/// set: the first console page alone (the listing's length is not known yet), then the rest
/// `read-concurrency` at a time, each round one latency. The native sync's distance from the same
/// floor is the machine's and the mock's share of the host's, which the sandbox does not cause.
async fn far_sync(scale: &Scale, host: &Arc<Host>) -> anyhow::Result<(Vec<Row>, String)> {
    let members = scale.sync_members[1];
    let spec = Scale::sync_workspace("ws-far", members);
    let mock = MockProcess::start_with(std::slice::from_ref(&spec), Some(FAR_LATENCY))?;
    host.add_tenant(&chatgpt_tenant("far", mock.addr, &spec.account_id), Path::new("."))?;
    let settings = native::settings_map(&console_base_url(mock.addr), &spec.account_id);
    let page = Some(LARGEST_SYNC_PAGE);
    let (mut walls, mut natives) = (Vec::new(), Vec::new());
    let mut requests = 0;
    for _ in 0..FAR_RUNS {
        let started = Instant::now();
        let synced = wasm::sync(host, "far", page).await?;
        walls.push(started.elapsed());
        requests = synced.requests;
        let link = transport(mock.addr, &spec.account_id);
        let started = Instant::now();
        let (native_ids, _) = native::sync(&link, &settings, page)?;
        natives.push(started.elapsed());
        ensure!(native_ids == synced.ids, "wasm and native listed different accounts");
        let sent = usize::try_from(link.sent())?;
        ensure!(sent == requests, "wasm sent {requests} requests, native {sent}");
    }
    let concurrency = DEFAULT_READ_CONCURRENCY as usize;
    let rounds = 1 + requests.saturating_sub(1).div_ceil(concurrency.max(1));
    let floor = FAR_LATENCY * u32::try_from(rounds).unwrap_or(u32::MAX);
    let (wall, native_wall) = (summarize(&walls).median, summarize(&natives).median);
    let over = wall.as_secs_f64() / floor.as_secs_f64().max(1e-9);
    let what = format!(
        "sync {} members, pages of {}, every answer {} ms late, read-concurrency {concurrency}, {requests} requests",
        count(members),
        count(LARGEST_SYNC_PAGE as usize),
        FAR_LATENCY.as_millis()
    );
    let floor_label = format!("the floor of {rounds} round trips");
    let rows = vec![
        Row::times(&format!("3 {what}: wasm in host (baseline: {floor_label})"), wall, floor)
            .goal("wall/floor <= 1.1", over <= 1.1),
        Row::times(
            &format!("3 {what}: native connector (baseline: {floor_label})"),
            native_wall,
            floor,
        ),
        Row::times(&format!("3 {what}: wasm in host (baseline: native)"), wall, native_wall),
    ];
    let note = format!(
        "{what} (median of {FAR_RUNS} runs a side, alternating): wasm {}, native {}",
        list(&walls),
        list(&natives)
    );
    Ok((rows, note))
}

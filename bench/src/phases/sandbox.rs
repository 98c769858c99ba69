//! Measurements 3 (sandbox overhead against native) and 4 (the HTTP floor): the same request
//! sequence sent by the wasm component in the host, by the same logic built natively, and by a
//! plain client.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accessgov_host::Host;
use anyhow::{Context, bail, ensure};

use crate::mock_process::WorkspaceSpec;
use crate::report::{Row, duration, mib, ratio};
use crate::scale::Scale;
use crate::wasm;
use accessgov_mock::console_base_url;
use chatgpt_connector::settings::DEFAULT_READ_CONCURRENCY;
use connector_bench::native::{self, NativeTransport, SentRequest};
use connector_bench::stats::summarize;
use connector_bench::tenants::{chatgpt_tenant, review_tenant, token_for};

/// Accounts per `list-accounts` call in the syncs: the console's own page (the connector's
/// default), and the largest page a call returns, filled from ten console pages, as a platform
/// syncing a big workspace would ask for. The goal is judged at the largest.
pub const SYNC_PAGES: [u32; 2] = [100, 1000];
pub(super) const LARGEST_SYNC_PAGE: u32 = SYNC_PAGES[SYNC_PAGES.len() - 1];

/// The synced workspaces: `ws-sync-0`, `ws-sync-1`.
pub fn sync_workspaces(scale: &Scale) -> Vec<WorkspaceSpec> {
    scale
        .sync_members
        .iter()
        .enumerate()
        .map(|(i, &members)| Scale::sync_workspace(format!("ws-sync-{i}"), members))
        .collect()
}

/// The three identical workspaces the grants go to: native, wasm and the floor's replay.
pub fn grant_workspaces(scale: &Scale) -> Vec<WorkspaceSpec> {
    grant_names()
        .map(|account_id| WorkspaceSpec { account_id, members: scale.grant_members, invites: 0 })
        .to_vec()
}

fn grant_names() -> [String; 3] {
    ["native", "wasm", "floor"].map(|side| format!("ws-grant-{side}"))
}

pub(super) fn transport(mock: SocketAddr, account_id: &str) -> NativeTransport {
    NativeTransport::new(mock, &token_for(account_id), account_id, true)
}

pub(super) fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rows of one workload: wasm against native, native and wasm against the floor.
fn rows(
    what: &str,
    requests: usize,
    wasm: Duration,
    native: Duration,
    floor: Duration,
    goal: Option<f64>,
) -> Vec<Row> {
    let overhead = wasm.as_secs_f64() / native.as_secs_f64();
    let mut main = Row::times(
        &format!("3 {what}: wasm in host (baseline: native), {requests} requests"),
        wasm,
        native,
    );
    if let Some(limit) = goal {
        main = main.goal(&format!("wasm/native <= {limit:.2}"), overhead <= limit);
    }
    vec![
        main,
        Row::times(
            &format!("4 {what}: native connector (baseline: plain HTTP client)"),
            native,
            floor,
        ),
        Row::times(&format!("4 {what}: wasm in host (baseline: plain HTTP client)"), wasm, floor),
    ]
}

/// Syncs both workspaces natively, in the host and as a replay, `scale.sync_runs` times each,
/// alternating, once at each of [`SYNC_PAGES`]; checks both sides list the same accounts with
/// the same number of requests.
pub async fn syncs(
    scale: &Scale,
    host: &Arc<Host>,
    mock: SocketAddr,
) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut guest_peaks = Vec::new();
    let workspaces = sync_workspaces(scale);
    for (i, spec) in workspaces.iter().enumerate() {
        host.add_tenant(
            &chatgpt_tenant(&format!("sync-{i}"), mock, &spec.account_id),
            Path::new("."),
        )?;
        host.add_tenant(
            &review_tenant(&format!("sync-admin-{i}"), mock, &spec.account_id),
            Path::new("."),
        )?;
    }
    let runs = workspaces
        .iter()
        .enumerate()
        .flat_map(|(i, spec)| SYNC_PAGES.iter().map(move |&page| (i, spec, page)));
    for (i, spec, page) in runs {
        let tenant = format!("sync-{i}");
        let settings = native::settings_map(&console_base_url(mock), &spec.account_id);
        let expected = spec.members + spec.invites;
        let (mut natives, mut wasms, mut floors) = (Vec::new(), Vec::new(), Vec::new());
        let (mut native_cpu, mut wasm_cpu) = (Vec::new(), Vec::new());
        let mut requests = 0;
        let mut guest_peak = 0;
        let mut admin = AdminSyncs::default();
        let mut console_member_requests = 0;
        let mut replays = Vec::new();
        for _ in 0..scale.sync_runs {
            let t = transport(mock, &spec.account_id);
            let (started, cpu_before) = (Instant::now(), thread_cpu()?);
            let (native_ids, _) = native::sync(&t, &settings, Some(page))?;
            natives.push(started.elapsed());
            native_cpu.push(thread_cpu()?.saturating_sub(cpu_before));
            let native_listing = Listing::of(native_ids);
            let recorded: Vec<SentRequest> = t.take_recorded();
            let members_path = format!("/accounts/{}/users?", spec.account_id);
            console_member_requests =
                recorded.iter().filter(|r| r.target.contains(&members_path)).count();

            let (started, cpu_before) = (Instant::now(), thread_cpu()?);
            let synced = wasm::sync(host, &tenant, Some(page)).await?;
            wasms.push(started.elapsed());
            wasm_cpu.push(thread_cpu()?.saturating_sub(cpu_before));
            guest_peak = guest_peak.max(synced.peak_guest_memory);
            let (wasm_listing, wasm_requests) = (Listing::of(synced.ids), synced.requests);

            ensure!(
                native_listing.count == expected,
                "native listed {} of {expected}",
                native_listing.count
            );
            ensure!(wasm_listing == native_listing, "wasm and native listed different accounts");
            ensure!(
                wasm_requests == recorded.len(),
                "wasm sent {wasm_requests} requests, native {}",
                recorded.len()
            );
            requests = recorded.len();
            // One connection per request of a round: as many as the connector reads at once.
            if t.connections_opened() > u64::from(DEFAULT_READ_CONCURRENCY) {
                notes.push(format!(
                    "native sync of {} opened {} connections",
                    spec.account_id,
                    t.connections_opened()
                ));
            }
            replays.push(recorded);
        }
        // The floor's replays run after the pairs, not between them: a native sync right after
        // a replay read more CPU (`docs/benchmarks.md`).
        for recorded in &replays {
            let floor = transport(mock, &spec.account_id);
            let started = Instant::now();
            native::replay(&floor, recorded)?;
            floors.push(started.elapsed());
        }
        if page == LARGEST_SYNC_PAGE {
            guest_peaks.push((spec.members, guest_peak));
            // Made only now, not before the pairs: generating the workspace and holding its ids
            // through them fragments this thread's heap, on which the native side allocates
            // every string it parses (the guest allocates in its own memory), and slowed it
            // (`docs/benchmarks.md`).
            admin.expected = spec
                .generate()
                .members
                .into_iter()
                .filter(|m| m.deactivated_time.is_none())
                .map(|m| m.id)
                .collect();
            for _ in 0..scale.sync_runs {
                admin.run(host, &format!("sync-admin-{i}")).await?;
            }
        }
        let median = |v: &[Duration]| summarize(v).median;
        let what =
            format!("sync {} members, pages of {}", count(spec.members), count(page as usize));
        let mut measured =
            rows(&what, requests, median(&wasms), median(&natives), median(&floors), None);
        // The wall times share the mock's time; the syncing thread's CPU is the sandbox's own,
        // and the goal is judged on it for the largest workspace at the largest page.
        let (wasm_cpu, native_cpu) = (median(&wasm_cpu), median(&native_cpu));
        let mut cpu_row = Row::times(
            &format!("3 {what}: CPU time of the syncing thread, wasm in host (baseline: native)"),
            wasm_cpu,
            native_cpu,
        );
        if i == 1 && page == LARGEST_SYNC_PAGE {
            cpu_row = sync_cpu_goal(cpu_row, wasm_cpu.as_secs_f64(), native_cpu.as_secs_f64());
        }
        measured.insert(1, cpu_row);
        out.extend(measured);
        if page == LARGEST_SYNC_PAGE {
            out.extend(admin.rows(&what, median(&wasms), wasm_cpu, console_member_requests));
        }
        notes.push(format!(
            "{what} (+{} invites, {requests} requests, median of {} runs): native {}, wasm {}, floor {}",
            spec.invites,
            scale.sync_runs,
            list(&natives),
            list(&wasms),
            list(&floors)
        ));
    }
    if let [(small, small_peak), (large, large_peak)] = guest_peaks[..] {
        // A page at a time: the guest must not grow with the workspace (one page of slack).
        let bounded = large_peak <= small_peak + 65_536;
        out.push(
            Row::plain(
                &format!("7 guest memory, largest of any call: sync {} members, pages of {} (baseline: sync {} members)", count(large), count(LARGEST_SYNC_PAGE as usize), count(small)),
                mib(large_peak),
                mib(small_peak),
                ratio(large_peak as f64, small_peak as f64),
            )
            .goal("does not grow with the workspace", bounded),
        );
    }
    Ok((out, notes))
}

/// The syncs of a workspace's members through the public Admin API (a read-only review
/// tenant, pages of 1,000), beside the console's in the same run.
#[derive(Default)]
struct AdminSyncs {
    /// The ids it must list: the workspace's active members, in order.
    expected: Vec<String>,
    walls: Vec<Duration>,
    cpus: Vec<Duration>,
    requests: usize,
}

impl AdminSyncs {
    /// One sync through `tenant`, checked against the active members.
    async fn run(&mut self, host: &Arc<Host>, tenant: &str) -> anyhow::Result<()> {
        let (started, cpu_before) = (Instant::now(), thread_cpu()?);
        let synced = wasm::sync(host, tenant, Some(LARGEST_SYNC_PAGE)).await?;
        self.walls.push(started.elapsed());
        self.cpus.push(thread_cpu()?.saturating_sub(cpu_before));
        ensure!(
            synced.ids == self.expected,
            "the Admin API listed {} accounts, not the {} active members in order",
            synced.ids.len(),
            self.expected.len()
        );
        self.requests = synced.requests;
        Ok(())
    }

    /// Its rows against the console surface's sync (`wall`, `cpu`, `requests` to its member
    /// listing) of the same workspace, in the host.
    fn rows(&self, what: &str, wall: Duration, cpu: Duration, requests: usize) -> Vec<Row> {
        let (admin_wall, admin_cpu) = (summarize(&self.walls).median, summarize(&self.cpus).median);
        let label = format!(
            "{what}: members through the Admin API, {} requests (baseline: the console, {} member requests)",
            self.requests, requests
        );
        vec![
            Row::times(&format!("3 {label}, wall"), admin_wall, wall),
            Row::times(&format!("3 {label}, CPU time of the syncing thread"), admin_cpu, cpu),
        ]
    }
}

/// What a sync listed, kept in place of its ids: a side measured while the other's ids are
/// still held allocates on a heap they fragment, so each side's ids are reduced to this as soon
/// as its sync ends (`docs/benchmarks.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Listing {
    /// Accounts listed.
    pub count: usize,
    /// A hash of their ids, in the order listed.
    digest: u64,
}

impl Listing {
    /// The listing of `ids`, which it drops.
    pub fn of(ids: Vec<String>) -> Listing {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut hasher = DefaultHasher::new();
        ids.hash(&mut hasher);
        Listing { count: ids.len(), digest: hasher.finish() }
    }
}

/// `row` judged by the goal for the largest sync's CPU: `wasm` at most 1.5 times `native`.
pub(super) fn sync_cpu_goal(row: Row, wasm: f64, native: f64) -> Row {
    row.goal("wasm/native <= 1.5", wasm / native.max(1e-9) <= 1.5)
}

/// CPU time of the calling thread so far: the sync's own work, the mock's (another process) not.
pub(super) fn thread_cpu() -> anyhow::Result<Duration> {
    connector_bench::memory::thread_cpu_time().context("/proc/thread-self/schedstat")
}

pub(super) fn list(durations: &[Duration]) -> String {
    durations.iter().map(|d| duration(*d)).collect::<Vec<_>>().join(" / ")
}

/// Emails of `n` active, console-managed Members of the grant workspaces.
fn grantees(scale: &Scale) -> anyhow::Result<Vec<String>> {
    let spec = &grant_workspaces(scale)[0];
    let emails: Vec<String> = spec
        .generate()
        .members
        .into_iter()
        .filter(|m| m.role == "standard-user" && !m.is_scim_managed && m.deactivated_time.is_none())
        .map(|m| m.email)
        .take(scale.grants)
        .collect();
    if emails.len() < scale.grants {
        bail!("the grant workspace has only {} plain members", emails.len());
    }
    Ok(emails)
}

/// `grant role:admin` to `scale.grants` members: natively, in the host, and replayed.
pub async fn grants(scale: &Scale, host: &Arc<Host>, mock: SocketAddr) -> anyhow::Result<Vec<Row>> {
    const ENTITLEMENT: &str = "role:admin";
    let emails = grantees(scale)?;
    let [native_ws, wasm_ws, floor_ws] = grant_names();

    let t = transport(mock, &native_ws);
    let settings = native::settings_map(&console_base_url(mock), &native_ws);
    let started = Instant::now();
    for email in &emails {
        native::grant(&t, &settings, email, ENTITLEMENT)?;
    }
    let native_time = started.elapsed();
    let recorded = t.take_recorded();

    host.add_tenant(&chatgpt_tenant("grants", mock, &wasm_ws), Path::new("."))?;
    let mut wasm_requests = 0;
    let started = Instant::now();
    for email in &emails {
        wasm_requests += wasm::grant(host, "grants", email, ENTITLEMENT).await?;
    }
    let wasm_time = started.elapsed();
    ensure!(
        wasm_requests == recorded.len(),
        "wasm sent {wasm_requests} requests, native {}",
        recorded.len()
    );

    let from = format!("/accounts/{native_ws}/");
    let to = format!("/accounts/{floor_ws}/");
    let replayed: Vec<SentRequest> = recorded
        .iter()
        .map(|r| SentRequest { target: r.target.replace(&from, &to), ..r.clone() })
        .collect();
    let floor = transport(mock, &floor_ws);
    let started = Instant::now();
    native::replay(&floor, &replayed).context("replaying the grants")?;
    let floor_time = started.elapsed();
    Ok(rows(
        &format!("{} grants", count(emails.len())),
        recorded.len(),
        wasm_time,
        native_time,
        floor_time,
        None,
    ))
}

/// Syncs a workspace of `members` `runs` times on one side (the component in a host, or the
/// connector built natively) and prints each run's wall time and the CPU time of the thread
/// that ran it (the mock's excluded): measurement 3 alone, to profile, in a host built from
/// `host` (its pool's size, whether it writes a perf map).
pub async fn profile_sync(
    members: usize,
    runs: usize,
    size: Option<u32>,
    host: accessgov_host::HostConfig,
    native_side: bool,
) -> anyhow::Result<()> {
    let spec = Scale::sync_workspace("ws-sync", members);
    let mock = crate::mock_process::MockProcess::start(std::slice::from_ref(&spec))?;
    let host = Arc::new(Host::new(host)?);
    host.add_tenant(&chatgpt_tenant("sync", mock.addr, &spec.account_id), Path::new("."))?;
    let settings = native::settings_map(&console_base_url(mock.addr), &spec.account_id);
    // The sync runs on this thread, so its CPU time leaves the mock's out.
    for run in 1..=runs {
        let started = Instant::now();
        let cpu_before = thread_cpu()?;
        let listed = if native_side {
            native::sync(&transport(mock.addr, &spec.account_id), &settings, size)?.0.len()
        } else {
            wasm::sync(&host, "sync", size).await?.ids.len()
        };
        let (wall, used) = (started.elapsed(), thread_cpu()?.saturating_sub(cpu_before));
        connector_bench::say(format_args!(
            "run {run}: {listed} accounts in {}, {} of CPU",
            duration(wall),
            duration(used)
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listings_are_equal_only_for_the_same_ids_in_the_same_order() {
        let listed = Listing::of(ids(&["user-a", "user-b", "user-c"]));
        assert_eq!(listed.count, 3);
        assert_eq!(listed, Listing::of(ids(&["user-a", "user-b", "user-c"])));
        assert_ne!(listed, Listing::of(ids(&["user-b", "user-a", "user-c"])));
        assert_ne!(listed, Listing::of(ids(&["user-a", "user-b"])));
        assert_ne!(listed, Listing::of(ids(&["user-a", "user-b", "user-d"])));
        // Ids are hashed with their lengths: moving a character between two ids changes it.
        assert_ne!(Listing::of(ids(&["ab", "c"])), Listing::of(ids(&["a", "bc"])));
    }
}

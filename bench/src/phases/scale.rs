//! Measurements 5 (tenants at scale in the host) and 6 (the same work with a fresh native
//! connector process per call: one process per `list-accounts` page, the cursor passed along),
//! and, for context, the same work by the native connector on threads of one process. Each side
//! runs in a worker process of its own, so its peak memory is its own.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use accessgov_host::{Host, HostConfig};
use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::mock_process::{MockProcess, WorkspaceSpec};
use crate::report::{Row, mib, ratio};
use crate::scale::Scale;
use crate::wasm;
use accessgov_mock::console_base_url;
use connector_bench::memory::{self, RssSampler};
use connector_bench::native::{self, NativeTransport, ProcessCall};
use connector_bench::stats::summarize;
use connector_bench::tenants::{chatgpt_tenant, token_for};

/// The tenants' workspaces: `ws-tenant-0` ...
pub fn tenant_workspaces(scale: &Scale) -> Vec<WorkspaceSpec> {
    (0..scale.tenants)
        .map(|i| WorkspaceSpec {
            account_id: format!("ws-tenant-{i}"),
            members: scale.tenant_members,
            invites: 0,
        })
        .collect()
}

/// What a worker measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleResult {
    /// Tenant syncs completed.
    pub syncs: usize,
    /// Connector calls completed (in the process model, one process each).
    pub calls: usize,
    /// Wall time of the whole run.
    pub seconds: f64,
    /// Median latency of one tenant's sync, from its start to its end.
    pub sync_p50_ms: f64,
    /// 99th percentile of the same.
    pub sync_p99_ms: f64,
    /// Median latency of one call (process model: from starting the process to its exit).
    pub call_p50_ms: f64,
    /// 99th percentile of the same.
    pub call_p99_ms: f64,
    /// Resident memory before the run (host: engine, component, tenants loaded).
    pub rss_before: u64,
    /// Peak resident memory during the run: the host's `VmHWM`, or the sampled sum of the
    /// children and the parent.
    pub peak: u64,
    /// Mean of the children's own peaks, one per call (process model only).
    pub child_peak_mean: u64,
    /// CPU time of the worker process during the run (the process model's children excluded).
    pub cpu_seconds: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// When a run started: its wall clock and this process's CPU time.
struct RunStart {
    wall: Instant,
    cpu: Duration,
}

impl RunStart {
    fn now() -> anyhow::Result<Self> {
        Ok(RunStart { wall: Instant::now(), cpu: own_cpu_time()? })
    }
}

/// This process's CPU time so far.
fn own_cpu_time() -> anyhow::Result<Duration> {
    memory::cpu_time(std::process::id()).context("this process's /proc/<pid>/stat")
}

impl ScaleResult {
    /// The result of a run started at `started`, from its syncs' and calls' latencies and
    /// `memory`: resident before the run, peak during it, mean peak of a child.
    fn new(
        started: RunStart,
        syncs: &[Duration],
        calls: &[Duration],
        memory: [u64; 3],
    ) -> anyhow::Result<Self> {
        let seconds = started.wall.elapsed().as_secs_f64();
        let cpu_seconds = own_cpu_time()?.saturating_sub(started.cpu).as_secs_f64();
        let (s, c) = (summarize(syncs), summarize(calls));
        let [rss_before, peak, child_peak_mean] = memory;
        Ok(ScaleResult {
            syncs: syncs.len(),
            calls: calls.len(),
            seconds,
            sync_p50_ms: ms(s.median),
            sync_p99_ms: ms(s.p99),
            call_p50_ms: ms(c.median),
            call_p99_ms: ms(c.p99),
            rss_before,
            peak,
            child_peak_mean,
            cpu_seconds,
        })
    }
}

/// The work each model of the tenants-at-scale run does, as its worker process is told it.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// The mock serving every tenant's workspace.
    pub mock: SocketAddr,
    /// Tenants to sync (`t0`, `t1`, ..., each with the workspace `ws-tenant-<i>`).
    pub tenants: usize,
    /// Members of each workspace.
    pub members: usize,
    /// Tenant syncs in flight at once.
    pub concurrency: usize,
    /// Distinct workspaces: tenant `i` syncs `ws-tenant-<i mod workspaces>`, so more tenants
    /// than workspaces can be registered and synced without the mock holding more.
    pub workspaces: usize,
    /// Syncs to run (at least `tenants`): sync `k` is of tenant `k mod tenants`, so a run with
    /// few tenants still keeps `concurrency` syncs in flight for as long as a larger one.
    pub syncs: usize,
}

/// The host side (in the worker process): `syncs` syncs, tenants in turn, each of its
/// workspace; at most `concurrency` syncs (and calls) in flight.
pub async fn host_worker(work: Workload, cache_dir: PathBuf) -> anyhow::Result<ScaleResult> {
    let Workload { mock, tenants, members, concurrency, workspaces, syncs } = work;
    let host = Arc::new(Host::new(HostConfig {
        cache_dir: Some(cache_dir),
        max_concurrent_calls: concurrency,
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })?);
    for i in 0..tenants {
        host.add_tenant(
            &chatgpt_tenant(
                &format!("t{i}"),
                mock,
                &format!("ws-tenant-{}", i % workspaces.max(1)),
            ),
            Path::new("."),
        )?;
    }
    // Warm up: one sync, so the code and the pool's first slots are resident before measuring.
    wasm::sync(&host, "t0", None).await?;
    let rss_before = memory::rss()?;
    memory::reset_peak().context("resetting VmHWM")?;
    // `concurrency` tasks, each taking the next sync when its last is done, as the other two
    // models' threads do: the driver holds no state per waiting sync.
    let next = Arc::new(AtomicUsize::new(0));
    let started = RunStart::now()?;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(syncs) {
        let (host, next) = (Arc::clone(&host), Arc::clone(&next));
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= syncs {
                    return anyhow::Ok(done);
                }
                done.push(host_sync(&host, k % tenants, members).await?);
            }
        });
    }
    let (mut syncs, mut calls) = (Vec::new(), Vec::new());
    while let Some(joined) = workers.join_next().await {
        for (sync, call) in joined?? {
            syncs.push(sync);
            calls.extend(call);
        }
    }
    let peak = memory::peak_rss()?;
    ScaleResult::new(started, &syncs, &calls, [rss_before, peak, 0])
}

/// Tenant `i`'s sync in the host, checking it listed all `members`: the sync's latency and each
/// call's.
async fn host_sync(
    host: &Host,
    i: usize,
    members: usize,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let begun = Instant::now();
    let mut calls = Vec::new();
    let mut cursor = None;
    let mut accounts = 0;
    loop {
        let call = Instant::now();
        let report = host
            .list_accounts(
                &format!("t{i}"),
                accessgov_host::types::PageRequest { cursor, size: None },
            )
            .await?;
        calls.push(call.elapsed());
        let page = report.result.with_context(|| format!("tenant t{i}"))?;
        accounts += page.accounts.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ensure!(accounts == members, "tenant t{i} listed {accounts} of {members}");
    Ok((begun.elapsed(), calls))
}

/// One `native-connector` process: one `list-accounts` call of `account` from `cursor`.
fn process_call(
    exe: &Path,
    mock: SocketAddr,
    account: &str,
    cursor: Option<&str>,
    sampler: &RssSampler,
) -> anyhow::Result<ProcessCall> {
    let mut command = Command::new(exe);
    command.arg(mock.to_string()).arg(account);
    if let Some(cursor) = cursor {
        command.arg("--cursor").arg(cursor);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    sampler.add(child.id());
    let mut out = String::new();
    let read = match child.stdout.take() {
        Some(mut stdout) => stdout.read_to_string(&mut out).map(|_| ()),
        None => Ok(()),
    };
    let status = child.wait();
    sampler.remove(child.id());
    read?;
    let status = status?;
    if !status.success() {
        bail!("native-connector for {account} failed: {status}");
    }
    serde_json::from_str(out.trim()).with_context(|| format!("native-connector printed {out:?}"))
}

/// One tenant's sync in the process model: a process per call, in sequence, each given the
/// cursor the previous one printed. Returns the sync's latency, each call's and each process's
/// peak resident memory.
fn process_sync(
    exe: &Path,
    mock: SocketAddr,
    tenant: usize,
    members: usize,
    sampler: &RssSampler,
) -> anyhow::Result<(Duration, Vec<Duration>, Vec<u64>)> {
    let account = format!("ws-tenant-{tenant}");
    let mut peaks = Vec::new();
    let (sync, calls) = timed_sync(&account, members, "the processes", |cursor| {
        let page = process_call(exe, mock, &account, cursor.as_deref(), sampler)?;
        peaks.push(page.peak_rss_bytes);
        Ok((page.accounts, page.next_cursor))
    })?;
    Ok((sync, calls, peaks))
}

/// Times one tenant's sync of `account`, one `call` after another (each lists a page from a
/// cursor and returns how many accounts it listed and the next cursor, none on the last page),
/// and checks that `by` listed all `members`. Returns the sync's latency and each call's.
fn timed_sync(
    account: &str,
    members: usize,
    by: &str,
    mut call: impl FnMut(Option<String>) -> anyhow::Result<(usize, Option<String>)>,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let begun = Instant::now();
    let (mut calls, mut cursor, mut accounts) = (Vec::new(), None, 0);
    loop {
        let started = Instant::now();
        let (listed, next) = call(cursor)?;
        calls.push(started.elapsed());
        accounts += listed;
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ensure!(accounts == members, "{account}: {by} listed {accounts} of {members}");
    Ok((begun.elapsed(), calls))
}

/// The process model (in the worker process): every connector call (one `list-accounts` page)
/// is a fresh `native-connector` process, as the host gives every call a fresh store. As in the
/// host, each tenant's calls run in sequence, and at most `concurrency` tenant syncs run at a time
/// (so at most `concurrency` processes are alive). Memory is the sampled sum of the live
/// children's resident memory plus this process's.
pub fn process_worker(work: Workload) -> anyhow::Result<ScaleResult> {
    let Workload { mock, tenants, members, concurrency, syncs, .. } = work;
    let exe = std::env::current_exe()?.with_file_name("native-connector");
    ensure!(
        exe.exists(),
        "{} is missing: build it with `cargo build --release -p connector-bench`",
        exe.display()
    );
    let sampler = RssSampler::start(Duration::from_millis(1))?;
    let rss_before = memory::rss()?;
    let started = RunStart::now()?;
    let done = on_threads(syncs, concurrency, |k| {
        process_sync(&exe, mock, k % tenants, members, &sampler)
    })?;
    let (mut syncs, mut calls, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for (sync, call, peak) in done {
        syncs.push(sync);
        calls.extend(call);
        peaks.extend(peak);
    }
    let child_peak_mean = peaks.iter().sum::<u64>() / peaks.len().max(1) as u64;
    ScaleResult::new(started, &syncs, &calls, [rss_before, sampler.peak(), child_peak_mean])
}

/// One tenant's sync by the native connector in this process: its calls in sequence over the
/// tenant's own kept-alive connection, as the host's pool keeps one per tenant. Returns the sync's
/// latency and each call's.
fn native_sync(
    mock: SocketAddr,
    tenant: usize,
    members: usize,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let account = format!("ws-tenant-{tenant}");
    let transport = NativeTransport::new(mock, &token_for(&account), &account, false);
    let settings = native::settings_map(&console_base_url(mock), &account);
    timed_sync(&account, members, "the native connector", |cursor| {
        let (ids, next) = native::list_page(&transport, &settings, cursor, None)
            .with_context(|| format!("list-accounts of {account}"))?;
        Ok((ids.len(), next))
    })
}

/// The same work with no sandbox and no process per call (in the worker process): the native
/// connector runs the `syncs` syncs, tenants in turn, on `concurrency` threads of this process,
/// one sync at a time each. What a host costing nothing beyond the connector's own native code would reach.
pub fn native_worker(work: Workload) -> anyhow::Result<ScaleResult> {
    let Workload { mock, tenants, members, concurrency, workspaces, syncs } = work;
    // Warm up as the host worker does, so both measure from the same state.
    native_sync(mock, 0, members)?;
    let rss_before = memory::rss()?;
    memory::reset_peak().context("resetting VmHWM")?;
    let started = RunStart::now()?;
    let workspace = |k: usize| k % tenants % workspaces.max(1);
    let (syncs, calls): (Vec<_>, Vec<_>) =
        on_threads(syncs, concurrency, |k| native_sync(mock, workspace(k), members))?
            .into_iter()
            .unzip();
    let calls: Vec<_> = calls.into_iter().flatten().collect();
    let peak = memory::peak_rss()?;
    ScaleResult::new(started, &syncs, &calls, [rss_before, peak, 0])
}

/// Runs `sync` for syncs `0..syncs` on `concurrency` threads, each taking the next sync when
/// its last is done, and returns what every sync returned.
fn on_threads<T: Send>(
    syncs: usize,
    concurrency: usize,
    sync: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency.min(syncs))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<Vec<T>> {
                    let mut done = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= syncs {
                            return Ok(done);
                        }
                        done.push(sync(k)?);
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(syncs);
        for worker in workers {
            all.extend(worker.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))??);
        }
        Ok(all)
    })
}

/// Runs `connector-bench <args>` and reads the JSON result it prints.
pub(super) fn run_worker<T: serde::de::DeserializeOwned>(args: &[String]) -> anyhow::Result<T> {
    let output = Command::new(std::env::current_exe()?)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .context("starting a worker")?;
    if !output.status.success() {
        bail!("worker {args:?} failed: {}", output.status);
    }
    serde_json::from_slice(&output.stdout).context("the worker's result")
}

/// What a host holds before its first call, and per tenant registered and idle.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct IdleResult {
    /// Resident memory of the process with the host built and its connector loaded, before any
    /// call.
    pub before_first_call: u64,
    /// Resident memory after registering the idle tenants.
    pub after_tenants: u64,
    /// Tenants registered.
    pub tenants: usize,
}

/// The idle-tenants worker (a fresh process, so nothing a run freed is counted): builds a host,
/// registers one tenant (which loads its connector), weighs the process, registers `tenants`
/// more and weighs it again. No call is made.
pub fn idle_worker(
    mock: SocketAddr,
    tenants: usize,
    cache_dir: PathBuf,
) -> anyhow::Result<IdleResult> {
    if tenants == 0 {
        bail!("--tenants 0 weighs nothing");
    }
    let host = Host::new(HostConfig {
        cache_dir: Some(cache_dir),
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })?;
    host.add_tenant(&chatgpt_tenant("idle-0", mock, "ws-idle"), Path::new("."))?;
    let before_first_call = memory::rss()?;
    for i in 1..=tenants {
        host.add_tenant(&chatgpt_tenant(&format!("idle-{i}"), mock, "ws-idle"), Path::new("."))?;
    }
    let after_tenants = memory::rss()?;
    Ok(IdleResult { before_first_call, after_tenants, tenants })
}

/// Runs the host worker and the process workers (at the same concurrency, and with every tenant
/// in flight at once, so all tenants' first calls start together), and compares them.
pub fn run(
    scale: &Scale,
    mock_process: &MockProcess,
    cache_dir: &Path,
) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let mock = mock_process.addr;
    let common = |cmd: &str, concurrency: usize| {
        vec![
            cmd.to_string(),
            "--mock".to_string(),
            mock.to_string(),
            "--tenants".to_string(),
            scale.tenants.to_string(),
            "--members".to_string(),
            scale.tenant_members.to_string(),
            "--concurrency".to_string(),
            concurrency.to_string(),
            "--cache-dir".to_string(),
            cache_dir.display().to_string(),
        ]
    };
    let c = scale.concurrency;
    // The mock's CPU time during each run: on these cores it bounds what either side can reach.
    let mock_cpu = |args: &[String]| -> anyhow::Result<(ScaleResult, Duration)> {
        let before = mock_process.cpu_time()?;
        let result = run_worker(args)?;
        Ok((result, mock_process.cpu_time()?.saturating_sub(before)))
    };
    let idle_args = [
        "idle-worker".to_string(),
        "--mock".to_string(),
        mock.to_string(),
        "--tenants".to_string(),
        scale.idle_tenants.to_string(),
        "--cache-dir".to_string(),
        cache_dir.display().to_string(),
    ];
    let idle: IdleResult = run_worker(&idle_args)?;
    let (host, host_mock_cpu) = mock_cpu(&common("scale-worker", c))?;
    let (procs, procs_mock_cpu) = mock_cpu(&common("process-worker", c))?;
    let all = run_worker(&common("process-worker", scale.tenants))?;
    let native = run_worker(&common("native-worker", c))?;
    let throughput = |r: &ScaleResult| r.syncs as f64 / r.seconds;
    let per_instance = host.peak.saturating_sub(host.rss_before) / c as u64;
    let n = scale.tenants;
    let m = scale.tenant_members;
    let syncs_row = |label: &str, measured: &ScaleResult, baseline: &ScaleResult| {
        let (a, b) = (throughput(measured), throughput(baseline));
        Row::plain(label, format!("{a:.1}/s"), format!("{b:.1}/s"), ratio(a, b))
    };
    let memory_row = |label: &str, measured: u64, baseline: u64| {
        Row::plain(label, mib(measured), mib(baseline), ratio(measured as f64, baseline as f64))
    };
    let mut rows = vec![
        syncs_row(
            &format!("5 {n} tenants x {m} members, wasm host, {c} tenants in flight: tenant syncs/s (baseline: a process per call, {c} tenants in flight)"),
            &host,
            &procs,
        )
        ,
        syncs_row(
            &format!("5 the native connector in one process, {c} threads, no sandbox and no process per call (what a host costing nothing beyond native code would reach): tenant syncs/s (baseline: a process per call)"),
            &native,
            &procs,
        ),
        syncs_row(
            &format!("5 tenant syncs/s, wasm host (baseline: the native connector in one process, {c} threads)"),
            &host,
            &native,
        )
        .goal("host/native >= 0.85", throughput(&host) >= 0.85 * throughput(&native)),
        memory_row(
            &format!("5 peak resident memory, wasm host (baseline: the native connector in one process, {c} threads)"),
            host.peak,
            native.peak,
        )
        .goal("host/native <= 1.5", host.peak as f64 <= 1.5 * native.peak as f64),
        memory_row(
            "5 host resident memory before its first call, its connector loaded (baseline: the native connector's process after one sync)",
            idle.before_first_call,
            native.rss_before,
        )
        .goal("<= 12 MiB", idle.before_first_call <= 12 << 20),
        {
            let added = idle.after_tenants.saturating_sub(idle.before_first_call);
            let per_tenant = added / idle.tenants as u64;
            Row::plain(
                &format!("5 {} registered tenants, idle: memory per tenant (baseline: the host before them)", idle.tenants),
                format!("{:.2} KiB", per_tenant as f64 / 1024.0),
                mib(idle.before_first_call),
                ratio(added as f64, idle.before_first_call as f64),
            )
            .goal("<= 4 KiB", per_tenant <= 4 << 10)
        },
        memory_row(
            "5 peak resident memory, host process (baseline: process per call: children + parent)",
            host.peak,
            procs.peak,
        )
        ,
        memory_row(
            &format!("5 peak resident memory, the native connector in one process, {c} threads (baseline: process per call)"),
            native.peak,
            procs.peak,
        ),
        Row::plain(
            &format!("5 tenant sync latency p50 / p99, host (baseline: process per call, {c} tenants in flight)"),
            format!("{:.1} / {:.1} ms", host.sync_p50_ms, host.sync_p99_ms),
            format!("{:.1} / {:.1} ms", procs.sync_p50_ms, procs.sync_p99_ms),
            ratio(host.sync_p50_ms, procs.sync_p50_ms),
        ),
        Row::plain(
            "5 call latency p50 / p99 and calls/s, host (baseline: process per call, start to exit)",
            format!("{:.2} / {:.2} ms, {:.0}/s", host.call_p50_ms, host.call_p99_ms, host.calls as f64 / host.seconds),
            format!("{:.2} / {:.2} ms, {:.0}/s", procs.call_p50_ms, procs.call_p99_ms, procs.calls as f64 / procs.seconds),
            ratio(host.call_p50_ms, procs.call_p50_ms),
        ),
        memory_row(
            &format!("5 memory per concurrent instance ((peak - before) / {c}) (baseline: one native process's peak)"),
            per_instance,
            procs.child_peak_mean,
        ),
        syncs_row(
            &format!("6 all {n} tenants in flight at once, a process per call (first calls all at once): tenant syncs/s, host as measured above"),
            &host,
            &all,
        ),
        memory_row(
            &format!("6 peak memory, host (baseline: up to {n} processes at once)"),
            host.peak,
            all.peak,
        ),
    ];
    // Were the host free, the host run could go no faster than the mock serving its calls on
    // every core; against the process run measured here, that caps the ratio.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let per_call = |cpu: Duration, r: &ScaleResult| cpu.as_secs_f64() / r.calls.max(1) as f64;
    let mock_bound =
        cores / (per_call(host_mock_cpu, &host) * host.calls as f64 / host.syncs as f64);
    rows.insert(
        1,
        Row::plain(
            &format!("5 the mock's CPU per call during the host run (baseline: during the process run); ceiling of host/process throughput were the host free ({cores:.0} cores / the mock's CPU per sync)"),
            format!("{:.0} µs", per_call(host_mock_cpu, &host) * 1e6),
            format!("{:.0} µs", per_call(procs_mock_cpu, &procs) * 1e6),
            format!("ceiling {:.2}", mock_bound / throughput(&procs)),
        ),
    );
    rows.retain(|r| !r.measured.is_empty());
    let notes = vec![
        format!(
            "host: {} syncs, {} calls in {:.2} s; resident before the run {}, peak {}",
            host.syncs,
            host.calls,
            host.seconds,
            mib(host.rss_before),
            mib(host.peak)
        ),
        format!(
            "native connector in one process, {c} threads: {} syncs, {} calls in {:.2} s; resident before the run {}, peak {}",
            native.syncs,
            native.calls,
            native.seconds,
            mib(native.rss_before),
            mib(native.peak)
        ),
        format!(
            "process per call, {c} tenants in flight: {} syncs, {} processes in {:.2} s; sampled peak {} (parent {} of it before the run), mean child peak {}",
            procs.syncs,
            procs.calls,
            procs.seconds,
            mib(procs.peak),
            mib(procs.rss_before),
            mib(procs.child_peak_mean)
        ),
        format!(
            "process per call, all {n} tenants in flight: {} syncs, {} processes in {:.2} s; sampled peak {}, sync latency p50 / p99 {:.1} / {:.1} ms, call latency p50 / p99 {:.2} / {:.2} ms",
            all.syncs,
            all.calls,
            all.seconds,
            mib(all.peak),
            all.sync_p50_ms,
            all.sync_p99_ms,
            all.call_p50_ms,
            all.call_p99_ms
        ),
    ];
    Ok((rows, notes))
}

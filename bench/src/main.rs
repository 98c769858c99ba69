//! `connector-bench`: the six benchmarks in one run, each against a baseline measured in
//! the same run; prints a table and writes `docs/benchmarks.md`.
//!
//! Run it with `cargo bench -p connector-bench [-- --quick]`, which builds both binaries (the
//! process model runs `native-connector`).

mod mock_process;
mod phases;
mod plot;
mod report;
mod scale;
mod wasm;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use accessgov_host::{Host, HostConfig};
use anyhow::Context;
use clap::{Parser, Subcommand};
use connector_bench::say;

use mock_process::{MockProcess, WorkspaceSpec};
use report::Report;
use scale::Scale;

// The embedder's allocator, for the host and the native side alike (one process, the same
// allocator on both sides of every ratio). glibc's malloc spent about a tenth of a sync's CPU
// coalescing the many small strings every page frees; transparent huge pages are off for it
// (`no_thp`) because re-faulting 2 MiB pages after each purge cost more than it saved.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks of the sandboxed ChatGPT connector against native and process-per-connector.
#[derive(Debug, Parser)]
#[command(name = "connector-bench", about)]
struct Cli {
    /// Small sizes, to check that the bench works (minutes become seconds).
    #[arg(long)]
    quick: bool,
    /// Where to write the Markdown table (default: docs/benchmarks.md of the workspace; with
    /// --quick, nothing unless given).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    helper: Option<Helper>,
}

/// The bench's own helper processes.
#[derive(Debug, Subcommand)]
enum Helper {
    /// Serve the mock with generated workspaces until stdin closes.
    #[command(hide = true)]
    ServeMock {
        /// `ID:MEMBERS:INVITES`, repeated.
        #[arg(long)]
        workspace: Vec<String>,
        /// Answer every request this many milliseconds late, as a distant service does.
        #[arg(long)]
        latency_ms: Option<u64>,
    },
    /// The host side of the tenants-at-scale run.
    #[command(hide = true)]
    ScaleWorker(WorkerArgs),
    /// The process-per-connector side of the tenants-at-scale run.
    #[command(hide = true)]
    ProcessWorker(WorkerArgs),
    /// The tenants-at-scale run by the native connector in one process.
    #[command(hide = true)]
    NativeWorker(WorkerArgs),
    /// A host's memory before its first call, and per idle tenant registered.
    #[command(hide = true)]
    IdleWorker {
        #[arg(long)]
        mock: SocketAddr,
        #[arg(long)]
        tenants: usize,
        #[arg(long)]
        cache_dir: PathBuf,
    },
    /// Only measurement 2 (instantiate + `info`), for profiling the per-call path: prints the
    /// median and p99. Needs no mock (`info` sends no request).
    PerCall {
        /// Timed calls (after as many again to warm up).
        #[arg(long, default_value = "5000")]
        calls: NonZeroUsize,
        /// Calls the host allows at once (sizes the pool; small keeps the reservation small,
        /// as valgrind needs).
        #[arg(long, default_value = "32")]
        concurrency: NonZeroUsize,
        /// On-demand allocation instead of the pooling allocator.
        #[arg(long)]
        on_demand: bool,
        /// Load the compiled component from (and save it to) this cache, so that a profile
        /// does not include compiling it (default: a cache of this run's own, removed after).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// The bundled connector to call.
        #[arg(long, value_enum, default_value = "chatgpt")]
        connector: phases::percall::InfoConnector,
    },
    /// Only the syncs of measurement 3 on one side, for profiling: starts a mock with one
    /// workspace and syncs it `runs` times, printing each run's wall time and thread CPU time.
    Sync {
        /// Members of the workspace (plus one invite per hundred).
        #[arg(long, default_value_t = 100_000)]
        members: usize,
        /// Syncs to run.
        #[arg(long, default_value = "5")]
        runs: NonZeroUsize,
        /// Accounts per `list-accounts` call (default: the connector's).
        #[arg(long)]
        size: Option<u32>,
        /// Calls the host allows at once (sizes the pool; `--concurrency 1` keeps the
        /// reservation small enough for valgrind).
        #[arg(long, default_value = "32")]
        concurrency: NonZeroUsize,
        /// The connector built natively instead of the component in the host.
        #[arg(long)]
        native: bool,
        /// Name the guest's compiled functions for `perf` (wasmtime's perf map in
        /// `/tmp/perf-<pid>.map`), so `perf report` shows where the guest's time goes.
        #[arg(long)]
        perf_map: bool,
        /// Load the compiled component from (and save it to) this cache, so that a profile of
        /// a few syncs does not include compiling it, whose instruction count varies from run
        /// to run.
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct WorkerArgs {
    #[arg(long)]
    mock: SocketAddr,
    #[arg(long)]
    tenants: NonZeroUsize,
    #[arg(long)]
    members: usize,
    #[arg(long)]
    concurrency: NonZeroUsize,
    #[arg(long)]
    cache_dir: PathBuf,
    /// Distinct workspaces the tenants sync (default: one each).
    #[arg(long)]
    workspaces: Option<NonZeroUsize>,
    /// Syncs to run, sync `k` of tenant `k mod tenants` (default: one per tenant); at least
    /// one per tenant.
    #[arg(long)]
    syncs: Option<NonZeroUsize>,
}

impl WorkerArgs {
    fn workload(&self) -> anyhow::Result<phases::scale::Workload> {
        let tenants = self.tenants.get();
        let syncs = self.syncs.map_or(tenants, NonZeroUsize::get);
        if syncs < tenants {
            anyhow::bail!("--syncs {syncs} is fewer than --tenants {tenants}: some would not sync");
        }
        Ok(phases::scale::Workload {
            mock: self.mock,
            tenants,
            members: self.members,
            concurrency: self.concurrency.get(),
            workspaces: self.workspaces.map_or(tenants, NonZeroUsize::get),
            syncs,
        })
    }
}

/// A worker's result, as the driver reads it from the worker's stdout.
fn print_json(result: &impl serde::Serialize) -> anyhow::Result<()> {
    Ok(say(serde_json::to_string(result)?)?)
}

/// The runtime of the tenants-at-scale worker: one thread per core, as an embedder serving many
/// tenants runs the host.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// The runtime of measurements 1 to 4: one thread, as the native side runs, so a sequential
/// sync does not hand every request and response between threads.
fn sequential_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.helper {
        Some(Helper::ServeMock { workspace, latency_ms }) => {
            let specs =
                workspace.iter().map(|w| WorkspaceSpec::parse(w)).collect::<Result<Vec<_>, _>>()?;
            mock_process::serve(&specs, latency_ms.map(std::time::Duration::from_millis))
        }
        Some(Helper::ScaleWorker(a)) => print_json(
            &runtime()?.block_on(phases::scale::host_worker(a.workload()?, a.cache_dir))?,
        ),
        Some(Helper::ProcessWorker(a)) => {
            print_json(&phases::scale::process_worker(a.workload()?)?)
        }
        Some(Helper::NativeWorker(a)) => print_json(&phases::scale::native_worker(a.workload()?)?),
        Some(Helper::IdleWorker { mock, tenants, cache_dir }) => {
            print_json(&phases::scale::idle_worker(mock, tenants, cache_dir)?)
        }
        Some(Helper::PerCall { calls, concurrency, on_demand, cache_dir, connector }) => {
            let own_cache = cache_dir.is_none();
            let cache = cache_dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("connector-bench-cache-{}", std::process::id()))
            });
            // `info` sends no request: the tenant's origin need not answer.
            let tenant = connector.tenant(SocketAddr::from(([127, 0, 0, 1], 9)));
            let summary = runtime()?.block_on(phases::percall::info_calls(
                calls.get(),
                !on_demand,
                concurrency.get(),
                &cache,
                &tenant,
            ));
            if own_cache {
                let _ = std::fs::remove_dir_all(&cache);
            }
            let summary = summary?;
            Ok(say(format_args!(
                "instantiate + info of {}, {}, {} calls: median {:.1} µs, p99 {:.1} µs",
                connector.name(),
                if on_demand { "on-demand" } else { "pooling" },
                summary.count,
                summary.median.as_secs_f64() * 1e6,
                summary.p99.as_secs_f64() * 1e6
            ))?)
        }
        Some(Helper::Sync { members, runs, size, concurrency, native, perf_map, cache_dir }) => {
            sequential_runtime()?.block_on(phases::sandbox::profile_sync(
                members,
                runs.get(),
                size,
                HostConfig {
                    max_concurrent_calls: concurrency.get(),
                    perf_map,
                    cache_dir,
                    named_connectors: bundled_connectors::named(),
                    ..HostConfig::default()
                },
                native,
            ))
        }
        None => {
            let scale = if cli.quick { Scale::QUICK } else { Scale::FULL };
            let out = cli.out.or_else(|| {
                (!cli.quick).then(|| {
                    let bench = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
                    bench.parent().unwrap_or(&bench).join("docs").join("benchmarks.md")
                })
            });
            run(&scale, out)
        }
    }
}

fn progress(what: &str) {
    eprintln!("[connector-bench] {what}");
}

fn run(scale: &Scale, out: Option<PathBuf>) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; report numbers from `--release` only");
    }
    let cache = std::env::temp_dir().join(format!("connector-bench-cache-{}", std::process::id()));
    let mut workspaces =
        vec![WorkspaceSpec { account_id: "ws-info".to_string(), members: 1, invites: 0 }];
    workspaces.extend(phases::sandbox::sync_workspaces(scale));
    workspaces.extend(phases::sandbox::grant_workspaces(scale));
    workspaces.extend(phases::scale::tenant_workspaces(scale));
    workspaces.extend(phases::growth::growth_workspaces(scale));
    progress(&format!("starting the mock with {} workspaces", workspaces.len()));
    let mock = MockProcess::start(&workspaces)?;
    let mut report = Report::default();
    let mut sync_points = Vec::new();
    let rt = sequential_runtime()?;
    rt.block_on(async {
        let host = std::sync::Arc::new(Host::new(HostConfig {
            cache_dir: Some(cache.clone()),
            named_connectors: bundled_connectors::named(),
            ..HostConfig::default()
        })?);
        progress("1 load");
        report.rows.extend(phases::load::run(scale, &host, &cache)?);
        progress("2 instantiate + info");
        report.rows.extend(phases::percall::run(scale, &cache, mock.addr).await?);
        progress("3, 4 syncs");
        let (rows, notes) = phases::sandbox::syncs(scale, &host, mock.addr).await?;
        report.rows.extend(rows);
        report.notes.extend(notes);
        progress("3, 4 grants");
        report.rows.extend(phases::sandbox::grants(scale, &host, mock.addr).await?);
        progress("7 sync cost growth");
        let (rows, notes, points) = phases::growth::sync_growth(scale, &host, mock.addr).await?;
        report.rows.extend(rows);
        report.notes.extend(notes);
        sync_points = points;
        progress("3 syncs from a distant service");
        let (rows, notes) = phases::distant::distant_syncs(scale, &host).await?;
        report.rows.extend(rows);
        report.notes.extend(notes);
        anyhow::Ok(())
    })?;
    drop(rt);
    progress("5, 6 tenants at scale");
    let (rows, notes) = phases::scale::run(scale, &mock, &cache)?;
    report.rows.extend(rows);
    report.notes.extend(notes);
    progress("7 tenant cost growth");
    let (rows, notes, tenant_points) = phases::growth::tenant_growth(scale, mock.addr, &cache)?;
    report.rows.extend(rows);
    report.notes.extend(notes);
    drop(mock);
    let _ = std::fs::remove_dir_all(&cache);

    say(report.text())?;
    if let Some(path) = out {
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        report.figures = phases::growth::draw(&dir, &sync_points, &tenant_points)?;
        let command =
            if scale.quick { "connector-bench --quick" } else { "cargo bench -p connector-bench" };
        // The table's prose: what was measured, fixed and left, kept beside the code.
        let prose = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("remaining.md");
        let remaining = std::fs::read_to_string(&prose)
            .with_context(|| format!("reading {}", prose.display()))?;
        std::fs::write(&path, report.markdown(command, &report::machine(), &remaining))
            .with_context(|| format!("writing {}", path.display()))?;
        progress(&format!("wrote {}", path.display()));
    }
    Ok(())
}

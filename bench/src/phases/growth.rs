//! Cost growth: the CPU a sync spends per member against the workspace's size, and tenant
//! syncs/s and peak memory against the number of tenants, each beside the native connector on
//! the same axes, in the table and drawn as SVG next to it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use accessgov_host::Host;
use anyhow::ensure;

use super::sandbox::{LARGEST_SYNC_PAGE, Listing, count, sync_cpu_goal, thread_cpu, transport};
use super::scale::{ScaleResult, run_worker};
use crate::mock_process::WorkspaceSpec;
use crate::plot::{Series, line_chart};
use crate::report::{Row, mib, ratio};
use crate::scale::Scale;
use crate::wasm;
use accessgov_mock::console_base_url;
use connector_bench::native;
use connector_bench::stats::{median, summarize};
use connector_bench::tenants::chatgpt_tenant;

/// The workspaces of the sync-size curve: `ws-growth-<members>`.
pub fn growth_workspaces(scale: &Scale) -> Vec<WorkspaceSpec> {
    scale
        .growth_members
        .iter()
        .map(|&members| Scale::sync_workspace(format!("ws-growth-{members}"), members))
        .collect()
}

/// One point of the sync-size curve: members, and each side's median CPU per member (ns).
#[derive(Debug, Clone, Copy)]
pub struct SyncPoint {
    members: usize,
    wasm_ns: f64,
    native_ns: f64,
}

/// Syncs each growth workspace at pages of 1,000 on both sides, in batches of syncs of one side
/// covering at least `growth_batch_members` members, the sides' batches alternating, and
/// compares the syncing thread's CPU per member. A sync of 1,000 members is about 2 ms of work, a
/// sample that any interruption of the thread moves; a batch is at least 100 ms. Each size's
/// batches follow one another: a small sync right after a 1,000,000-member one (tried) pays for
/// the caches the large one left cold.
pub async fn sync_growth(
    scale: &Scale,
    host: &Arc<Host>,
    mock: std::net::SocketAddr,
) -> anyhow::Result<(Vec<Row>, Vec<String>, Vec<SyncPoint>)> {
    let (mut rows, mut notes, mut points) = (Vec::new(), Vec::new(), Vec::new());
    let page = Some(LARGEST_SYNC_PAGE);
    for spec in growth_workspaces(scale) {
        let tenant = format!("growth-{}", spec.members);
        host.add_tenant(&chatgpt_tenant(&tenant, mock, &spec.account_id), Path::new("."))?;
        let settings = native::settings_map(&console_base_url(mock), &spec.account_id);
        let link = transport(mock, &spec.account_id);
        // Fewer runs of the largest: each takes seconds, and varies little.
        let runs = if spec.members >= 1_000_000 { 2 } else { scale.sync_runs.clamp(1, 5) };
        let batch = syncs_per_batch(scale.growth_batch_members, spec.members);
        let (mut wasm_cpu, mut native_cpu) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            // No sync runs beside an earlier one's ids (see `Listing`): each batch drops the
            // last sync's before the next starts, and the batch's last are reduced to a
            // `Listing` once its time is taken.
            let mut ids = None;
            let before = thread_cpu()?;
            for _ in 0..batch {
                drop(ids.take());
                ids = Some(native::sync(&link, &settings, page)?.0);
            }
            native_cpu.push(thread_cpu()?.saturating_sub(before) / batch);
            let native_listing = ids.take().map(Listing::of);
            let before = thread_cpu()?;
            for _ in 0..batch {
                drop(ids.take());
                ids = Some(wasm::sync(host, &tenant, page).await?.ids);
            }
            wasm_cpu.push(thread_cpu()?.saturating_sub(before) / batch);
            let wasm_listing = ids.take().map(Listing::of);
            ensure!(native_listing == wasm_listing, "wasm and native listed different accounts");
        }
        let per_member = |cpu: &[Duration]| {
            summarize(cpu).median.as_secs_f64() * 1e9 / spec.members.max(1) as f64
        };
        let point = SyncPoint {
            members: spec.members,
            wasm_ns: per_member(&wasm_cpu),
            native_ns: per_member(&native_cpu),
        };
        let mut row = Row::plain(
            &format!(
                "7 sync {} members, pages of 1,000: CPU of the syncing thread per member, wasm in host (baseline: native)",
                count(spec.members)
            ),
            format!("{:.0} ns", point.wasm_ns),
            format!("{:.0} ns", point.native_ns),
            ratio(point.wasm_ns, point.native_ns),
        );
        // The sync whose CPU ratio is a goal (measurement 3) is judged here too, in batches of
        // one side's syncs: the goal holds only where both measurements say so.
        if Some(&spec.members) == scale.sync_members.last() {
            row = sync_cpu_goal(row, point.wasm_ns, point.native_ns);
        }
        rows.push(row);
        notes.push(format!(
            "growth: sync {} members (median of {runs} batches of {batch} syncs per side): CPU per member wasm {:.0} ns, native {:.0} ns",
            count(spec.members),
            point.wasm_ns,
            point.native_ns
        ));
        points.push(point);
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        rows.push(flatness_row(
            &format!(
                "7 cost growth: sync CPU per member, {} to {} members, largest / smallest, wasm in host (baseline: native)",
                count(first.members),
                count(last.members)
            ),
            points.iter().map(|p| p.wasm_ns),
            points.iter().map(|p| p.native_ns),
        ));
    }
    Ok((rows, notes, points))
}

/// Syncs of a `members` workspace in one measured batch: enough to cover `batch_members`
/// members, at least one.
fn syncs_per_batch(batch_members: usize, members: usize) -> u32 {
    u32::try_from(batch_members.div_ceil(members.max(1)).max(1)).unwrap_or(u32::MAX)
}

/// One point of the tenant-count curve.
#[derive(Debug, Clone, Copy)]
pub struct TenantPoint {
    tenants: usize,
    host_syncs: f64,
    native_syncs: f64,
    host_peak: u64,
    native_peak: u64,
    host_cpu_per_sync: f64,
    native_cpu_per_sync: f64,
}

/// Runs the host worker and the native worker at each of the growth tenant counts, tenants
/// sharing the scale run's workspaces in turn, and compares their syncs/s, peak memory and CPU
/// per sync. Every point runs at least as many syncs as the scale run (fewer tenants are synced
/// again in turn), so each keeps the same syncs in flight for long enough to measure: with one
/// sync per tenant, 10 tenants were 10 syncs at once for 20 ms, a point of start-up and noise.
pub fn tenant_growth(
    scale: &Scale,
    mock: std::net::SocketAddr,
    cache_dir: &Path,
) -> anyhow::Result<(Vec<Row>, Vec<String>, Vec<TenantPoint>)> {
    let (mut rows, mut notes, mut points) = (Vec::new(), Vec::new(), Vec::new());
    let c = scale.concurrency;
    let args = |worker: &str, tenants: usize| -> Vec<String> {
        [
            worker,
            "--mock",
            &mock.to_string(),
            "--tenants",
            &tenants.to_string(),
            "--workspaces",
            &tenants.min(scale.tenants).to_string(),
            "--members",
            &scale.tenant_members.to_string(),
            "--concurrency",
            &c.to_string(),
            "--syncs",
            &tenants.max(scale.tenants).to_string(),
            "--cache-dir",
            &cache_dir.display().to_string(),
        ]
        .map(str::to_string)
        .to_vec()
    };
    // Each round runs every tenant count once, sides alternating, so the machine's drift falls
    // on every point; each figure is the median of its side's runs.
    let mut runs: Vec<(Vec<ScaleResult>, Vec<ScaleResult>)> =
        scale.growth_tenants.iter().map(|_| (Vec::new(), Vec::new())).collect();
    for _ in 0..scale.growth_tenant_runs {
        for (&tenants, (host, native)) in scale.growth_tenants.iter().zip(&mut runs) {
            host.push(run_worker::<ScaleResult>(&args("scale-worker", tenants))?);
            native.push(run_worker::<ScaleResult>(&args("native-worker", tenants))?);
        }
    }
    for (&tenants, (host, native)) in scale.growth_tenants.iter().zip(runs) {
        let syncs = host.first().map_or(0, |r| r.syncs);
        let point = TenantPoint {
            tenants,
            host_syncs: median(host.iter().map(|r| r.syncs as f64 / r.seconds)),
            native_syncs: median(native.iter().map(|r| r.syncs as f64 / r.seconds)),
            host_peak: median(host.iter().map(|r| r.peak as f64)) as u64,
            native_peak: median(native.iter().map(|r| r.peak as f64)) as u64,
            host_cpu_per_sync: median(host.iter().map(|r| r.cpu_seconds / r.syncs as f64)),
            native_cpu_per_sync: median(native.iter().map(|r| r.cpu_seconds / r.syncs as f64)),
        };
        rows.push(Row::plain(
            &format!("7 {} tenants x {} members, {} syncs, {c} in flight: tenant syncs/s, wasm host (baseline: the native connector in one process)", count(tenants), count(scale.tenant_members), count(syncs)),
            format!("{:.1}/s", point.host_syncs),
            format!("{:.1}/s", point.native_syncs),
            ratio(point.host_syncs, point.native_syncs),
        ));
        rows.push(Row::plain(
            &format!("7 {} tenants: peak resident memory, wasm host (baseline: the native connector in one process)", count(tenants)),
            mib(point.host_peak),
            mib(point.native_peak),
            ratio(point.host_peak as f64, point.native_peak as f64),
        ));
        rows.push(Row::plain(
            &format!("7 {} tenants: the worker's CPU per sync, wasm host (baseline: the native connector in one process)", count(tenants)),
            format!("{:.2} ms", point.host_cpu_per_sync * 1e3),
            format!("{:.2} ms", point.native_cpu_per_sync * 1e3),
            ratio(point.host_cpu_per_sync, point.native_cpu_per_sync),
        ));
        let each_run = |side: &[ScaleResult]| -> String {
            let each: Vec<String> = side
                .iter()
                .map(|r| format!("{:.2} s, {}, CPU {:.2} s", r.seconds, mib(r.peak), r.cpu_seconds))
                .collect();
            each.join(" / ")
        };
        notes.push(format!(
            "growth: {} tenants, {syncs} syncs a run: host {}; native {}",
            count(tenants),
            each_run(&host),
            each_run(&native)
        ));
        points.push(point);
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        rows.push(flatness_row(
            &format!(
                "7 cost growth: tenant syncs/s, {} to {} tenants, largest / smallest, wasm host (baseline: native)",
                count(first.tenants),
                count(last.tenants)
            ),
            points.iter().map(|p| p.host_syncs),
            points.iter().map(|p| p.native_syncs),
        ));
        // The host's own cost, apart from the mock's: both share the two cores, so syncs/s
        // also moves with what the mock spends per page, which the native side shows too.
        rows.push(
            spread_row(
                &format!(
                    "7 cost growth: the worker's CPU per sync, {} to {} tenants, largest / smallest, wasm host (baseline: native)",
                    count(first.tenants),
                    count(last.tenants)
                ),
                points.iter().map(|p| p.host_cpu_per_sync),
                points.iter().map(|p| p.native_cpu_per_sync),
            )
            .0,
        );
    }
    Ok((rows, notes, points))
}

/// The row judging a curve flat: the measured side's largest value over its smallest, against
/// the native side's, within 10% to hold.
fn flatness_row(
    label: &str,
    measured: impl Iterator<Item = f64>,
    native: impl Iterator<Item = f64>,
) -> Row {
    let (row, measured) = spread_row(label, measured, native);
    row.goal("flat within 10% (<= 1.10)", measured <= 1.10)
}

/// The row of the measured side's largest value over its smallest against the native side's,
/// with no goal, and the measured side's spread.
fn spread_row(
    label: &str,
    measured: impl Iterator<Item = f64>,
    native: impl Iterator<Item = f64>,
) -> (Row, f64) {
    fn spread(values: impl Iterator<Item = f64>) -> f64 {
        let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        hi / lo
    }
    let (measured, native) = (spread(measured), spread(native));
    let row = Row::plain(
        label,
        format!("{measured:.2}"),
        format!("{native:.2}"),
        ratio(measured, native),
    );
    (row, measured)
}

/// Draws the curves into `dir` and returns each figure's title and file name.
pub fn draw(
    dir: &Path,
    syncs: &[SyncPoint],
    tenants: &[TenantPoint],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut figures = Vec::new();
    let mut chart =
        |file: &str, title: &str, x: &str, y: &str, series: Vec<Series>| -> anyhow::Result<()> {
            line_chart(&dir.join(file), title, x, y, &series)?;
            figures.push((title.to_string(), file.to_string()));
            Ok(())
        };
    let line = |label: &str, points: Vec<(f64, f64)>| Series { label: label.to_string(), points };
    if !syncs.is_empty() {
        chart(
            "benchmarks-sync-cpu-per-member.svg",
            "Sync CPU per member against workspace size (pages of 1,000)",
            "members (log scale)",
            "CPU of the syncing thread per member (ns)",
            vec![
                line("wasm in host", syncs.iter().map(|p| (p.members as f64, p.wasm_ns)).collect()),
                line(
                    "native connector",
                    syncs.iter().map(|p| (p.members as f64, p.native_ns)).collect(),
                ),
            ],
        )?;
    }
    if !tenants.is_empty() {
        chart(
            "benchmarks-tenant-throughput.svg",
            "Tenant syncs/s against registered tenants",
            "tenants (log scale)",
            "tenant syncs per second",
            vec![
                line(
                    "wasm host",
                    tenants.iter().map(|p| (p.tenants as f64, p.host_syncs)).collect(),
                ),
                line(
                    "native connector in one process",
                    tenants.iter().map(|p| (p.tenants as f64, p.native_syncs)).collect(),
                ),
            ],
        )?;
        chart(
            "benchmarks-tenant-memory.svg",
            "Peak resident memory against registered tenants",
            "tenants (log scale)",
            "peak resident memory (MiB)",
            vec![
                line(
                    "wasm host",
                    tenants
                        .iter()
                        .map(|p| (p.tenants as f64, p.host_peak as f64 / 1048576.0))
                        .collect(),
                ),
                line(
                    "native connector in one process",
                    tenants
                        .iter()
                        .map(|p| (p.tenants as f64, p.native_peak as f64 / 1048576.0))
                        .collect(),
                ),
            ],
        )?;
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::syncs_per_batch;

    #[test]
    fn a_batch_covers_at_least_its_members_with_at_least_one_sync() {
        assert_eq!(syncs_per_batch(100_000, 1_000), 100);
        assert_eq!(syncs_per_batch(100_000, 3_000), 34);
        assert_eq!(syncs_per_batch(100_000, 100_000), 1);
        assert_eq!(syncs_per_batch(100_000, 1_000_000), 1);
        assert_eq!(syncs_per_batch(2_000, 0), 2_000);
    }
}

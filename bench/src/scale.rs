//! How big each measurement is: the sizes, or a quick run for checking the bench itself.

use crate::mock_process::WorkspaceSpec;

/// Sizes of one benchmark run.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// A reduced run (`--quick`).
    pub quick: bool,
    /// Compilations from `.wasm` to time.
    pub compiles: usize,
    /// Loads from the on-disk cache to time.
    pub cache_loads: usize,
    /// `info` calls per allocator, after as many again to warm up.
    pub info_calls: usize,
    /// Members of the two synced workspaces.
    pub sync_members: [usize; 2],
    /// Runs of each sync per side (the median is reported).
    pub sync_runs: usize,
    /// `grant` calls per side.
    pub grants: usize,
    /// Members of the workspaces the grants go to.
    pub grant_members: usize,
    /// Tenants in the scale runs.
    pub tenants: usize,
    /// Members of each tenant's workspace.
    pub tenant_members: usize,
    /// Calls (or processes) in flight at once in the scale runs.
    pub concurrency: usize,
    /// Tenants registered, and left idle, to weigh what one holds.
    pub idle_tenants: usize,
    /// Workspace sizes of the sync cost-growth curve.
    pub growth_members: &'static [usize],
    /// Members one measured batch of the sync cost-growth curve covers at least: a smaller
    /// workspace is synced that many more times in a row by one side before the other's turn.
    pub growth_batch_members: usize,
    /// Runs of each side at each tenant count of the cost-growth curve (medians are reported).
    pub growth_tenant_runs: usize,
    /// Tenant counts of the throughput and memory growth curves.
    pub growth_tenants: &'static [usize],
}

impl Scale {
    /// The sizes.
    pub const FULL: Scale = Scale {
        quick: false,
        compiles: 5,
        cache_loads: 50,
        info_calls: 5_000,
        sync_members: [10_000, 100_000],
        sync_runs: 9,
        grants: 1_000,
        grant_members: 10_000,
        tenants: 1_000,
        tenant_members: 1_000,
        concurrency: 32,
        idle_tenants: 10_000,
        growth_members: &[1_000, 10_000, 100_000, 1_000_000],
        growth_batch_members: 100_000,
        growth_tenant_runs: 3,
        growth_tenants: &[10, 100, 1_000, 10_000],
    };

    /// Small sizes, for checking that the bench works.
    pub const QUICK: Scale = Scale {
        quick: true,
        compiles: 1,
        cache_loads: 5,
        info_calls: 300,
        sync_members: [1_000, 3_000],
        sync_runs: 1,
        grants: 30,
        grant_members: 1_000,
        tenants: 40,
        tenant_members: 300,
        concurrency: 8,
        idle_tenants: 500,
        growth_members: &[500, 1_000, 2_000],
        growth_batch_members: 2_000,
        growth_tenant_runs: 1,
        growth_tenants: &[5, 20, 80],
    };

    /// A synced workspace `account_id` of `members`, with 1% as many pending invites, so both
    /// listings are paged.
    pub fn sync_workspace(account_id: impl Into<String>, members: usize) -> WorkspaceSpec {
        WorkspaceSpec { account_id: account_id.into(), members, invites: members / 100 }
    }
}

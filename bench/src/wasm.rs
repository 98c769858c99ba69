//! The wasm side of the comparisons: the bundled component in the host doing the same work as
//! the native drivers in `connector_bench::native`.

use std::sync::Arc;

use accessgov_host::Host;
use accessgov_host::types::{AccountRef, ChangeOptions, ChangeOutcome, PageRequest};
use anyhow::{Context, bail};

/// What a full sync did.
#[derive(Debug, Clone, Default)]
pub struct Synced {
    /// Account ids, in order.
    pub ids: Vec<String>,
    /// Calls made (one per page).
    pub calls: usize,
    /// HTTP requests the calls sent.
    pub requests: usize,
    /// The largest linear memory one call's instance held, in bytes.
    pub peak_guest_memory: u64,
}

/// A full `list-accounts` sync of `tenant`, one call per page of `size` (none: the connector's
/// default), run as a task of the runtime (see [`as_task`]).
pub async fn sync(host: &Arc<Host>, tenant: &str, size: Option<u32>) -> anyhow::Result<Synced> {
    let (host, tenant) = (Arc::clone(host), tenant.to_string());
    as_task(async move { sync_calls(&host, &tenant, size).await }).await
}

/// Runs `work` as a task of the current runtime and waits for it, as an embedder's calls run (a
/// server's request handlers, a worker's jobs). Polled as the future of the runtime's `block_on`
/// instead, every wake-up of a call (each answer, each chunk of a body) is a write to the
/// runtime's eventfd and another `epoll_wait`: tokio's cost for that one future, not the host's.
/// On the sequential runtime the task runs on the calling thread, whose CPU time the bench reads.
async fn as_task<T: Send + 'static>(
    work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::spawn(work).await.context("the bench's task")?
}

async fn sync_calls(host: &Host, tenant: &str, size: Option<u32>) -> anyhow::Result<Synced> {
    let mut synced = Synced::default();
    let mut cursor = None;
    loop {
        let report = host.list_accounts(tenant, PageRequest { cursor, size }).await?;
        synced.calls += 1;
        synced.requests += report.egress.len();
        synced.peak_guest_memory = synced.peak_guest_memory.max(report.memory_bytes);
        let page = report.result.with_context(|| format!("list-accounts of {tenant}"))?;
        synced.ids.extend(page.accounts.into_iter().map(|a| a.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(synced),
        }
    }
}

/// Grants `entitlement` to the member `email` in one call; it must be applied. Returns the
/// number of requests sent. Runs as a task of the runtime (see [`as_task`]).
pub async fn grant(
    host: &Arc<Host>,
    tenant: &str,
    email: &str,
    entitlement: &str,
) -> anyhow::Result<usize> {
    let host = Arc::clone(host);
    let (tenant, email, entitlement) =
        (tenant.to_string(), email.to_string(), entitlement.to_string());
    as_task(async move {
        let report = host
            .grant(
                &tenant,
                AccountRef::Email(email.clone()),
                entitlement.clone(),
                ChangeOptions { dry_run: false },
            )
            .await?;
        let requests = report.egress.len();
        let result = report.result.with_context(|| format!("grant {entitlement} to {email}"))?;
        if result.outcome != ChangeOutcome::Applied {
            bail!("grant {entitlement} to {email}: {:?}, not applied", result.outcome);
        }
        Ok(requests)
    })
    .await
}

//! `harness worker`: a host taking jobs from a NATS JetStream work queue until SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use accessgov_cluster::{ClusterSettings, Store, Worker, WorkerOptions};
use anyhow::{Context, bail};
use clap::Args;

use crate::serve::{bundled_host, named, shutdown_signal};

/// The queue a server or worker joins.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// The NATS server, with JetStream (e.g. `nats://127.0.0.1:4222`).
    #[arg(long)]
    pub nats: Option<String>,
    /// How long a job may go without a sign of life from its worker before another is given it;
    /// set by the first process that makes the queue.
    #[arg(long, default_value_t = 30_000)]
    pub ack_wait_ms: u64,
    /// How long a tenant's write lease outlives its holder's last heartbeat.
    #[arg(long, default_value_t = 15_000)]
    pub lease_ttl_ms: u64,
}

impl QueueArgs {
    /// The queue's settings.
    pub fn settings(&self) -> ClusterSettings {
        ClusterSettings {
            ack_wait: Duration::from_millis(self.ack_wait_ms.max(1_000)),
            lease_ttl: Duration::from_millis(self.lease_ttl_ms.max(1_000)),
            ..ClusterSettings::default()
        }
    }
}

/// Options of `harness worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// Where to serve /healthz, /readyz and /metrics (port 0 picks a free one). They name
    /// tenants: keep them on loopback or a private network.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The worker's name in job records (default: worker-<pid>).
    #[arg(long)]
    name: Option<String>,
    /// Jobs run at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long SIGTERM waits for running jobs; batches hand themselves back at once.
    #[arg(long, default_value_t = 30_000)]
    drain_ms: u64,
}

/// Runs `harness worker`.
pub async fn run(args: WorkerArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let Some(url) = &args.queue.nats else {
        bail!("--nats: give the NATS server to take jobs from")
    };
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let name = args.name.clone().unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let host = bundled_host(cache_dir)?;
    let store = Arc::new(Store::open(url, args.queue.settings()).await?);
    let options = WorkerOptions {
        name: name.clone(),
        concurrency: args.concurrency,
        drain: Duration::from_millis(args.drain_ms),
        catch_up: Duration::from_secs(30),
    };
    let worker = Worker::start(store, host, options);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let router = worker.router();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("health and metrics: {e}");
        }
    });
    eprintln!("harness worker {name}: health and metrics on http://{addr}; taking jobs from {url}");
    let report = worker.run(shutdown_signal()).await?;
    eprintln!(
        "harness worker {name}: stopped; {} job(s) were running, {} left to the queue{}",
        report.running_at_start,
        report.left.len(),
        named(&report.left)
    );
    Ok(())
}

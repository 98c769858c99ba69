//! `harness serve`: the host as an HTTP/JSON service until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;

use accessgov_cluster::mirror::Mirror;
use accessgov_cluster::{NatsQueue, Store};
use accessgov_host::{Host, HostConfig};
use accessgov_server::dispatch::Backend;
use accessgov_server::{Server, ServerConfig};

use crate::worker;
use anyhow::{Context, bail};
use clap::Args;

/// Options of `harness serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The server's configuration file (keys, limits, audit log, tenants; see docs/server.md).
    #[arg(long)]
    config: PathBuf,
    /// Where to listen, overriding the file's `listen` (port 0 picks a free one). Anything
    /// but loopback needs TLS in the configuration.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Queue calls, syncs and jobs on this NATS server's JetStream for `harness worker`s to
    /// run, instead of running them here (tenants and connectors are shared through it too).
    #[command(flatten)]
    queue: worker::QueueArgs,
    /// With `--nats`: how long a call waits for a worker's answer before answering 504 (the
    /// job stays queued).
    #[arg(long, default_value_t = 120_000, requires = "nats")]
    queue_wait_ms: u64,
}

/// Runs `harness serve`.
pub async fn run(args: ServeArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let mut config = ServerConfig::read(&args.config)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if !config.listen.ip().is_loopback() && config.tls.is_none() {
        bail!(
            "listen {}: serving beyond loopback needs TLS; give [tls] certificate and private-key in {}",
            config.listen,
            args.config.display()
        );
    }
    let host = bundled_host(cache_dir)?;
    let backend = match &args.queue.nats {
        None => Backend::Local,
        Some(url) => {
            let store = Arc::new(Store::open(url, args.queue.settings()).await?);
            let mirror = Mirror::new(host.clone());
            let (m, s) = (mirror.clone(), store.clone());
            tokio::spawn(async move {
                if let Err(e) = m.follow(s).await {
                    tracing::error!("following the shared connectors and tenants stopped: {e}");
                }
            });
            let wait = Duration::from_millis(args.queue_wait_ms);
            Backend::Queue(Box::new(NatsQueue::new(store, mirror, wait)))
        }
    };
    let server = Server::new(&config, host, backend).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("could not listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    eprintln!("harness serve: listening on {scheme}://{addr}");
    let report = server.serve(listener, shutdown_signal()).await?;
    eprintln!(
        "harness serve: stopped; {} call(s) were in flight, {} cut off{}",
        report.in_flight_at_start,
        report.cut_off.len(),
        named(&report.cut_off)
    );
    if !report.cut_off.is_empty() {
        bail!("{} call(s) were cut off by the shutdown (see the audit log)", report.cut_off.len());
    }
    Ok(())
}

/// `what`, each named after a colon, for a shutdown's report line; nothing when it is empty.
pub fn named(what: &[String]) -> String {
    if what.is_empty() { String::new() } else { format!(": {}", what.join("; ")) }
}

/// A host with the bundled connectors, listed and usable by name from the start.
pub fn bundled_host(cache_dir: Option<PathBuf>) -> anyhow::Result<Arc<Host>> {
    let host = Arc::new(Host::new(HostConfig {
        cache_dir,
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })?);
    for (name, named) in bundled_connectors::named() {
        host.add_named_connector(&name, &named)?;
    }
    Ok(host)
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                eprintln!("harness serve: SIGTERM cannot be watched ({e}); stop with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

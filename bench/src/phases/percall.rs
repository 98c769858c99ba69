//! Measurement 2, per-call overhead: a fresh store, instantiation and `info`, pooling
//! allocator against on-demand allocation, and the other bundled connector beside the ChatGPT
//! one.

use std::path::Path;
use std::time::{Duration, Instant};

use accessgov_host::{Host, HostConfig, TenantConfig};
use anyhow::Context;

use crate::report::Row;
use crate::scale::Scale;
use connector_bench::stats::{Summary, summarize};
use connector_bench::tenants::{chatgpt_tenant, platform_tenant};

/// A bundled connector whose `info` the bench times.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum InfoConnector {
    /// The ChatGPT workspace connector.
    Chatgpt,
    /// The OpenAI API Platform organization connector.
    OpenaiPlatform,
}

impl InfoConnector {
    /// Its bundled name.
    pub fn name(self) -> &'static str {
        match self {
            InfoConnector::Chatgpt => "chatgpt",
            InfoConnector::OpenaiPlatform => "openai-platform",
        }
    }

    /// A tenant of it whose origin is `mock`, for `info` calls.
    pub fn tenant(self, mock: std::net::SocketAddr) -> TenantConfig {
        match self {
            InfoConnector::Chatgpt => chatgpt_tenant("info", mock, "ws-info"),
            InfoConnector::OpenaiPlatform => platform_tenant("info", mock),
        }
    }
}

/// Times `calls` sequential `info` calls of `tenant`, each on a fresh store, after as many
/// again to warm up. `concurrency` sizes the host (and its pool).
pub async fn info_calls(
    calls: usize,
    pooling: bool,
    concurrency: usize,
    cache_dir: &Path,
    tenant: &TenantConfig,
) -> anyhow::Result<Summary> {
    let host = Host::new(HostConfig {
        cache_dir: Some(cache_dir.to_path_buf()),
        pooling,
        max_concurrent_calls: concurrency,
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })?;
    host.add_tenant(tenant, Path::new("."))?;
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls * 2 {
        let started = Instant::now();
        let report = host.info(&tenant.id).await?;
        let elapsed = started.elapsed();
        report.result.context("info")?;
        // The first half warms up (page faults of the pool, the code, the allocator).
        if i >= calls {
            samples.push(elapsed);
        }
    }
    Ok(summarize(&samples))
}

/// Times `info` calls on a pooling host and on an on-demand host, and the OpenAI Platform
/// connector's on a pooling host.
pub async fn run(
    scale: &Scale,
    cache_dir: &Path,
    mock: std::net::SocketAddr,
) -> anyhow::Result<Vec<Row>> {
    let concurrency = HostConfig::default().max_concurrent_calls;
    let chatgpt = InfoConnector::Chatgpt.tenant(mock);
    let pooled = info_calls(scale.info_calls, true, concurrency, cache_dir, &chatgpt).await?;
    let on_demand = info_calls(scale.info_calls, false, concurrency, cache_dir, &chatgpt).await?;
    let platform = InfoConnector::OpenaiPlatform.tenant(mock);
    let other = info_calls(scale.info_calls, true, concurrency, cache_dir, &platform).await?;
    let n = pooled.count;
    Ok(vec![
        Row::times(
            &format!("2 instantiate + info, pooling, median of {n} (baseline: on-demand)"),
            pooled.median,
            on_demand.median,
        )
        .goal("median <= 10 µs", pooled.median <= Duration::from_micros(10)),
        Row::times(
            "2 instantiate + info, pooling, p99 (baseline: on-demand p99)",
            pooled.p99,
            on_demand.p99,
        ),
        Row::times(
            &format!(
                "2 instantiate + info, pooling, median of {}: the OpenAI Platform connector \
                 (baseline: the ChatGPT connector)",
                other.count
            ),
            other.median,
            pooled.median,
        ),
    ])
}

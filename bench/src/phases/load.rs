//! 1. Load: compiling the component from `.wasm` against loading it from the on-disk cache.

use std::path::Path;
use std::time::{Duration, Instant};

use accessgov_host::Host;
use accessgov_host::cache::{self, CacheOutcome, ComponentCache};
use anyhow::bail;

use crate::report::{Row, duration, ratio};
use crate::scale::Scale;
use connector_bench::stats::summarize;

/// Times compiles and cache loads of the bundled connector with `host`'s engine.
pub fn run(scale: &Scale, host: &Host, cache_dir: &Path) -> anyhow::Result<Vec<Row>> {
    let bytes = bundled_connectors::CHATGPT;
    let engine = host.engine();
    let mut compiles = Vec::new();
    for _ in 0..scale.compiles {
        let started = Instant::now();
        let (_, outcome) = ComponentCache::new(None, cache::DEFAULT_MAX_BYTES)
            .load(engine, "chatgpt", bytes, None)?;
        compiles.push(started.elapsed());
        if outcome != CacheOutcome::Compiled {
            bail!("an uncached load did not compile");
        }
    }
    let cache = ComponentCache::new(Some(cache_dir.to_path_buf()), cache::DEFAULT_MAX_BYTES);
    // As a host loads the bundled connector: by the digest computed when it was built.
    let digest = Some(&bundled_connectors::CHATGPT_SHA256);
    cache.load(engine, "chatgpt", bytes, digest)?;
    let mut loads: Vec<Duration> = Vec::new();
    for _ in 0..scale.cache_loads {
        let started = Instant::now();
        let (_, outcome) = cache.load(engine, "chatgpt", bytes, digest)?;
        loads.push(started.elapsed());
        if outcome != CacheOutcome::Loaded {
            bail!("the cached component was compiled again");
        }
    }
    let (compile, load) = (summarize(&compiles), summarize(&loads));
    Ok(vec![
        Row::plain(
            &format!(
                "1 load: cached load, median of {} (compile from .wasm: median of {})",
                load.count, compile.count
            ),
            duration(load.median),
            duration(compile.median),
            ratio(compile.median.as_secs_f64(), load.median.as_secs_f64()) + "x faster",
        )
        .goal("cached load < 10 ms", load.median < Duration::from_millis(10)),
    ])
}

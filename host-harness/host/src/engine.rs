//! The process-wide wasmtime engine and its epoch ticker.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy,
};

use crate::error::HostError;

/// How often the epoch advances. A running guest yields to the async runtime once per tick, so
/// a busy guest cannot starve other tasks and call deadlines fire within about one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of each pooled linear memory kept resident when its slot is freed: reset in place to
/// the memory's initial image (only the pages the call dirtied, found with `PAGEMAP_SCAN` where
/// the kernel has it) instead of `madvise`d away and faulted back in by the next call. Beyond
/// this, pages are still returned to the kernel. The next call sees exactly the initial memory
/// either way; this only trades idle resident memory for fewer system calls and page faults.
/// 2 MiB covers the bundled connector's initial memory, sized so that even its largest page
/// needs no growth (see `connector/chatgpt/build.rs`): its calls then change no page protection and
/// fault in no page a previous call in the slot already had.
pub const MEMORY_KEEP_RESIDENT: usize = 2 << 20;
/// The same for each pooled table.
pub const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Linear memories one component may define, with pooling: a `wasm32-wasip2` build has one, a
/// component adapted from preview 1 two.
pub const MEMORIES_PER_COMPONENT: u32 = 2;

/// How many instances the pooling allocator holds, and how large each memory may be.
#[derive(Debug, Clone, Copy)]
pub struct PoolSizing {
    /// Calls (component instances) alive at once.
    pub instances: NonZeroU32,
    /// Largest linear memory of one instance, in bytes.
    pub max_memory_bytes: usize,
}

/// Creates the engine every call shares: component model, epoch interruption, copy-on-write
/// memory images and, when `pool` is given, the pooling allocator sized for it (calls beyond
/// its size wait in the host rather than fail), resetting freed slots in place up to
/// [`MEMORY_KEEP_RESIDENT`] and [`TABLE_KEEP_RESIDENT`]. With `perf_map`, compiled functions
/// are named for `perf` in `/tmp/perf-<pid>.map`.
pub fn create_engine(pool: Option<PoolSizing>, perf_map: bool) -> Result<Engine, HostError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    if perf_map {
        config.profiler(ProfilingStrategy::PerfMap);
    }
    if let Some(pool) = pool {
        let n = pool.instances.get();
        let mut pooling = PoolingAllocationConfig::default();
        // A component holds several core instances (the program, wasi adapters, shims), but
        // few memories: one for a `wasm32-wasip2` build, two with a preview-1 adapter; a
        // component declaring more is refused at load. Memory slots are counted tightly
        // because wasmtime splits a pool of 128 slots or more into one shard per CPU, each
        // keeping its own warm slots: at four memories per call, 32 calls on two cores
        // left 61 slots resident instead of 32 (about 5 MiB more at the run's peak).
        pooling
            .total_component_instances(n)
            .total_core_instances(n.saturating_mul(16))
            .total_memories(n.saturating_mul(MEMORIES_PER_COMPONENT))
            .total_tables(n.saturating_mul(16))
            .total_stacks(n)
            .max_core_instances_per_component(32)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .max_tables_per_component(16)
            .max_memory_size(pool.max_memory_bytes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    Engine::new(&config).map_err(|e| HostError::Engine(format!("{e:#}")))
}

/// Advances the engine's epoch on its own OS thread until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: &Engine) -> Result<Self, HostError> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".to_string())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| HostError::Engine(format!("could not start the epoch ticker: {e}")))?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

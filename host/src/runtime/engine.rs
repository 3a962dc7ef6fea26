//! The wasmtime engines a server runs guests on, with their pooling allocators, one epoch
//! ticker, one server-wide instance limit, and the linkers holding every host interface a
//! guest may import: the optimizing tier (Cranelift), which serves apps in the long run, and a
//! baseline tier (Winch), which compiles several times faster so a new upload can answer
//! while Cranelift is still working on it.

use crate::config::EngineConfig;
use crate::runtime::sandbox::HostState;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Linker;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

/// How often the epoch advances: the granularity of timeouts and of guest yields to tokio.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Stacks are small: keep 1 MiB of each resident (see `EngineConfig::keep_resident_bytes`).
const STACK_KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Pool slots per instance: a wasip2 component links a handful of core modules.
const CORE_INSTANCES_PER_INSTANCE: u32 = 10;
const MEMORIES_PER_INSTANCE: u32 = 2;
const TABLES_PER_INSTANCE: u32 = 4;

/// One engine and the linker for it.
#[derive(Clone)]
pub(crate) struct Tier {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
}

impl Tier {
    fn new(settings: &EngineConfig, strategy: Strategy) -> anyhow::Result<Self> {
        // Pages a guest dirtied are found with `pagemap_scan` and reset in place (memcpy) up to
        // this much per slot, instead of being returned to the kernel: returning them costs an
        // `madvise`, a TLB shootdown across cores, and a page fault per page on the next
        // request. Small guests dirty far less than this; big interpreters (Python, JS) dirty
        // megabytes per request, and this is what makes their fresh instances fast.
        let keep_resident = usize::try_from(settings.keep_resident_bytes).unwrap_or(usize::MAX);
        let mut pool = PoolingAllocationConfig::new();
        let instances = settings.max_instances;
        pool.total_component_instances(instances)
            .total_stacks(instances)
            .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_INSTANCE))
            .total_memories(instances.saturating_mul(MEMORIES_PER_INSTANCE))
            .total_tables(instances.saturating_mul(TABLES_PER_INSTANCE))
            .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX))
            .linear_memory_keep_resident(keep_resident)
            .table_keep_resident(keep_resident)
            .async_stack_keep_resident(STACK_KEEP_RESIDENT_BYTES)
            .pagemap_scan(Enabled::Auto);

        let mut config = Config::new();
        config
            .strategy(strategy)
            .wasm_component_model(true)
            .epoch_interruption(settings.epoch_interruption)
            // Copy-on-write images make every first write to an initialized page a fault and
            // a cross-core TLB flush, per instance: for a Python guest that is most of its
            // cost. Without them, data segments are copied into pages the slot keeps
            // resident (above): measured 1.6x the requests per second for a Python guest,
            // the same for small guests (README, Performance).
            .memory_init_cow(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI p2")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi:http")?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
        })
    }

    /// The wasmtime engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker apps of this tier are instantiated with.
    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }
}

/// The engines apps run on: create one per process (or per server) and pass it to
/// `server::run_with_engine`. Cheap to clone: clones share the engines, the epoch
/// ticker and the instance limit.
#[derive(Clone)]
pub struct WasmEngine {
    optimized: Tier,
    baseline: Option<Tier>,
    /// One permit per guest instance alive, over both tiers: each tier's pool has room for
    /// all of them, so this is the server-wide `--max-instances`.
    instance_slots: Arc<Semaphore>,
    /// The number of those permits.
    max_instances: u32,
}

/// No instance slot is free: `--max-instances` guest instances are alive.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("server busy: {0} guest instances are running, the limit (--max-instances)")]
pub(crate) struct NoInstanceSlot(pub u32);

impl WasmEngine {
    /// Builds the optimizing engine and, where the platform supports it, the baseline one;
    /// links WASI p2 and wasi:http into each and starts one epoch ticker for both (a thread
    /// that ends by itself once the engines are dropped).
    ///
    /// # Errors
    ///
    /// If wasmtime refuses the optimizing configuration (e.g. the pool cannot be reserved).
    pub fn new(settings: &EngineConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.max_instances > 0,
            "--max-instances must be at least 1"
        );
        let optimized = Tier::new(settings, Strategy::Cranelift)?;
        let baseline = match Tier::new(settings, Strategy::Winch) {
            Ok(tier) => Some(tier),
            Err(error) => {
                tracing::info!(
                    "no baseline compiler, uploads compile with Cranelift only: {error:#}"
                );
                None
            }
        };
        if settings.epoch_interruption {
            let engines = std::iter::once(&optimized).chain(&baseline);
            start_epoch_ticker(engines.map(|tier| tier.engine.clone()).collect());
        } else {
            tracing::warn!("epoch interruption is off: request deadlines cannot stop busy guests");
        }
        Ok(Self {
            optimized,
            baseline,
            instance_slots: Arc::new(Semaphore::new(settings.max_instances as usize)),
            max_instances: settings.max_instances,
        })
    }

    /// The optimizing tier (Cranelift): what apps run on in the long run, and what is cached.
    pub(crate) fn optimized(&self) -> &Tier {
        &self.optimized
    }

    /// The baseline tier (Winch), if available.
    pub(crate) fn baseline(&self) -> Option<&Tier> {
        self.baseline.as_ref()
    }

    /// A slot for one more guest instance, held as long as its store lives.
    pub(crate) fn instance_slot(&self) -> Result<OwnedSemaphorePermit, NoInstanceSlot> {
        self.instance_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| NoInstanceSlot(self.max_instances))
    }
}

/// Advances the epoch of every engine of a server from one thread, until they are all
/// dropped.
fn start_epoch_ticker(engines: Vec<Engine>) {
    let weak: Vec<_> = engines.iter().map(Engine::weak).collect();
    drop(engines);
    std::thread::Builder::new()
        .name("wasmount-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                let mut alive = false;
                for engine in weak.iter().filter_map(|weak| weak.upgrade()) {
                    engine.increment_epoch();
                    alive = true;
                }
                if !alive {
                    break;
                }
            }
        })
        .expect("spawning the epoch ticker thread");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instance_limit_covers_both_tiers() {
        let settings = EngineConfig {
            max_instances: 2,
            ..EngineConfig::default()
        };
        let engine = WasmEngine::new(&settings).unwrap();
        let first = engine.instance_slot().unwrap();
        let _second = engine.clone().instance_slot().unwrap();
        let busy = engine.instance_slot().unwrap_err();
        assert!(busy.to_string().contains("2 guest instances"), "{busy}");
        drop(first);
        assert!(engine.instance_slot().is_ok());
    }
}

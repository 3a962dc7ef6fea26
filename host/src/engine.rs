//! The wasmtime engines of the process, with their pooling allocators, epoch tickers and the
//! linkers holding every host interface a guest may import: the optimizing tier (Cranelift),
//! which serves apps in the long run, and a baseline tier (Winch), which compiles several
//! times faster so a new upload can answer while Cranelift is still working on it.

use crate::config::EngineConfig;
use crate::sandbox::HostState;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

/// How often the epoch advances: the granularity of timeouts and of guest yields to tokio.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Stacks are small: keep 1 MiB of each resident (see `EngineConfig::keep_resident_bytes`).
const STACK_KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Pool slots per instance: a wasip2 component links a handful of core modules.
const CORE_INSTANCES_PER_INSTANCE: u32 = 10;
const MEMORIES_PER_INSTANCE: u32 = 2;
const TABLES_PER_INSTANCE: u32 = 4;

/// One engine and the linker for it.
#[derive(Clone)]
pub struct Tier {
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
        if settings.epoch_interruption {
            start_epoch_ticker(&engine);
        } else {
            tracing::warn!("epoch interruption is off: request deadlines cannot stop busy guests");
        }
        Ok(Self {
            engine,
            linker: Arc::new(linker),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker apps of this tier are instantiated with.
    pub fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }
}

/// The engines apps run on. Cheap to clone.
#[derive(Clone)]
pub struct WasmEngine {
    optimized: Tier,
    baseline: Option<Tier>,
}

impl WasmEngine {
    /// Builds the optimizing engine and, where the platform supports it, the baseline one;
    /// links WASI p2 and wasi:http into each and starts their epoch tickers (threads that end
    /// by themselves once their engine is dropped).
    ///
    /// # Errors
    ///
    /// If wasmtime refuses the optimizing configuration (e.g. the pool cannot be reserved).
    pub fn new(settings: &EngineConfig) -> anyhow::Result<Self> {
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
        Ok(Self {
            optimized,
            baseline,
        })
    }

    /// The optimizing tier (Cranelift): what apps run on in the long run, and what is cached.
    pub fn optimized(&self) -> &Tier {
        &self.optimized
    }

    /// The baseline tier (Winch), if available.
    pub fn baseline(&self) -> Option<&Tier> {
        self.baseline.as_ref()
    }

    /// The optimizing engine.
    pub fn engine(&self) -> &Engine {
        self.optimized.engine()
    }
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasmount-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawning the epoch ticker thread");
}

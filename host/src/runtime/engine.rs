//! The wasmtime engines a server runs guests on, with their pooling allocators, one epoch
//! ticker, one server-wide instance limit, the server-wide cap on idle reused instances, the
//! thread that gives idle pool memory back, and the linkers holding every host interface a
//! guest may import: the optimizing tier (Cranelift), which serves apps in the long run, and a
//! baseline tier (Winch), which compiles several times faster so a new upload can answer
//! while Cranelift is still working on it.

use crate::config::EngineConfig;
use crate::metrics::PoolFigures;
use crate::runtime::reuse::IdleCap;
use crate::runtime::sandbox::HostState;
use anyhow::Context as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
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
            .max_unused_warm_slots(settings.max_warm_slots)
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
    /// The epoch ticker, to wake when an instance starts on an idle server.
    ticker: Option<Arc<EpochTicker>>,
    /// The cap on idle reused instances over all apps.
    idle_cap: Arc<IdleCap>,
    /// How busy the pools were since the memory trimmer last looked.
    activity: Arc<Activity>,
}

/// Instance starts, counted for the memory trimmer (two relaxed atomics per instance).
#[derive(Default)]
struct Activity {
    /// Instances started since the process began.
    starts: AtomicU64,
    /// The most instances alive at once since the trimmer last looked.
    peak: AtomicU32,
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
        let engines: Vec<Engine> = std::iter::once(&optimized)
            .chain(&baseline)
            .map(|tier| tier.engine.clone())
            .collect();
        let instance_slots = Arc::new(Semaphore::new(settings.max_instances as usize));
        let ticker = if settings.epoch_interruption {
            let idle = IdleSlots {
                slots: instance_slots.clone(),
                all: settings.max_instances as usize,
            };
            Some(start_epoch_ticker(engines.clone(), idle))
        } else {
            tracing::warn!("epoch interruption is off: request deadlines cannot stop busy guests");
            None
        };
        let activity = Arc::new(Activity::default());
        if !settings.idle_memory_release_after.is_zero() {
            start_memory_trimmer(engines, activity.clone(), settings);
        }
        Ok(Self {
            optimized,
            baseline,
            instance_slots,
            max_instances: settings.max_instances,
            ticker,
            idle_cap: Arc::new(IdleCap::new(settings.max_idle_instances)),
            activity,
        })
    }

    /// The optimizing tier (Cranelift): what apps run on in the long run, and what is cached.
    /// The pooling allocator's figures, both tiers together.
    pub(crate) fn pool_figures(&self) -> PoolFigures {
        let mut figures = PoolFigures::default();
        for tier in std::iter::once(self.optimized()).chain(self.baseline()) {
            if let Some(pool) = tier.engine().pooling_allocator_metrics() {
                let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
                figures.instances += i64::try_from(pool.component_instances()).unwrap_or(i64::MAX);
                figures.memories += count(pool.memories());
                figures.unused_warm_memories += i64::from(pool.unused_warm_memories());
                figures.unused_bytes_resident += count(pool.unused_memory_bytes_resident());
            }
        }
        figures
    }

    pub(crate) fn optimized(&self) -> &Tier {
        &self.optimized
    }

    /// The baseline tier (Winch), if available.
    pub(crate) fn baseline(&self) -> Option<&Tier> {
        self.baseline.as_ref()
    }

    /// The cap on idle reused instances over all apps.
    pub(crate) fn idle_cap(&self) -> &Arc<IdleCap> {
        &self.idle_cap
    }

    /// A slot for one more guest instance, held as long as its store lives. When every slot
    /// is taken and some hold idle reused instances, the oldest of those makes room.
    pub(crate) fn instance_slot(&self) -> Result<OwnedSemaphorePermit, NoInstanceSlot> {
        let mut permit = self.instance_slots.clone().try_acquire_owned();
        // Another request may take the slot an idle instance freed: try a few of them.
        for _ in 0..SLOTS_MADE_PER_REQUEST {
            if permit.is_ok() || !self.idle_cap.drop_oldest() {
                break;
            }
            permit = self.instance_slots.clone().try_acquire_owned();
        }
        let permit = permit.map_err(|_| NoInstanceSlot(self.max_instances))?;
        let alive = self.max_instances - self.instance_slots.available_permits() as u32;
        self.activity.starts.fetch_add(1, Ordering::Relaxed);
        self.activity.peak.fetch_max(alive, Ordering::Relaxed);
        if let Some(ticker) = &self.ticker {
            ticker.wake();
        }
        Ok(permit)
    }
}

/// Gives the pools' idle memory back to the operating system from a thread of its own,
/// checking every `period` until the engines are dropped (see [`TrimRule`]), and the free
/// pages of the heap every period. Steady traffic keeps its slots warm, and the speed that
/// keeping pages resident buys.
fn start_memory_trimmer(engines: Vec<Engine>, activity: Arc<Activity>, settings: &EngineConfig) {
    let period = settings.idle_memory_release_after;
    let mut rule = TrimRule::new(settings, activity.starts.load(Ordering::Relaxed));
    let weak: Vec<_> = engines.iter().map(Engine::weak).collect();
    drop(engines);
    std::thread::Builder::new()
        .name("wasmount-trim".into())
        .spawn(move || {
            loop {
                std::thread::sleep(period);
                let engines: Vec<_> = weak.iter().filter_map(|weak| weak.upgrade()).collect();
                if engines.is_empty() {
                    break;
                }
                let starts = activity.starts.load(Ordering::Relaxed);
                let peak = activity.peak.swap(0, Ordering::Relaxed);
                let resident: usize = engines.iter().map(unused_resident_bytes).sum();
                if rule.should_release(starts, peak, resident) {
                    let bytes: usize = engines.iter().map(Engine::release_idle_pool_memory).sum();
                    tracing::debug!(bytes, peak, "released idle pool memory");
                }
                release_free_heap();
            }
        })
        .expect("spawning the memory trimmer thread");
}

/// Gives the pages of the host's heap that are free back to the operating system: glibc keeps
/// them (in every thread's arena) after a compile or a burst of big responses — an optimizing
/// compile of an 18 MB Python component leaves hundreds of MiB behind. Cheap when there is
/// little to give back; once a period.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` takes no pointers and only returns free pages of glibc's own
    // arenas (under their locks); it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// When the memory trimmer releases the pools' idle memory, judged once a period.
struct TrimRule {
    /// What one warm slot may keep resident (`--keep-resident`).
    slot_bytes: usize,
    /// Warm unused slots that busy traffic normally leaves: the pool keeps one per worker
    /// thread's shard and app, plus a few.
    spare_slots: usize,
    /// Memory slots in one pool, and how many of them may stay warm (`--max-warm-slots`).
    pool_slots: usize,
    max_warm_slots: usize,
    starts_seen: u64,
    previous_peak: u32,
    oversized_periods: u32,
}

impl TrimRule {
    fn new(settings: &EngineConfig, starts: u64) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            slot_bytes: usize::try_from(settings.keep_resident_bytes).unwrap_or(usize::MAX),
            spare_slots: WARM_SLOTS_SPARE + cores,
            pool_slots: (settings.max_instances as usize)
                .saturating_mul(MEMORIES_PER_INSTANCE as usize),
            max_warm_slots: settings.max_warm_slots as usize,
            starts_seen: starts,
            previous_peak: 0,
            oversized_periods: 0,
        }
    }

    /// Whether to release now, given the instances started so far, the most alive at once
    /// during the period, and the bytes unused slots keep resident: when no instance started
    /// during a whole period (the server went quiet after a burst), or when for two periods
    /// in a row unused slots held far more than twice the recent peak could use (a burst left
    /// them behind; a trickle of requests does not make the server quiet) — the latter only
    /// while the pool has cold slots to spare, as a release takes the warm ones out of use for
    /// a moment.
    fn should_release(&mut self, starts: u64, peak: u32, resident: usize) -> bool {
        let quiet = starts == self.starts_seen;
        self.starts_seen = starts;
        let recent_peak = peak.max(self.previous_peak) as usize;
        self.previous_peak = peak;
        let needed_slots = recent_peak
            .saturating_mul(2)
            .saturating_add(self.spare_slots);
        let headroom = self.pool_slots > self.max_warm_slots + recent_peak.saturating_mul(4);
        let oversized = headroom && resident > needed_slots.saturating_mul(self.slot_bytes);
        self.oversized_periods = if oversized {
            self.oversized_periods + 1
        } else {
            0
        };
        (quiet && resident > 0) || self.oversized_periods >= 2
    }
}

/// How many idle reused instances one request that finds no free slot may drop to get one.
const SLOTS_MADE_PER_REQUEST: usize = 3;

/// Slots' worth of resident pages, beyond twice the recent peak and one per core, that unused
/// slots may keep.
const WARM_SLOTS_SPARE: usize = 4;

/// The bytes unused pool slots (memories) of an engine keep resident.
fn unused_resident_bytes(engine: &Engine) -> usize {
    engine
        .pooling_allocator_metrics()
        .map_or(0, |metrics| metrics.unused_memory_bytes_resident())
}

/// The thread advancing the epochs, and whether it sleeps because no instance is alive.
struct EpochTicker {
    thread: std::thread::Thread,
    sleeping: AtomicBool,
}

impl EpochTicker {
    /// Wakes the ticker if it sleeps: an instance just took a slot. One load per request
    /// while the server is busy; the ticker only sleeps while it is idle.
    fn wake(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
    }
}

/// Whether any guest instance is alive (its store holds a slot).
struct IdleSlots {
    slots: Arc<Semaphore>,
    all: usize,
}

impl IdleSlots {
    fn none_alive(&self) -> bool {
        self.slots.available_permits() == self.all
    }
}

/// The longest the epoch ticker sleeps while no instance is alive: a bound, should a wake-up
/// ever be missed, and how soon it notices the engines were dropped.
const IDLE_TICKER_SLEEP: Duration = Duration::from_millis(100);

/// Advances the epoch of every engine of a server from one thread, every [`EPOCH_TICK`]
/// while guest instances are alive; while none is, it sleeps (no wake-ups on an idle server)
/// until an instance starts. Ends once the engines are dropped.
fn start_epoch_ticker(engines: Vec<Engine>, idle: IdleSlots) -> Arc<EpochTicker> {
    let weak: Vec<_> = engines.iter().map(Engine::weak).collect();
    drop(engines);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("wasmount-epoch".into())
        .spawn(move || {
            let ticker = Arc::new(EpochTicker {
                thread: std::thread::current(),
                sleeping: AtomicBool::new(false),
            });
            let _ = sender.send(ticker.clone());
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
                if idle.none_alive() {
                    ticker.sleeping.store(true, Ordering::SeqCst);
                    std::sync::atomic::fence(Ordering::SeqCst);
                    if idle.none_alive() {
                        std::thread::park_timeout(IDLE_TICKER_SLEEP);
                    }
                    ticker.sleeping.store(false, Ordering::SeqCst);
                }
            }
        })
        .expect("spawning the epoch ticker thread");
    receiver.recv().expect("the epoch ticker starts")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> TrimRule {
        let settings = EngineConfig {
            keep_resident_bytes: 1 << 20,
            ..EngineConfig::default()
        };
        TrimRule {
            spare_slots: 4,
            ..TrimRule::new(&settings, 0)
        }
    }

    #[test]
    fn a_quiet_period_releases_whatever_is_resident() {
        let mut rule = rule();
        assert!(
            !rule.should_release(100, 16, 10 << 20),
            "busy: slots stay warm"
        );
        assert!(rule.should_release(100, 0, 10 << 20), "quiet: released");
        assert!(!rule.should_release(100, 0, 0), "nothing left to release");
        assert!(
            rule.should_release(100, 0, 1 << 20),
            "a late instance's pages go too"
        );
    }

    #[test]
    fn steady_traffic_keeps_its_slots_and_a_trickle_after_a_burst_does_not() {
        let mut steady = rule();
        for starts in 1..10 {
            // 16 alive at once, 20 slots' worth resident: within twice the peak.
            assert!(!steady.should_release(starts * 1000, 16, 20 << 20));
        }
        let mut trickle = rule();
        assert!(
            !trickle.should_release(1000, 64, 60 << 20),
            "the burst itself"
        );
        assert!(
            !trickle.should_release(1001, 1, 60 << 20),
            "the burst is still recent"
        );
        assert!(!trickle.should_release(1002, 1, 60 << 20), "oversized once");
        assert!(
            trickle.should_release(1003, 1, 60 << 20),
            "oversized twice in a row"
        );
    }

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

//! Instance reuse for apps that opt in (manifest `[reuse]`): instances that served a request
//! cleanly wait here, per app version, for the next request of the same app (and the same
//! launch, whose input is in the environment). Bounded in count (per app, and
//! over the whole server by [`IdleCap`]), requests served and idle time. Instances that trapped
//! or overran their deadline never come back.

use crate::runtime::sandbox::HostState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

/// The longest an expired idle instance may outlive its idle time.
const MAX_SWEEP_PERIOD: Duration = Duration::from_secs(5);

/// Instance reuse, opted into by an app: one instance serves several requests in turn, so
/// globals persist between those requests (never between apps, never after a trap or a
/// timeout). Worth it for big interpreters, whose instantiation is most of a request's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reuse {
    /// Requests one instance serves before it is dropped.
    pub max_requests: u32,
    /// How long an idle instance is kept.
    pub idle_timeout: Duration,
    /// How many idle instances are kept.
    pub max_idle_instances: usize,
}

/// An instance between requests.
pub(crate) struct IdleInstance {
    /// Its store (sandbox state, memory budget, resources).
    pub store: Store<HostState>,
    /// Its exports.
    pub proxy: Proxy,
    /// Requests it served.
    pub served: u32,
    /// The launch it serves (its environment holds that input), if any.
    key: Option<Arc<str>>,
    since: Instant,
}

/// The server-wide cap on idle instances (`--max-idle-instances`), over every app that reuses
/// them: when it is reached, the oldest idle instance of any app makes room.
pub(crate) struct IdleCap {
    limit: usize,
    /// The pools that ever kept an instance; its lock also orders every admission to the cap.
    pools: Mutex<Vec<Weak<InstancePool>>>,
}

impl IdleCap {
    /// A cap of `limit` idle instances over all apps.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            pools: Mutex::new(Vec::new()),
        }
    }

    /// Adds `instance` to `pool`, first making room: the pool's own oldest instance goes when
    /// the app's limit is reached, the oldest of any app's while the server's cap is. Returns
    /// what was dropped, to be dropped outside every lock (with the pools, should one of them
    /// have been its app's last holder).
    fn admit(
        &self,
        pool: &Arc<InstancePool>,
        instance: IdleInstance,
    ) -> (Vec<IdleInstance>, Vec<Arc<InstancePool>>) {
        let mut evicted = Vec::new();
        let mut pools = self.pools.lock().unwrap();
        pools.retain(|weak| weak.strong_count() > 0);
        if !pools.iter().any(|weak| weak.as_ptr() == Arc::as_ptr(pool)) {
            pools.push(Arc::downgrade(pool));
        }
        let live: Vec<_> = pools.iter().filter_map(Weak::upgrade).collect();
        if pool.idle_count() >= pool.settings.max_idle_instances {
            evicted.extend(pool.pop_oldest());
        }
        let mut total: usize = live.iter().map(|pool| pool.idle_count()).sum();
        while total >= self.limit {
            let Some(oldest) = oldest_of(&live) else {
                break;
            };
            evicted.extend(oldest.pop_oldest());
            total -= 1;
        }
        let mut idle = pool.idle.lock().unwrap();
        if self.limit > 0 && !pool.is_disabled() {
            idle.push(instance);
        } else {
            evicted.push(instance);
        }
        drop(idle);
        drop(pools);
        (evicted, live)
    }

    /// Drops the oldest idle instance of any app, to free its instance slot for a request
    /// that found none. Whether there was one.
    pub(crate) fn drop_oldest(&self) -> bool {
        let live: Vec<_> = {
            let pools = self.pools.lock().unwrap();
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        let dropped = oldest_of(&live).and_then(|pool| pool.pop_oldest());
        let found = dropped.is_some();
        drop(dropped);
        found
    }
}

/// The pool whose oldest idle instance is the oldest of all.
fn oldest_of(pools: &[Arc<InstancePool>]) -> Option<&Arc<InstancePool>> {
    pools
        .iter()
        .filter_map(|pool| Some((pool.oldest_since()?, pool)))
        .min_by_key(|(since, _)| *since)
        .map(|(_, pool)| pool)
}

/// The idle instances of one app version.
pub(crate) struct InstancePool {
    settings: Reuse,
    cap: Arc<IdleCap>,
    idle: Mutex<Vec<IdleInstance>>,
    sweeper_started: AtomicBool,
    /// Set once a reused instance returned without a response: the app cannot be reused.
    disabled: AtomicBool,
}

impl InstancePool {
    /// An empty pool with the app's settings, under the server's cap.
    pub(crate) fn new(settings: Reuse, cap: Arc<IdleCap>) -> Self {
        Self {
            settings,
            cap,
            idle: Mutex::new(Vec::new()),
            sweeper_started: AtomicBool::new(false),
            disabled: AtomicBool::new(false),
        }
    }

    /// Turns reuse off for this app version: one of its reused instances returned without a
    /// response (some runtimes serve one request per instance only, e.g. componentize-js's).
    pub(crate) fn disable(&self, app: &str) {
        if !self.disabled.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                app,
                "a reused instance returned without a response: this app does not support \
                 instance reuse; serving a fresh instance per request from now on"
            );
        }
        let dropped = std::mem::take(&mut *self.idle.lock().unwrap());
        drop(dropped);
    }

    /// Whether reuse was turned off.
    pub(crate) fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    /// The most recently used idle instance for `key`, if one is waiting and not expired.
    pub(crate) fn take(&self, key: Option<&Arc<str>>) -> Option<IdleInstance> {
        if self.is_disabled() {
            return None;
        }
        let mut expired = Vec::new();
        let found = {
            let mut idle = self.idle.lock().unwrap();
            self.remove_expired(&mut idle, &mut expired);
            let position = idle.iter().rposition(|i| i.key.as_ref() == key)?;
            Some(idle.remove(position))
        };
        drop(expired); // dropping stores outside the lock
        found
    }

    /// Puts an instance back after a request it served cleanly (`served` counts that one). It
    /// is dropped instead once it has served its maximum; the oldest idle one makes room when
    /// the pool is full.
    pub(crate) fn put(
        self: &Arc<Self>,
        key: Option<Arc<str>>,
        store: Store<HostState>,
        proxy: Proxy,
        served: u32,
    ) {
        if served >= self.settings.max_requests
            || self.settings.max_idle_instances == 0
            || self.is_disabled()
        {
            return;
        }
        let instance = IdleInstance {
            store,
            proxy,
            served,
            key,
            since: Instant::now(),
        };
        let (evicted, pools) = self.cap.admit(self, instance);
        drop(evicted);
        drop(pools);
        if !self.sweeper_started.swap(true, Ordering::Relaxed) {
            self.spawn_sweeper();
        }
    }

    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap().len()
    }

    /// When its oldest idle instance was put back.
    fn oldest_since(&self) -> Option<Instant> {
        self.idle.lock().unwrap().first().map(|idle| idle.since)
    }

    /// Takes its oldest idle instance out (the caller drops it outside the lock).
    fn pop_oldest(&self) -> Option<IdleInstance> {
        let mut idle = self.idle.lock().unwrap();
        (!idle.is_empty()).then(|| idle.remove(0))
    }

    fn remove_expired(&self, idle: &mut Vec<IdleInstance>, into: &mut Vec<IdleInstance>) {
        let timeout = self.settings.idle_timeout;
        let mut index = 0;
        while index < idle.len() {
            if idle[index].since.elapsed() >= timeout {
                into.push(idle.remove(index));
            } else {
                index += 1;
            }
        }
    }

    /// Drops idle instances past their idle time even when no request comes; ends with the
    /// pool (the app version was replaced or removed).
    fn spawn_sweeper(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let period =
            (self.settings.idle_timeout / 4).clamp(Duration::from_millis(100), MAX_SWEEP_PERIOD);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = pool.upgrade() else {
                    return;
                };
                let mut expired = Vec::new();
                pool.remove_expired(&mut pool.idle.lock().unwrap(), &mut expired);
                drop(expired);
            }
        });
    }
}

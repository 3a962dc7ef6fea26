//! Instance reuse for apps that opt in (manifest `[reuse]`): instances that served a request
//! cleanly wait here, per app version, for the next request of the same app (and the same
//! launched instance, whose input is in the environment). Bounded in count, requests served
//! and idle time. Instances that trapped or overran their deadline never come back.

use crate::runtime::sandbox::HostState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

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
    /// The launched instance it serves (its environment holds that input), if any.
    key: Option<Arc<str>>,
    since: Instant,
}

/// The idle instances of one app version.
pub(crate) struct InstancePool {
    settings: Reuse,
    idle: Mutex<Vec<IdleInstance>>,
    sweeper_started: AtomicBool,
    /// Set once a reused instance returned without a response: the app cannot be reused.
    disabled: AtomicBool,
}

impl InstancePool {
    /// An empty pool with the app's settings.
    pub(crate) fn new(settings: Reuse) -> Self {
        Self {
            settings,
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
        let mut evicted = Vec::new();
        {
            let mut idle = self.idle.lock().unwrap();
            if idle.len() >= self.settings.max_idle_instances {
                evicted.push(idle.remove(0));
            }
            idle.push(instance);
        }
        drop(evicted);
        if !self.sweeper_started.swap(true, Ordering::Relaxed) {
            self.spawn_sweeper();
        }
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
        let period = (self.settings.idle_timeout / 2).max(Duration::from_millis(100));
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

//! One app version as the runtime sees it: the pre-instantiated component, the description of
//! its sandbox, its admission limit, its share of the CPU and its idle instances.

use crate::metrics::{AppMetrics, Metrics};
use crate::runtime::engine::{Tier, WasmEngine};
use crate::runtime::fairness::{CpuShare, Fairness};
use crate::runtime::guest_log::LogTail;
use crate::runtime::reuse::{InstancePool, Reuse};
use crate::runtime::sandbox::{GuestSpec, HostState};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// How many requests of an app may run at once, and whether its instances are reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GuestPolicy {
    /// Requests running at once (503 beyond); `None`: bounded by the server's instances only.
    pub max_concurrent_requests: Option<u32>,
    /// Instance reuse; `None`: a fresh instance per request.
    pub reuse: Option<Reuse>,
}

/// The app already runs as many requests as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the app is at its limit of concurrent requests")]
pub(crate) struct AtCapacity;

/// An admitted request's hold on its app's concurrency limit; `None` when the app has no
/// limit.
pub(crate) type Admission = Option<OwnedSemaphorePermit>;

/// What every app of a server shares: CPU fairness, metrics, the feed of guest output.
#[derive(Clone, Copy)]
pub(crate) struct ServerShared<'a> {
    /// How the server's apps share the CPU.
    pub fairness: &'a Arc<Fairness>,
    /// The server's metrics.
    pub metrics: &'a Arc<Metrics>,
    /// The server's feed of guest output.
    pub log_tail: &'a LogTail,
}

/// A compiled app, linked and ready to instantiate for each request.
pub(crate) struct Guest {
    pre: ProxyPre<HostState>,
    spec: GuestSpec,
    /// Where instance slots come from (the server-wide limit).
    engine: WasmEngine,
    /// Admission for `max_concurrent_requests`, when set.
    concurrency: Option<Arc<Semaphore>>,
    cpu_share: Arc<CpuShare>,
    reuse_pool: Option<Arc<InstancePool>>,
    /// The app's metrics.
    metrics: AppMetrics,
    /// Where its output also goes while someone follows it.
    log_tail: LogTail,
}

impl Guest {
    /// Links `component` (compiled for `tier`) against the host's interfaces.
    ///
    /// # Errors
    ///
    /// If the component imports something the host does not provide, or does not export
    /// `wasi:http/incoming-handler`.
    pub(crate) fn link(
        engine: &WasmEngine,
        tier: &Tier,
        component: &Component,
        spec: GuestSpec,
        policy: GuestPolicy,
        server: ServerShared<'_>,
    ) -> anyhow::Result<Self> {
        let ServerShared {
            fairness,
            metrics,
            log_tail,
        } = server;
        let instance_pre = tier.linker().instantiate_pre(component)?;
        let pre = ProxyPre::new(instance_pre)?;
        let spec_name = spec.name.clone();
        Ok(Self {
            pre,
            spec,
            engine: engine.clone(),
            concurrency: policy
                .max_concurrent_requests
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            cpu_share: Arc::new(fairness.share()),
            reuse_pool: policy
                .reuse
                .map(|reuse| Arc::new(InstancePool::new(reuse, engine.idle_cap().clone()))),
            metrics: metrics.for_app(&spec_name),
            log_tail: log_tail.clone(),
        })
    }

    /// Where its output also goes while someone follows it.
    pub(crate) fn log_tail(&self) -> &LogTail {
        &self.log_tail
    }

    /// The app's metrics.
    pub(crate) fn metrics(&self) -> &AppMetrics {
        &self.metrics
    }

    /// The pre-instantiated component.
    pub(crate) fn pre(&self) -> &ProxyPre<HostState> {
        &self.pre
    }

    /// What the sandbox of each instance holds.
    pub(crate) fn spec(&self) -> &GuestSpec {
        &self.spec
    }

    /// The engines, for instance slots.
    pub(crate) fn engine(&self) -> &WasmEngine {
        &self.engine
    }

    /// How its long-running requests share the CPU.
    pub(crate) fn cpu_share(&self) -> &Arc<CpuShare> {
        &self.cpu_share
    }

    /// Its idle instances, if it reuses instances.
    pub(crate) fn reuse_pool(&self) -> Option<&Arc<InstancePool>> {
        self.reuse_pool.as_ref()
    }

    /// A slot to run one more request, if the app's concurrency limit allows it; `Ok(None)`
    /// when the app has no limit. The slot is held until the permit is dropped.
    ///
    /// # Errors
    ///
    /// When the limit is reached.
    pub(crate) fn admit(&self) -> Result<Admission, AtCapacity> {
        match &self.concurrency {
            None => Ok(None),
            Some(slots) => slots
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| AtCapacity),
        }
    }
}

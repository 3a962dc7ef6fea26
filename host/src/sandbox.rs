//! The per-request `Store`: a WASI context holding only what the app's manifest grants,
//! wasi:http with outgoing requests limited to its allow-list, guest output to the log, a memory budget for the whole
//! instance, and the epoch deadline.

use crate::app::App;
use crate::engine::EPOCH_TICK;
use crate::guest_log::{GuestLog, Stream};
use crate::instances::{INSTANCE_ENV, Instance};
use crate::manifest::{FILES_GUEST_PATH, Manifest};
use anyhow::Context as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

/// What one guest instance can reach: its WASI and HTTP contexts and their resources.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound: OutboundPolicy,
    memory: MemoryBudget,
}

/// What one request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    /// Wall-clock deadline for the whole request, response body included.
    pub timeout: Duration,
    /// Linear memory of the whole instance, all its memories together, in bytes.
    pub memory_bytes: u64,
    /// Largest request body, in bytes.
    pub max_request_body: u64,
}

/// Counts every linear memory of an instance against one budget (wasmtime's own limits are
/// per memory; a component has several). A refused growth makes `memory.grow` fail, which the
/// guest sees as out-of-memory.
struct MemoryBudget {
    limit: usize,
    used: usize,
}

/// Table elements one table may hold: generous for real programs (large C# or Python guests
/// use tens of thousands), small enough that tables cannot be used to exhaust host memory.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        if self.used.saturating_add(growth) > self.limit {
            tracing::debug!(
                limit = self.limit,
                used = self.used,
                growth,
                "memory growth refused"
            );
            return Ok(false);
        }
        self.used += growth;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Outgoing HTTP policy: only to the app's allow-list (scheme, host and port), refused
/// before any connection is made otherwise.
struct OutboundPolicy {
    app: Arc<str>,
    manifest: Arc<Manifest>,
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<HyperOutgoingBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let allowed = self
            .manifest
            .allowed_outbound_hosts
            .iter()
            .any(|host| host.allows(request.uri()));
        if !allowed {
            tracing::info!(app = %self.app, uri = %request.uri(), "outgoing request refused: not in allowed_outbound_hosts");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(http_body_util::BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

/// A fresh store for one request to `app`: stdout/stderr to the log, the environment and
/// files its manifest grants (plus `WASMOUNT_APP` and `WASMOUNT_BASE_PATH`, and for a
/// launched `instance` its input as `INPUT_JSON` or `INPUT_JSON_URL` and its name as
/// `WASMOUNT_INSTANCE`), nothing else; memory bounded by `limits`; the request deadline armed
/// (see [`arm_deadline`]). The deadline is checked here, in the guest's own epoch ticks, so it
/// does not depend on when a busy tokio worker gets round to its timers (the tokio timeout
/// stays as the bound for guests waiting in host calls).
pub fn new_store(
    app: &App,
    base_path: &str,
    instance: Option<&Instance>,
    limits: &InstanceLimits,
    deadline: Instant,
) -> anyhow::Result<Store<HostState>> {
    let name = app.name();
    let manifest = app.manifest();
    let mut wasi = WasiCtx::builder();
    wasi.stdout(GuestLog::new(name.clone(), Stream::Stdout))
        .stderr(GuestLog::new(name.clone(), Stream::Stderr))
        .env("WASMOUNT_APP", name.as_ref())
        .env("WASMOUNT_BASE_PATH", base_path);
    for (key, value) in &manifest.environment {
        wasi.env(key, value);
    }
    if let Some(instance) = instance {
        let (key, value) = instance.input.env();
        wasi.env(key, value)
            .env(INSTANCE_ENV, instance.name.as_ref());
    }
    if let Some(files) = &manifest.files {
        // Read-only, and cap-std underneath: `..`, absolute paths and symlinks leading out of
        // the folder are refused by the WASI implementation itself.
        wasi.preopened_dir(files, FILES_GUEST_PATH, FsPerms::ReadOnly)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("granting {}", files.display()))?;
    }
    let wasi = wasi.build();
    let state = HostState {
        table: ResourceTable::new(),
        wasi,
        http: WasiHttpCtx::new(),
        outbound: OutboundPolicy {
            app: name.clone(),
            manifest: manifest.clone(),
        },
        memory: MemoryBudget {
            limit: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            used: 0,
        },
    };
    // The store must come from the engine the app was compiled for (baseline or optimized).
    let mut store = Store::new(app.pre().engine(), state);
    store.limiter(|state| &mut state.memory);
    arm_deadline(&mut store, app, deadline);
    Ok(store)
}

/// Sets the deadline of the next request a store serves (a fresh one, or one reused): once
/// the guest has run past its first epoch tick, it yields to the async runtime at every tick,
/// and while other apps are being served it goes on only with one of its app's CPU slices
/// (see [`crate::fairness`]), so a busy guest never holds a worker thread nor crowds out other apps; once
/// `deadline` has passed, the next tick traps it ([`Trap::Interrupt`](wasmtime::Trap::Interrupt)).
pub fn arm_deadline(store: &mut Store<HostState>, app: &App, deadline: Instant) {
    // Two ticks: the first callback comes only after the guest has run at least one whole
    // tick, so short requests (nearly all) never reach it.
    store.set_epoch_deadline(2);
    let cpu_share = app.cpu_share().clone();
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            return Ok(UpdateDeadline::Interrupt);
        }
        if !cpu_share.contended() {
            // No other app is being served: just let other tasks in between ticks.
            return Ok(UpdateDeadline::Yield(1));
        }
        // The guest is still at it a tick after its last check. Its next tick needs one of its
        // app's CPU slices, so the long-running requests of one app (a loop, a hog) share a bounded
        // part of the machine and short requests of other apps keep their latency.
        let slices = cpu_share.slices().clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                if let Ok(slice) = slices.acquire_owned().await {
                    tokio::spawn(async move {
                        tokio::time::sleep(EPOCH_TICK).await;
                        drop(slice);
                    });
                }
            }),
        ))
    });
}

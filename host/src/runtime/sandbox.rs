//! The per-request `Store`, built from a small [`GuestSpec`]: a WASI context holding only
//! what the app was granted, wasi:http with outgoing requests limited to its allow-list, guest
//! output to the log, a memory budget for the whole instance, and the epoch deadline.

use crate::runtime::engine::EPOCH_TICK;
use crate::runtime::fairness::CpuShare;
use crate::runtime::guest_log::{GuestLog, LogTail, RecentLines, RequestId, Stream};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

/// The folder where a guest's granted files appear.
pub(crate) const FILES_GUEST_PATH: &str = "/data";

/// Everything the runtime needs to know about an app to sandbox it: resolved once per app
/// version, from its manifest and the server's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuestSpec {
    /// The app's name: tags its log lines and outgoing-request refusals.
    pub name: Arc<str>,
    /// Environment variables every instance gets.
    pub env: Vec<(String, String)>,
    /// The host folder granted read-only at [`FILES_GUEST_PATH`].
    pub files: Option<PathBuf>,
    /// Where the guest may send HTTP requests; empty: nowhere.
    pub outbound: Arc<[OutboundHost]>,
    /// What one request may use.
    pub limits: InstanceLimits,
}

/// Extra environment for the requests of one launch (its input and name).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding<'a> {
    /// The launch's name; reused instances are kept apart by it.
    pub key: &'a Arc<str>,
    /// Variables added to the app's own.
    pub env: [(&'a str, &'a str); 2],
}

/// What one guest instance can reach: its WASI and HTTP contexts and their resources.
pub(crate) struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound: OutboundPolicy,
    memory: MemoryBudget,
    /// The id of the request it serves now, which its log lines carry.
    request: RequestId,
    /// What it last wrote to stderr for this request (a panic's message, before it traps).
    stderr: RecentLines,
    /// The server-wide instance slot this instance holds while it lives.
    _slot: OwnedSemaphorePermit,
}

impl HostState {
    /// Set when this instance's memory budget refused to grow (clear it before a request).
    pub(crate) fn memory_refused(&self) -> Arc<AtomicBool> {
        self.memory.refused.clone()
    }

    /// Tags the instance's log lines with `id` from now on (each request sets its own).
    pub(crate) fn serve_request(&self, id: &str) {
        *self.request.lock().unwrap() = Arc::from(id);
        self.stderr.lock().unwrap().clear();
    }

    /// The last lines written to stderr for the request it serves now.
    pub(crate) fn recent_stderr(&self) -> RecentLines {
        self.stderr.clone()
    }
}

/// What one request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InstanceLimits {
    /// Wall-clock deadline for the whole request, response body included.
    pub timeout: Duration,
    /// Linear memory of the whole instance, all its memories together, in bytes.
    pub memory_bytes: u64,
    /// Largest request body, in bytes.
    pub max_request_body: u64,
    /// How long the start of a request body may take to arrive before a guest runs.
    pub body_read_timeout: Duration,
}

/// Counts every linear memory of an instance against one budget (wasmtime's own limits are
/// per memory; a component has several). A refused growth makes `memory.grow` fail, which the
/// guest sees as out-of-memory.
struct MemoryBudget {
    limit: usize,
    used: usize,
    /// Set when a growth was refused (a failure that follows counts as out of memory).
    refused: Arc<AtomicBool>,
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
            self.refused.store(true, Ordering::Relaxed);
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
    allowed: Arc<[OutboundHost]>,
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
        let allowed = self.allowed.iter().any(|host| host.allows(request.uri()));
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

/// A fresh store for one request of the app `spec` describes, compiled for `engine`:
/// stdout/stderr to the log, the environment and files it was granted (plus a launched
/// instance's `binding`), nothing else; memory bounded by its limits; the request deadline
/// armed (see [`arm_deadline`]). The store holds `slot` for as long as it lives.
pub(crate) fn new_store(
    engine: &Engine,
    spec: &GuestSpec,
    binding: Option<Binding<'_>>,
    slot: OwnedSemaphorePermit,
    deadline: Deadline<'_>,
    tail: &LogTail,
) -> anyhow::Result<Store<HostState>> {
    let mut wasi = WasiCtx::builder();
    let request: RequestId = Arc::new(std::sync::Mutex::new(Arc::from("-")));
    let log = |stream| GuestLog::new(spec.name.clone(), stream, request.clone(), tail.clone());
    let stderr = RecentLines::default();
    wasi.stdout(log(Stream::Stdout))
        .stderr(log(Stream::Stderr).keeping(stderr.clone()));
    for (key, value) in &spec.env {
        wasi.env(key, value);
    }
    for (key, value) in binding.iter().flat_map(|binding| binding.env) {
        wasi.env(key, value);
    }
    if let Some(files) = &spec.files {
        // Read-only, and cap-std underneath: `..`, absolute paths and symlinks leading out of
        // the folder are refused by the WASI implementation itself.
        wasi.preopened_dir(files, FILES_GUEST_PATH, FsPerms::ReadOnly)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("granting {}", files.display()))?;
    }
    let state = HostState {
        table: ResourceTable::new(),
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        outbound: OutboundPolicy {
            app: spec.name.clone(),
            allowed: spec.outbound.clone(),
        },
        memory: MemoryBudget {
            limit: usize::try_from(spec.limits.memory_bytes).unwrap_or(usize::MAX),
            used: 0,
            refused: Arc::default(),
        },
        request,
        stderr,
        _slot: slot,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.memory);
    arm_deadline(&mut store, deadline);
    Ok(store)
}

/// When a request must end, and the app's CPU share it runs under meanwhile.
#[derive(Clone, Copy)]
pub(crate) struct Deadline<'a> {
    /// The wall-clock instant past which the guest is trapped.
    pub at: Instant,
    /// The app's share of the CPU.
    pub cpu_share: &'a Arc<CpuShare>,
}

/// Sets the deadline of the next request a store serves (a fresh one, or one reused): once
/// the guest has run past its first epoch tick, it yields to the async runtime at every tick,
/// and while other apps are being served it goes on only with one of its app's CPU slices
/// (see [`crate::runtime::fairness`]), so a busy guest never holds a worker thread nor crowds
/// out other apps; once the deadline has passed, the next tick traps it
/// ([`Trap::Interrupt`](wasmtime::Trap::Interrupt)). Checked in the guest's own epoch ticks,
/// so it does not depend on when a busy tokio worker gets round to its timers.
pub(crate) fn arm_deadline(store: &mut Store<HostState>, deadline: Deadline<'_>) {
    let Deadline {
        at: deadline,
        cpu_share,
    } = deadline;
    // Two ticks: the first callback comes only after the guest has run at least one whole
    // tick, so short requests (nearly all) never reach it.
    store.set_epoch_deadline(2);
    let cpu_share = cpu_share.clone();
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

/// One allowed destination for outgoing HTTP: scheme, host and port, all exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboundHost {
    /// `http` or `https`.
    pub scheme: String,
    /// The host name or address, lowercase.
    pub host: String,
    /// The port (the scheme's default when left out).
    pub port: u16,
}

impl OutboundHost {
    /// Parses `scheme://host[:port]`.
    ///
    /// # Errors
    ///
    /// A message naming the entry.
    pub(crate) fn parse(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("allowed_outbound_hosts entry `{entry}`: {why}");
        let uri: http::Uri = entry.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| bad("needs a scheme, e.g. https://"))?;
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return Err(bad("the scheme must be http or https")),
        };
        if uri
            .path_and_query()
            .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
        {
            return Err(bad("give scheme, host and port only, no path"));
        }
        let authority = uri.authority().ok_or_else(|| bad("needs a host"))?;
        Ok(Self {
            scheme: scheme.to_owned(),
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
        })
    }

    /// Whether a request to `uri` goes to this destination.
    pub(crate) fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let default_port = if scheme == "http" { 80 } else { 443 };
        scheme == self.scheme
            && uri
                .host()
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
            && uri.port_u16().unwrap_or(default_port) == self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_hosts_match_scheme_host_and_port_exactly() {
        let host = OutboundHost::parse("https://Data.Example.org").unwrap();
        assert_eq!(host.port, 443);
        assert!(host.allows(&"https://data.example.org/x?y".parse().unwrap()));
        assert!(host.allows(&"https://data.example.org:443/".parse().unwrap()));
        assert!(!host.allows(&"http://data.example.org/".parse().unwrap()));
        assert!(!host.allows(&"https://data.example.org:8443/".parse().unwrap()));
        assert!(!host.allows(&"https://evil.org/".parse().unwrap()));
        let local = OutboundHost::parse("http://127.0.0.1:8080").unwrap();
        assert!(local.allows(&"http://127.0.0.1:8080/data.tsv".parse().unwrap()));
    }
}

//! The per-request `Store`: an empty WASI context (no args, env, files or sockets), wasi:http
//! with outgoing requests denied, guest output to the log, and the epoch deadline.

use crate::guest_log::{GuestLog, Stream};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
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
    outbound: DenyOutbound,
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

/// Outgoing HTTP policy: nothing is allowed.
struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<HyperOutgoingBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        tracing::debug!(uri = %request.uri(), "outgoing request denied");
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

/// A fresh store for one request to app `app`: nothing granted but stdout/stderr to the log.
/// The guest yields to the async runtime at every epoch tick, so a busy guest never holds a
/// worker thread and the request deadline (a tokio timeout) can always fire.
pub fn new_store(engine: &Engine, app: &Arc<str>) -> Store<HostState> {
    let wasi = WasiCtx::builder()
        .stdout(GuestLog::new(app.clone(), Stream::Stdout))
        .stderr(GuestLog::new(app.clone(), Stream::Stderr))
        .build();
    let state = HostState {
        table: ResourceTable::new(),
        wasi,
        http: WasiHttpCtx::new(),
        outbound: DenyOutbound,
    };
    let mut store = Store::new(engine, state);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    store
}

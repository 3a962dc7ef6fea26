//! Run with `cargo run --release -p wasmount-bench --bin instantiate-floor -- HELLO.wasm N`.
//!
//! The floor of one request's cost, for `bench/callgrind.sh`: an in-process wasmtime loop
//! that, N times, makes a store (WASI and wasi:http contexts), instantiates the component from
//! the same pooling allocator settings wasmount uses, hands it one `GET /` and reads the whole
//! response — no sockets, no HTTP parsing, no routing, no limits.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView, default_hooks};

struct State {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: default_hooks(),
        }
    }
}

/// wasmount's engine settings (`--max-instances 2`, as `bench/callgrind.sh` runs it), without
/// epoch interruption (no deadlines).
fn engine() -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(2)
        .total_core_instances(20)
        .total_memories(4)
        .total_tables(8)
        .total_stacks(2)
        .linear_memory_keep_resident(32 << 20)
        .table_keep_resident(32 << 20)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .memory_init_cow(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

async fn handle_one(pre: &ProxyPre<State>, engine: &Engine) -> anyhow::Result<usize> {
    let state = State {
        table: ResourceTable::new(),
        wasi: WasiCtx::builder().build(),
        http: WasiHttpCtx::new(),
    };
    let mut store = Store::new(engine, state);
    let request = http::Request::get("http://localhost/")
        .body(Empty::<Bytes>::new().map_err(|never| -> ErrorCode { match never {} }))?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let mut http = store.data_mut().http();
    let incoming = http.new_incoming_request(Scheme::Http, request)?;
    let outparam = http.new_response_outparam(sender)?;
    let proxy = pre.instantiate_async(&mut store).await?;
    proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut store, incoming, outparam)
        .await?;
    let response = receiver.await??;
    Ok(response.into_body().collect().await?.to_bytes().len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: instantiate-floor COMPONENT.wasm N");
    };
    let engine = engine()?;
    let component = Component::from_file(&engine, &path)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
    let mut bytes = 0;
    for _ in 0..count.parse::<u32>()? {
        bytes += handle_one(&pre, &engine).await?;
    }
    println!("{count} requests, {bytes} response bytes");
    Ok(())
}

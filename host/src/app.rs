//! One loaded app: its name, size, and pre-instantiated component. Loading validates
//! everything (wasm, component, imports, the `wasi:http/incoming-handler` export) before the
//! app can be mounted, so a bad file never goes live.

use crate::engine::WasmEngine;
use crate::router::{MAX_APP_NAME_LEN, is_valid_app_name};
use crate::sandbox::HostState;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// The version/layer word of a core module (`01 00 00 00`); components use another layer.
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Why an app could not be loaded. Callers branch on it (an upload maps it to a status).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The name breaks the naming rule.
    #[error(
        "app name `{0}` is invalid: use lowercase letters, digits and `-`, starting with a \
         letter or digit, at most {MAX_APP_NAME_LEN} characters"
    )]
    BadName(String),
    /// The bytes are not WebAssembly at all (this includes precompiled `.cwasm` artifacts).
    #[error("not a WebAssembly file: it does not start with the `\\0asm` magic bytes")]
    NotWasm,
    /// A core module, which cannot serve HTTP.
    #[error(
        "this is a core WebAssembly module, not a component: build with \
         `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// wasmtime could not validate or compile it (truncated, malformed, unsupported feature).
    #[error("invalid component: {0:#}")]
    Invalid(anyhow::Error),
    /// It imports something the host does not provide, or lacks `wasi:http/incoming-handler`.
    #[error("component cannot be served: {0:#}")]
    Incompatible(anyhow::Error),
}

/// A validated, compiled app, ready to instantiate for each request.
pub struct App {
    name: Arc<str>,
    pre: ProxyPre<HostState>,
    size: usize,
    loaded_at: SystemTime,
    compile_time: Duration,
}

impl App {
    /// Validates and compiles `bytes` as app `name`. CPU-heavy: call it off the async runtime
    /// (e.g. in `spawn_blocking`).
    ///
    /// # Errors
    ///
    /// A [`LoadError`] saying what is wrong; nothing is mounted.
    pub fn load(engine: &WasmEngine, name: &str, bytes: &[u8]) -> Result<Self, LoadError> {
        if !is_valid_app_name(name) {
            return Err(LoadError::BadName(name.to_owned()));
        }
        if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
            return Err(LoadError::NotWasm);
        }
        if bytes[4..8] == CORE_MODULE_VERSION {
            return Err(LoadError::CoreModule);
        }
        let started = Instant::now();
        let component =
            Component::new(engine.engine(), bytes).map_err(|e| LoadError::Invalid(e.into()))?;
        let compile_time = started.elapsed();
        let instance_pre = engine
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Incompatible(e.into()))?;
        let pre = ProxyPre::new(instance_pre).map_err(|e| LoadError::Incompatible(e.into()))?;
        Ok(Self {
            name: name.into(),
            pre,
            size: bytes.len(),
            loaded_at: SystemTime::now(),
            compile_time,
        })
    }

    /// The app's name, which is also its mount point.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The pre-instantiated component.
    pub fn pre(&self) -> &ProxyPre<HostState> {
        &self.pre
    }

    /// Size of the component file in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// When this version was loaded.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// How long compiling took.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }
}

//! wasmount: one server process that hosts many WebAssembly web apps (`wasi:http/proxy`
//! components), each mounted under its own URL prefix and run in a fresh sandboxed instance
//! per request.
//!
//! The public facade is small: [`config`] (every setting and its default), [`engine`] (the
//! wasmtime engines, shareable between servers), [`server`] (run a server on a listener, or
//! embed one in another Rust web server), [`cli`] (the `wasmount` program) and [`client`]
//! (the small HTTP client the command line, tests and benchmarks share). Everything else is
//! crate-private, in layers whose imports point down only:
//!
//! ```text
//! cli ─▶ http ─▶ dev ─▶ cluster ─▶ apps, launches ─▶ runtime   (config, respond, headers: leaves)
//!                 └──▶ build (toolchains; also used by cli)
//! ```

mod apps;
mod build;
pub mod cli;
pub mod client;
mod cluster;
pub mod config;
mod dev;
#[cfg(test)]
mod fuzz;
mod headers;
mod http;
mod launches;
mod metrics;
mod node;
mod refusal;
mod respond;
mod runtime;

/// The wasmtime engines guests run on.
pub mod engine {
    pub use crate::runtime::engine::WasmEngine;
}

/// Running a server: on a listener of its own ([`server::run`]), or embedded in another web
/// server as a `tower::Service` ([`server::Server::into_service`]).
pub mod server {
    pub use crate::http::server::Server;
    pub use crate::http::service::{ClientAddr, ResponseBody, ResponseBodyError, ServerService};
    pub use crate::node::{Listeners, run, run_with_engine};
}

//! wasmount: one server process that hosts many WebAssembly web apps (`wasi:http/proxy`
//! components), each mounted under its own URL prefix and run in a fresh sandboxed instance
//! per request.
//!
//! The `wasmount` binary is a thin layer over this library: bind a listener, build a
//! [`config::Config`], and call [`server::run`]. Another Rust server can do the same to embed
//! the host, and tests start it on port 0.

pub mod admin;
pub mod app;
pub mod cache;
pub mod cli;
pub mod client;
pub mod config;
pub mod deploy;
pub mod engine;
pub mod fairness;
pub mod guest_log;
pub mod instances;
pub mod invoke;
pub mod manifest;
pub mod registry;
pub mod respond;
pub mod reuse;
pub mod router;
pub mod sandbox;
pub mod server;
pub mod store;
pub mod watch;

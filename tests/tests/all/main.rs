//! The integration tests, one module per area, in one binary: the guests, the engine and the
//! fixtures are built and linked once (`tests/build.rs`, `wasmount_tests`), and the tests of
//! every area run side by side. Each module says what it covers on its first line.

mod access_log;
mod admin;
mod backup;
mod cli;
mod cluster;
mod config_file;
mod dashboard;
mod develop;
mod docs;
mod durability;
mod embed;
mod engine;
mod guest_log;
mod hostile;
mod instances;
mod languages;
mod live_reload;
mod manifest;
mod memory;
mod metrics;
mod oci;
mod platform_auth;
mod private;
mod python;
mod refinery_client;
mod reuse;
mod serve;
mod slow_clients;
mod systemd;
mod tls;
mod viz;
mod watch;

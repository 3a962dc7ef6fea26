//! The apps layer: what an app is (name, content hash, manifest, linked guest), the live
//! table of mounted apps and their routes, the one go-live path (validate → compile tier →
//! store → swap), the store behind a trait (the apps folder, or PostgreSQL for a cluster),
//! this node's compiled cache, and the folder watcher. Below it is only the runtime.

pub(crate) mod app;
pub(crate) mod cache;
pub(crate) mod compile;
pub(crate) mod deploy;
pub(crate) mod manifest;
pub(crate) mod names;
pub(crate) mod postgres;
pub(crate) mod registry;
pub(crate) mod routes;
pub(crate) mod store;
pub(crate) mod watch;

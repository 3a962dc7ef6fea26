//! The bottom layer: running guests. The engines (one instance limit, one epoch ticker), the
//! per-request sandbox built from a small [`sandbox::GuestSpec`], invoking one request,
//! instance reuse, CPU fairness between apps, and guest output to the log. Knows nothing of
//! apps folders, manifests, routes or launches.

pub(crate) mod bodies;
pub(crate) mod client_body;
pub mod engine;
pub(crate) mod fairness;
pub(crate) mod guest;
pub(crate) mod guest_log;
pub(crate) mod invoke;
pub(crate) mod reuse;
pub(crate) mod sandbox;

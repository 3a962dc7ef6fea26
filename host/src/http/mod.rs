//! The HTTP layer: the listener, the request path of a server (route → app or launched
//! instance → the runtime), the request as a guest sees it, and the control plane under
//! `/_wasmount/` (health, index, metrics, dashboard, admin API). The guest path stays on bare hyper.

pub(crate) mod access_log;
pub(crate) mod admin;
pub(crate) mod control;
pub(crate) mod dashboard;
pub(crate) mod forward_auth;
pub(crate) mod forwarding;
pub(crate) mod header_policy;
pub(crate) mod listener;
pub(crate) mod pipeline;
pub(crate) mod server;
pub(crate) mod service;
pub(crate) mod signed_links;
pub(crate) mod tls;

//! The server's own pages and endpoints: the index of mounted apps at the base path, and
//! everything under `/_wasmount/` (health, metrics, the dashboard, and the admin API for
//! apps and launches).

use crate::apps::names::{RESERVED_PREFIX, mount_prefix};
use crate::apps::registry::Entry;
use crate::cluster::SyncStatus;
use crate::http::admin::tokens::Scope;
use crate::http::admin::{self, ApiError};
use crate::http::dashboard;
use crate::http::server::Server;
use crate::metrics;
use crate::respond::{self, Body};
use crate::runtime::client_body::ClientBody;
use http::{Method, Request, Response, StatusCode};

impl Server {
    /// The endpoints under `/_wasmount/`; `endpoint` is the path after it.
    pub(crate) async fn reserved(
        &self,
        endpoint: &str,
        request: Request<ClientBody>,
    ) -> Response<Body> {
        let under = |collection: &str| {
            endpoint
                .strip_prefix(collection)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if let Some(rest) = under("/apps") {
            return admin::apps::handle(self, rest, request).await;
        }
        // `/instances` is the path's name from before the glossary, kept for clients.
        if let Some(rest) = under("/launches").or_else(|| under("/instances")) {
            return admin::launches::handle(self, rest, request).await;
        }
        if let Some(rest) = under("/ui") {
            return dashboard::serve(request.method(), rest);
        }
        if let Some(rest) = under("/dev").filter(|_| self.config.dev) {
            let draining = self.draining.subscribe();
            return crate::dev::live::handle(&self.deployer, rest, &request, draining);
        }
        match endpoint {
            "/health" if is_read(request.method()) => self.health(),
            "/metrics" if is_read(request.method()) => self.metrics_page(&request),
            "/metrics" => ApiError::method_not_allowed("GET, HEAD").into_response(),
            "/health" => ApiError::method_not_allowed("GET, HEAD").into_response(),
            _ => respond::text(
                StatusCode::NOT_FOUND,
                format_args!("no server endpoint at {RESERVED_PREFIX}{endpoint}"),
            ),
        }
    }

    /// `{"status":"ok","apps":N,"instances":N}`, and in a cluster the store: whether this
    /// node is in sync and the last version it applied. `503` (`"starting"`) while a node
    /// of a cluster still compiles the apps it found at start, so a load balancer keeps
    /// traffic away; a node that lost the store stays `200` (it serves what it has).
    fn health(&self) -> Response<Body> {
        #[derive(serde::Serialize)]
        struct Health {
            status: &'static str,
            apps: usize,
            instances: usize,
            #[serde(skip_serializing_if = "Option::is_none")]
            store: Option<SyncStatus>,
        }
        let store = self.follower.as_ref().map(|follower| follower.status());
        let starting = self.follower.is_some() && !self.warmed_up();
        let health = Health {
            status: if starting { "starting" } else { "ok" },
            apps: self.deployer.registry().len(),
            instances: self.launches.len(),
            store,
        };
        let document = serde_json::to_string(&health).expect("numbers and words serialize");
        let status = if starting {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        respond::json(status, document)
    }

    /// The Prometheus metrics (OpenMetrics text); needs the admin token unless
    /// `--public-metrics`.
    fn metrics_page(&self, request: &Request<ClientBody>) -> Response<Body> {
        if !self.config.public_metrics
            && let Err(refusal) = self.access.check(request.headers(), Scope::Read)
        {
            return refusal.into_response();
        }
        let registry = self.deployer.registry();
        let (mut ready, mut loading) = (0, 0);
        for (_, entry) in registry.list() {
            match entry {
                Entry::Ready(_) => ready += 1,
                Entry::Loading(_) => loading += 1,
            }
        }
        let snapshot = metrics::Snapshot {
            apps_ready: ready,
            apps_loading: loading,
            apps_failed: registry.failures().len() as i64,
            launched_instances: self.launches.len() as i64,
            pool: self.deployer.engine().pool_figures(),
        };
        let mut response = Response::new(respond::full(self.metrics.encode(&snapshot)));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(metrics::CONTENT_TYPE),
        );
        response
    }

    /// Whether every app mounted at start has finished loading (once true, stays true).
    fn warmed_up(&self) -> bool {
        if self.warmed.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        let loading = self
            .deployer
            .registry()
            .list()
            .iter()
            .any(|(_, entry)| matches!(entry, Entry::Loading(_)));
        if !loading {
            self.warmed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        !loading
    }

    /// The page listing the mounted apps, at the base path.
    pub(crate) fn index(&self, method: &Method) -> Response<Body> {
        if !is_read(method) {
            return ApiError::method_not_allowed("GET, HEAD").into_response();
        }
        let base = &self.config.base_path;
        let apps = self.deployer.registry().list();
        let items: String = apps
            .iter()
            .map(|(name, entry)| {
                // App names are [a-z0-9-] and routes [A-Za-z0-9._~-/]: nothing needs escaping.
                let (href, detail) = match entry {
                    Entry::Ready(app) => (
                        format!("{}/", app.prefix(base)),
                        format!("{} KiB", app.size().div_ceil(1024)),
                    ),
                    Entry::Loading(_) => (
                        format!("{}/", mount_prefix(base, name)),
                        "loading".to_owned(),
                    ),
                };
                format!("<li><a href=\"{href}\">{name}</a> <small>{detail}</small></li>\n")
            })
            .collect();
        let list = if apps.is_empty() {
            "<p>No apps are mounted. Put a <code>NAME.wasm</code> component in the apps \
             folder and restart, or upload one with <code>wasmount deploy</code>.</p>"
                .to_owned()
        } else {
            format!("<ul>\n{items}</ul>")
        };
        respond::html(
            StatusCode::OK,
            format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>wasmount</title></head>\n<body>\n<h1>wasmount</h1>\n\
                 <p>{count} app(s) mounted.</p>\n{list}\n</body></html>\n",
                count = apps.len()
            ),
        )
    }
}

/// Whether `method` only reads.
pub(crate) fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

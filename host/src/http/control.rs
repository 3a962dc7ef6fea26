//! The server's own pages and endpoints: the index of mounted apps at the base path, and
//! everything under `/_wasmount/` (health, and the admin API for apps and launches).

use crate::apps::names::{RESERVED_PREFIX, mount_prefix};
use crate::apps::registry::Entry;
use crate::http::admin::{self, ApiError};
use crate::http::server::Server;
use crate::respond::{self, Body};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

impl Server {
    /// The endpoints under `/_wasmount/`; `endpoint` is the path after it.
    pub(crate) async fn reserved(
        &self,
        endpoint: &str,
        request: Request<Incoming>,
    ) -> Response<Body> {
        let under = |collection: &str| {
            endpoint
                .strip_prefix(collection)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if let Some(rest) = under("/apps") {
            return admin::apps::handle(self, rest, request).await;
        }
        if let Some(rest) = under("/instances") {
            return admin::launches::handle(self, rest, request).await;
        }
        match endpoint {
            "/health" if is_read(request.method()) => self.health(),
            "/health" => ApiError::method_not_allowed("GET, HEAD").into_response(),
            _ => respond::text(
                StatusCode::NOT_FOUND,
                format_args!("no server endpoint at {RESERVED_PREFIX}{endpoint}"),
            ),
        }
    }

    /// `{"status":"ok","apps":N,"instances":N}`.
    fn health(&self) -> Response<Body> {
        #[derive(serde::Serialize)]
        struct Health {
            status: &'static str,
            apps: usize,
            instances: usize,
        }
        let health = Health {
            status: "ok",
            apps: self.deployer.registry().len(),
            instances: self.launches.len(),
        };
        let document = serde_json::to_string(&health).expect("numbers and a word serialize");
        respond::json(StatusCode::OK, document)
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

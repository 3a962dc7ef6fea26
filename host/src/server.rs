//! The listener: accepts connections, routes each request to an app or to the server's own
//! endpoints, and shuts down gracefully (stop accepting, let in-flight requests finish).

use crate::app::App;
use crate::config::Config;
use crate::engine::WasmEngine;
use crate::invoke::{Forwarding, invoke};
use crate::registry::Registry;
use crate::respond::{self, Body};
use crate::router::{self, Route};
use crate::store;
use anyhow::Context as _;
use futures::StreamExt as _;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Loads the apps of `config.apps_dir`, then serves on `listener` until `shutdown` resolves.
///
/// # Errors
///
/// If the engine cannot be created or the apps folder cannot be read. A bad app file is not
/// an error: it is logged and skipped, and the others are served.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let engine = WasmEngine::new(&config.engine)?;
    run_with_engine(listener, config, engine, shutdown).await
}

/// [`run`] with an engine the caller already has (tests share one across servers).
///
/// # Errors
///
/// As [`run`].
pub async fn run_with_engine(
    listener: TcpListener,
    config: Config,
    engine: WasmEngine,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let registry = Registry::new();
    load_apps_folder(&engine, &registry, &config).await?;
    let local = listener
        .local_addr()
        .context("reading the listening address")?;
    let shared = Arc::new(Shared {
        engine,
        registry,
        config,
        local,
    });
    tracing::info!(
        apps = shared.registry.len(),
        "listening on http://{local}{}/",
        shared.config.base_path
    );
    serve_connections(listener, shared, shutdown).await;
    Ok(())
}

async fn load_apps_folder(
    engine: &WasmEngine,
    registry: &Registry,
    config: &Config,
) -> anyhow::Result<()> {
    let files = store::scan_apps(&config.apps_dir)?;
    // Compile a few at a time: each compilation already uses every core, and running dozens at
    // once only multiplies peak memory (which the allocator then keeps).
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut loads = futures::stream::iter(files)
        .map(|file| {
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || {
                let loaded = std::fs::read(&file.path)
                    .with_context(|| format!("reading {}", file.path.display()))
                    .and_then(|bytes| Ok(App::load(&engine, &file.name, &bytes)?));
                (file, loaded)
            })
        })
        .buffer_unordered(parallel);
    while let Some(joined) = loads.next().await {
        let (file, loaded) = joined.context("loading an app panicked")?;
        match loaded {
            Ok(app) => {
                tracing::info!(
                    app = %app.name(),
                    bytes = app.size(),
                    compile_ms = app.compile_time().as_millis() as u64,
                    "mounted at {}/",
                    router::mount_prefix(&config.base_path, &file.name)
                );
                registry.insert(app);
            }
            Err(error) => tracing::warn!(
                path = %file.path.display(),
                "skipping app `{}`: {error:#}",
                file.name
            ),
        }
    }
    Ok(())
}

/// What every connection shares.
struct Shared {
    engine: WasmEngine,
    registry: Registry,
    config: Config,
    local: SocketAddr,
}

async fn serve_connections(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accepting a connection: {error}");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let service = hyper::service::service_fn(move |request| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(shared.handle(request, peer).await) }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, "connection ended: {error}");
            }
        });
    }
    drop(listener);
    let grace = shared.config.shutdown_timeout;
    tracing::info!(
        "shutting down: no new connections, waiting up to {grace:?} for requests in flight"
    );
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("shut down cleanly"),
        Err(_) => tracing::warn!("shutdown grace period over: closing the remaining connections"),
    }
}

impl Shared {
    async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let base = self.config.base_path.as_str();
        let path = request.uri().path().to_owned();
        match router::resolve(base, &path) {
            Route::App { name, rest } => match self.registry.get(name) {
                Some(app) => {
                    let prefix = router::mount_prefix(base, name);
                    let forwarding = Forwarding {
                        prefix: &prefix,
                        rest,
                        peer,
                        local: self.local,
                    };
                    invoke(
                        &self.engine,
                        app,
                        request,
                        forwarding,
                        self.config.request_timeout,
                    )
                    .await
                }
                None => no_such_app(name),
            },
            Route::AddTrailingSlash { name } => {
                if self.registry.get(name).is_none() {
                    return no_such_app(name);
                }
                let mut location = format!("{}/", router::mount_prefix(base, name));
                if let Some(query) = request.uri().query() {
                    location.push('?');
                    location.push_str(query);
                }
                respond::permanent_redirect(&location)
            }
            Route::Index if is_read(request.method()) => self.index_page(),
            Route::Index => method_not_allowed(),
            Route::Reserved(endpoint) => self.reserved(endpoint, request.method()),
            Route::NotFound => respond::text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// The server's own endpoints under `/_wasmount/`.
    fn reserved(&self, endpoint: &str, method: &Method) -> Response<Body> {
        match endpoint {
            "/health" if is_read(method) => respond::json(
                StatusCode::OK,
                format!(r#"{{"status":"ok","apps":{}}}"#, self.registry.len()),
            ),
            "/health" => method_not_allowed(),
            _ => respond::text(
                StatusCode::NOT_FOUND,
                format_args!(
                    "no server endpoint at {}{endpoint}",
                    router::RESERVED_PREFIX
                ),
            ),
        }
    }

    fn index_page(&self) -> Response<Body> {
        let base = &self.config.base_path;
        let apps = self.registry.list();
        let items: String = apps
            .iter()
            .map(|app| {
                // App names are [a-z0-9-]: nothing in them needs escaping.
                let href = format!("{}/", router::mount_prefix(base, app.name()));
                format!(
                    "<li><a href=\"{href}\">{name}</a> <small>{kib} KiB</small></li>\n",
                    name = app.name(),
                    kib = app.size().div_ceil(1024)
                )
            })
            .collect();
        let list = if apps.is_empty() {
            "<p>No apps are mounted. Put a <code>NAME.wasm</code> component in the apps \
             folder and restart.</p>"
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

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

fn method_not_allowed() -> Response<Body> {
    let mut response = respond::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response.headers_mut().insert(
        http::header::ALLOW,
        http::HeaderValue::from_static("GET, HEAD"),
    );
    response
}

fn no_such_app(name: &str) -> Response<Body> {
    respond::text(
        StatusCode::NOT_FOUND,
        format_args!("no app named `{name}` is mounted"),
    )
}

//! The listener: accepts connections, routes each request to an app, the admin API or the
//! server's own endpoints, and shuts down gracefully (stop accepting, let in-flight requests
//! finish).

use crate::admin::{self, AdminAccess, AdminContext};
use crate::config::Config;
use crate::deploy::Deployer;
use crate::engine::WasmEngine;
use crate::instances::{Instance, Instances};
use crate::invoke::{Forwarding, invoke};
use crate::registry::Entry;
use crate::respond::{self, Body};
use crate::router::{self, Route};
use crate::sandbox::InstanceLimits;
use anyhow::Context as _;
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

/// Response header carrying the reason a newer build of the app failed (dev mode).
pub const X_WASMOUNT_ERROR: &str = "x-wasmount-error";
const MAX_ERROR_HEADER_CHARS: usize = 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Mounts the apps of `config.apps_dir`, then serves on `listener` until `shutdown` resolves.
///
/// # Errors
///
/// If the engine cannot be created or the apps folder cannot be opened. A bad app file is not
/// an error: it is logged, recorded as failed, and the others are served.
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
    let deployer = Deployer::open(engine, &config.apps_dir, config.max_concurrent_requests)?;
    let instances = Arc::new(Instances::open(
        &config.apps_dir,
        config.instance_idle_timeout,
        config.max_launched_instances,
    )?);
    instances.spawn_sweeper();
    deployer.mount_folder().await?;
    deployer.mount_external(&config.external_apps);
    if config.watch {
        crate::watch::spawn(deployer.clone(), &config.apps_dir, &config.external_apps)?;
    }
    let local = listener
        .local_addr()
        .context("reading the listening address")?;
    let access = AdminAccess::new(config.admin_token.as_deref(), config.public_app_list);
    let shared = Arc::new(Shared {
        deployer,
        instances,
        access,
        config,
        local,
    });
    tracing::info!(
        apps = shared.deployer.registry().len(),
        instances = shared.instances.len(),
        admin_api = if shared.config.admin_token.is_some() {
            "on"
        } else {
            "off"
        },
        "listening on http://{local}{}/",
        shared.config.base_path
    );
    serve_connections(listener, shared, shutdown).await;
    Ok(())
}

/// What every connection shares.
struct Shared {
    deployer: Arc<Deployer>,
    instances: Arc<Instances>,
    access: AdminAccess,
    config: Config,
    local: SocketAddr,
}

async fn serve_connections(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    let config = &shared.config;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(usize::try_from(config.max_header_bytes).unwrap_or(usize::MAX))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // At the connection cap, stop accepting until one closes (the kernel backlog holds
        // the rest).
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
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
            drop(permit);
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
        // Apps with a custom route first (longest route wins), then the default /NAME layout.
        let routes = self.deployer.registry().custom_routes();
        let custom = path
            .strip_prefix(base)
            .and_then(|under_base| router::resolve_custom(&routes, under_base));
        let by_custom_route = custom.is_some();
        let route = custom.unwrap_or_else(|| router::resolve(base, &path));
        match route {
            Route::App { name, rest } => {
                let (app, instance) = match self.lookup(name).await {
                    Ok(found) => found,
                    Err(refusal) => return refusal,
                };
                if instance.is_none() && !by_custom_route && app.manifest().route.is_some() {
                    return no_such_app(name); // it is mounted at its own route instead
                }
                let admitted = match app.admit() {
                    Ok(permit) => permit,
                    Err(crate::app::AtCapacity) => {
                        return respond::unavailable(
                            format_args!("app `{name}` is at its limit of concurrent requests"),
                            1,
                        );
                    }
                };
                let prefix = match &instance {
                    Some(instance) => router::mount_prefix(base, &instance.name),
                    None => app.prefix(base),
                };
                let forwarding = Forwarding {
                    prefix: &prefix,
                    rest,
                    peer,
                    local: self.local,
                    base_path: base,
                    instance: instance.as_deref(),
                };
                let manifest = app.manifest();
                let limits = InstanceLimits {
                    timeout: manifest
                        .request_timeout
                        .unwrap_or(self.config.request_timeout),
                    memory_bytes: manifest.memory.unwrap_or(self.config.instance_memory_bytes),
                    max_request_body: manifest
                        .max_request_body
                        .unwrap_or(self.config.max_request_body),
                };
                let mut response = invoke(app, request, forwarding, &limits, admitted).await;
                if self.config.dev {
                    self.show_build_error(name, &mut response);
                }
                response
            }
            Route::AddTrailingSlash { name } => {
                let prefix = match self.deployer.registry().get(name) {
                    Some(Entry::Ready(app))
                        if by_custom_route || app.manifest().route.is_none() =>
                    {
                        app.prefix(base)
                    }
                    Some(Entry::Loading(_)) => router::mount_prefix(base, name),
                    None if self.instances.peek(name).is_some() => router::mount_prefix(base, name),
                    _ => return no_such_app(name),
                };
                let mut location = format!("{prefix}/");
                if let Some(query) = request.uri().query() {
                    location.push('?');
                    location.push_str(query);
                }
                respond::permanent_redirect(&location)
            }
            Route::Index if is_read(request.method()) => self.index_page(),
            Route::Index => method_not_allowed(),
            Route::Reserved(endpoint) => self.reserved(endpoint, request).await,
            Route::NotFound => respond::text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// The app mounted as `name`, or else the launched instance `name` and its app.
    async fn lookup(
        &self,
        name: &str,
    ) -> Result<(Arc<crate::app::App>, Option<Arc<Instance>>), Response<Body>> {
        let registry = self.deployer.registry();
        if let Some(entry) = registry.get(name) {
            return match entry.app().await {
                Ok(app) => Ok((app, None)),
                Err(reason) => Err(failed_app(name, &reason)),
            };
        }
        let Some(instance) = self.instances.get(name) else {
            return Err(no_such_app(name));
        };
        match registry.get(&instance.app) {
            Some(entry) => match entry.app().await {
                Ok(app) => Ok((app, Some(instance))),
                Err(reason) => Err(failed_app(&instance.app, &reason)),
            },
            None => Err(respond::text(
                StatusCode::NOT_FOUND,
                format_args!(
                    "instance `{name}` runs app `{}`, which is not mounted",
                    instance.app
                ),
            )),
        }
    }

    /// In dev mode, tells the developer on every response of an app whose latest build failed
    /// (the previous build is what answered). A header, not a banner in the body: it reaches
    /// the browser's network panel and `curl -i` without altering what the app sent.
    fn show_build_error(&self, name: &str, response: &mut Response<Body>) {
        if let Some(failure) = self.deployer.registry().failure(name) {
            let reason: String = failure
                .reason
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() || c == ' ' {
                        c
                    } else {
                        ' '
                    }
                })
                .take(MAX_ERROR_HEADER_CHARS)
                .collect();
            if let Ok(value) = http::HeaderValue::from_str(&reason) {
                response.headers_mut().insert(X_WASMOUNT_ERROR, value);
            }
        }
    }

    /// The server's own endpoints under `/_wasmount/`.
    async fn reserved(&self, endpoint: &str, request: Request<Incoming>) -> Response<Body> {
        let context = || AdminContext {
            deployer: &self.deployer,
            instances: &self.instances,
            access: &self.access,
            base_path: &self.config.base_path,
            max_upload: self.config.max_upload,
            max_instance_input: self.config.max_instance_input,
        };
        let under = |collection: &str| {
            endpoint
                .strip_prefix(collection)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if let Some(rest) = under("/apps") {
            return admin::handle(context(), rest, request).await;
        }
        if let Some(rest) = under("/instances") {
            return admin::handle_instances(context(), rest, request).await;
        }
        match endpoint {
            "/health" if is_read(request.method()) => respond::json(
                StatusCode::OK,
                format!(
                    r#"{{"status":"ok","apps":{},"instances":{}}}"#,
                    self.deployer.registry().len(),
                    self.instances.len()
                ),
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
                        format!("{}/", router::mount_prefix(base, name)),
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

fn failed_app(name: &str, reason: &str) -> Response<Body> {
    respond::text(
        StatusCode::NOT_FOUND,
        format_args!("app `{name}` is not mounted: loading it failed: {reason}"),
    )
}

fn no_such_app(name: &str) -> Response<Body> {
    respond::text(
        StatusCode::NOT_FOUND,
        format_args!("no app named `{name}` is mounted"),
    )
}

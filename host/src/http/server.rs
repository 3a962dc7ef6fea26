//! A server: what its connections share, how it starts (engine, store, apps, launches,
//! watcher), and the request path, read top to bottom: route → app or launched instance →
//! admission → rewrite for the guest → invoke. The `/_wasmount/` endpoints are in `control`.

use crate::apps::app::{App, LinkContext};
use crate::apps::deploy::Deployer;
use crate::apps::names::is_valid_app_name;
use crate::apps::names::{Namespace, mount_prefix};
use crate::apps::postgres::Database;
use crate::apps::postgres::mirror::SharedStore;
use crate::apps::registry::{Entry, Snapshot};
use crate::apps::routes::Route;
use crate::apps::store::FolderStore;
use crate::cluster::Follower;
use crate::config::Config;
use crate::headers::{X_REQUEST_ID, X_WASMOUNT_ERROR, content_length};
use crate::http::access_log::{AccessLog, LogLine, request_id};
use crate::http::admin::AdminAccess;
use crate::http::forwarding::{Forwarding, TrustedProxies, note_connection, rewrite_for_guest};
use crate::http::listener::{self, Connection, Plane};
use crate::http::tls::Tls;
use crate::launches::store::SharedInstances;
use crate::launches::{INSTANCE_ENV, InUse, Instances, LaunchLimits};
use crate::metrics::Metrics;
use crate::respond::{self, Body};
use crate::runtime::engine::WasmEngine;
use crate::runtime::fairness::Fairness;
use crate::runtime::guest_log::{self, LogTail};
use crate::runtime::invoke::invoke;
use crate::runtime::sandbox::Binding;
use anyhow::Context as _;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

const MAX_ERROR_HEADER_CHARS: usize = 1024;

/// The sockets a server listens on: the public one, and optionally one of its own for the
/// control plane (admin API, metrics, dashboard).
#[derive(Debug)]
pub struct Listeners {
    /// Apps, the index and health; everything when there is no admin listener.
    pub public: TcpListener,
    /// Only the server's own endpoints under `/_wasmount/`.
    pub admin: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(public: TcpListener) -> Self {
        Self {
            public,
            admin: None,
        }
    }
}

/// Mounts the apps of `config.apps_dir`, then serves on `listeners` until `shutdown`
/// resolves.
///
/// # Errors
///
/// If the engine cannot be created, the apps folder cannot be opened, or the TLS certificate
/// does not load. A bad app file is not an error: it is logged, recorded as failed, and the
/// others are served.
pub async fn run(
    listeners: impl Into<Listeners>,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let engine = WasmEngine::new(&config.engine)?;
    run_with_engine(listeners, config, engine, shutdown).await
}

/// [`run`] with an engine the caller already has (tests share one across servers).
///
/// # Errors
///
/// As [`run`].
pub async fn run_with_engine(
    listeners: impl Into<Listeners>,
    config: Config,
    engine: WasmEngine,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Listeners { public, admin } = listeners.into();
    let local = public
        .local_addr()
        .context("reading the listening address")?;
    let tls = config.tls.as_ref().map(Tls::load).transpose()?;
    let server = Arc::new(Server::start(config, engine, local).await?);
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        apps = server.deployer.registry().len(),
        instances = server.launches.len(),
        admin_api = if server.config.admin_token.is_some() {
            "on"
        } else {
            "off"
        },
        "listening on {scheme}://{local}{}/",
        server.config.base_path
    );
    if server.config.dev {
        server.log_app_urls(&format!("{scheme}://{local}"));
    }
    let reloader = tls.as_ref().map(|tls| tls.spawn_reloader());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let public_plane = if admin.is_some() {
        Plane::Apps
    } else {
        Plane::All
    };
    let public = listener::serve(
        public,
        server.clone(),
        public_plane,
        tls.clone(),
        until_stopped(stopped.clone()),
    );
    let admin = async {
        let Some(admin) = admin else { return };
        if let Ok(address) = admin.local_addr() {
            tracing::info!("admin listening on {scheme}://{address}/");
        }
        let admin_stopped = until_stopped(stopped);
        listener::serve(
            admin,
            server.clone(),
            Plane::Control,
            tls.clone(),
            admin_stopped,
        )
        .await;
    };
    let signal = async {
        shutdown.await;
        stop.send_replace(true);
    };
    tokio::join!(signal, public, admin);
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    Ok(())
}

/// One wasmount server without a listener of its own: it mounts its apps when started and
/// answers whatever requests it is given. [`run`] puts it behind a listener; another Rust
/// web server can embed it by passing it the requests under `config.base_path` (and
/// `/_wasmount/`).
///
/// # Examples
///
/// ```no_run
/// # async fn example(request: http::Request<hyper::body::Incoming>) -> anyhow::Result<()> {
/// use wasmount::{config::Config, engine::WasmEngine, server::Server};
///
/// let mut config = Config::new("apps");
/// config.base_path = "/visualizations".into();
/// let engine = WasmEngine::new(&config.engine)?;
/// let local = "127.0.0.1:8000".parse()?;
/// let server = Server::start(config, engine, local).await?;
/// // In the embedder's own request handler, for paths under /visualizations/:
/// let peer = "127.0.0.1:50000".parse()?;
/// let response = server.handle(request, peer).await;
/// # let _ = response;
/// # Ok(())
/// # }
/// ```
pub struct Server {
    /// Loads, stores and mounts apps.
    pub(crate) deployer: Arc<Deployer>,
    /// The launched instances.
    pub(crate) launches: Arc<Instances>,
    /// Who may call the admin API.
    pub(crate) access: AdminAccess,
    /// The settings it runs with.
    pub(crate) config: Config,
    /// The address clients reach it at, the guest's `host` when a client sends none.
    local: SocketAddr,
    /// Whose forwarding headers are believed.
    proxies: TrustedProxies,
    /// Keeps this node in line with the shared store, in a cluster.
    pub(crate) follower: Option<Arc<Follower>>,
    /// What `/_wasmount/metrics` shows.
    pub(crate) metrics: Arc<Metrics>,
    /// One line per request, when asked for.
    access_log: Option<AccessLog>,
    /// Every guest's output, for `/_wasmount/apps/NAME/log`.
    pub(crate) log_tail: LogTail,
    /// Whether every app found at start has loaded (health is `503` until then, in a cluster).
    pub(crate) warmed: std::sync::atomic::AtomicBool,
    /// Turns true when shutdown begins: long-lived streams (log followers) end.
    pub(crate) draining: tokio::sync::watch::Sender<bool>,
    /// The apps built from source (`wasmount dev DIR`).
    pub(crate) projects: crate::dev::projects::Projects,
}

/// What a server serves from: the deployer, the launches, and the follower of a shared store.
type Opened = (Arc<Deployer>, Arc<Instances>, Option<Arc<Follower>>);

impl Server {
    /// Opens the store (the apps folder, or with `config.store` a PostgreSQL database it
    /// then follows), mounts its apps (those without a cached build keep compiling in the
    /// background), loads the launched instances and starts the watcher if asked. `local` is
    /// the address clients connect to.
    ///
    /// # Errors
    ///
    /// If the apps folder cannot be opened or watched, or the shared store cannot be
    /// reached, logged into, or migrated.
    pub async fn start(
        config: Config,
        engine: WasmEngine,
        local: SocketAddr,
    ) -> anyhow::Result<Self> {
        config.check()?;
        let names = Arc::new(Namespace::default());
        let metrics = Metrics::new();
        let log_tail = guest_log::log_tail();
        let context = LinkContext {
            engine,
            defaults: config.app_defaults(),
            fairness: Fairness::new(),
            metrics: metrics.clone(),
            log_tail: log_tail.clone(),
        };
        let limits = LaunchLimits {
            idle_timeout: config.instance_idle_timeout,
            max_instances: config.max_launched_instances,
            max_input_total: config.max_launch_input_total,
        };
        let (deployer, launches, follower) = match &config.store {
            None => open_folder(&config, context, names, limits).await?,
            Some(url) => open_shared(url, &config, context, names, limits).await?,
        };
        launches.spawn_sweeper();
        if config.watch {
            let (dir, external) = (&config.apps_dir, &config.external_apps);
            crate::apps::watch::spawn(deployer.clone(), dir, external, config.watch_debounce)?;
        }
        let access_log = match config.access_log {
            Some(format) => Some(AccessLog::open(format, config.access_log_file.as_deref())?),
            None => None,
        };
        let projects = start_projects(&config, &deployer, local)?;
        Ok(Self {
            deployer,
            launches,
            access: AdminAccess::new(config.admin_token.as_deref(), config.public_app_list),
            proxies: TrustedProxies::new(config.trusted_proxies.clone()),
            config,
            local,
            follower,
            metrics,
            access_log,
            log_tail,
            warmed: std::sync::atomic::AtomicBool::new(false),
            draining: tokio::sync::watch::Sender::new(false),
            projects,
        })
    }

    /// Logs where each mounted app answers, under `origin` (dev mode: a link to click).
    fn log_app_urls(&self, origin: &str) {
        let base = &self.config.base_path;
        for (name, entry) in self.deployer.registry().list() {
            let prefix = match entry {
                Entry::Ready(app) => app.prefix(base),
                Entry::Loading(_) => mount_prefix(base, &name),
            };
            tracing::info!(app = %name, "at {origin}{prefix}/");
        }
    }

    /// Ends the streams that would otherwise stay open until the client leaves (guest-output
    /// followers), so a graceful shutdown only waits for real requests. [`run`] calls it when
    /// its shutdown begins; an embedder calls it before draining its own connections.
    pub fn begin_draining(&self) {
        self.draining.send_replace(true);
    }

    /// Answers one request from `peer`: an app's, a launched instance's, or the server's own.
    /// It gets a request id (`x-request-id`, the client's when sane), which the guest sees
    /// and the response carries, and a line in the access log when there is one.
    pub async fn handle(&self, mut request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let id = request_id(request.headers());
        let id_value = http::HeaderValue::from_str(&id).ok();
        if let Some(value) = &id_value {
            request.headers_mut().insert(X_REQUEST_ID, value.clone());
        }
        let logged = self.access_log.as_ref().map(|_| Logged::of(&request));
        let (mut response, app) = self.route(request, peer).await;
        if let Some(value) = id_value {
            response.headers_mut().insert(X_REQUEST_ID, value);
        }
        if let (Some(log), Some(logged)) = (&self.access_log, logged) {
            log.write(&LogLine {
                at: logged.at,
                id: &id,
                app: app.as_deref(),
                method: &logged.method,
                target: &logged.target,
                status: response.status().as_u16(),
                bytes_in: logged.bytes_in,
                bytes_out: content_length(response.headers()),
                duration: logged.started.elapsed(),
                client: peer,
                referer: logged.referer.as_deref(),
                user_agent: logged.user_agent.as_deref(),
            });
        }
        response
    }

    /// [`Server::handle`] after the request id: the response, and the app that served it.
    async fn route(
        &self,
        mut request: Request<Incoming>,
        peer: SocketAddr,
    ) -> (Response<Body>, Option<Arc<str>>) {
        if head_size(&request) > self.config.max_header_bytes {
            return (head_too_large(self.config.max_header_bytes), None);
        }
        self.proxies.strip_untrusted(peer, request.headers_mut());
        let connection = request.extensions().get::<Connection>().copied();
        let connection = connection.unwrap_or_default();
        note_connection(&mut request, connection.over_tls);
        let base = self.config.base_path.as_str();
        let snapshot = self.deployer.registry().snapshot();
        let path = request.uri().path().to_owned();
        let route = snapshot.routes.resolve(base, &path);
        if !self.takes(connection.plane, &route) {
            return (respond::text(StatusCode::NOT_FOUND, "not found"), None);
        }
        let response = match route {
            Route::App { name, rest, custom } => {
                let mut target = self.target(&snapshot, name, custom).await;
                if target.is_err() && !custom && self.read_through(&snapshot, name).await {
                    let snapshot = self.deployer.registry().snapshot();
                    target = self.target(&snapshot, name, custom).await;
                }
                // What dev mode needs of the request once it is answered (nothing otherwise).
                let asked = self.config.dev.then(|| {
                    let live = crate::dev::live::is_navigation(&request);
                    (
                        request.method().clone(),
                        live,
                        crate::dev::live::wants_page(&request),
                    )
                });
                let (mut response, app) = match target {
                    Ok(target) => self.serve_counted(target, request, rest, peer).await,
                    Err(_)
                        if self.projects.contains(name)
                            && self.deployer.registry().get(name).is_none() =>
                    {
                        (crate::dev::live::waiting_page(&self.deployer, name), None)
                    }
                    Err(refusal) => {
                        self.metrics.request_unmatched(refusal.status().as_u16());
                        (refusal, None)
                    }
                };
                if let Some((method, navigation, wants_page)) = asked {
                    // A launched instance shows its app's build error too.
                    let app_name = app.as_deref().unwrap_or(name);
                    crate::dev::live::explain_failure(app_name, wants_page, &mut response);
                    self.show_build_error(app_name, &mut response);
                    let deployer = &self.deployer;
                    crate::dev::live::inject(
                        deployer,
                        app_name,
                        &method,
                        navigation,
                        &mut response,
                    );
                }
                return (response, app);
            }
            Route::AddTrailingSlash { name, custom } => {
                self.redirect(&snapshot, name, custom, &request)
            }
            Route::Index => self.index(request.method()),
            Route::Reserved(endpoint) => self.reserved(endpoint, request).await,
            Route::NotFound => respond::text(StatusCode::NOT_FOUND, "not found"),
        };
        (response, None)
    }

    /// Whether a listener of `plane` answers `route`. With an admin listener, the public one
    /// keeps apps, the index, health (and metrics when public); the admin one takes only the
    /// server's own endpoints.
    fn takes(&self, plane: Plane, route: &Route<'_>) -> bool {
        let reserved = match route {
            Route::Reserved(endpoint) => Some(*endpoint),
            _ => None,
        };
        match plane {
            Plane::All => true,
            Plane::Control => reserved.is_some(),
            Plane::Apps => match reserved {
                None => true,
                Some(endpoint) => {
                    endpoint == "/health"
                        || (endpoint == "/metrics" && self.config.public_metrics)
                        || (endpoint.starts_with("/dev/") && self.config.dev)
                }
            },
        }
    }

    /// [`Server::serve_app`], counted in the metrics under the app's name.
    async fn serve_counted(
        &self,
        target: Target,
        request: Request<Incoming>,
        rest: &str,
        peer: SocketAddr,
    ) -> (Response<Body>, Option<Arc<str>>) {
        let (app, guest) = (target.app.name().clone(), target.app.guest().clone());
        let started = std::time::Instant::now();
        let running = guest.metrics().in_flight();
        let response = self.serve_app(target, request, rest, peer).await;
        drop(running);
        let status = response.status().as_u16();
        guest.metrics().request_done(status, started.elapsed());
        (response, Some(app))
    }

    /// What serves `name`: the app mounted as `name` (at its custom route only, when it has
    /// one), or else the launched instance `name` and its app.
    async fn target(
        &self,
        snapshot: &Snapshot,
        name: &str,
        custom: bool,
    ) -> Result<Target, Response<Body>> {
        if let Some(entry) = snapshot.apps.get(name) {
            let app = entry
                .app()
                .await
                .map_err(|reason| failed_app(name, &reason))?;
            if !custom && app.manifest().route.is_some() {
                return Err(no_such_app(name)); // it is mounted at its own route instead
            }
            return Ok(Target { app, launch: None });
        }
        let launch = self.launches.get(name).ok_or_else(|| no_such_app(name))?;
        let Some(entry) = snapshot.apps.get(launch.app.as_ref()) else {
            return Err(respond::text(
                StatusCode::NOT_FOUND,
                format_args!(
                    "instance `{name}` runs app `{}`, which is not mounted",
                    launch.app
                ),
            ));
        };
        let app = entry
            .app()
            .await
            .map_err(|reason| failed_app(&launch.app, &reason))?;
        Ok(Target {
            app,
            launch: Some(launch),
        })
    }

    /// In a cluster, for a name this node does not know: catches up with the store (the
    /// name may have been launched or uploaded on another node a moment ago). Returns
    /// whether it did.
    async fn read_through(&self, snapshot: &Snapshot, name: &str) -> bool {
        let Some(follower) = &self.follower else {
            return false;
        };
        let unknown = !snapshot.apps.contains_key(name) && self.launches.peek(name).is_none();
        unknown && is_valid_app_name(name) && follower.read_through().await
    }

    /// Runs the request in `target`'s app, with the path it sees.
    async fn serve_app(
        &self,
        target: Target,
        request: Request<Incoming>,
        rest: &str,
        peer: SocketAddr,
    ) -> Response<Body> {
        let Target { app, launch } = target;
        let base = &self.config.base_path;
        let prefix = match &launch {
            Some(launch) => mount_prefix(base, &launch.name),
            None => app.prefix(base),
        };
        let forwarding = Forwarding {
            prefix: &prefix,
            rest,
            peer,
            local: self.local,
        };
        let request = match rewrite_for_guest(request, &forwarding) {
            Ok(request) => request,
            Err(message) => return respond::text(StatusCode::BAD_REQUEST, message),
        };
        // Held until the guest is done, response body included: the instance cannot expire
        // under a running request.
        let launch = launch.map(Arc::new);
        let binding = launch.as_deref().map(|launch| Binding {
            key: &launch.reuse_key,
            env: [launch.input.env(), (INSTANCE_ENV, &launch.name)],
        });
        let keep = launch
            .clone()
            .map(|launch| launch as Arc<dyn std::any::Any + Send + Sync>);
        invoke(app.guest().clone(), request, binding, keep).await
    }

    /// `B/NAME` → `B/NAME/` (query kept), for whatever is mounted at `name`.
    fn redirect(
        &self,
        snapshot: &Snapshot,
        name: &str,
        custom: bool,
        request: &Request<Incoming>,
    ) -> Response<Body> {
        let base = &self.config.base_path;
        let prefix = match snapshot.apps.get(name) {
            Some(Entry::Ready(app)) if custom || app.manifest().route.is_none() => app.prefix(base),
            Some(Entry::Loading(_)) => mount_prefix(base, name),
            None if self.launches.peek(name).is_some() => mount_prefix(base, name),
            _ => return no_such_app(name),
        };
        let mut location = format!("{prefix}/");
        if let Some(query) = request.uri().query() {
            location.push('?');
            location.push_str(query);
        }
        respond::permanent_redirect(&location)
    }

    /// In dev mode, tells the developer on every response of an app whose latest build failed
    /// (the previous build is what answered). A header, not a banner in the body: it reaches
    /// the browser's network panel and `curl -i` without altering what the app sent.
    fn show_build_error(&self, name: &str, response: &mut Response<Body>) {
        if let Some(failure) = self.deployer.registry().failure(name) {
            let reason: String = failure
                .reason
                .chars()
                .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
                .take(MAX_ERROR_HEADER_CHARS)
                .collect();
            if let Ok(value) = http::HeaderValue::from_str(&reason) {
                response.headers_mut().insert(X_WASMOUNT_ERROR, value);
            }
        }
    }
}

/// What the access log needs of a request, taken before it is handed on.
struct Logged {
    at: std::time::SystemTime,
    started: std::time::Instant,
    method: String,
    target: String,
    bytes_in: Option<u64>,
    referer: Option<String>,
    user_agent: Option<String>,
}

impl Logged {
    fn of<B>(request: &Request<B>) -> Self {
        let header = |name: http::header::HeaderName| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            at: std::time::SystemTime::now(),
            started: std::time::Instant::now(),
            method: request.method().to_string(),
            target: request
                .uri()
                .path_and_query()
                .map_or("/".to_owned(), |target| target.as_str().to_owned()),
            bytes_in: content_length(request.headers()),
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
        }
    }
}

/// What a request to a name runs: an app, and the launched instance if it is one's.
struct Target {
    app: Arc<App>,
    /// Held while the request runs, so the instance does not expire under it.
    launch: Option<InUse>,
}

/// The size of a request's head as sent: request line and header lines. The HTTP parser reads
/// in chunks and may accept up to about twice its buffer; this is the exact limit.
fn head_size<B>(request: &Request<B>) -> u64 {
    let uri = request.uri();
    let target = uri
        .path_and_query()
        .map_or(1, |target| target.as_str().len())
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len() + 8);
    let line = request.method().as_str().len() + target + 12;
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (line + headers + 2) as u64
}

fn head_too_large(limit: u64) -> Response<Body> {
    let mut response = respond::text(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        format_args!("the request head is larger than {limit} bytes (--max-header-size)"),
    );
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
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

/// Serves the apps folder: its apps, and its launched instances.
async fn open_folder(
    config: &Config,
    context: LinkContext,
    names: Arc<Namespace>,
    limits: LaunchLimits,
) -> anyhow::Result<Opened> {
    let store = Box::new(FolderStore::open_with_cache(
        &config.apps_dir,
        &config.cache_folder(),
    )?);
    let deployer = Deployer::new(context, store, names.clone(), config.max_upload);
    deployer.mount_stored().await?;
    if !config.external_apps.is_empty() {
        let compiling = config.external_apps.len();
        tracing::info!(compiling, "mounting apps from files outside the store");
    }
    for (name, path) in &config.external_apps {
        // Uploads and deletes under these names would fight the files (409).
        deployer.note_external(name, path);
    }
    deployer.mount_external(&config.external_apps);
    let launches = Arc::new(Instances::open(&config.apps_dir, names, limits)?);
    Ok((deployer, launches, None))
}

/// Serves the shared store at `url`: connects and migrates, mirrors its components into
/// this node's cache folder, mounts them and its launched instances, and follows it.
async fn open_shared(
    url: &str,
    config: &Config,
    context: LinkContext,
    names: Arc<Namespace>,
    limits: LaunchLimits,
) -> anyhow::Result<Opened> {
    let db = Arc::new(Database::open(url).await?);
    let mirror = config.cache_folder().join("store");
    let files_root = if config.apps_dir.is_dir() {
        config.apps_dir.clone()
    } else {
        mirror.clone()
    };
    let runtime = tokio::runtime::Handle::current();
    let apps = Arc::new(SharedStore::open(
        db.clone(),
        &mirror,
        &files_root,
        runtime.clone(),
    )?);
    let deployer = Deployer::new(
        context,
        Box::new(apps.clone()),
        names.clone(),
        config.max_upload,
    );
    let instances = Box::new(SharedInstances::new(db.clone(), runtime));
    let launches = Arc::new(Instances::with_store(instances, names, limits)?);
    let follower = Follower::start(
        db,
        apps,
        deployer.clone(),
        launches.clone(),
        config.store_resync_interval,
    )
    .await?;
    Ok((deployer, launches, Some(follower)))
}

/// In dev mode, starts building and watching the project folders of `config`, each mounted
/// under its folder's name.
///
/// # Errors
///
/// A folder is not a project, its name is not an app name, or it cannot be watched.
fn start_projects(
    config: &Config,
    deployer: &Arc<Deployer>,
    local: SocketAddr,
) -> anyhow::Result<crate::dev::projects::Projects> {
    if !config.dev || config.dev_projects.is_empty() {
        return Ok(Default::default());
    }
    let mut projects = Vec::new();
    for dir in &config.dev_projects {
        let project = crate::build::Project::detect(dir)?;
        let name = project.folder_name();
        anyhow::ensure!(
            is_valid_app_name(&name),
            "{} cannot be mounted as `{name}`: app names are lowercase letters, digits and \
             inner hyphens (rename the folder)",
            project.dir.display()
        );
        anyhow::ensure!(
            !projects.iter().any(|(taken, _)| *taken == name),
            "two projects would be mounted as `{name}`: {} and another folder of that name",
            project.dir.display()
        );
        projects.push((name, project));
    }
    let tools = config
        .tools_dir
        .clone()
        .unwrap_or_else(crate::build::Toolchains::default_dir);
    let tools = Arc::new(crate::build::Toolchains::new(tools));
    let url = format!("http://{local}{}/", config.base_path);
    crate::dev::projects::spawn(deployer.clone(), projects, tools, url)
}

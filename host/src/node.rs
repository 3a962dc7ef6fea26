//! Builds a node from its config — the composition root: engine, store (folder or
//! PostgreSQL), registry and deployer, launches, the cluster follower, the apps-folder
//! watcher, dev projects, the access log — and runs it on its listeners until shutdown. The
//! request path itself is in `http::server` and `http::pipeline`.

use crate::apps::app::LinkContext;
use crate::apps::deploy::Deployer;
use crate::apps::names::{Namespace, is_valid_app_name, mount_prefix};
use crate::apps::postgres::Database;
use crate::apps::postgres::mirror::SharedStore;
use crate::apps::registry::Entry;
use crate::apps::store::FolderStore;
use crate::cluster::Follower;
use crate::config::{AuthConfig, Config};
use crate::http::access_log::AccessLog;
use crate::http::admin::AdminAccess;
use crate::http::admin::tokens::{TokenSet, spawn_reloader};
use crate::http::forward_auth::{AuthSettings, ForwardAuth};
use crate::http::forwarding::TrustedProxies;
use crate::http::listener::{self, Plane};
use crate::http::server::Server;
use crate::http::signed_links::LinkKeys;
use crate::http::tls::Tls;
use crate::launches::store::SharedLaunches;
use crate::launches::{LaunchLimits, Launches};
use crate::metrics::Metrics;
use crate::runtime::engine::WasmEngine;
use crate::runtime::fairness::Fairness;
use crate::runtime::guest_log;
use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

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
        admin_api = if server.config.admin_token.is_some() || server.config.tokens_file.is_some() {
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

/// What a server serves from: the deployer, the launches, and the follower of a shared store.
type Opened = (Arc<Deployer>, Arc<Launches>, Option<Arc<Follower>>);

impl Server {
    /// Opens the store (the apps folder, or with `config.store` a PostgreSQL database it
    /// then follows), mounts its apps (those without a cached build keep compiling in the
    /// background), loads the launches and starts the watcher if asked. `local` is
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
        let access = admin_access(&config)?;
        Ok(Self {
            deployer,
            launches,
            access,
            proxies: TrustedProxies::new(config.trusted_proxies.clone()),
            forward_auth: config.auth.as_ref().map(forward_auth).transpose()?,
            link_keys: match &config.link_keys {
                Some(file) => LinkKeys::load(file)?,
                None => LinkKeys::generated().context("making a key for signed links")?,
            },
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
}

/// Who may call the control plane: `--admin-token` and the tokens file, re-read when it
/// changes or on SIGHUP.
///
/// # Errors
///
/// The tokens file cannot be read or is invalid.
fn admin_access(config: &Config) -> anyhow::Result<AdminAccess> {
    let (admin, file) = (config.admin_token.clone(), config.tokens_file.clone());
    let tokens = TokenSet::load(admin.as_deref(), file.as_deref())?;
    let access = AdminAccess::new(tokens, config.public_app_list);
    if let Some(file) = file {
        let reloaded = access.clone();
        spawn_reloader(admin, file, move |tokens| reloaded.replace(tokens));
    }
    Ok(access)
}

/// The platform's check `auth` describes.
///
/// # Errors
///
/// Its URL is not an http:// URL, or a header name is not one.
fn forward_auth(auth: &AuthConfig) -> anyhow::Result<ForwardAuth> {
    let url = auth
        .url
        .parse()
        .with_context(|| format!("--auth-url `{}` is not a URL", auth.url))?;
    let pass_headers = auth
        .response_headers
        .iter()
        .map(|name| {
            http::HeaderName::try_from(name.as_str())
                .with_context(|| format!("--auth-response-header `{name}` is not a header name"))
        })
        .collect::<anyhow::Result<_>>()?;
    let settings = AuthSettings {
        url,
        timeout: auth.timeout,
        pass_headers,
        allow_ttl: auth.allow_ttl,
        deny_ttl: auth.deny_ttl,
    };
    ForwardAuth::new(settings).map_err(anyhow::Error::msg)
}

/// Serves the apps folder: its apps, and its launches.
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
    let launches = Arc::new(Launches::open(&config.apps_dir, names, limits)?);
    Ok((deployer, launches, None))
}

/// Serves the shared store at `url`: connects and migrates, mirrors its components into
/// this node's cache folder, mounts them and its launches, and follows it.
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
    let instances = Box::new(SharedLaunches::new(db.clone(), runtime));
    let launches = Arc::new(Launches::with_store(instances, names, limits)?);
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

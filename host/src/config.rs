//! Every setting of a server and its default, each default a named constant here and
//! nowhere else (the `serve` flags in `cli::args` and the manifest take theirs from here).
//! A leaf: it imports nothing from the rest of the crate.

use std::path::PathBuf;
use std::time::Duration;

/// The address `serve` listens on when none is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The folder of `NAME.wasm` files served when none is given.
pub const DEFAULT_APPS_DIR: &str = "apps";
/// The longest a guest may take to handle one request, response body included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests may take to finish once shutdown starts.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How many guest instances may run at once, over all apps (pooling allocator slots).
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
/// The largest linear memory one guest may grow to (the pool's hard cap per memory).
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 512 << 20;
/// Memory each instance slot keeps resident between requests (reset in place, not faulted in
/// again).
pub const DEFAULT_KEEP_RESIDENT_BYTES: u64 = 32 << 20;
/// The linear memory one instance may use, all its memories together.
pub const DEFAULT_INSTANCE_MEMORY_BYTES: u64 = 128 << 20;
/// The largest request body an app receives.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 10 << 20;
/// The largest component the admin API accepts.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 50 << 20;
/// The largest request head (request line and headers) accepted; beyond it clients get 431.
pub const DEFAULT_MAX_HEADER_BYTES: u64 = 64 << 10;
/// The smallest request-head limit the HTTP parser supports.
pub const MIN_HEADER_BYTES: u64 = 8 << 10;
/// Open client connections at once; more wait to be accepted.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How long a client may take to send the request headers (slowloris guard).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the start of a request body (64 KiB, or all of a shorter one) may take to
/// arrive before a guest instance is taken for it; slower clients get 408.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;
/// The longest duration any setting accepts (a timeout, an idle time): longer ones are
/// refused rather than overflowing a deadline.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// Quiet time after the last change of a watched file before it is loaded: long enough for a
/// burst of writes or an editor's temp-file-and-rename to settle, short enough to feel instant.
pub const DEFAULT_WATCH_DEBOUNCE: Duration = Duration::from_millis(50);
/// How long a launch may go unused before it is removed.
pub const DEFAULT_LAUNCH_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// The largest input a launch may hold.
pub const DEFAULT_MAX_LAUNCH_INPUT_BYTES: u64 = 1 << 20;
/// How much input all launches may hold together (inputs are kept in memory).
pub const DEFAULT_MAX_LAUNCH_INPUT_TOTAL_BYTES: u64 = 256 << 20;
/// How many launches may exist at once.
pub const DEFAULT_MAX_LAUNCHES: usize = 100_000;
/// How long an idle reusable instance is kept, unless the app's manifest says otherwise.
pub const DEFAULT_REUSE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many idle reusable instances an app keeps, unless its manifest says otherwise.
pub const DEFAULT_MAX_IDLE_INSTANCES: usize = 16;
/// How many idle reusable instances the whole server keeps, over all apps (the oldest go
/// first).
pub const DEFAULT_MAX_IDLE_INSTANCES_TOTAL: usize = 32;
/// How many pool slots that ran an instance stay warm (affine to their app, with pages kept
/// resident) while unused; beyond it the least recently used warm slot is taken over first.
pub const DEFAULT_MAX_WARM_SLOTS: u32 = 64;
/// How often the pools' idle memory is checked: when no instance started for this long, or
/// far more slots are warm than the last period needed, their resident pages go back to the
/// operating system.
pub const DEFAULT_IDLE_MEMORY_RELEASE_AFTER: Duration = Duration::from_secs(10);
/// The shortest period of that check (a shorter one would keep a thread busy).
pub const MIN_IDLE_MEMORY_RELEASE_AFTER: Duration = Duration::from_millis(100);

/// How often a node of a cluster reads the store's changes even without a notification.
/// The platform's cookies no guest is handed (Django's session and CSRF cookies).
pub const DEFAULT_PLATFORM_COOKIES: [&str; 2] = ["sessionid", "csrftoken"];
/// How long the platform's forward-auth check may take to answer (503 beyond: closed).
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the platform's "yes" is remembered for one client and launch.
pub const DEFAULT_AUTH_ALLOW_TTL: Duration = Duration::from_secs(10);
/// How long the platform's "no" is remembered.
pub const DEFAULT_AUTH_DENY_TTL: Duration = Duration::from_secs(2);
/// The default for `--store-resync-interval`.
pub const DEFAULT_STORE_RESYNC_INTERVAL: Duration = Duration::from_secs(30);

/// How access log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// Apache's combined log format, then the request id, the app and the duration.
    Combined,
}

/// Who may open an app or a launch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Whoever has its URL (a launch's URL carries 128 random bits).
    #[default]
    Public,
    /// Only whom the platform allows: each request is checked with `--auth-url`.
    Platform,
    /// Only a browser that opened a signed link (a launch's `link`): the cookie the link
    /// leaves keeps it open there. For launches.
    Link,
}

/// The platform's check for `platform` apps and launches (forward auth).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The check's URL (`http://127.0.0.1:4180/oauth2/auth`, a Django view).
    pub url: String,
    /// How long it may take to answer.
    pub timeout: Duration,
    /// Response headers of its `2xx` handed to the guest (`X-Auth-Request-User`).
    pub response_headers: Vec<String>,
    /// How long a yes is remembered, per client, launch and request.
    pub allow_ttl: Duration,
    /// How long a no is remembered.
    pub deny_ttl: Duration,
}

/// The settings one server runs with. Start from [`Config::new`] (the defaults) or
/// [`Config::builder`]; fields may be added in any release, so the struct cannot be written
/// as a literal outside this crate.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use wasmount::config::Config;
///
/// let config = Config::builder("apps")
///     .base_path("/visualizations")
///     .admin_token("a-token-of-16-chars-or-more")
///     .request_timeout(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(config.base_path, "/visualizations");
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The folder whose `NAME.wasm` files are mounted at `/NAME/`.
    pub apps_dir: PathBuf,
    /// Normalized base path (`""` or `/visualizations`) that every app is mounted under.
    pub base_path: String,
    /// Deadline for one guest request, response body included.
    pub request_timeout: Duration,
    /// Linear memory one instance may use, all its memories together, in bytes.
    pub instance_memory_bytes: u64,
    /// The largest request body an app receives, in bytes (413 beyond).
    pub max_request_body: u64,
    /// Requests one app may run at once (503 beyond), unless its manifest says otherwise;
    /// `None`: bounded only by `max_instances` over all apps.
    pub max_concurrent_requests: Option<u32>,
    /// How long in-flight requests may take to finish once shutdown starts.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send the request headers.
    pub header_read_timeout: Duration,
    /// How long the start of a request body may take to arrive before a guest runs.
    pub body_read_timeout: Duration,
    /// The largest request head accepted, in bytes (431 beyond).
    pub max_header_bytes: u64,
    /// Open client connections at once.
    pub max_connections: usize,
    /// Settings of the wasmtime engines (both compiler tiers).
    pub engine: EngineConfig,
    /// The admin API's bearer token (named `admin`, every scope).
    pub admin_token: Option<String>,
    /// A file of named tokens with scopes, re-read on change or SIGHUP; with neither it
    /// nor `admin_token`, the API is closed (every call gets 403).
    pub tokens_file: Option<PathBuf>,
    /// The keys signed links are made and checked with (one base64 key per line, the first
    /// signs); `None`: a random key of this process's.
    pub link_keys: Option<PathBuf>,
    /// Whether listing and inspecting apps needs no token.
    pub public_app_list: bool,
    /// The largest component the admin API accepts, in bytes.
    pub max_upload: u64,
    /// Reload apps when their files change.
    pub watch: bool,
    /// How long a watched file must be quiet before it is loaded.
    pub watch_debounce: Duration,
    /// Apps whose component lives outside the apps folder: (name, file), reloaded when
    /// watching.
    pub external_apps: Vec<(String, PathBuf)>,
    /// How long a launch may go unused before it is removed; `None`: never.
    pub instance_idle_timeout: Option<Duration>,
    /// The largest input a launch may hold, in bytes (413 beyond).
    pub max_instance_input: u64,
    /// How many launches may exist at once (429 beyond).
    pub max_launched_instances: usize,
    /// How much input all launches may hold together, in bytes (429 beyond).
    pub max_launch_input_total: u64,
    /// Addresses of the proxies whose forwarding headers (`x-forwarded-*`, `forwarded`,
    /// `x-real-ip`) are believed; from anyone else they are removed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Developer mode: a broken build's reason is added to the app's responses as
    /// `x-wasmount-error`, and HTML pages reload themselves when their app changes.
    pub dev: bool,
    /// Project folders (Rust, Python, JavaScript) built from source and mounted under their
    /// folder's name, rebuilt on save: dev mode only.
    pub dev_projects: Vec<PathBuf>,
    /// Where toolchains for building projects are installed on first use; `None`: the
    /// user's cache folder.
    pub tools_dir: Option<PathBuf>,
    /// The shared store of a cluster (`postgres://…`); `None`: the apps folder is the store.
    pub store: Option<String>,
    /// This node's own cache (compiled artifacts, and the components of a shared store);
    /// `None`: `.cache/` in the apps folder, or the user's cache folder when there is none.
    pub cache_dir: Option<PathBuf>,
    /// How often a node reads the shared store's changes even without a notification.
    pub store_resync_interval: Duration,
    /// Whether `/_wasmount/metrics` needs no token.
    pub public_metrics: bool,
    /// In dev mode, the host names answered besides `localhost`, `127.0.0.1` and `[::1]`
    /// (`--allow-host`); any other `Host` gets 403.
    pub allowed_hosts: Vec<String>,
    /// The platform's cookies, never handed to a guest whatever its manifest names
    /// (default `sessionid`, `csrftoken`: Django's).
    pub platform_cookies: Vec<String>,
    /// The platform's check; with it, launches are `platform` unless launched `public`.
    pub auth: Option<AuthConfig>,
    /// One line per request in this format; `None`: no access log.
    pub access_log: Option<AccessLogFormat>,
    /// Where the access log goes; `None`: stderr.
    pub access_log_file: Option<PathBuf>,
    /// HTTPS on every listener with this certificate and key; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// A PEM certificate chain and its private key, re-read when either file changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Settings of the wasmtime engine, fixed for the life of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// How many guest instances may run at once, over all apps.
    pub max_instances: u32,
    /// The largest linear memory one guest may grow to, in bytes.
    pub max_memory_bytes: u64,
    /// Epoch interruption: what stops a guest that overruns its deadline. Only a benchmark
    /// that measures its cost turns it off.
    pub epoch_interruption: bool,
    /// Memory (and table) bytes each pool slot keeps resident between instances.
    pub keep_resident_bytes: u64,
    /// Idle reused instances kept over all apps.
    pub max_idle_instances: usize,
    /// Unused pool slots kept warm for the app that last ran in them.
    pub max_warm_slots: u32,
    /// Quiet time after which the pools' idle memory goes back to the operating system (and
    /// the period of that check); zero: never.
    pub idle_memory_release_after: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            epoch_interruption: true,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT_BYTES,
            max_idle_instances: DEFAULT_MAX_IDLE_INSTANCES_TOTAL,
            max_warm_slots: DEFAULT_MAX_WARM_SLOTS,
            idle_memory_release_after: DEFAULT_IDLE_MEMORY_RELEASE_AFTER,
        }
    }
}

impl Config {
    /// The defaults, serving `apps_dir`.
    pub fn new(apps_dir: impl Into<PathBuf>) -> Self {
        Self {
            apps_dir: apps_dir.into(),
            base_path: String::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            instance_memory_bytes: DEFAULT_INSTANCE_MEMORY_BYTES,
            max_request_body: DEFAULT_MAX_REQUEST_BODY_BYTES,
            max_concurrent_requests: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            engine: EngineConfig::default(),
            admin_token: None,
            tokens_file: None,
            link_keys: None,
            public_app_list: false,
            max_upload: DEFAULT_MAX_UPLOAD_BYTES,
            watch: false,
            watch_debounce: DEFAULT_WATCH_DEBOUNCE,
            external_apps: Vec::new(),
            instance_idle_timeout: Some(DEFAULT_LAUNCH_IDLE_TIMEOUT),
            max_instance_input: DEFAULT_MAX_LAUNCH_INPUT_BYTES,
            max_launched_instances: DEFAULT_MAX_LAUNCHES,
            max_launch_input_total: DEFAULT_MAX_LAUNCH_INPUT_TOTAL_BYTES,
            trusted_proxies: Vec::new(),
            dev: false,
            dev_projects: Vec::new(),
            tools_dir: None,
            store: None,
            cache_dir: None,
            store_resync_interval: DEFAULT_STORE_RESYNC_INTERVAL,
            public_metrics: false,
            allowed_hosts: Vec::new(),
            platform_cookies: DEFAULT_PLATFORM_COOKIES.map(str::to_owned).to_vec(),
            auth: None,
            access_log: None,
            access_log_file: None,
            tls: None,
        }
    }

    /// A builder starting from the defaults, serving `apps_dir`.
    pub fn builder(apps_dir: impl Into<PathBuf>) -> ConfigBuilder {
        ConfigBuilder(Self::new(apps_dir))
    }

    /// Refuses settings no server can run with: durations past [`MAX_DURATION`] (they would
    /// overflow a deadline), zero limits.
    ///
    /// # Errors
    ///
    /// A message naming the setting and the limit.
    pub fn check(&self) -> anyhow::Result<()> {
        let durations = [
            ("request timeout", self.request_timeout),
            ("shutdown timeout", self.shutdown_timeout),
            ("header read timeout", self.header_read_timeout),
            ("body read timeout", self.body_read_timeout),
            (
                "idle memory release time",
                self.engine.idle_memory_release_after,
            ),
            (
                "instance idle timeout",
                self.instance_idle_timeout.unwrap_or_default(),
            ),
        ];
        for (what, duration) in durations {
            check_duration(what, duration)?;
        }
        let release_after = self.engine.idle_memory_release_after;
        anyhow::ensure!(
            release_after.is_zero() || release_after >= MIN_IDLE_MEMORY_RELEASE_AFTER,
            "--idle-memory-release-after must be 0s (never) or at least {}",
            humantime::format_duration(MIN_IDLE_MEMORY_RELEASE_AFTER)
        );
        anyhow::ensure!(
            self.store.is_none() || (!self.watch && self.external_apps.is_empty()),
            "--watch and --app need the apps folder as the store, not --store"
        );
        anyhow::ensure!(
            !self.store_resync_interval.is_zero(),
            "--store-resync-interval must be more than 0s"
        );
        check_duration("store resync interval", self.store_resync_interval)?;
        anyhow::ensure!(
            self.max_connections > 0,
            "--max-connections must be at least 1"
        );
        anyhow::ensure!(
            self.engine.max_instances > 0,
            "--max-instances must be at least 1"
        );
        Ok(())
    }

    /// This node's cache folder: `cache_dir`, else `.cache/` in the apps folder when it
    /// exists, else `wasmount/` in the user's cache folder (`XDG_CACHE_HOME`, `~/.cache`).
    pub(crate) fn cache_folder(&self) -> PathBuf {
        if let Some(dir) = &self.cache_dir {
            return dir.clone();
        }
        if self.apps_dir.is_dir() {
            return self.apps_dir.join(".cache");
        }
        let user_cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        user_cache.join("wasmount")
    }

    /// What apps get where their manifest is silent.
    pub(crate) fn app_defaults(&self) -> AppDefaults {
        AppDefaults {
            base_path: self.base_path.clone(),
            request_timeout: self.request_timeout,
            instance_memory_bytes: self.instance_memory_bytes,
            max_request_body: self.max_request_body,
            max_concurrent_requests: self.max_concurrent_requests,
            body_read_timeout: self.body_read_timeout,
        }
    }
}

/// The server's settings an app version is resolved with (see `Manifest::guest_spec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppDefaults {
    /// The base path apps are mounted under (the guest gets it as `WASMOUNT_BASE_PATH`).
    pub base_path: String,
    /// Deadline of one request.
    pub request_timeout: Duration,
    /// Linear memory of one instance, in bytes.
    pub instance_memory_bytes: u64,
    /// Largest request body, in bytes.
    pub max_request_body: u64,
    /// Requests of one app running at once; `None`: bounded by the instance limit only.
    pub max_concurrent_requests: Option<u32>,
    /// How long the start of a request body may take to arrive before a guest runs.
    pub body_read_timeout: Duration,
}

/// Refuses a duration past [`MAX_DURATION`].
///
/// Builds a [`Config`] from the defaults: the settings an embedder sets most, each a method;
/// [`ConfigBuilder::build`] checks the whole.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder(Config);

impl ConfigBuilder {
    /// The path apps are mounted under, normalized (`/visualizations`: a leading slash, none
    /// at the end).
    pub fn base_path(mut self, base_path: impl Into<String>) -> Self {
        self.0.base_path = base_path.into();
        self
    }

    /// The admin API's bearer token (the API is closed without one).
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.0.admin_token = Some(token.into());
        self
    }

    /// The deadline of one request, its response body included.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.0.request_timeout = timeout;
        self
    }

    /// Reload apps when their files in the apps folder change.
    pub fn watch(mut self, watch: bool) -> Self {
        self.0.watch = watch;
        self
    }

    /// Serve from a shared PostgreSQL store (`postgres://…`) instead of the apps folder.
    pub fn store(mut self, url: impl Into<String>) -> Self {
        self.0.store = Some(url.into());
        self
    }

    /// Ask the platform at `url` before serving launches and `platform` apps.
    pub fn forward_auth(mut self, url: impl Into<String>) -> Self {
        self.0.auth = Some(AuthConfig {
            url: url.into(),
            timeout: DEFAULT_AUTH_TIMEOUT,
            response_headers: Vec::new(),
            allow_ttl: DEFAULT_AUTH_ALLOW_TTL,
            deny_ttl: DEFAULT_AUTH_DENY_TTL,
        });
        self
    }

    /// Any other setting, on the config as built so far.
    pub fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.0);
        self
    }

    /// The config, checked.
    ///
    /// # Errors
    ///
    /// As [`Config::check`].
    pub fn build(self) -> anyhow::Result<Config> {
        self.0.check()?;
        Ok(self.0)
    }
}

/// # Errors
///
/// A message naming `what`, its value and the limit.
pub(crate) fn check_duration(what: &str, duration: Duration) -> anyhow::Result<()> {
    anyhow::ensure!(
        duration <= MAX_DURATION,
        "{what} is {}, longer than the longest accepted ({})",
        humantime::format_duration(duration),
        humantime::format_duration(MAX_DURATION)
    );
    Ok(())
}

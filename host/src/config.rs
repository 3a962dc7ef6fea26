//! Every setting of the server, its default as a named constant, and the `serve` flags.
//!
//! Each flag also reads an environment variable `WASMOUNT_…`; defaults are resolved here and
//! nowhere else.

use crate::router::normalize_base_path;
use clap::Args;
use std::net::SocketAddr;
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

/// The settings one server runs with.
#[derive(Debug, Clone)]
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
    /// The largest request head accepted, in bytes (431 beyond).
    pub max_header_bytes: u64,
    /// Open client connections at once.
    pub max_connections: usize,
    /// Settings of the one wasmtime engine.
    pub engine: EngineConfig,
    /// The admin API's bearer token; `None` closes the API (every call gets 403).
    pub admin_token: Option<String>,
    /// Whether listing and inspecting apps needs no token.
    pub public_app_list: bool,
    /// The largest component the admin API accepts, in bytes.
    pub max_upload: u64,
    /// Reload apps when their files change.
    pub watch: bool,
    /// Apps whose component lives outside the apps folder: (name, file), reloaded when
    /// watching.
    pub external_apps: Vec<(String, PathBuf)>,
    /// How long a launched instance may go unused before it is removed; `None`: never.
    pub instance_idle_timeout: Option<Duration>,
    /// The largest input a launched instance may hold, in bytes (413 beyond).
    pub max_instance_input: u64,
    /// How many launched instances may exist at once (429 beyond).
    pub max_launched_instances: usize,
    /// Developer mode: a broken build's reason is added to the app's responses as
    /// `x-wasmount-error`.
    pub dev: bool,
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
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            epoch_interruption: true,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT_BYTES,
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
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            engine: EngineConfig::default(),
            admin_token: None,
            public_app_list: false,
            max_upload: DEFAULT_MAX_UPLOAD_BYTES,
            watch: false,
            external_apps: Vec::new(),
            instance_idle_timeout: Some(crate::instances::DEFAULT_IDLE_TIMEOUT),
            max_instance_input: crate::instances::DEFAULT_MAX_INPUT_BYTES,
            max_launched_instances: crate::instances::DEFAULT_MAX_INSTANCES,
            dev: false,
        }
    }
}

/// `wasmount serve`: mount every `NAME.wasm` of a folder at `/NAME/` and serve them.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Folder of apps: each `NAME.wasm` (a wasi:http component) is mounted at `/NAME/`.
    #[arg(long, env = "WASMOUNT_APPS", default_value = DEFAULT_APPS_DIR, value_name = "DIR")]
    pub apps: PathBuf,

    /// Address to listen on; port 0 picks a free port (the real one is logged).
    #[arg(long, env = "WASMOUNT_LISTEN", default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Path every app is mounted under, e.g. `/visualizations` serves NAME at
    /// `/visualizations/NAME/` (for running behind another site's proxy).
    #[arg(
        long,
        env = "WASMOUNT_BASE_PATH",
        default_value = "",
        value_name = "PATH"
    )]
    pub base_path: String,

    /// Longest time a guest may take for one request, body included (e.g. `30s`, `500ms`);
    /// past it the client gets 504, or the connection is closed if the response had started.
    #[arg(long, env = "WASMOUNT_REQUEST_TIMEOUT", value_parser = humantime::parse_duration,
          default_value = "30s", value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Linear memory one guest instance may use, all its memories together (e.g. `128MiB`);
    /// a guest that needs more fails that request with 500.
    #[arg(
        long,
        env = "WASMOUNT_MEMORY",
        default_value = "128MiB",
        value_name = "SIZE"
    )]
    pub memory: bytesize::ByteSize,

    /// Largest request body an app receives (e.g. `10MiB`); larger ones get 413, decided from
    /// `content-length` or while streaming. An app's manifest may set its own.
    #[arg(
        long,
        env = "WASMOUNT_MAX_REQUEST_BODY",
        default_value = "10MiB",
        value_name = "SIZE"
    )]
    pub max_request_body: bytesize::ByteSize,

    /// Requests one app may run at once (beyond: 503 with retry-after), unless its manifest
    /// sets `max_concurrent_requests`. Default: only --max-instances bounds them, over all apps.
    #[arg(long, env = "WASMOUNT_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    pub max_concurrent_requests: Option<u32>,

    /// How long in-flight requests may take to finish after SIGINT/SIGTERM.
    #[arg(long, env = "WASMOUNT_SHUTDOWN_TIMEOUT", value_parser = humantime::parse_duration,
          default_value = "10s", value_name = "DURATION")]
    pub shutdown_timeout: Duration,

    /// How long a client may take to send its request headers.
    #[arg(long, env = "WASMOUNT_HEADER_READ_TIMEOUT", value_parser = humantime::parse_duration,
          default_value = "10s", value_name = "DURATION")]
    pub header_read_timeout: Duration,

    /// Largest request head (request line and headers) accepted, at least 8KiB; larger ones
    /// get 431. At most 100 headers are accepted either way.
    #[arg(
        long,
        env = "WASMOUNT_MAX_HEADER_SIZE",
        default_value = "64KiB",
        value_name = "SIZE"
    )]
    pub max_header_size: bytesize::ByteSize,

    /// Client connections open at once; further ones wait to be accepted.
    #[arg(long, env = "WASMOUNT_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_name = "N")]
    pub max_connections: usize,

    /// Guest instances that may run at once over all apps; beyond it requests get 503.
    #[arg(long, env = "WASMOUNT_MAX_INSTANCES", default_value_t = DEFAULT_MAX_INSTANCES,
          value_name = "N")]
    pub max_instances: u32,

    /// Bearer token for the admin API (`/_wasmount/apps`); without one (or a token file) every
    /// admin call is refused. Prefer the environment variable or --admin-token-file.
    #[arg(
        long,
        env = "WASMOUNT_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,

    /// File holding the admin API's bearer token (surrounding whitespace is ignored).
    #[arg(
        long,
        env = "WASMOUNT_ADMIN_TOKEN_FILE",
        value_name = "PATH",
        conflicts_with = "admin_token"
    )]
    pub admin_token_file: Option<PathBuf>,

    /// Let anyone list and inspect apps (GET /_wasmount/apps) without the token.
    #[arg(long, env = "WASMOUNT_PUBLIC_APP_LIST")]
    pub public_app_list: bool,

    /// Largest component an upload may be (e.g. `50MiB`); larger ones get 413.
    #[arg(
        long,
        env = "WASMOUNT_MAX_UPLOAD",
        default_value = "50MiB",
        value_name = "SIZE"
    )]
    pub max_upload: bytesize::ByteSize,

    /// Watch the apps folder (and --app files): a new NAME.wasm is mounted, a changed one
    /// replaced, a deleted one unmounted; a broken build keeps the previous version serving.
    #[arg(long, env = "WASMOUNT_WATCH")]
    pub watch: bool,

    /// Also mount the component at PATH as app NAME without copying it (repeatable), e.g.
    /// `--app viz=target/wasm32-wasip2/release/viz.wasm`; reloaded on change with --watch.
    #[arg(long = "app", env = "WASMOUNT_APP", value_name = "NAME=PATH", value_parser = parse_external_app, value_delimiter = ',')]
    pub external_apps: Vec<(String, PathBuf)>,

    /// How long a launched instance (POST /_wasmount/instances) may go unused before it is
    /// removed (e.g. `1h`, `30m`); `0` keeps instances until they are deleted.
    #[arg(long, env = "WASMOUNT_INSTANCE_IDLE_TIMEOUT", value_parser = humantime::parse_duration,
          default_value = "1h", value_name = "DURATION")]
    pub instance_idle_timeout: Duration,

    /// Largest input a launched instance may hold (e.g. `1MiB`); larger ones get 413.
    #[arg(
        long,
        env = "WASMOUNT_MAX_INSTANCE_INPUT",
        default_value = "1MiB",
        value_name = "SIZE"
    )]
    pub max_instance_input: bytesize::ByteSize,

    /// Launched instances that may exist at once; beyond it launches get 429.
    #[arg(long, env = "WASMOUNT_MAX_LAUNCHED_INSTANCES",
          default_value_t = crate::instances::DEFAULT_MAX_INSTANCES, value_name = "N")]
    pub max_launched_instances: usize,

    /// Memory each guest instance slot keeps resident between requests (reset in place rather
    /// than faulted in again): more makes big guests (Python, JS) faster per request, at up to
    /// this much RSS per slot that ran one.
    #[arg(
        long,
        env = "WASMOUNT_KEEP_RESIDENT",
        default_value = "32MiB",
        value_name = "SIZE"
    )]
    pub keep_resident: bytesize::ByteSize,

    /// Largest linear memory one guest may grow to, in MiB.
    #[arg(long, env = "WASMOUNT_MAX_MEMORY_MIB", default_value_t = DEFAULT_MAX_MEMORY_BYTES >> 20,
          value_name = "MIB")]
    pub max_memory_mib: u64,

    /// For benchmarks only: compile without epoch interruption, so guests that never wait can
    /// no longer be stopped at their deadline. Measures what the interruption checks cost.
    #[arg(long, env = "WASMOUNT_UNSAFE_NO_EPOCH_INTERRUPTION", hide = true)]
    pub unsafe_no_epoch_interruption: bool,
}

/// Parses `NAME=PATH` for `--app`.
fn parse_external_app(value: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = value
        .split_once('=')
        .ok_or_else(|| format!("`{value}` is not NAME=PATH"))?;
    if !crate::router::is_valid_app_name(name) {
        return Err(format!(
            "app name `{name}` is invalid: use lowercase letters, digits and `-`"
        ));
    }
    Ok((name.to_owned(), PathBuf::from(path)))
}

impl ServeArgs {
    /// Checks the flags and resolves them into a [`Config`].
    ///
    /// # Errors
    ///
    /// An invalid base path, or a limit of zero.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let base_path = normalize_base_path(&self.base_path).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(self.max_instances > 0, "--max-instances must be at least 1");
        anyhow::ensure!(
            self.max_connections > 0,
            "--max-connections must be at least 1"
        );
        anyhow::ensure!(
            self.max_header_size.as_u64() >= MIN_HEADER_BYTES,
            "--max-header-size is {}, minimum is 8KiB",
            self.max_header_size
        );
        anyhow::ensure!(
            self.max_memory_mib > 0,
            "--max-memory-mib must be at least 1"
        );
        let admin_token = match (self.admin_token, &self.admin_token_file) {
            (Some(token), _) => Some(token),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        anyhow::anyhow!("reading --admin-token-file {}: {e}", path.display())
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if let Some(token) = &admin_token {
            anyhow::ensure!(
                token.len() >= 16,
                "the admin token must be at least 16 characters"
            );
        }
        Ok(Config {
            apps_dir: self.apps,
            base_path,
            request_timeout: self.request_timeout,
            instance_memory_bytes: self.memory.as_u64(),
            max_request_body: self.max_request_body.as_u64(),
            max_concurrent_requests: self.max_concurrent_requests,
            shutdown_timeout: self.shutdown_timeout,
            header_read_timeout: self.header_read_timeout,
            max_header_bytes: self.max_header_size.as_u64(),
            max_connections: self.max_connections,
            engine: EngineConfig {
                max_instances: self.max_instances,
                max_memory_bytes: self.max_memory_mib << 20,
                epoch_interruption: !self.unsafe_no_epoch_interruption,
                keep_resident_bytes: self.keep_resident.as_u64(),
            },
            admin_token,
            public_app_list: self.public_app_list,
            max_upload: self.max_upload.as_u64(),
            watch: self.watch,
            external_apps: self.external_apps,
            instance_idle_timeout: Some(self.instance_idle_timeout).filter(|idle| !idle.is_zero()),
            max_instance_input: self.max_instance_input.as_u64(),
            max_launched_instances: self.max_launched_instances,
            dev: false,
        })
    }
}

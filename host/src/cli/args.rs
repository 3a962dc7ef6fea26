//! The `serve` flags: each also read from an environment variable `WASMOUNT_…`, each default
//! taken from the constants in [`crate::config`], checked and resolved into a [`Config`].

use crate::apps::names::{is_valid_app_name, normalize_base_path};
use crate::config::*;
use bytesize::ByteSize;
use clap::Args;
use humantime::Duration as HumanDuration;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `wasmount serve`: mount every `NAME.wasm` of a folder at `/NAME/` and serve them.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Folder of apps: each `NAME.wasm` (a wasi:http component) is mounted at `/NAME/`.
    #[arg(long, env = "WASMOUNT_APPS", default_value = DEFAULT_APPS_DIR, value_name = "DIR")]
    pub apps: PathBuf,

    /// Apps a config file declares (`[apps.NAME]`), mounted at start.
    #[arg(skip)]
    pub(crate) declared_apps: Vec<super::config_file::DeclaredApp>,

    /// Read settings from this TOML file: keys are these long flags without `--`
    /// (`request-timeout = "30s"`), `[apps.NAME]` tables with `path` mount files. Flags and
    /// environment variables win over it.
    #[arg(long, env = "WASMOUNT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

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
    #[arg(long, env = "WASMOUNT_REQUEST_TIMEOUT", default_value_t = DEFAULT_REQUEST_TIMEOUT.into(),
          value_name = "DURATION")]
    pub request_timeout: HumanDuration,

    /// Linear memory one guest instance may use, all its memories together (e.g. `128MiB`);
    /// a guest that needs more fails that request with 500.
    #[arg(
        long,
        env = "WASMOUNT_MEMORY",
        default_value_t = ByteSize(DEFAULT_INSTANCE_MEMORY_BYTES),
        value_name = "SIZE"
    )]
    pub memory: ByteSize,

    /// Largest request body an app receives (e.g. `10MiB`); larger ones get 413, decided from
    /// `content-length` or while streaming. An app's manifest may set its own.
    #[arg(
        long,
        env = "WASMOUNT_MAX_REQUEST_BODY",
        default_value_t = ByteSize(DEFAULT_MAX_REQUEST_BODY_BYTES),
        value_name = "SIZE"
    )]
    pub max_request_body: ByteSize,

    /// Requests one app may run at once (beyond: 503 with retry-after), unless its manifest
    /// sets `max_concurrent_requests`. Default: only --max-instances bounds them, over all apps.
    #[arg(long, env = "WASMOUNT_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    pub max_concurrent_requests: Option<u32>,

    /// How long in-flight requests may take to finish after SIGINT/SIGTERM.
    #[arg(long, env = "WASMOUNT_SHUTDOWN_TIMEOUT", default_value_t = DEFAULT_SHUTDOWN_TIMEOUT.into(),
          value_name = "DURATION")]
    pub shutdown_timeout: HumanDuration,

    /// How long a client may take to send its request headers.
    #[arg(long, env = "WASMOUNT_HEADER_READ_TIMEOUT", default_value_t = DEFAULT_HEADER_READ_TIMEOUT.into(),
          value_name = "DURATION")]
    pub header_read_timeout: HumanDuration,

    /// How long the start of a request body (64KiB, or all of a shorter one) may take to
    /// arrive; slower clients get 408, and never hold a guest instance meanwhile.
    #[arg(long, env = "WASMOUNT_BODY_READ_TIMEOUT", default_value_t = DEFAULT_BODY_READ_TIMEOUT.into(),
          value_name = "DURATION")]
    pub body_read_timeout: HumanDuration,

    /// Largest request head (request line and headers) accepted, at least 8KiB; larger ones
    /// get 431. At most 100 headers are accepted either way.
    #[arg(
        long,
        env = "WASMOUNT_MAX_HEADER_SIZE",
        default_value_t = ByteSize(DEFAULT_MAX_HEADER_BYTES),
        value_name = "SIZE"
    )]
    pub max_header_size: ByteSize,

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

    /// A TOML file of named tokens and their scopes (`[tokens.refinery] token = "…"
    /// scopes = ["launch"]`; scopes: deploy, launch, read; `sha256 = "…"` instead of
    /// `token` keeps the token itself out of the file). Re-read when it changes or on
    /// SIGHUP: a token removed from it stops working at once.
    #[arg(long, env = "WASMOUNT_TOKENS_FILE", value_name = "FILE")]
    pub tokens_file: Option<PathBuf>,

    /// The keys signed links (launches with `"access": "link"`) are made with: one base64
    /// key of at least 32 bytes per line, the first signs, all verify. Give every node of a
    /// cluster the same file. Without it, a random key of this process's.
    #[arg(long, env = "WASMOUNT_LINK_KEYS", value_name = "FILE")]
    pub link_keys: Option<PathBuf>,

    /// Proxies whose forwarding headers (`x-forwarded-*`, `forwarded`, `x-real-ip`) are
    /// believed, as addresses or networks (`127.0.0.1`, `10.0.0.0/8`, comma-separated); from
    /// anyone else those headers are removed.
    #[arg(long, env = "WASMOUNT_TRUSTED_PROXIES", value_name = "CIDR", value_delimiter = ',',
          value_parser = parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Let anyone scrape /_wasmount/metrics without the token (e.g. a Prometheus on a
    /// trusted network).
    #[arg(long, env = "WASMOUNT_PUBLIC_METRICS")]
    pub public_metrics: bool,

    /// In dev mode, a host name to answer besides localhost, 127.0.0.1 and [::1] (a
    /// machine's name on a trusted network; comma-separated); any other `Host` gets 403, so
    /// a page elsewhere cannot read the dev server through DNS rebinding.
    #[arg(
        long,
        env = "WASMOUNT_ALLOW_HOST",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub allow_host: Vec<String>,

    /// A cookie of the platform's that no guest is handed, whatever its manifest names
    /// (comma-separated; default: Django's `sessionid` and `csrftoken`).
    #[arg(long, env = "WASMOUNT_PLATFORM_COOKIE", value_name = "NAME", value_delimiter = ',',
          default_values_t = DEFAULT_PLATFORM_COOKIES.map(str::to_owned))]
    pub platform_cookie: Vec<String>,

    /// Ask the platform before serving a launch or a `platform` app (forward auth, the
    /// nginx `auth_request` / Traefik ForwardAuth contract): a GET to this http:// URL with
    /// the client's Cookie and Authorization; 2xx allows, 401/403/redirects go back to the
    /// client, anything else fails closed (503). With it, launches are `platform` unless
    /// launched `public`.
    #[arg(long, env = "WASMOUNT_AUTH_URL", value_name = "URL")]
    pub auth_url: Option<String>,

    /// How long the platform's check may take.
    #[arg(long, env = "WASMOUNT_AUTH_TIMEOUT", default_value_t = DEFAULT_AUTH_TIMEOUT.into(),
          value_name = "DURATION")]
    pub auth_timeout: HumanDuration,

    /// A response header of the check's 2xx handed to the guest (e.g. X-Auth-Request-User;
    /// comma-separated); a client's own copies are removed first.
    #[arg(
        long,
        env = "WASMOUNT_AUTH_RESPONSE_HEADER",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub auth_response_header: Vec<String>,

    /// How long the check's yes is remembered (per client, launch and request; 0 never).
    #[arg(long, env = "WASMOUNT_AUTH_ALLOW_TTL", default_value_t = DEFAULT_AUTH_ALLOW_TTL.into(),
          value_name = "DURATION")]
    pub auth_allow_ttl: HumanDuration,

    /// How long the check's no is remembered (0 never).
    #[arg(long, env = "WASMOUNT_AUTH_DENY_TTL", default_value_t = DEFAULT_AUTH_DENY_TTL.into(),
          value_name = "DURATION")]
    pub auth_deny_ttl: HumanDuration,

    /// Write one line per request (time, request id, app, method, path, status, bytes,
    /// duration, client): `json` or `combined` (Apache's format, then id, app, duration).
    #[arg(long, env = "WASMOUNT_ACCESS_LOG", value_name = "FORMAT", value_parser = parse_access_log)]
    pub access_log: Option<AccessLogFormat>,

    /// Append the access log to this file instead of stderr.
    #[arg(long, env = "WASMOUNT_ACCESS_LOG_FILE", value_name = "FILE")]
    pub access_log_file: Option<PathBuf>,

    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain; needs --tls-key.
    /// Both files are re-read when they change or on SIGHUP, without a restart.
    #[arg(
        long,
        env = "WASMOUNT_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "WASMOUNT_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve the admin API, metrics and dashboard only on this address (e.g. 127.0.0.1:8081);
    /// the public listener then answers 404 there (health stays on both).
    #[arg(long, env = "WASMOUNT_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Let anyone list and inspect apps (GET /_wasmount/apps) without the token.
    #[arg(long, env = "WASMOUNT_PUBLIC_APP_LIST")]
    pub public_app_list: bool,

    /// Largest component an upload may be (e.g. `50MiB`); larger ones get 413.
    #[arg(
        long,
        env = "WASMOUNT_MAX_UPLOAD",
        default_value_t = ByteSize(DEFAULT_MAX_UPLOAD_BYTES),
        value_name = "SIZE"
    )]
    pub max_upload: ByteSize,

    /// The shared store of a cluster: a PostgreSQL URL, `postgres://USER[:PASSWORD]@HOST:PORT/DB`
    /// (the password may come from PGPASSWORD). Every node given the same store serves the
    /// same apps and launches. Without it, the apps folder is the store.
    #[arg(
        long,
        env = "WASMOUNT_STORE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub store: Option<String>,

    /// This node's own cache: compiled artifacts, and the components of a --store. Default:
    /// `.cache/` in the apps folder, or the user's cache folder when there is no apps folder.
    #[arg(long, env = "WASMOUNT_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// How often a node reads the store's changes even without a notification (a lost
    /// notification leaves it stale at most this long).
    #[arg(long, env = "WASMOUNT_STORE_RESYNC_INTERVAL", default_value_t = DEFAULT_STORE_RESYNC_INTERVAL.into(),
          value_name = "DURATION")]
    pub store_resync_interval: HumanDuration,

    /// Watch the apps folder (and --app files): a new NAME.wasm is mounted, a changed one
    /// replaced, a deleted one unmounted; a broken build keeps the previous version serving.
    #[arg(long, env = "WASMOUNT_WATCH")]
    pub watch: bool,

    /// Also mount the component at PATH as app NAME without copying it (repeatable), e.g.
    /// `--app viz=target/wasm32-wasip2/release/viz.wasm`; reloaded on change with --watch.
    #[arg(long = "app", env = "WASMOUNT_APP", value_name = "NAME=PATH", value_parser = parse_external_app, value_delimiter = ',')]
    pub external_apps: Vec<(String, PathBuf)>,

    /// How long a launch (POST /_wasmount/instances) may go unused before it is
    /// removed (e.g. `1h`, `30m`); `0` keeps instances until they are deleted.
    #[arg(long, env = "WASMOUNT_INSTANCE_IDLE_TIMEOUT", default_value_t = DEFAULT_LAUNCH_IDLE_TIMEOUT.into(),
          value_name = "DURATION")]
    pub instance_idle_timeout: HumanDuration,

    /// Largest input a launch may hold (e.g. `1MiB`); larger ones get 413.
    #[arg(
        long,
        env = "WASMOUNT_MAX_INSTANCE_INPUT",
        default_value_t = ByteSize(DEFAULT_MAX_LAUNCH_INPUT_BYTES),
        value_name = "SIZE"
    )]
    pub max_instance_input: ByteSize,

    /// Launches that may exist at once; beyond it launches get 429.
    #[arg(long, env = "WASMOUNT_MAX_LAUNCHED_INSTANCES",
          default_value_t = DEFAULT_MAX_LAUNCHES, value_name = "N")]
    pub max_launched_instances: usize,

    /// How much input all launches may hold together (e.g. `256MiB`; inputs are
    /// kept in memory); launches beyond it get 429.
    #[arg(
        long,
        env = "WASMOUNT_MAX_LAUNCH_INPUT_TOTAL",
        default_value_t = ByteSize(DEFAULT_MAX_LAUNCH_INPUT_TOTAL_BYTES),
        value_name = "SIZE"
    )]
    pub max_launch_input_total: ByteSize,

    /// Memory each guest instance slot keeps resident between requests (reset in place rather
    /// than faulted in again): more makes big guests (Python, JS) faster per request, at up to
    /// this much RSS per slot that ran one.
    #[arg(
        long,
        env = "WASMOUNT_KEEP_RESIDENT",
        default_value_t = ByteSize(DEFAULT_KEEP_RESIDENT_BYTES),
        value_name = "SIZE"
    )]
    pub keep_resident: ByteSize,

    /// Idle reused instances kept over all apps (apps opt into reuse in their manifest); the
    /// oldest are dropped first.
    #[arg(long, env = "WASMOUNT_MAX_IDLE_INSTANCES",
          default_value_t = DEFAULT_MAX_IDLE_INSTANCES_TOTAL, value_name = "N")]
    pub max_idle_instances: usize,

    /// Unused instance slots kept warm (pages resident, ready for the app that last ran in
    /// them); beyond it the least recently used warm slot is reused for another app.
    #[arg(long, env = "WASMOUNT_MAX_WARM_SLOTS", default_value_t = DEFAULT_MAX_WARM_SLOTS,
          value_name = "N")]
    pub max_warm_slots: u32,

    /// Quiet time after which idle instance slots give their memory back to the operating
    /// system (checked this often; also done when far more slots are warm than the traffic
    /// needs); 0s: never.
    #[arg(long, env = "WASMOUNT_IDLE_MEMORY_RELEASE_AFTER",
          default_value_t = DEFAULT_IDLE_MEMORY_RELEASE_AFTER.into(), value_name = "DURATION")]
    pub idle_memory_release_after: HumanDuration,

    /// Largest linear memory one guest may grow to, in MiB.
    #[arg(long, env = "WASMOUNT_MAX_MEMORY_MIB", default_value_t = DEFAULT_MAX_MEMORY_BYTES >> 20,
          value_name = "MIB")]
    pub max_memory_mib: u64,

    /// For benchmarks only: compile without epoch interruption, so guests that never wait can
    /// no longer be stopped at their deadline. Measures what the interruption checks cost.
    #[arg(long, env = "WASMOUNT_UNSAFE_NO_EPOCH_INTERRUPTION", hide = true)]
    pub unsafe_no_epoch_interruption: bool,
}

/// Parses an address (`127.0.0.1`) or a network (`10.0.0.0/8`) for `--trusted-proxies`.
fn parse_network(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{value}` is not an IP address or network (e.g. 10.0.0.0/8)"))
}

/// Parses `json` or `combined` for `--access-log`.
fn parse_access_log(value: &str) -> Result<AccessLogFormat, String> {
    match value {
        "json" => Ok(AccessLogFormat::Json),
        "combined" => Ok(AccessLogFormat::Combined),
        other => Err(format!(
            "`{other}` is not an access log format: use json or combined"
        )),
    }
}

/// Parses `NAME=PATH` for `--app`.
fn parse_external_app(value: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = value
        .split_once('=')
        .ok_or_else(|| format!("`{value}` is not NAME=PATH"))?;
    if !is_valid_app_name(name) {
        return Err(format!(
            "app name `{name}` is invalid: use lowercase letters, digits and `-`"
        ));
    }
    Ok((name.to_owned(), PathBuf::from(path)))
}

impl ServeArgs {
    /// The admin token from the flag, the environment or the token file, surrounding white
    /// space removed (as the client does), at least [`MIN_ADMIN_TOKEN_CHARS`] characters.
    fn admin_token(&self) -> anyhow::Result<Option<String>> {
        let token = match (&self.admin_token, &self.admin_token_file) {
            (Some(token), _) => token.clone(),
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("reading --admin-token-file {}: {e}", path.display())
            })?,
            (None, None) => return Ok(None),
        };
        let token = token.trim();
        anyhow::ensure!(
            token.chars().count() >= MIN_ADMIN_TOKEN_CHARS,
            "the admin token must be at least {MIN_ADMIN_TOKEN_CHARS} characters, not counting \
             surrounding white space"
        );
        Ok(Some(token.to_owned()))
    }

    /// Checks the flags and resolves them into a [`Config`].
    ///
    /// # Errors
    ///
    /// An invalid base path, or a limit of zero.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let base_path = normalize_base_path(&self.base_path).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            self.max_memory_mib > 0,
            "--max-memory-mib must be at least 1"
        );
        let admin_token = self.admin_token()?;
        let config = Config {
            apps_dir: self.apps,
            base_path,
            request_timeout: self.request_timeout.into(),
            instance_memory_bytes: self.memory.as_u64(),
            max_request_body: self.max_request_body.as_u64(),
            max_concurrent_requests: self.max_concurrent_requests,
            shutdown_timeout: self.shutdown_timeout.into(),
            header_read_timeout: self.header_read_timeout.into(),
            body_read_timeout: self.body_read_timeout.into(),
            max_header_bytes: self.max_header_size.as_u64(),
            max_connections: self.max_connections,
            engine: EngineConfig {
                max_instances: self.max_instances,
                max_memory_bytes: self.max_memory_mib << 20,
                epoch_interruption: !self.unsafe_no_epoch_interruption,
                keep_resident_bytes: self.keep_resident.as_u64(),
                max_idle_instances: self.max_idle_instances,
                max_warm_slots: self.max_warm_slots,
                idle_memory_release_after: self.idle_memory_release_after.into(),
            },
            admin_token,
            tokens_file: self.tokens_file,
            link_keys: self.link_keys,
            public_app_list: self.public_app_list,
            max_upload: self.max_upload.as_u64(),
            watch: self.watch,
            watch_debounce: DEFAULT_WATCH_DEBOUNCE,
            external_apps: self.external_apps,
            instance_idle_timeout: Some(*self.instance_idle_timeout).filter(|idle| !idle.is_zero()),
            max_instance_input: self.max_instance_input.as_u64(),
            max_launched_instances: self.max_launched_instances,
            max_launch_input_total: self.max_launch_input_total.as_u64(),
            trusted_proxies: self.trusted_proxies,
            dev: false,
            dev_projects: Vec::new(),
            tools_dir: None,
            store: self.store,
            cache_dir: self.cache_dir,
            store_resync_interval: self.store_resync_interval.into(),
            public_metrics: self.public_metrics,
            allowed_hosts: self.allow_host,
            platform_cookies: self.platform_cookie,
            auth: self.auth_url.map(|url| crate::config::AuthConfig {
                url,
                timeout: self.auth_timeout.into(),
                response_headers: self.auth_response_header,
                allow_ttl: self.auth_allow_ttl.into(),
                deny_ttl: self.auth_deny_ttl.into(),
            }),
            access_log: self.access_log,
            access_log_file: self.access_log_file,
            tls: self
                .tls_cert
                .zip(self.tls_key)
                .map(|(cert, key)| TlsFiles { cert, key }),
        };
        config.check()?;
        Ok(config)
    }
}

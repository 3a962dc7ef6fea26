//! A server: what its connections share, and where each request goes first (request id,
//! head size, forwarding headers, route table); an app's or launch's request then takes the
//! pipeline (`pipeline`), the server's own endpoints `control`. How a server is built from
//! its config is in `crate::node`.

use crate::apps::deploy::Deployer;
use crate::apps::routes::Route;
use crate::cluster::Follower;
use crate::config::Config;
use crate::dev::wrap::{Wrap, host_allowed};
use crate::headers::{X_REQUEST_ID, content_length};
use crate::http::access_log::{AccessLog, LogLine, request_id};
use crate::http::admin::AdminAccess;
use crate::http::forward_auth::ForwardAuth;
use crate::http::forwarding::{TrustedProxies, note_connection};
use crate::http::listener::{Connection, Plane};
use crate::http::pipeline::Asked;
use crate::http::signed_links::LinkKeys;
use crate::launches::Launches;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use crate::respond::Body;
use crate::runtime::client_body::ClientBody;
use crate::runtime::guest_log::LogTail;
use http::{Request, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// One wasmount server without a listener of its own: it mounts its apps when started and
/// answers whatever requests it is given. [`run`](crate::node::run) puts it behind a
/// listener; another Rust web server embeds it as a `tower::Service`
/// ([`Server::into_service`]) for the requests under `config.base_path` (and `/_wasmount/`).
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use std::sync::Arc;
/// use wasmount::{config::Config, engine::WasmEngine, server::Server};
///
/// let mut config = Config::new("apps");
/// config.base_path = "/visualizations".into();
/// let engine = WasmEngine::new(&config.engine)?;
/// let local = "127.0.0.1:8000".parse()?;
/// let server = Arc::new(Server::start(config, engine, local).await?);
/// // A tower::Service over any request body: an axum router nests it under
/// // /visualizations (and /_wasmount) with `nest_service` / `route_service`.
/// let service = server.clone().into_service();
/// # let _ = service;
/// # Ok(())
/// # }
/// ```
pub struct Server {
    /// Loads, stores and mounts apps.
    pub(crate) deployer: Arc<Deployer>,
    /// The launches.
    pub(crate) launches: Arc<Launches>,
    /// Who may call the admin API.
    pub(crate) access: AdminAccess,
    /// The settings it runs with.
    pub(crate) config: Config,
    /// The address clients reach it at, the guest's `host` when a client sends none.
    pub(crate) local: SocketAddr,
    /// Whose forwarding headers are believed.
    pub(crate) proxies: TrustedProxies,
    /// The platform's check for `platform` apps and launches (`--auth-url`).
    pub(crate) forward_auth: Option<ForwardAuth>,
    /// The keys of signed links.
    pub(crate) link_keys: LinkKeys,
    /// Keeps this node in line with the shared store, in a cluster.
    pub(crate) follower: Option<Arc<Follower>>,
    /// What `/_wasmount/metrics` shows.
    pub(crate) metrics: Arc<Metrics>,
    /// One line per request, when asked for.
    pub(crate) access_log: Option<AccessLog>,
    /// Every guest's output, for `/_wasmount/apps/NAME/log`.
    pub(crate) log_tail: LogTail,
    /// Whether every app found at start has loaded (health is `503` until then, in a cluster).
    pub(crate) warmed: std::sync::atomic::AtomicBool,
    /// Turns true when shutdown begins: long-lived streams (log followers) end.
    pub(crate) draining: tokio::sync::watch::Sender<bool>,
    /// The apps built from source (`wasmount dev DIR`).
    pub(crate) projects: crate::dev::projects::Projects,
}

impl Server {
    /// Ends the streams that would otherwise stay open until the client leaves (guest-output
    /// followers), so a graceful shutdown only waits for real requests. [`run`] calls it when
    /// its shutdown begins; an embedder calls it before draining its own connections.
    pub fn begin_draining(&self) {
        self.draining.send_replace(true);
    }

    /// Answers one request from `peer`: an app's, a launch's, or the server's own.
    /// It gets a request id (`x-request-id`, the client's when sane), which the guest sees
    /// and the response carries, and a line in the access log when there is one.
    pub(crate) async fn handle(
        &self,
        mut request: Request<ClientBody>,
        peer: SocketAddr,
    ) -> Response<Body> {
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
        mut request: Request<ClientBody>,
        peer: SocketAddr,
    ) -> (Response<Body>, Option<Arc<str>>) {
        if head_size(&request) > self.config.max_header_bytes {
            let limit = self.config.max_header_bytes;
            return (Refusal::HeadTooLarge { limit }.into_response(), None);
        }
        self.proxies.strip_untrusted(peer, request.headers_mut());
        let connection = request.extensions().get::<Connection>().copied();
        let connection = connection.unwrap_or_default();
        note_connection(&mut request, connection.over_tls);
        if self.config.dev
            && let Err(host) = host_allowed(&request, &self.config.allowed_hosts)
        {
            return (Refusal::HostNotAllowed { host }.into_response(), None);
        }
        let base = self.config.base_path.as_str();
        let snapshot = self.deployer.registry().snapshot();
        let path = request.uri().path().to_owned();
        let route = snapshot.routes.resolve(base, &path);
        if !self.takes(connection.plane, &route) {
            return (Refusal::NotFound.into_response(), None);
        }
        let response = match route {
            Route::App { name, rest, custom } => {
                let asked = Asked { name, rest, custom };
                // Dev mode wraps the request path: it takes what it needs of the request now
                // and explains the answer after.
                let dev = self.config.dev.then(|| Wrap::of(&request));
                let (response, app) = self.serve_name(request, peer, &snapshot, asked).await;
                let response = match dev {
                    Some(dev) => {
                        let (deployer, projects) = (&self.deployer, &self.projects);
                        dev.explain(deployer, projects, name, app.as_deref(), response)
                    }
                    None => response,
                };
                return (response, app);
            }
            Route::AddTrailingSlash { name, custom } => {
                self.redirect(&snapshot, name, custom, request.uri().query())
            }
            Route::Index => self.index(request.method()),
            Route::Reserved(endpoint) => self.reserved(endpoint, request).await,
            Route::NotFound => Refusal::NotFound.into_response(),
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

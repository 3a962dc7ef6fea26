//! A listener: accepts connections up to the connection limit, serves HTTP/1.1 on each with
//! the head size and read-time limits (over TLS also HTTP/2, by ALPN), tells each request
//! which plane it arrived on, and shuts down gracefully (stop accepting, let in-flight
//! requests finish within the grace period).

use crate::config::Config;
use crate::http::server::Server;
use crate::http::tls::Tls;
use crate::respond::Body;
use crate::runtime::client_body::ClientBody;
use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// At most one log line per this long about failing accepts; the rest are counted.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// File descriptors kept for all but client connections: app and cache files, the watcher,
/// outgoing requests, the listener.
const RESERVED_FDS: u64 = 256;

/// Which requests a listener answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Plane {
    /// Everything: the only listener.
    #[default]
    All,
    /// Apps, the index and health: the public listener beside an admin one.
    Apps,
    /// The server's own endpoints under `/_wasmount/`: the admin listener.
    Control,
}

/// What a request knows of its connection (a request extension set by the listener).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Connection {
    /// Which requests its listener answers.
    pub plane: Plane,
    /// Whether it came over TLS.
    pub over_tls: bool,
}

/// How connections are spoken to: HTTP/1.1 always, HTTP/2 when TLS negotiates it.
#[derive(Clone)]
struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    tls: Option<Arc<Tls>>,
    /// How long a TLS handshake may take (the head read timeout).
    handshake_timeout: Duration,
}

impl Protocols {
    fn new(config: &Config, tls: Option<Arc<Tls>>) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(usize::try_from(config.max_header_bytes).unwrap_or(usize::MAX))
            .keep_alive(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(H2_MAX_STREAMS)
            .keep_alive_interval(H2_PING_INTERVAL)
            .keep_alive_timeout(H2_PING_INTERVAL);
        Self {
            http1,
            http2,
            tls,
            handshake_timeout: config.header_read_timeout,
        }
    }
}

/// Requests running on one connection (until their response bodies end), and since when
/// none has.
#[derive(Debug)]
struct Activity {
    running: std::sync::atomic::AtomicUsize,
    idle_since: std::sync::Mutex<std::time::Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            running: std::sync::atomic::AtomicUsize::new(0),
            idle_since: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }
}

impl Activity {
    /// A request starts; it runs until the returned guard drops.
    fn begin(self: &Arc<Self>) -> Running {
        self.running
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running(self.clone())
    }

    /// How long no request has run (zero while one does).
    fn idle_for(&self) -> Duration {
        if self.running.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.idle_since
            .lock()
            .map_or(Duration::ZERO, |since| since.elapsed())
    }
}

/// One running request of a connection.
struct Running(Arc<Activity>);

impl Running {
    /// `body`, the request counted as running until it is done with.
    fn held_by(self, body: Body) -> Body {
        use http_body_util::BodyExt as _;
        body.map_frame(move |frame| {
            let _running = &self;
            frame
        })
        .boxed_unsync()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut since) = self.0.idle_since.lock() {
            *since = std::time::Instant::now();
        }
        self.0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Requests one HTTP/2 connection may run at once.
const H2_MAX_STREAMS: u32 = 128;
/// How often an HTTP/2 peer is pinged, and how long it has to answer.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Serves `server` on `listener` (answering the requests of `plane`, over TLS when `tls`)
/// until `shutdown` resolves, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    plane: Plane,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    let config = &server.config;
    let protocols = Protocols::new(config, tls);
    let graceful = GracefulShutdown::new();
    let max_connections =
        connection_limit(config.max_connections).min(tokio::sync::Semaphore::MAX_PERMITS);
    let connections = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut accept_errors = AcceptErrors::default();
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
                    accept_errors.note(&error);
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            plane,
            over_tls: protocols.tls.is_some(),
        };
        let server = server.clone();
        // Over TLS (where HTTP/2 may run) requests are counted, so an idle connection ends.
        let activity = protocols
            .tls
            .as_ref()
            .map(|_| Arc::new(Activity::default()));
        let counted = activity.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let server = server.clone();
            let running = counted.as_ref().map(|activity| activity.begin());
            request.extensions_mut().insert(connection);
            async move {
                let response = server.handle(request.map(ClientBody::Hyper), peer).await;
                Ok::<_, Infallible>(match running {
                    Some(running) => response.map(|body| running.held_by(body)),
                    None => response,
                })
            }
        });
        let (protocols, watcher) = (protocols.clone(), graceful.watcher());
        tokio::spawn(async move {
            let served = match &protocols.tls {
                None => {
                    let io = TokioIo::new(stream);
                    let connection = protocols.http1.serve_connection(io, service);
                    watcher.watch(connection).await.map_err(Into::into)
                }
                Some(tls) => {
                    let activity = activity.unwrap_or_default();
                    serve_tls(&protocols, tls, stream, service, watcher, &activity).await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, "connection ended: {error}");
            }
            drop(permit);
        });
    }
    drop(listener);
    server.begin_draining();
    let grace = server.config.shutdown_timeout;
    tracing::info!(
        "shutting down: no new connections, waiting up to {grace:?} for requests in flight"
    );
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("shut down cleanly"),
        Err(_) => tracing::warn!("shutdown grace period over: closing the remaining connections"),
    }
}

/// One TLS connection: the handshake (within the head read timeout), then HTTP/2 if ALPN
/// chose it, else HTTP/1.1.
async fn serve_tls<S>(
    protocols: &Protocols,
    tls: &Tls,
    stream: tokio::net::TcpStream,
    service: S,
    watcher: Watcher,
    activity: &Activity,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: hyper::service::HttpService<Incoming, ResBody = Body> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let handshake = tls.acceptor().accept(stream);
    let stream = tokio::time::timeout(protocols.handshake_timeout, handshake)
        .await
        .map_err(|_| "TLS handshake timed out")??;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    if h2 {
        // HTTP/2 has no head read timeout: a connection without a request running (its
        // response body included) for the head read timeout is closed, so idle or silent
        // clients cannot keep connections; nothing in flight is cut.
        let connection = watcher.watch(protocols.http2.serve_connection(io, service));
        let mut connection = std::pin::pin!(connection);
        let idle_limit = protocols.handshake_timeout;
        loop {
            tokio::select! {
                served = &mut connection => return Ok(served?),
                () = tokio::time::sleep(idle_limit / 4) => {
                    if activity.idle_for() >= idle_limit {
                        return Ok(());
                    }
                }
            }
        }
    } else {
        watcher
            .watch(protocols.http1.serve_connection(io, service))
            .await?;
    }
    Ok(())
}

/// `configured`, or fewer if the process may not open that many files: the soft open-file
/// limit is raised to the hard one first, and [`RESERVED_FDS`] are kept for the rest of the
/// server. Beyond the limit, connections wait in the kernel's backlog instead of failing.
fn connection_limit(configured: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    /// What "unlimited" means for open files on Linux (the default `fs.nr_open`).
    const NR_OPEN: u64 = 1 << 20;
    let limit = getrlimit(Resource::Nofile);
    let Some(mut open_files) = limit.current else {
        return configured;
    };
    let ceiling = limit.maximum.unwrap_or(NR_OPEN);
    if open_files < ceiling {
        let raised = rustix::process::Rlimit {
            current: Some(ceiling),
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            open_files = ceiling;
        }
    }
    let available =
        usize::try_from(open_files.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
    if available < configured {
        tracing::warn!(
            "--max-connections {configured} lowered to {available}: this process may open \
             {open_files} files (raise it with `ulimit -n` or LimitNOFILE=)"
        );
    }
    configured.min(available)
}

/// Failing accepts (out of file descriptors, most often), logged at most once per
/// [`ACCEPT_ERROR_LOG_EVERY`].
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<std::time::Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn note(&mut self, error: &std::io::Error) {
        let due = self
            .last_logged
            .is_none_or(|at| at.elapsed() >= ACCEPT_ERROR_LOG_EVERY);
        if !due {
            self.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut self.suppressed);
        tracing::warn!(suppressed, "accepting a connection: {error}");
        self.last_logged = Some(std::time::Instant::now());
    }
}

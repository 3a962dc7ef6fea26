//! The listener: accepts connections up to the connection limit, serves HTTP/1.1 on each
//! with the head size and read-time limits, and shuts down gracefully (stop accepting, let
//! in-flight requests finish within the grace period).

use crate::http::server::Server;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
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

/// Serves `server` on `listener` until `shutdown` resolves, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: impl Future<Output = ()>,
) {
    let config = &server.config;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(usize::try_from(config.max_header_bytes).unwrap_or(usize::MAX))
        .keep_alive(true);
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
        let server = server.clone();
        let service = hyper::service::service_fn(move |request| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(request, peer).await) }
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

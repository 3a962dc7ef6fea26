//! Runs one request in a fresh instance of an app (or, for an app that opted in, a reused
//! one): rewrites the request for the guest (prefix removed, `x-forwarded-*` set), enforces
//! the deadline, and turns every failure of the guest into a status for the client without
//! touching other requests or apps.

use crate::app::App;
use crate::instances::Instance;
use crate::respond::{self, Body};
use crate::sandbox::{InstanceLimits, arm_deadline, new_store};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// Headers the guest gets, in the WSGI tradition: `SCRIPT_NAME` is the prefix.
pub const X_FORWARDED_PREFIX: &str = "x-forwarded-prefix";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// Where the request came from and where the app is mounted.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    /// The mount prefix removed from the path (`/hello`, `/visualizations/heatmap`).
    pub prefix: &'a str,
    /// The path the app sees, starting with `/`.
    pub rest: &'a str,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the client connected to, used as `host` when the client sent none.
    pub local: SocketAddr,
    /// The server's base path, passed to the guest as `WASMOUNT_BASE_PATH`.
    pub base_path: &'a str,
    /// The launched instance the request is for, whose input the guest gets.
    pub instance: Option<&'a Instance>,
}

/// Serves `request` with a fresh instance of `app` (or a waiting one, if the app reuses
/// instances), within `limits` (the deadline covers the response body too). `admission`, the
/// app's concurrency slot if it has a limit, is held until the guest is done.
pub async fn invoke(
    app: Arc<App>,
    request: Request<Incoming>,
    forwarding: Forwarding<'_>,
    limits: &InstanceLimits,
    admission: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Response<Body> {
    let body_limit = limits.max_request_body;
    if let Some(length) = content_length(&request)
        && length > body_limit
    {
        return body_too_large(length.to_string(), body_limit);
    }
    let overflowed = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| LimitedBody {
        inner: Some(body),
        remaining: body_limit,
        limit: body_limit,
        overflowed: overflowed.clone(),
    });
    let request = match rewrite_for_guest(request, &forwarding) {
        Ok(request) => request,
        Err(message) => return respond::text(StatusCode::BAD_REQUEST, message),
    };
    // A request without a body can be replayed on a fresh instance if a reused one turns out
    // not to support reuse (see below); keep its head for that.
    let replay = app
        .reuse_pool()
        .filter(|pool| !pool.is_disabled())
        .and_then(|_| head_without_body(&request));
    let attempt = run_guest(
        &app,
        request,
        &forwarding,
        limits,
        admission,
        &overflowed,
        true,
    )
    .await;
    match attempt {
        Attempt::Done(response) => response,
        Attempt::ReuseUnsupported(response) => match replay {
            Some(head) => {
                let request = head.map(|()| LimitedBody::empty());
                match run_guest(&app, request, &forwarding, limits, None, &overflowed, false).await
                {
                    Attempt::Done(response) | Attempt::ReuseUnsupported(response) => response,
                }
            }
            None => response,
        },
    }
}

/// How one run of the guest ended.
enum Attempt {
    /// With this response for the client.
    Done(Response<Body>),
    /// A reused instance returned without a response: the app does not support reuse (reuse
    /// is now off for this version), and the request may be replayed on a fresh instance.
    ReuseUnsupported(Response<Body>),
}

/// A failure of the host itself while setting up a request: logged, and a bare 500.
fn internal_error(app: &App, doing: &str, error: &dyn std::fmt::Display) -> Attempt {
    tracing::error!(app = %app.name(), "{doing}: {error:#}");
    Attempt::Done(respond::text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error",
    ))
}

/// The method, URI and headers of a request that has no body, to replay it.
fn head_without_body<B: hyper::body::Body>(request: &Request<B>) -> Option<Request<()>> {
    let bodyless = request.body().is_end_stream()
        || (content_length(request) == Some(0)
            && !request.headers().contains_key(header::TRANSFER_ENCODING));
    if !bodyless {
        return None;
    }
    let mut head = Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone())
        .version(request.version())
        .body(())
        .ok()?;
    *head.headers_mut() = request.headers().clone();
    Some(head)
}

/// Runs `request` in an instance of `app`: a waiting one if the app reuses instances (and
/// `may_reuse`), else a fresh one.
async fn run_guest(
    app: &Arc<App>,
    request: Request<LimitedBody>,
    forwarding: &Forwarding<'_>,
    limits: &InstanceLimits,
    admission: Option<tokio::sync::OwnedSemaphorePermit>,
    overflowed: &Arc<AtomicBool>,
    may_reuse: bool,
) -> Attempt {
    let timeout = limits.timeout;
    let body_limit = limits.max_request_body;
    let deadline = Instant::now() + timeout;
    // A waiting instance of this app (for this launched instance) if it reuses instances,
    // else a fresh store to instantiate in.
    let reuse_key = forwarding.instance.map(|instance| instance.name.clone());
    let idle = app
        .reuse_pool()
        .filter(|_| may_reuse)
        .and_then(|pool| pool.take(reuse_key.as_ref()));
    let (mut store, reused, served) = match idle {
        Some(mut idle) => {
            arm_deadline(&mut idle.store, app, deadline.into_std());
            (idle.store, Some(idle.proxy), idle.served)
        }
        None => match new_store(
            app,
            forwarding.base_path,
            forwarding.instance,
            limits,
            deadline.into_std(),
        ) {
            Ok(store) => (store, None, 0),
            Err(error) => return internal_error(app, "preparing the sandbox", &error),
        },
    };
    let was_reused = reused.is_some();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let resources = {
        let mut http = store.data_mut().http();
        http.new_incoming_request(Scheme::Http, request)
            .and_then(|incoming| Ok((incoming, http.new_response_outparam(sender)?)))
    };
    let (incoming, outparam) = match resources {
        Ok(resources) => resources,
        Err(error) => return internal_error(app, "preparing the request", &error),
    };

    // The guest runs inside this connection's task: first until it sets the response, then
    // from the response body (see `GuestDrivenBody`), so a request costs no task spawn and no
    // cross-thread wake-up. The deadline bounds all of it, body included.
    let guest_app = app.clone();
    app.cpu_share().note_start();
    let mut guest: GuestFuture = Box::pin(tokio::time::timeout_at(deadline, async move {
        let _admission = admission;
        let proxy = match reused {
            Some(proxy) => proxy,
            None => guest_app.pre().instantiate_async(&mut store).await?,
        };
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, outparam)
            .await?;
        // Served cleanly: an app that reuses instances gets this one back. (A trap or the
        // deadline ends this future early, and the instance with it.)
        if let Some(pool) = guest_app.reuse_pool() {
            pool.put(reuse_key, store, proxy, served + 1);
        }
        Ok(())
    }));
    let mut receiver = receiver;
    let first = std::future::poll_fn(|cx| {
        if let Poll::Ready(response) = Pin::new(&mut receiver).poll(cx) {
            return Poll::Ready(Ok(response));
        }
        guest.as_mut().poll(cx).map(Err)
    })
    .await;

    let response = match first {
        // A body over the limit fails the guest's read; the client is told why.
        _ if overflowed.load(Ordering::Relaxed) => {
            return Attempt::Done(body_too_large(
                format!("more than {body_limit}"),
                body_limit,
            ));
        }
        first => first,
    };
    let failed = |outcome: GuestOutcome| {
        let no_response = matches!(outcome, Ok(Ok(())));
        let response = failure_response(app, outcome, timeout);
        match app.reuse_pool() {
            Some(pool) if was_reused && no_response => {
                pool.disable(app.name());
                Attempt::ReuseUnsupported(response)
            }
            _ => Attempt::Done(response),
        }
    };
    let (response, unfinished_guest) = match response {
        Ok(Ok(response)) => (response, Some(guest)),
        // The response sender was dropped with the guest's resources: it is ending without a
        // response (returned early, or trapped).
        Ok(Err(_)) => return failed(guest.await),
        // The guest finished first (often all of it in one poll); it may have set a response
        // on its way out.
        Err(outcome) => match receiver.try_recv() {
            Ok(response) => (response, None),
            Err(_) => return failed(outcome),
        },
    };
    Attempt::Done(match response {
        Ok(response) => response.map(|inner| {
            GuestDrivenBody {
                inner,
                guest: unfinished_guest,
                app: app.name().clone(),
                failed: false,
            }
            .boxed_unsync()
        }),
        Err(code) => {
            tracing::warn!(app = %app.name(), "app answered with an error: {code:?}");
            respond::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format_args!("app `{}` failed to handle the request", app.name()),
            )
        }
    })
}

fn content_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn body_too_large(size: String, limit: u64) -> Response<Body> {
    respond::text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format_args!("request body is {size} bytes, limit is {limit} bytes (max_request_body)"),
    )
}

/// How much of an oversized request body is read and thrown away before the guest sees the
/// error, so the client can read the 413 (closing with unread data resets the connection).
const DRAIN_BYTES: u64 = 1 << 20;

/// A request body that fails, and says so, once more than `limit` bytes have come.
struct LimitedBody {
    /// The client's body; `None` for a replayed request, which has none.
    inner: Option<Incoming>,
    remaining: u64,
    limit: u64,
    overflowed: Arc<AtomicBool>,
}

impl LimitedBody {
    fn empty() -> Self {
        Self {
            inner: None,
            remaining: 0,
            limit: 0,
            overflowed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Discards what the client still sends, up to [`DRAIN_BYTES`]; ready when done.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(inner) = &mut self.inner else {
            return Poll::Ready(());
        };
        loop {
            match hyper::body::Body::poll_frame(Pin::new(&mut *inner), cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                    match self.remaining.checked_sub(len) {
                        Some(remaining) => self.remaining = remaining,
                        None => return Poll::Ready(()),
                    }
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl hyper::body::Body for LimitedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let too_large = wasmtime_wasi_http::Error::HttpRequestBodySize(Some(this.limit));
        if this.overflowed.load(Ordering::Relaxed) {
            return this.drain(cx).map(|()| Some(Err(too_large)));
        }
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            match this.remaining.checked_sub(data.len() as u64) {
                Some(remaining) => this.remaining = remaining,
                None => {
                    this.overflowed.store(true, Ordering::Relaxed);
                    this.remaining = DRAIN_BYTES;
                    return this.drain(cx).map(|()| Some(Err(too_large)));
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}

/// The running guest: instantiation and `handle`, bounded by the request deadline.
type GuestFuture = Pin<Box<dyn Future<Output = GuestOutcome> + Send>>;
type GuestOutcome = Result<wasmtime::Result<()>, tokio::time::error::Elapsed>;

/// A guest's response body that also drives the guest while the client reads it, so the
/// guest can keep writing the body after the headers are sent. If the body is dropped first
/// (the client left, or the guest finished the body but not its own work), the guest is
/// moved to a task of its own to finish, still bounded by the deadline.
struct GuestDrivenBody {
    inner: Body,
    guest: Option<GuestFuture>,
    app: Arc<str>,
    /// The guest failed (trapped, or overran the deadline) after the headers went out: the
    /// body must end in an error, so the client sees a cut connection rather than a short
    /// body that looks complete.
    failed: bool,
}

impl GuestDrivenBody {
    fn poll_guest(&mut self, cx: &mut Context<'_>) {
        if let Some(guest) = &mut self.guest
            && let Poll::Ready(outcome) = guest.as_mut().poll(cx)
        {
            self.guest = None;
            self.failed = log_late_failure(&self.app, outcome);
        }
    }
}

impl hyper::body::Body for GuestDrivenBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        this.poll_guest(cx);
        if this.failed {
            return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpResponseIncomplete)));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        !self.failed && self.guest.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for GuestDrivenBody {
    fn drop(&mut self) {
        if let Some(guest) = self.guest.take() {
            let app = self.app.clone();
            tokio::spawn(async move {
                log_late_failure(&app, guest.await);
            });
        }
    }
}

/// Logs a failure after the response started (the client sees a cut connection); returns
/// whether it was one.
fn log_late_failure(app: &str, outcome: GuestOutcome) -> bool {
    match outcome {
        Ok(Ok(())) => false,
        Ok(Err(error)) if is_deadline(&error) => {
            tracing::warn!(app, "app overran the request deadline while responding");
            true
        }
        Ok(Err(error)) => {
            tracing::warn!(app, "app failed after responding: {error:?}");
            true
        }
        Err(_) => {
            tracing::warn!(app, "app overran the request deadline while responding");
            true
        }
    }
}

/// Whether the guest was stopped by its deadline (an epoch interrupt, see `new_store`).
fn is_deadline(error: &wasmtime::Error) -> bool {
    matches!(
        error.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    )
}

fn failure_response(app: &App, outcome: GuestOutcome, timeout: Duration) -> Response<Body> {
    let name = app.name();
    match outcome {
        Ok(Ok(())) => {
            tracing::warn!(app = %name, "app returned without sending a response");
            respond::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format_args!("app `{name}` returned without a response"),
            )
        }
        Ok(Err(error)) if is_deadline(&error) => timed_out(app, timeout),
        Ok(Err(error)) if error.is::<wasmtime::PoolConcurrencyLimitError>() => {
            tracing::warn!(app = %name, "no instance slot free: {error:#}");
            respond::unavailable("server busy: too many requests running at once", 1)
        }
        Ok(Err(error)) => {
            tracing::warn!(app = %name, "app failed: {error:?}");
            respond::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format_args!("app `{name}` failed while handling the request"),
            )
        }
        Err(_elapsed) => timed_out(app, timeout),
    }
}

fn timed_out(app: &App, timeout: Duration) -> Response<Body> {
    tracing::warn!(app = %app.name(), "request timed out after {timeout:?}");
    respond::text(
        StatusCode::GATEWAY_TIMEOUT,
        format_args!(
            "app `{}` did not answer within {}",
            app.name(),
            humantime::format_duration(timeout)
        ),
    )
}

/// The request as the guest sees it: path without the prefix (query kept), `host` present,
/// and `x-forwarded-*` set by us (values from the client are replaced, not trusted).
fn rewrite_for_guest<B>(
    request: Request<B>,
    forwarding: &Forwarding<'_>,
) -> Result<Request<B>, String> {
    let (mut parts, body) = request.into_parts();
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{}?{query}", forwarding.rest),
        None => forwarding.rest.to_owned(),
    };
    parts.uri = Uri::builder()
        .path_and_query(path_and_query)
        .build()
        .map_err(|error| format!("invalid request path: {error}"))?;
    let headers = &mut parts.headers;
    let host = match headers.get(header::HOST) {
        Some(host) => host.clone(),
        None => {
            let host = HeaderValue::from_str(&forwarding.local.to_string())
                .map_err(|error| format!("invalid host: {error}"))?;
            headers.insert(header::HOST, host.clone());
            host
        }
    };
    let prefix = HeaderValue::from_str(forwarding.prefix)
        .map_err(|error| format!("invalid prefix: {error}"))?;
    headers.insert(X_FORWARDED_PREFIX, prefix);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    headers.insert(X_FORWARDED_HOST, host);
    headers.insert(
        X_FORWARDED_FOR,
        HeaderValue::from_str(&forwarding.peer.ip().to_string())
            .map_err(|error| format!("invalid peer address: {error}"))?,
    );
    Ok(Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_sees_the_rest_of_the_path_and_forwarded_headers() {
        let request = Request::builder()
            .uri("/viz/plot?x=1&y=2")
            .header("x-forwarded-for", "6.6.6.6")
            .body(())
            .unwrap();
        let forwarding = Forwarding {
            prefix: "/viz",
            rest: "/plot",
            peer: "127.0.0.9:5000".parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
            base_path: "",
            instance: None,
        };
        let rewritten = rewrite_for_guest(request, &forwarding).unwrap();
        assert_eq!(rewritten.uri(), "/plot?x=1&y=2");
        let header = |name: &str| rewritten.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("x-forwarded-prefix"), "/viz");
        assert_eq!(header("x-forwarded-for"), "127.0.0.9");
        assert_eq!(header("x-forwarded-proto"), "http");
        assert_eq!(header("host"), "127.0.0.1:8080");
        assert_eq!(header("x-forwarded-host"), "127.0.0.1:8080");
    }
}

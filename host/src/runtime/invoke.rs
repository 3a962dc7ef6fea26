//! Runs one request in an instance of an app: a fresh one, or for an app that opted in a
//! reused one. Enforces the body limit and the deadline, and turns every failure of the guest
//! into a status for the client without touching other requests or apps. The request arrives
//! already rewritten for the guest (see `http::forwarding`).

use crate::headers::{X_REQUEST_ID, content_length};
use crate::metrics::FailureKind;
use crate::refusal::Refusal;
use crate::respond::{self, Body};
use crate::runtime::bodies::is_deadline;
use crate::runtime::bodies::{
    GuestDrivenBody, GuestFuture, GuestOutcome, LimitedBody, Overflow, Prebuffer,
};
use crate::runtime::client_body::ClientBody;
use crate::runtime::guest::{Admission, Guest};
use crate::runtime::guest_log::RecentLines;
use crate::runtime::sandbox::{Binding, Deadline, HostState, arm_deadline, new_store};
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::time::Instant;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// What a request holds until its guest is done (response body included), whichever
/// attempt serves it: the app's concurrency slot, and what the caller asked to keep (a
/// launch's use, so it cannot expire meanwhile).
struct Hold {
    _admission: Admission,
    _caller: Option<Arc<dyn Any + Send + Sync>>,
}

/// Serves `request` with a fresh instance of `guest` (or a waiting one, if the app reuses
/// instances), within its limits (the deadline covers the response body too). `binding` is
/// the launch the request is for; `keep` is held until the guest is done. The
/// start of the body is read before the app's concurrency slot or an instance is taken.
pub(crate) async fn invoke(
    guest: Arc<Guest>,
    request: Request<ClientBody>,
    binding: Option<Binding<'_>>,
    keep: Option<Arc<dyn Any + Send + Sync>>,
) -> Result<Response<Body>, Refusal> {
    let limit = guest.spec().limits.max_request_body;
    if let Some(length) = content_length(request.headers())
        && length > limit
    {
        let size = length.to_string();
        return Err(Refusal::BodyTooLarge { size, limit });
    }
    let (parts, body) = request.into_parts();
    let (mut body, overflow) = LimitedBody::new(body, limit);
    let limits = &guest.spec().limits;
    let want = PREBUFFER_BYTES.min(limit);
    match body.prebuffer(want, limits.body_read_timeout).await {
        Ok(()) => {}
        Err(_) if overflow.tripped() => {
            let size = format!("more than {limit}");
            return Err(Refusal::BodyTooLarge { size, limit });
        }
        Err(Prebuffer::TooSlow) => {
            let timeout = limits.body_read_timeout;
            return Err(Refusal::BodyTooSlow { want, timeout });
        }
        Err(Prebuffer::Failed(error)) => {
            let message = format!("reading the request body: {error}");
            return Err(Refusal::BadRequest(message));
        }
    }
    let request = Request::from_parts(parts, body);
    let Ok(admission) = guest.admit() else {
        let name = guest.spec().name.to_string();
        return Err(Refusal::AppBusy { name });
    };
    let hold = Arc::new(Hold {
        _admission: admission,
        _caller: keep,
    });
    // A request without a body can be replayed on a fresh instance if a reused one turns out
    // not to support reuse (see below); keep its head for that.
    let replay = guest
        .reuse_pool()
        .filter(|pool| !pool.is_disabled())
        .and_then(|_| head_without_body(&request));
    let run = Run {
        guest: &guest,
        binding,
        hold,
        overflow,
    };
    Ok(match run.attempt(request, true).await {
        Attempt::Done(response) => response,
        Attempt::ReuseUnsupported(response) => match replay {
            // The replay holds what the first attempt held: it is the same request.
            Some(head) => run
                .attempt(head.map(|()| LimitedBody::empty()), false)
                .await
                .into_response(),
            None => response,
        },
    })
}

/// How one run of the guest ended.
enum Attempt {
    /// With this response for the client.
    Done(Response<Body>),
    /// A reused instance returned without a response: the app does not support reuse (reuse
    /// is now off for this version), and the request may be replayed on a fresh instance.
    ReuseUnsupported(Response<Body>),
}

impl Attempt {
    fn into_response(self) -> Response<Body> {
        match self {
            Attempt::Done(response) | Attempt::ReuseUnsupported(response) => response,
        }
    }
}

/// What every attempt at one request shares.
struct Run<'a> {
    guest: &'a Arc<Guest>,
    binding: Option<Binding<'a>>,
    hold: Arc<Hold>,
    /// Set when the client's body went over the limit.
    overflow: Overflow,
}

/// An instance to run a request in: a waiting one, or a store to instantiate in.
struct Instance {
    store: Store<HostState>,
    /// The exports of a reused instance; `None`: instantiate.
    reused: Option<Proxy>,
    /// Requests it served before.
    served: u32,
}

impl Run<'_> {
    /// Runs `request` in an instance: a waiting one if the app reuses instances (and
    /// `may_reuse`), else a fresh one.
    async fn attempt(&self, request: Request<LimitedBody>, may_reuse: bool) -> Attempt {
        let timeout = self.guest.spec().limits.timeout;
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(far_future);
        let instance = match self.instance(may_reuse, deadline) {
            Ok(instance) => instance,
            Err(response) => return Attempt::Done(*response),
        };
        let was_reused = instance.reused.is_some();
        let memory_refused = instance.store.data().memory_refused();
        let witness = Witness {
            memory_refused: memory_refused.clone(),
            stderr: instance.store.data().recent_stderr(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            instance: self.binding.map(|binding| binding.key.clone()),
            request_id: request.headers().get(X_REQUEST_ID).cloned(),
        };
        instance.store.data().serve_request(witness.request_id());
        memory_refused.store(false, std::sync::atomic::Ordering::Relaxed);
        let (mut guest, mut receiver) = match self.start(instance, request, deadline) {
            Ok(started) => started,
            Err(response) => return Attempt::Done(*response),
        };
        let first = std::future::poll_fn(|cx| {
            if let Poll::Ready(response) = Pin::new(&mut receiver).poll(cx) {
                return Poll::Ready(Ok(response));
            }
            guest.as_mut().poll(cx).map(Err)
        })
        .await;
        if self.overflow.tripped() {
            // A body over the limit fails the guest's read; the client is told why.
            let limit = self.guest.spec().limits.max_request_body;
            let size = format!("more than {limit}");
            return Attempt::Done(Refusal::BodyTooLarge { size, limit }.into_response());
        }
        let (response, unfinished) = match first {
            Ok(Ok(response)) => (response, Some(guest)),
            // The response sender was dropped with the guest's resources: it is ending
            // without a response (returned early, or trapped).
            Ok(Err(_)) => return self.failed(guest.await, was_reused, &witness),
            // The guest finished first (often all of it in one poll); it may have set a
            // response on its way out.
            Err(outcome) => match receiver.try_recv() {
                Ok(response) => (response, None),
                Err(_) => return self.failed(outcome, was_reused, &witness),
            },
        };
        let mut response = self.respond(response, unfinished);
        if response.status().is_server_error() {
            explain_exception(self.guest, &witness, &mut response);
        }
        Attempt::Done(response)
    }

    /// A waiting instance of this app (for this launch) if it reuses instances,
    /// else a fresh store; either armed with `deadline`.
    fn instance(&self, may_reuse: bool, deadline: Instant) -> Result<Instance, Unstarted> {
        let guest = self.guest;
        let deadline = Deadline {
            at: deadline.into_std(),
            cpu_share: guest.cpu_share(),
        };
        let key = self.binding.map(|binding| binding.key);
        if let Some(mut idle) = guest
            .reuse_pool()
            .filter(|_| may_reuse)
            .and_then(|pool| pool.take(key))
        {
            arm_deadline(&mut idle.store, deadline);
            return Ok(Instance {
                store: idle.store,
                reused: Some(idle.proxy),
                served: idle.served,
            });
        }
        let slot = guest.engine().instance_slot().map_err(|busy| {
            tracing::warn!(app = %guest.spec().name, "{busy}");
            Box::new(Refusal::ServerBusy.into_response())
        })?;
        let engine = guest.pre().engine();
        match new_store(
            engine,
            guest.spec(),
            self.binding,
            slot,
            deadline,
            guest.log_tail(),
        ) {
            Ok(store) => Ok(Instance {
                store,
                reused: None,
                served: 0,
            }),
            Err(error) => Err(Box::new(internal_error(
                guest,
                "preparing the sandbox",
                &error,
            ))),
        }
    }

    /// Hands `request` to the instance and returns the running guest with the channel its
    /// response head arrives on. The guest runs inside this connection's task: first until it
    /// sets the response, then from the response body (see `GuestDrivenBody`), so a request
    /// costs no task spawn and no cross-thread wake-up. The deadline bounds all of it.
    fn start(
        &self,
        instance: Instance,
        request: Request<LimitedBody>,
        deadline: Instant,
    ) -> Result<(GuestFuture, ResponseReceiver), Unstarted> {
        let Instance {
            mut store,
            reused,
            served,
        } = instance;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let resources = {
            let mut http = store.data_mut().http();
            http.new_incoming_request(Scheme::Http, request)
                .and_then(|incoming| Ok((incoming, http.new_response_outparam(sender)?)))
        };
        let (incoming, outparam) = resources.map_err(|error| {
            Box::new(internal_error(self.guest, "preparing the request", &error))
        })?;
        let guest = self.guest.clone();
        let hold = self.hold.clone();
        let reuse_key = self.binding.map(|binding| binding.key.clone());
        guest.cpu_share().note_start();
        let future = tokio::time::timeout_at(deadline, async move {
            let _hold = hold;
            let proxy = match reused {
                Some(proxy) => proxy,
                None => guest.pre().instantiate_async(&mut store).await?,
            };
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await?;
            // Served cleanly: an app that reuses instances gets this one back. (A trap or the
            // deadline ends this future early, and the instance with it.)
            if let Some(pool) = guest.reuse_pool() {
                pool.put(reuse_key, store, proxy, served + 1);
            }
            Ok(())
        });
        Ok((Box::pin(future), receiver))
    }

    /// The client's response once the guest set its head: its body streams from the guest.
    fn respond(&self, response: GuestResponse, unfinished: Option<GuestFuture>) -> Response<Body> {
        let name = &self.guest.spec().name;
        match response {
            Ok(response) => response
                .map(|inner| GuestDrivenBody::new(inner, unfinished, name.clone()).boxed_unsync()),
            Err(code) => {
                tracing::warn!(app = %name, "app answered with an error: {code:?}");
                respond::text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format_args!("app `{name}` failed to handle the request"),
                )
            }
        }
    }

    /// The guest ended without a response: why, for the client. A reused instance that
    /// returned cleanly without one means the app does not support reuse.
    fn failed(&self, outcome: GuestOutcome, was_reused: bool, witness: &Witness) -> Attempt {
        let no_response = matches!(outcome, Ok(Ok(())));
        let response = failure_response(self.guest, outcome, witness);
        match self.guest.reuse_pool() {
            Some(pool) if was_reused && no_response => {
                pool.disable(&self.guest.spec().name);
                Attempt::ReuseUnsupported(response)
            }
            _ => Attempt::Done(response),
        }
    }
}

/// A response that ends an attempt before the guest runs (boxed: the cold path).
type Unstarted = Box<Response<Body>>;

/// The response head a guest sets, or the error code it answers with.
type GuestResponse =
    Result<Response<Body>, wasmtime_wasi_http::p2::bindings::http::types::ErrorCode>;
type ResponseReceiver = tokio::sync::oneshot::Receiver<GuestResponse>;

/// A deadline for a timeout too long to add to now: never, in practice.
fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(100 * 365 * 24 * 3600)
}

/// A failure of the host itself while setting up a request: logged, and a bare 500.
fn internal_error(guest: &Guest, doing: &str, error: &dyn std::fmt::Display) -> Response<Body> {
    tracing::error!(app = %guest.spec().name, "{doing}: {error:#}");
    respond::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// The method, URI and headers of a request that has no body, to replay it.
fn head_without_body<B: hyper::body::Body>(request: &Request<B>) -> Option<Request<()>> {
    let bodyless = request.body().is_end_stream()
        || (content_length(request.headers()) == Some(0)
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

/// How much of a request body must have arrived before a guest instance is taken for it.
const PREBUFFER_BYTES: u64 = 64 << 10;

/// What is known of a request besides its outcome, to explain a failure.
struct Witness {
    /// Set when the instance's memory budget refused to grow.
    memory_refused: Arc<std::sync::atomic::AtomicBool>,
    /// What the guest last wrote to stderr for it.
    stderr: RecentLines,
    /// The request's method and target as the guest saw them (shared, not copied: only a
    /// failure formats them).
    method: http::Method,
    uri: http::Uri,
    /// The request's id, which the guest's log lines for it carry.
    request_id: Option<http::HeaderValue>,
    /// The launch it is for, if any.
    instance: Option<Arc<str>>,
}

impl Witness {
    /// `METHOD /path`.
    fn request(&self) -> String {
        format!("{} {}", self.method, self.uri.path())
    }

    /// The request's id, `-` without one.
    fn request_id(&self) -> &str {
        let id = self.request_id.as_ref().and_then(|id| id.to_str().ok());
        id.unwrap_or("-")
    }

    /// What the guest said about its own failure: a Rust panic's message (and notes), or a
    /// Python traceback, from its stderr; else its last few lines there.
    fn last_words(&self) -> Option<String> {
        let lines = self.stderr.lock().unwrap();
        let starts = |line: &str| {
            (line.starts_with("thread '") && line.contains("panicked at"))
                || line.starts_with("Traceback (most recent call last)")
        };
        let from = lines
            .iter()
            .rposition(|line| starts(line))
            .unwrap_or(lines.len().saturating_sub(10));
        let said: Vec<&str> = lines.range(from..).map(|line| &**line).collect();
        (!said.is_empty()).then(|| said.join("\n"))
    }
}

/// A `5xx` a guest answered after writing a traceback to stderr (an exception the app's
/// framework caught, as Python's do): logged as one entry with the request, and attached for
/// dev mode like a trap.
fn explain_exception(guest: &Guest, witness: &Witness, response: &mut Response<Body>) {
    let Some(said) = witness.last_words() else {
        return;
    };
    if !said.starts_with("Traceback (most recent call last)") {
        return;
    }
    let details = format!(
        "{} answered {}:\n{said}",
        witness.request(),
        response.status()
    );
    let (request_id, instance) = (witness.request_id(), witness.instance.as_deref());
    let name = &guest.spec().name;
    tracing::warn!(app = %name, instance, request_id, "app failed: {details}");
    response
        .extensions_mut()
        .insert(GuestFailure(details.into()));
}

/// Why a guest failed a request, for the developer: attached to the `500` response as an
/// extension (never sent), which dev mode shows.
#[derive(Debug, Clone)]
pub(crate) struct GuestFailure(pub Arc<str>);

fn failure_response(guest: &Guest, outcome: GuestOutcome, witness: &Witness) -> Response<Body> {
    let out_of_memory = witness
        .memory_refused
        .load(std::sync::atomic::Ordering::Relaxed);
    let name = &guest.spec().name;
    let failed = |kind| guest.metrics().guest_failed(kind);
    match outcome {
        Ok(Ok(())) => {
            failed(FailureKind::NoResponse);
            tracing::warn!(app = %name, "app returned without sending a response");
            respond::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format_args!("app `{name}` returned without a response"),
            )
        }
        Ok(Err(error)) if is_deadline(&error) => timed_out(guest),
        Ok(Err(error)) if error.is::<wasmtime::PoolConcurrencyLimitError>() => {
            tracing::warn!(app = %name, "no instance slot free: {error:#}");
            Refusal::ServerBusy.into_response()
        }
        Ok(Err(error)) => {
            failed(if out_of_memory {
                FailureKind::Memory
            } else {
                FailureKind::Trap
            });
            let said = witness
                .last_words()
                .map(|said| format!("{said}\n\n"))
                .unwrap_or_default();
            let request = witness.request();
            let details = format!("{request} failed:\n{said}{error:?}");
            let (request_id, instance) = (witness.request_id(), witness.instance.as_deref());
            tracing::warn!(app = %name, instance, request_id, "app failed: {details}");
            let mut response = respond::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format_args!("app `{name}` failed while handling the request"),
            );
            response
                .extensions_mut()
                .insert(GuestFailure(details.into()));
            response
        }
        Err(_elapsed) => timed_out(guest),
    }
}

fn timed_out(guest: &Guest) -> Response<Body> {
    let (name, timeout) = (&guest.spec().name, guest.spec().limits.timeout);
    guest.metrics().guest_failed(FailureKind::Timeout);
    tracing::warn!(app = %name, "request timed out after {timeout:?}");
    respond::text(
        StatusCode::GATEWAY_TIMEOUT,
        format_args!(
            "app `{name}` did not answer within {}",
            humantime::format_duration(timeout)
        ),
    )
}

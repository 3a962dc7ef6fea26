//! The two bodies a guest request streams through: the client's request body, cut off at the
//! app's limit, and the guest's response body, which also drives the guest while the client
//! reads it.

use crate::respond::Body;
use crate::runtime::client_body::{ClientBody, ClientBodyError};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Frame, SizeHint};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// Whether a request body went over its limit; set by the body, read once the guest is done.
#[derive(Clone, Default)]
pub(crate) struct Overflow(Arc<AtomicBool>);

impl Overflow {
    /// Whether more than the limit arrived.
    pub(crate) fn tripped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn trip(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How much of an oversized request body is read and thrown away before the guest sees the
/// error, so the client can read the 413 (closing with unread data resets the connection).
const DRAIN_BYTES: u64 = 1 << 20;

/// A request body that fails, and says so, once more than `limit` bytes have come.
pub(crate) struct LimitedBody {
    /// The client's body; `None` for a replayed request, which has none.
    inner: Option<ClientBody>,
    remaining: u64,
    limit: u64,
    overflow: Overflow,
    /// Frames already read (see [`LimitedBody::prebuffer`]), handed out first.
    ahead: VecDeque<Frame<Bytes>>,
}

/// Why the start of a body could not be read before the guest runs.
#[derive(Debug)]
pub(crate) enum Prebuffer {
    /// Not enough of it came in time: a slow (or stalled) client.
    TooSlow,
    /// It failed: over the limit (see [`Overflow`]), or the connection broke.
    Failed(wasmtime_wasi_http::Error),
}

impl LimitedBody {
    /// `body`, failing after `limit` bytes; the returned flag tells whether it did.
    pub(crate) fn new(body: ClientBody, limit: u64) -> (Self, Overflow) {
        let overflow = Overflow::default();
        let body = Self {
            inner: Some(body),
            remaining: limit,
            limit,
            overflow: overflow.clone(),
            ahead: VecDeque::new(),
        };
        (body, overflow)
    }

    /// Reads the first `want` bytes of the body (all of it if shorter) within `timeout`,
    /// before a guest instance is taken for the request, so a client sending slowly holds a
    /// connection but never an instance (as reverse proxies buffer for their upstreams).
    ///
    /// # Errors
    ///
    /// [`Prebuffer::TooSlow`] when they do not arrive in time; [`Prebuffer::Failed`] when the
    /// body fails (over the limit, or the connection broke).
    pub(crate) async fn prebuffer(
        &mut self,
        want: u64,
        timeout: Duration,
    ) -> Result<(), Prebuffer> {
        if hyper::body::Body::is_end_stream(&*self) {
            return Ok(());
        }
        let mut frames = VecDeque::new();
        let read = async {
            let mut got = 0u64;
            while got < want {
                match self.frame().await {
                    None => break,
                    Some(Ok(frame)) => {
                        got += frame.data_ref().map_or(0, |data| data.len() as u64);
                        frames.push_back(frame);
                    }
                    Some(Err(error)) => return Err(Prebuffer::Failed(error)),
                }
            }
            Ok(())
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| Prebuffer::TooSlow)??;
        self.ahead = frames;
        Ok(())
    }

    /// No body at all (a replayed request).
    pub(crate) fn empty() -> Self {
        Self {
            inner: None,
            remaining: 0,
            limit: 0,
            overflow: Overflow::default(),
            ahead: VecDeque::new(),
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

/// The guest's view of a client body's failure.
fn body_error(error: ClientBodyError) -> wasmtime_wasi_http::Error {
    match error {
        ClientBodyError::Hyper(error) => error.into(),
        ClientBodyError::Embedded(error) => {
            wasmtime_wasi_http::Error::InternalError(Some(format!("request body: {error}")))
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
        if let Some(frame) = this.ahead.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        let too_large = wasmtime_wasi_http::Error::HttpRequestBodySize(Some(this.limit));
        if this.overflow.tripped() {
            return this.drain(cx).map(|()| Some(Err(too_large)));
        }
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(body_error(error)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            match this.remaining.checked_sub(data.len() as u64) {
                Some(remaining) => this.remaining = remaining,
                None => {
                    this.overflow.trip();
                    this.remaining = DRAIN_BYTES;
                    return this.drain(cx).map(|()| Some(Err(too_large)));
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_empty()
            && self
                .inner
                .as_ref()
                .is_none_or(hyper::body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), hyper::body::Body::size_hint);
        let ahead: u64 = self
            .ahead
            .iter()
            .map(|frame| frame.data_ref().map_or(0, |data| data.len() as u64))
            .sum();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + ahead);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + ahead);
        }
        hint
    }
}

/// The running guest: instantiation and `handle`, bounded by the request deadline.
pub(crate) type GuestFuture = Pin<Box<dyn Future<Output = GuestOutcome> + Send>>;
/// How the guest ended: `Err` when the tokio deadline passed while it waited in a host call.
pub(crate) type GuestOutcome = Result<wasmtime::Result<()>, tokio::time::error::Elapsed>;

/// A guest's response body that also drives the guest while the client reads it, so the
/// guest can keep writing the body after the headers are sent. If the body is dropped first
/// (the client left, or the guest finished the body but not its own work), the guest is
/// moved to a task of its own to finish, still bounded by the deadline.
pub(crate) struct GuestDrivenBody {
    inner: Body,
    guest: Option<GuestFuture>,
    app: Arc<str>,
    /// The guest failed (trapped, or overran the deadline) after the headers went out: the
    /// body must end in an error, so the client sees a cut connection rather than a short
    /// body that looks complete.
    failed: bool,
}

impl GuestDrivenBody {
    /// The guest's body `inner`, with the `guest` still to finish (`None`: it has).
    pub(crate) fn new(inner: Body, guest: Option<GuestFuture>, app: Arc<str>) -> Self {
        Self {
            inner,
            guest,
            app,
            failed: false,
        }
    }

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
pub(crate) fn is_deadline(error: &wasmtime::Error) -> bool {
    matches!(
        error.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    )
}

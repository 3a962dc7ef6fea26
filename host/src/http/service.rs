//! The server as a `tower::Service`, for another Rust server to mount (an axum `Router`'s
//! `nest_service`, any tower stack): requests with any `http_body::Body`, responses with a
//! body type of wasmount's own, [`ResponseBody`]. The django-wsgi idea for Rust.

use crate::http::server::Server;
use crate::respond::Body;
use crate::runtime::client_body::{BoxError, ClientBody};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The client's address, as a request extension the embedder sets (from axum's
/// `ConnectInfo`, say); without it the client counts as `0.0.0.0:0`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// A [`Server`] as a `tower::Service`; cheap to clone (clones share the server).
#[derive(Clone)]
pub struct ServerService(Arc<Server>);

impl Server {
    /// This server as a `tower::Service`, for an embedder's router. Requests it is given
    /// are under `config.base_path` (the apps, the launches) or `/_wasmount/`.
    pub fn into_service(self: Arc<Self>) -> ServerService {
        ServerService(self)
    }
}

impl<B> tower_service::Service<Request<B>> for ServerService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let server = self.0.clone();
        let peer = request
            .extensions()
            .get::<ClientAddr>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |addr| addr.0);
        let request = request.map(ClientBody::embedded);
        Box::pin(async move {
            let response = server.handle(request, peer).await;
            Ok(response.map(ResponseBody))
        })
    }
}

/// The body of a response wasmount sends, the guest's or its own.
pub struct ResponseBody(Body);

/// Why a response body ended before it was complete (its guest failed or ran out of time
/// after the headers were sent).
#[derive(Debug)]
pub struct ResponseBodyError(wasmtime_wasi_http::Error);

impl std::fmt::Display for ResponseBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ResponseBodyError {}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        Pin::new(&mut self.get_mut().0)
            .poll_frame(cx)
            .map_err(ResponseBodyError)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

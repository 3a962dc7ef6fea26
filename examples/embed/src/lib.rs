//! A web site of its own that mounts wasmount under `/visualizations/`, the way a Django site
//! mounts a WSGI app: the site serves its pages and hands wasmount the requests for the apps
//! (`/visualizations/…`) and for wasmount's API (`/_wasmount/…`: uploads, launches, health),
//! all on the site's own listener. A plain hyper server stands for any Rust web framework.

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use wasmount::config::Config;
use wasmount::engine::WasmEngine;
use wasmount::server::{Body, Server};

/// Where the site mounts wasmount's apps.
pub const MOUNT: &str = "/visualizations";

/// Serves the site on `listener` until `shutdown` resolves, wasmount's apps from
/// `config.apps_dir` under [`MOUNT`].
///
/// # Errors
///
/// If wasmount cannot start (engine, apps folder).
pub async fn serve(
    listener: TcpListener,
    mut config: Config,
    engine: WasmEngine,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    config.base_path = MOUNT.to_owned();
    let local = listener.local_addr()?;
    let wasmount = Arc::new(Server::start(config, engine, local).await?);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let wasmount = wasmount.clone();
        let service = hyper::service::service_fn(move |request| {
            let wasmount = wasmount.clone();
            async move { Ok::<_, Infallible>(route(&wasmount, request, peer).await) }
        });
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    }
}

/// The site's router: its own pages, and wasmount's paths handed to wasmount.
async fn route(wasmount: &Server, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let path = request.uri().path();
    let for_wasmount = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if for_wasmount(MOUNT) || for_wasmount("/_wasmount") {
        return wasmount.handle(request, peer).await;
    }
    match path {
        "/" => page(
            StatusCode::OK,
            "<!doctype html><title>Data portal</title><h1>Data portal</h1>\
             <p>The site's own page. Its visualizations are at \
             <a href=\"/visualizations/\">/visualizations/</a>.</p>",
        ),
        _ => page(
            StatusCode::NOT_FOUND,
            "<!doctype html><p>Not found on this site.</p>",
        ),
    }
}

fn page(status: StatusCode, html: &'static str) -> Response<Body> {
    let body = Full::new(Bytes::from_static(html.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

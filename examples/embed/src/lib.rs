//! A web site of its own, an axum application, that mounts wasmount under `/visualizations/`
//! the way a Django site mounts a WSGI app: the site serves its pages and hands wasmount the
//! requests for the apps (`/visualizations/…`) and for wasmount's API (`/_wasmount/…`:
//! uploads, launches, health), all on the site's own listener. wasmount is a
//! `tower::Service` ([`Server::into_service`]) in the router like any other; on shutdown the
//! site stops taking connections, tells wasmount to end its long-lived streams, and waits for
//! the requests in flight.

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use wasmount::config::Config;
use wasmount::engine::WasmEngine;
use wasmount::server::{ClientAddr, Server};

/// Where the site mounts wasmount's apps.
pub const MOUNT: &str = "/visualizations";

/// Serves the site on `listener` until `shutdown` resolves, wasmount's apps from
/// `config.apps_dir` under [`MOUNT`]; then drains: requests in flight finish.
///
/// # Errors
///
/// If wasmount cannot start (engine, apps folder), or the listener fails.
pub async fn serve(
    listener: TcpListener,
    mut config: Config,
    engine: WasmEngine,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.base_path = MOUNT.to_owned();
    let local = listener.local_addr()?;
    let wasmount = Arc::new(Server::start(config, engine, local).await?);
    let site = router(wasmount.clone());
    let draining = async move {
        shutdown.await;
        wasmount.begin_draining();
    };
    axum::serve(
        listener,
        site.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(draining)
    .await?;
    Ok(())
}

/// The site's routes: its own pages, and wasmount's paths handed to wasmount whole (not
/// `nest_service`, which would strip the prefix wasmount serves under).
fn router(wasmount: Arc<Server>) -> Router {
    let apps = wasmount.into_service();
    let under_mount = format!("{MOUNT}/{{*rest}}");
    Router::new()
        .route("/", get(home))
        .route_service(MOUNT, apps.clone())
        .route_service(&format!("{MOUNT}/"), apps.clone())
        .route_service(&under_mount, apps.clone())
        .route_service("/_wasmount/{*rest}", apps)
        .fallback(not_found)
        .layer(axum::middleware::map_request(tell_client_addr))
}

/// Passes the client's address on to wasmount (its `x-forwarded-for`).
async fn tell_client_addr(
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Request {
    request.extensions_mut().insert(ClientAddr(addr));
    request
}

async fn home() -> Html<&'static str> {
    Html(
        "<!doctype html><title>Data portal</title><h1>Data portal</h1>\
         <p>The site's own page. Its visualizations are at \
         <a href=\"/visualizations/\">/visualizations/</a>.</p>",
    )
}

async fn not_found() -> (StatusCode, Html<&'static str>) {
    (
        StatusCode::NOT_FOUND,
        Html("<!doctype html><p>Not found on this site.</p>"),
    )
}

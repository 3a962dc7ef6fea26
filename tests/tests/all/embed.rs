//! wasmount embedded in an axum application (`examples/embed`) as a `tower::Service`: the
//! site's own pages beside wasmount's apps under `/visualizations/`, uploads and launches
//! through the site's listener, request bodies through axum's body type, and a shutdown that
//! lets requests in flight finish.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::net::SocketAddr;
use std::time::Duration;
use wasmount::config::Config;
use wasmount_tests::{ADMIN_TOKEN, TestResponse, guests, json, shared_engine, try_send};

async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: impl Into<Bytes>,
) -> TestResponse {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    try_send(addr, method, path, body.into(), &[("authorization", &auth)])
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_serves_its_pages_and_wasmount_apps_under_visualizations() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::HELLO, apps.path().join("hello.wasm")).unwrap();
    let mut config = Config::new(apps.path());
    config.admin_token = Some(ADMIN_TOKEN.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let site = tokio::spawn(wasmount_embed::serve(
        listener,
        config,
        shared_engine(),
        async {
            let _ = stopped.await;
        },
    ));

    let home = send(addr, Method::GET, "/", "").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text().contains("Data portal"), "{}", home.text());
    assert_eq!(
        send(addr, Method::GET, "/elsewhere", "").await.status,
        StatusCode::NOT_FOUND
    );

    let index = send(addr, Method::GET, "/visualizations/", "").await;
    assert!(
        index.text().contains("/visualizations/hello/"),
        "{}",
        index.text()
    );
    let hello = send(addr, Method::GET, "/visualizations/hello/", "").await;
    assert_eq!(hello.status, StatusCode::OK, "{}", hello.text());

    // An upload and a launch through the site's own listener.
    let echo = std::fs::read(guests::ECHO).unwrap();
    let uploaded = send(addr, Method::PUT, "/_wasmount/apps/echo", echo).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text());
    let echoed = json(&send(addr, Method::GET, "/visualizations/echo/x", "").await);
    assert_eq!(echoed["prefix"], "/visualizations/echo");
    let body = serde_json::json!({"app": "echo", "name": "dataset-7", "input": {"n": 7}});
    let launched = send(addr, Method::POST, "/_wasmount/instances", body.to_string()).await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    assert_eq!(
        json(&launched)["url"],
        format!("http://{addr}/visualizations/dataset-7/")
    );
    let opened = json(&send(addr, Method::GET, "/visualizations/dataset-7/", "").await);
    assert_eq!(opened["prefix"], "/visualizations/dataset-7");

    let posted = send(addr, Method::POST, "/visualizations/echo/form", "a=1&b=2").await;
    assert_eq!(
        json(&posted)["body_len"],
        7,
        "axum's body reaches the guest"
    );
    let forwarded = json(&send(addr, Method::GET, "/visualizations/echo/", "").await);
    assert_eq!(forwarded["headers"]["x-forwarded-for"], "127.0.0.1");

    // Shutdown drains: a request in flight finishes before the site stops.
    let slow = tokio::spawn(try_send(
        addr,
        Method::GET,
        "/visualizations/echo/?sleep_ms=2000",
        Bytes::new(),
        &[],
    ));
    let in_flight = || async {
        let page = send(addr, Method::GET, "/_wasmount/metrics", "")
            .await
            .text();
        page.contains("wasmount_requests_in_flight{app=\"echo\"} 1")
            .then_some(())
    };
    wasmount_tests::eventually(
        "the slow request to run",
        Duration::from_secs(60),
        in_flight,
    )
    .await;
    let _ = stop.send(());
    let finished = slow
        .await
        .unwrap()
        .expect("the request in flight completes");
    assert_eq!(finished.status, StatusCode::OK);
    site.await.unwrap().unwrap();
}

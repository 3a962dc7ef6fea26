//! wasmount embedded in another web server (`examples/embed`): the site's own pages beside
//! wasmount's apps under `/visualizations/`, and uploads and launches through the site's
//! listener.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::net::SocketAddr;
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

    let _ = stop.send(());
    site.await.unwrap().unwrap();
}

//! Slow clients: a body trickling in holds a connection, never a guest instance, so no client
//! can use up the instances other apps need; a body too slow to start gets 408.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wasmount::config::EngineConfig;
use wasmount::engine::WasmEngine;
use wasmount_tests::{TestServer, guests, try_send};

/// Opens a connection that announces a 100,000-byte body to `path` and sends one byte.
async fn slow_body(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: 100000\r\n\r\nx");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_request_bodies_hold_no_instance_and_other_apps_keep_answering() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    std::fs::copy(guests::HELLO, apps.path().join("hello.wasm")).unwrap();
    let engine = WasmEngine::new(&EngineConfig {
        max_instances: 16,
        ..EngineConfig::default()
    })
    .unwrap();
    let server = TestServer::start_in_with_engine(apps, engine, |_| {}).await;
    assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
    assert_eq!(server.get("/echo/").await.status, StatusCode::OK);

    // Four times as many slow bodies as there are instances.
    let mut slow = Vec::new();
    for _ in 0..64 {
        slow.push(slow_body(server.addr, "/echo/").await);
    }
    // Bounded: 40 requests, a byte to each slow body in between.
    let mut slowest = Duration::ZERO;
    for round in 0..40 {
        let started = Instant::now();
        let response = try_send(server.addr, Method::GET, "/hello/", Bytes::new(), &[])
            .await
            .unwrap();
        assert_eq!(
            response.status,
            StatusCode::OK,
            "round {round}: {}",
            response.text()
        );
        slowest = slowest.max(started.elapsed());
        if round % 10 == 0 {
            for stream in &mut slow {
                let _ = stream.write_all(b"x").await;
            }
        }
    }
    eprintln!("slowest of 40 hello requests beside 64 slow bodies: {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_does_not_start_in_time_gets_408() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    let server = TestServer::start_in(apps, |config| {
        config.body_read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stream = slow_body(server.addr, "/echo/").await;
    let started = Instant::now();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_string(&mut answer))
        .await
        .expect("an answer, then the connection closes")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 500ms"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    // A body sent at a normal pace is served as before.
    let body = vec![b'y'; 200_000];
    let served = server.send(Method::POST, "/echo/", body, &[]).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
}

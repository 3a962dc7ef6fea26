//! `wasmount serve` end to end: guests built from source, a real server on a free port, real
//! HTTP. Each test asserts what a user would see.

use bytes::Bytes;
use futures::future::join_all;
use http::{Method, StatusCode};
use std::time::{Duration, Instant};
use wasmount_tests::{TestResponse, TestServer, guests, json, try_send};

/// A field of the echo guest's JSON reply, or the value of a request header it saw, as text.
fn echoed(response: &TestResponse, key: &str) -> String {
    let reply = json(response);
    let field = reply
        .get(key)
        .or_else(|| reply["headers"].get(key))
        .unwrap_or_else(|| panic!("no {key} in {reply}"));
    match field {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_sees_path_without_prefix_query_and_forwarded_headers() {
    let server = TestServer::start(&[("echo", guests::ECHO)]).await;
    let response = server.get("/echo/a/b?x=1&y=%20z").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(echoed(&response, "path"), "/a/b");
    assert_eq!(echoed(&response, "query"), "x=1&y=%20z");
    assert_eq!(echoed(&response, "prefix"), "/echo");
    assert_eq!(echoed(&response, "x-forwarded-prefix"), "/echo");
    assert_eq!(echoed(&response, "x-forwarded-proto"), "http");
    assert_eq!(echoed(&response, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(echoed(&response, "method"), "GET");

    let root = server.get("/echo/").await;
    assert_eq!(echoed(&root, "path"), "/");
}

#[tokio::test(flavor = "multi_thread")]
async fn app_without_trailing_slash_redirects_and_unknown_apps_are_404() {
    let server = TestServer::start(&[("echo", guests::ECHO)]).await;
    let redirect = server.get("/echo?q=1").await;
    assert_eq!(redirect.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(redirect.header("location"), "/echo/?q=1");

    let missing = server.get("/nope/anything").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.text(), "no app named `nope` is mounted\n");
    assert_eq!(server.get("/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        server.get("/Not_An_App/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_endpoints_and_index_page() {
    let server = TestServer::start(&[("hello", guests::HELLO), ("echo", guests::ECHO)]).await;
    let health = server.get("/_wasmount/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.text(), r#"{"status":"ok","apps":2,"instances":0}"#);
    assert_eq!(
        server.get("/_wasmount/nothing").await.status,
        StatusCode::NOT_FOUND
    );

    let index = server.get("/").await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.header("content-type").starts_with("text/html"));
    let page = index.text();
    assert!(page.contains(r#"<a href="/echo/">echo</a>"#), "{page}");
    assert!(page.contains(r#"<a href="/hello/">hello</a>"#), "{page}");

    let post = server.send(Method::POST, "/", Bytes::new(), &[]).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_app_answers_with_relative_links() {
    let server = TestServer::start(&[("hello", guests::HELLO)]).await;
    let page = server.get("/hello/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Hello from wasmount!"));
    assert!(page.text().contains(r#"href="greet/world""#));
    let greeting = server.get("/hello/greet/world").await;
    assert_eq!(greeting.text(), "Hello, world!\n");
    assert_eq!(
        server.get("/hello/missing").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_request_body_reaches_the_guest() {
    let server = TestServer::start(&[("echo", guests::ECHO)]).await;
    let body = vec![b'x'; 3 << 19]; // 1.5 MiB
    let response = server.send(Method::POST, "/echo/upload", body, &[]).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(echoed(&response, "body_len"), (3 << 19).to_string());
    assert_eq!(echoed(&response, "method"), "POST");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_streamed_response_arrives_whole() {
    let server = TestServer::start(&[("echo", guests::ECHO)]).await;
    let total = 9_000_001;
    let response = server.get(&format!("/echo/stream?bytes={total}")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body.len(), total);
    let intact = response
        .body
        .iter()
        .enumerate()
        .all(|(i, byte)| *byte == b'0' + (i % 10) as u8);
    assert!(intact, "streamed body content is corrupted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trapping_guest_gets_500_and_nothing_else_is_hurt() {
    let server = TestServer::start(&[("trap", guests::TRAP), ("hello", guests::HELLO)]).await;
    for _ in 0..3 {
        let failed = server.get("/trap/").await;
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            failed.text().contains("app `trap` failed"),
            "{}",
            failed.text()
        );
        assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
        let recovered = server.get("/trap/ok").await;
        assert_eq!(recovered.status, StatusCode::OK);
        assert_eq!(recovered.text(), "still alive\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_requests_over_two_apps_all_succeed() {
    let server = TestServer::start(&[("hello", guests::HELLO), ("echo", guests::ECHO)]).await;
    let started = Instant::now();
    let requests = (0..200).map(|i| {
        let path = if i % 2 == 0 {
            "/hello/".to_owned()
        } else {
            format!("/echo/n/{i}")
        };
        let addr = server.addr;
        async move { try_send(addr, Method::GET, &path, Bytes::new(), &[]).await }
    });
    let responses = tokio::time::timeout(Duration::from_secs(60), join_all(requests))
        .await
        .expect("200 concurrent requests finish within 60 s");
    for (i, response) in responses.into_iter().enumerate() {
        let response = response.unwrap_or_else(|error| panic!("request {i} failed: {error:#}"));
        assert_eq!(
            response.status,
            StatusCode::OK,
            "request {i}: {}",
            response.text()
        );
        if i % 2 == 1 {
            assert_eq!(echoed(&response, "path"), format!("/n/{i}"));
        }
    }
    eprintln!("200 concurrent requests took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_in_the_folder_are_skipped_and_the_rest_served() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::write(apps.path().join("junk.wasm"), b"this is not wasm").unwrap();
    // A valid core module (magic + version 1): not a component.
    std::fs::write(apps.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(
        apps.path().join("truncated.wasm"),
        &std::fs::read(guests::HELLO).unwrap()[..4000],
    )
    .unwrap();
    std::fs::copy(guests::HELLO, apps.path().join("Bad_Name.wasm")).unwrap();
    std::fs::copy(guests::HELLO, apps.path().join("hello.wasm")).unwrap();
    let server = TestServer::start_in(apps, |_| {}).await;

    assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
    for skipped in ["/junk/", "/core/", "/truncated/", "/Bad_Name/"] {
        assert_eq!(
            server.get(skipped).await.status,
            StatusCode::NOT_FOUND,
            "{skipped}"
        );
    }
    assert_eq!(
        server.get("/_wasmount/health").await.text(),
        r#"{"status":"ok","apps":1,"instances":0}"#
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn base_path_mounts_apps_below_it() {
    let server = TestServer::start_with(&[("echo", guests::ECHO)], |config| {
        config.base_path = "/visualizations".into();
    })
    .await;
    let response = server.get("/visualizations/echo/x?y=1").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(echoed(&response, "prefix"), "/visualizations/echo");
    assert_eq!(echoed(&response, "path"), "/x");
    assert_eq!(server.get("/echo/x").await.status, StatusCode::NOT_FOUND);
    let redirect = server.get("/visualizations/echo").await;
    assert_eq!(redirect.header("location"), "/visualizations/echo/");
    assert!(
        server
            .get("/visualizations/")
            .await
            .text()
            .contains(r#"href="/visualizations/echo/""#)
    );
    assert_eq!(server.get("/_wasmount/health").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_requests_in_flight_finish() {
    let mut server = TestServer::start_with(&[("echo", guests::ECHO)], |config| {
        config.public_metrics = true;
    })
    .await;
    let addr = server.addr;
    let slow = tokio::spawn(try_send(
        addr,
        Method::GET,
        "/echo/slow?sleep_ms=2000",
        Bytes::new(),
        &[],
    ));
    server.wait_in_flight("echo", 1).await;
    let stopping = server.begin_shutdown();

    let response = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(echoed(&response, "path"), "/slow");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("server stops after the request")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_overruns_the_request_timeout_gets_504() {
    let server = TestServer::start_with(
        &[("echo", guests::ECHO), ("hello", guests::HELLO)],
        |config| {
            config.request_timeout = Duration::from_millis(300);
        },
    )
    .await;
    // Compiled and serving first, so the time below is the deadline's alone.
    assert_eq!(server.get("/echo/").await.status, StatusCode::OK);
    let started = Instant::now();
    let response = server.get("/echo/?sleep_ms=5000").await;
    assert_eq!(response.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn guests_get_no_environment_no_files_and_no_outgoing_http() {
    let server = TestServer::start(&[("echo", guests::ECHO)]).await;
    assert_eq!(
        server.get("/echo/env").await.text(),
        "2 variables\nWASMOUNT_APP=echo\nWASMOUNT_BASE_PATH=",
        "only what the host grants"
    );
    assert!(server.get("/echo/fs").await.text().starts_with("no files:"));

    // A real listener the guest tries to reach: the request is refused before any connection.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", target.local_addr().unwrap());
    let fetch = server.get(&format!("/echo/fetch?url={url}")).await;
    assert_eq!(fetch.status, StatusCode::OK);
    // (wstd reports the denial as a reset of the request body stream, which fails first.)
    assert!(fetch.text().starts_with("refused:"), "{}", fetch.text());
    let socket = server
        .get(&format!(
            "/echo/connect?addr={}",
            target.local_addr().unwrap()
        ))
        .await;
    assert!(
        socket.text().starts_with("refused:"),
        "no sockets: {}",
        socket.text()
    );
    let connected = tokio::time::timeout(Duration::from_millis(200), target.accept()).await;
    assert!(connected.is_err(), "the guest must not reach the network");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_oversized_request_heads_are_cut_off() {
    let server = TestServer::start_with(&[("hello", guests::HELLO)], |config| {
        config.header_read_timeout = Duration::from_millis(300);
        config.max_header_bytes = 16 << 10;
    })
    .await;
    let big = "x".repeat(20_000);
    let oversized = server
        .send(Method::GET, "/hello/", Bytes::new(), &[("x-big", &big)])
        .await;
    assert_eq!(
        oversized.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );

    // The limit is exact: a header of 1.5 times the limit is refused too (the parser alone
    // lets up to about twice its buffer through).
    let server_default = TestServer::start(&[("hello", guests::HELLO)]).await;
    let big = "x".repeat(100 << 10);
    let over = server_default
        .send(Method::GET, "/hello/", Bytes::new(), &[("x-big", &big)])
        .await;
    assert_eq!(over.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let fits = "x".repeat(60 << 10);
    let under = server_default
        .send(Method::GET, "/hello/", Bytes::new(), &[("x-big", &fits)])
        .await;
    assert_eq!(under.status, StatusCode::OK);

    let names: Vec<String> = (0..150).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let too_many = server
        .send(Method::GET, "/hello/", Bytes::new(), &many)
        .await;
    assert_eq!(too_many.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // Slowloris: a client that starts a request head and never finishes it is disconnected.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /hello/ HTTP/1.1\r\nhost: x\r\nx-slow: 1")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest))
        .await
        .expect("the server closes a slow client's connection")
        .ok();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        server.get("/hello/").await.status,
        StatusCode::OK,
        "others are still served"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_connections_are_closed() {
    let server = TestServer::start_with(&[("hello", guests::HELLO)], |config| {
        config.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut client = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    client
        .write_all(b"GET /_wasmount/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let read = client.read(&mut buffer).await.unwrap();
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    // Then the client keeps the connection open and sends nothing.
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buffer)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "an idle connection is closed: {closed:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_wide_concurrency_limit_applies_per_app() {
    let server = TestServer::start_with(
        &[("echo", guests::ECHO), ("hello", guests::HELLO)],
        |config| {
            config.max_concurrent_requests = Some(1);
            config.public_metrics = true;
        },
    )
    .await;
    assert_eq!(server.get("/echo/").await.status, StatusCode::OK);
    let addr = server.addr;
    let slow =
        (0..2).map(|_| try_send(addr, Method::GET, "/echo/?sleep_ms=3000", Bytes::new(), &[]));
    let (statuses, hello) = tokio::join!(join_all(slow), async {
        server.wait_in_flight("echo", 1).await;
        server.get("/hello/").await.status
    });
    let mut statuses: Vec<u16> = statuses
        .into_iter()
        .map(|r| r.unwrap().status.as_u16())
        .collect();
    statuses.sort();
    assert_eq!(statuses, [200, 503], "one echo request at a time");
    assert_eq!(hello, StatusCode::OK, "the limit is per app");
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let forged = [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-port", "1"),
        ("forwarded", "for=6.6.6.6;host=evil.example"),
        ("x-real-ip", "6.6.6.6"),
    ];
    let anyone = TestServer::start(&[("echo", guests::ECHO)]).await;
    let seen = anyone
        .send(Method::GET, "/echo/", Bytes::new(), &forged)
        .await;
    assert_eq!(echoed(&seen, "x-forwarded-host"), anyone.addr.to_string());
    assert_eq!(echoed(&seen, "x-forwarded-proto"), "http");
    assert_eq!(echoed(&seen, "x-forwarded-for"), "127.0.0.1");
    let headers = &json(&seen)["headers"];
    for dropped in ["x-forwarded-port", "forwarded", "x-real-ip"] {
        assert!(
            headers.get(dropped).is_none(),
            "{dropped} reached the guest: {headers}"
        );
    }

    let behind_proxy = TestServer::start_with(&[("echo", guests::ECHO)], |config| {
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let seen = behind_proxy
        .send(Method::GET, "/echo/", Bytes::new(), &forged)
        .await;
    assert_eq!(echoed(&seen, "x-forwarded-host"), "evil.example");
    assert_eq!(echoed(&seen, "x-forwarded-proto"), "https");
    assert_eq!(echoed(&seen, "x-forwarded-for"), "6.6.6.6, 127.0.0.1");
    assert_eq!(echoed(&seen, "x-real-ip"), "6.6.6.6");
}

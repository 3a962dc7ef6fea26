//! Request ids and the access log, on the real program: every response carries an
//! `x-request-id` (the client's when sane), the guest sees the same id, the guest's log
//! lines carry it, and `--access-log json|combined` writes one line per request.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::Duration;
use wasmount_tests::{ServerProcess, eventually, guests, try_send};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

fn apps_with_echo() -> tempfile::TempDir {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    apps
}

#[tokio::test(flavor = "multi_thread")]
async fn one_request_is_followed_from_the_access_log_to_the_guest_output() {
    let apps = apps_with_echo();
    let log_file = apps.path().join("access.log");
    let args = [
        "--apps",
        apps.path().to_str().unwrap(),
        "--access-log",
        "json",
        "--access-log-file",
        log_file.to_str().unwrap(),
    ];
    let server = ServerProcess::start(BIN, &args, &[]);
    let headers = [("x-request-id", "trace-42.a:b"), ("user-agent", "tests")];
    let sent = try_send(
        server.addr,
        Method::GET,
        "/echo/log?msg=hello-from-guest",
        Bytes::new(),
        &headers,
    )
    .await
    .unwrap();
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(
        sent.header("x-request-id"),
        "trace-42.a:b",
        "the client's sane id is kept"
    );

    // The guest saw it, its output carries it, and the access log line says it all.
    let echoed = try_send(
        server.addr,
        Method::GET,
        "/echo/",
        Bytes::new(),
        &[("x-request-id", "seen")],
    )
    .await
    .unwrap();
    assert!(
        echoed.text().contains("seen"),
        "the guest sees the id: {}",
        echoed.text()
    );
    eventually(
        "the guest's line tagged with the id",
        Duration::from_secs(60),
        || async {
            let log = server.log.lock().unwrap();
            log.iter()
                .any(|line| line.contains("hello-from-guest") && line.contains("trace-42.a:b"))
                .then_some(())
        },
    )
    .await;
    let first = eventually("the access log line", Duration::from_secs(60), || async {
        let text = std::fs::read_to_string(&log_file).ok()?;
        text.lines().next().map(str::to_owned)
    })
    .await;
    let line: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(line["request_id"], "trace-42.a:b");
    assert_eq!(line["app"], "echo");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/echo/log?msg=hello-from-guest");
    assert_eq!(line["status"], 200);
    assert_eq!(line["client"], "127.0.0.1");
    assert!(line["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(line["time"].as_str().unwrap().ends_with('Z'));

    // An id that is not sane is replaced; a request that matches nothing is logged too.
    let odd = try_send(
        server.addr,
        Method::GET,
        "/nothing/",
        Bytes::new(),
        &[("x-request-id", "a b\"c")],
    )
    .await
    .unwrap();
    assert_eq!(odd.status, StatusCode::NOT_FOUND);
    let made = odd.header("x-request-id").to_owned();
    assert!(!made.is_empty() && made != "a b\"c");
    let lines = eventually(
        "three access log lines",
        Duration::from_secs(60),
        || async {
            let text = std::fs::read_to_string(&log_file).ok()?;
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            (lines.len() >= 3).then_some(lines)
        },
    )
    .await;
    let last: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    assert_eq!(last["request_id"], made.as_str());
    assert_eq!(last["app"], serde_json::Value::Null);
    assert_eq!(last["status"], 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_combined_format_is_apaches_with_id_app_and_duration() {
    let apps = apps_with_echo();
    let args = [
        "--apps",
        apps.path().to_str().unwrap(),
        "--access-log",
        "combined",
    ];
    let server = ServerProcess::start(BIN, &args, &[]);
    let headers = [
        ("x-request-id", "c-1"),
        ("user-agent", "curl/8"),
        ("referer", "http://r/"),
    ];
    let sent = try_send(
        server.addr,
        Method::GET,
        "/echo/?q=1",
        Bytes::new(),
        &headers,
    )
    .await
    .unwrap();
    assert_eq!(sent.status, StatusCode::OK);
    let line = eventually(
        "the combined line on stderr",
        Duration::from_secs(60),
        || async {
            let log = server.log.lock().unwrap();
            log.iter()
                .find(|line| line.contains("\"GET /echo/?q=1 HTTP/1.1\""))
                .cloned()
        },
    )
    .await;
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains("+0000] \"GET /echo/?q=1 HTTP/1.1\" 200 "),
        "{line}"
    );
    assert!(
        line.contains("\"http://r/\" \"curl/8\" c-1 echo "),
        "{line}"
    );

    let refused = std::process::Command::new(BIN)
        .args(["serve", "--access-log", "xml"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("use json or combined"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apps_guest_output_can_be_followed_live_with_the_token() {
    use http_body_util::BodyExt as _;
    let server = wasmount_tests::TestServer::start_admin(&[("echo", guests::ECHO)], |_| {}).await;
    assert_eq!(server.get("/echo/").await.status, StatusCode::OK);
    let refused = server.get("/_wasmount/apps/echo/log").await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "guest output needs the token"
    );
    let missing = server
        .admin(Method::GET, "/_wasmount/apps/nope/log", "")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Follow, then make the guest write; the event arrives with the request's id.
    let response = follow_echo(server.addr).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let opening = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&opening).starts_with(": following"));
    let headers = [("x-request-id", "followed-1")];
    let logged = server
        .send(Method::GET, "/echo/log?msg=live-line", "", &headers)
        .await;
    assert_eq!(logged.status, StatusCode::OK);
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while !(seen.contains("live-line") && seen.contains("stderr")) {
            let frame = body.frame().await.unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap()));
        }
    })
    .await;
    assert!(found.is_ok(), "no event within 60 s: {seen}");
    assert!(
        seen.contains(r#"data: {"line":"live-line","request_id":"followed-1","stream":"stdout"}"#),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_of_guest_output_never_holds_up_a_shutdown() {
    use http_body_util::BodyExt as _;
    let mut server = wasmount_tests::TestServer::start_admin(&[("echo", guests::ECHO)], |c| {
        c.shutdown_timeout = Duration::from_secs(600);
    })
    .await;
    let response = follow_echo(server.addr).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap(); // the opening comment: following now

    let task = server.begin_shutdown();
    // The grace period is 10 minutes: ending well before it means the stream was ended.
    let stopped = tokio::time::timeout(Duration::from_secs(120), task).await;
    assert!(stopped.is_ok(), "the shutdown waited for the follower");
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream did not end");
}

/// `GET /_wasmount/apps/echo/log` with the token, the answer's body left to stream.
async fn follow_echo(addr: std::net::SocketAddr) -> http::Response<hyper::body::Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("/_wasmount/apps/echo/log")
        .header("host", addr.to_string())
        .header(
            "authorization",
            format!("Bearer {}", wasmount_tests::ADMIN_TOKEN),
        )
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    sender.send_request(request).await.unwrap()
}

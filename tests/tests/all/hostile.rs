//! Hostile guests: each misbehaviour gets its client a clear status within a bound, and a
//! well-behaved app on the same server keeps answering during and after.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmount_tests::{ServerProcess, TestServer, eventually, guests, try_send};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

const TIMEOUT: Duration = Duration::from_millis(500);

async fn server() -> TestServer {
    let server = TestServer::start_with(
        &[("bad", guests::HOSTILE), ("hello", guests::HELLO)],
        |config| {
            config.request_timeout = TIMEOUT;
            config.instance_memory_bytes = 64 << 20;
        },
    )
    .await;
    // Both apps compiled and answering, so the timings below measure only the misbehaviour.
    assert_eq!(server.get("/bad/ok").await.text(), "ok\n");
    assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
    server
}

/// Asserts that `hello` answers 200, each within a second, while `during` runs, and that it
/// answered at least once.
async fn hello_keeps_answering<F: Future>(server: &TestServer, during: F) -> F::Output {
    let addr = server.addr;
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let watcher = tokio::spawn(async move {
        let mut answered = 0;
        // Bounded in count; the checks run once more after `during` ends.
        for _ in 0..500 {
            let last_round = stop.load(Ordering::SeqCst);
            let started = Instant::now();
            let response = try_send(addr, Method::GET, "/hello/", Bytes::new(), &[])
                .await
                .expect("hello answers");
            assert_eq!(response.status, StatusCode::OK, "{}", response.text());
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "hello slowed to {:?}",
                started.elapsed()
            );
            answered += 1;
            if last_round {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answered
    });
    let output = during.await;
    done.store(true, Ordering::SeqCst);
    let answered = watcher.await.expect("the checks on hello passed");
    assert!(answered > 0, "hello was never asked");
    output
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_looping_before_responding_gets_504_within_the_timeout() {
    let server = server().await;
    let started = Instant::now();
    let response = hello_keeps_answering(&server, server.get("/bad/loop")).await;
    assert_eq!(response.status, StatusCode::GATEWAY_TIMEOUT);
    let elapsed = started.elapsed();
    eprintln!("504 after {elapsed:?}");
    // The timeout plus one 1 ms epoch tick (measured: ~507 ms), with room for a loaded CI
    // machine running other tests at the same time.
    assert!(
        elapsed >= TIMEOUT && elapsed < TIMEOUT + Duration::from_millis(400),
        "{elapsed:?}"
    );
    assert_eq!(server.get("/bad/ok").await.text(), "ok\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_looping_after_the_headers_gets_its_connection_closed() {
    let server = server().await;
    let started = Instant::now();
    let outcome = hello_keeps_answering(
        &server,
        try_send(
            server.addr,
            Method::GET,
            "/bad/loop-after-headers",
            Bytes::new(),
            &[],
        ),
    )
    .await;
    assert!(
        outcome.is_err(),
        "the body must not look complete: {outcome:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < TIMEOUT + Duration::from_millis(500),
        "{elapsed:?}"
    );
    assert_eq!(server.get("/bad/ok").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_hogs_recursion_and_header_floods_get_500_and_the_host_survives() {
    // A server process of its own: its memory is measured alone, whatever the other tests
    // in this binary do meanwhile.
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::HOSTILE, apps.path().join("bad.wasm")).unwrap();
    std::fs::copy(guests::HELLO, apps.path().join("hello.wasm")).unwrap();
    let folder = apps.path().to_str().unwrap();
    let server = ServerProcess::start(BIN, &["--apps", folder, "--memory", "64MiB"], &[]);
    let (addr, pid) = (server.addr, server.child.id());
    let get = |path: &'static str| async move {
        try_send(addr, Method::GET, path, Bytes::new(), &[])
            .await
            .map_or(StatusCode::BAD_GATEWAY, |response| response.status)
    };
    let compiled = || async { (get("/bad/ok").await == StatusCode::OK).then_some(()) };
    eventually(
        "the hostile app to answer",
        Duration::from_secs(120),
        compiled,
    )
    .await;
    assert_eq!(get("/hello/").await, StatusCode::OK);
    let rss_before = rss_kib(pid);
    for path in [
        "/bad/alloc",
        "/bad/alloc",
        "/bad/recurse",
        "/bad/headers",
        "/bad/big-header",
    ] {
        assert_eq!(get(path).await, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(get("/bad/ok").await, StatusCode::OK, "after {path}");
        assert_eq!(get("/hello/").await, StatusCode::OK, "after {path}");
    }
    let grown = rss_kib(pid).saturating_sub(rss_before);
    assert!(
        grown < 256 << 10,
        "host memory grew by {grown} KiB with a 64 MiB guest limit"
    );
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

//! Hostile guests: each misbehaviour gets its client a clear status within a bound, and a
//! well-behaved app on the same server keeps answering during and after.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmount_tests::{TestServer, guests, try_send};

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
    let server = server().await;
    let rss_before = rss_kib();
    for path in [
        "/bad/alloc",
        "/bad/alloc",
        "/bad/recurse",
        "/bad/headers",
        "/bad/big-header",
    ] {
        let response = hello_keeps_answering(&server, server.get(path)).await;
        assert_eq!(
            response.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}: {}",
            response.text()
        );
        assert_eq!(
            server.get("/bad/ok").await.status,
            StatusCode::OK,
            "after {path}"
        );
    }
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 256 << 10,
        "host memory grew by {grown} KiB with a 64 MiB guest limit"
    );
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

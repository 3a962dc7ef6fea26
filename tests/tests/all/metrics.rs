//! The metrics page: real requests (answered, trapping, timing out, out of memory, matching
//! nothing, to a launched instance), then the scraped page parsed and its counts checked,
//! the token required unless `--public-metrics`, and `promtool check metrics` passing
//! (`.ci/run` installs Debian's `prometheus` package for it; without promtool the test fails).

use http::{Method, StatusCode};
use std::time::Duration;
use wasmount_tests::{TestServer, guests};

/// The value of the sample `name{labels}` on `page`, if it is there.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_page_counts_requests_and_guest_failures_by_app() {
    let apps = [
        ("hello", guests::HELLO),
        ("echo", guests::ECHO),
        ("hostile", guests::HOSTILE),
    ];
    let server = TestServer::start_admin(&apps, |config| {
        config.request_timeout = Duration::from_secs(2);
        config.instance_memory_bytes = 16 << 20;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
    }
    assert_eq!(
        server.get("/echo/trap").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let slow = server.get("/echo/?sleep_ms=10000").await;
    assert_eq!(slow.status, StatusCode::GATEWAY_TIMEOUT);
    let greedy = server.get("/hostile/fill?mib=64").await;
    assert_eq!(
        greedy.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        greedy.text()
    );
    assert_eq!(
        server.get("/nothing-here/").await.status,
        StatusCode::NOT_FOUND
    );
    let body = r#"{"app": "echo", "name": "dataset-7", "input": {}}"#;
    let launched = server
        .admin(Method::POST, "/_wasmount/instances", body)
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    assert_eq!(server.get("/dataset-7/").await.status, StatusCode::OK);

    let scraped = server.admin(Method::GET, "/_wasmount/metrics", "").await;
    assert_eq!(scraped.status, StatusCode::OK);
    assert!(
        scraped
            .header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    let page = scraped.text();
    let count =
        |series: &str| sample(&page, series).unwrap_or_else(|| panic!("no {series} in\n{page}"));
    assert_eq!(
        count(r#"wasmount_requests_total{app="hello",status="200"}"#),
        3.0
    );
    assert_eq!(
        count(r#"wasmount_requests_total{app="echo",status="500"}"#),
        1.0
    );
    assert_eq!(
        count(r#"wasmount_requests_total{app="echo",status="504"}"#),
        1.0
    );
    assert_eq!(
        count(r#"wasmount_requests_total{app="(none)",status="404"}"#),
        1.0
    );
    assert_eq!(
        count(r#"wasmount_requests_total{app="echo",status="200"}"#),
        1.0,
        "a launched instance counts under its app"
    );
    assert!(
        !page.contains("dataset-7"),
        "instance names never become labels"
    );
    assert_eq!(
        count(r#"wasmount_guest_failures_total{app="echo",kind="trap"}"#),
        1.0
    );
    assert_eq!(
        count(r#"wasmount_guest_failures_total{app="echo",kind="timeout"}"#),
        1.0
    );
    assert_eq!(
        count(r#"wasmount_guest_failures_total{app="hostile",kind="memory"}"#),
        1.0
    );
    assert_eq!(
        count(r#"wasmount_request_duration_seconds_count{app="hello"}"#),
        3.0
    );
    assert_eq!(count(r#"wasmount_requests_in_flight{app="hello"}"#), 0.0);
    assert_eq!(count(r#"wasmount_apps{state="ready"}"#), 3.0);
    assert_eq!(count("wasmount_launches"), 1.0);
    assert_eq!(count(r#"wasmount_build_info{version="0.1.0"}"#), 1.0);
    assert!(count(r#"wasmount_compile_seconds_count{tier="optimized"}"#) >= 1.0);
    assert!(count("process_resident_memory_bytes") > 1e6);
    assert!(count("process_open_fds") > 3.0);
    assert!(count("process_cpu_seconds_total") > 0.0);
    assert!(sample(&page, r#"wasmount_pool{name="unused_warm_memories"}"#).is_some());
    promtool_accepts(&page);

    let anonymous = server.get("/_wasmount/metrics").await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "the token is needed"
    );
    let wrong = server
        .send(
            Method::GET,
            "/_wasmount/metrics",
            "",
            &[("authorization", "Bearer nope-nope-nope-nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn public_metrics_need_no_token() {
    let server = TestServer::start_with(&[("hello", guests::HELLO)], |config| {
        config.public_metrics = true;
    })
    .await;
    assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
    let scraped = server.get("/_wasmount/metrics").await;
    assert_eq!(scraped.status, StatusCode::OK);
    assert!(
        scraped
            .text()
            .contains(r#"wasmount_requests_total{app="hello",status="200"} 1"#)
    );
    let posted = server
        .send(Method::POST, "/_wasmount/metrics", "", &[])
        .await;
    assert_eq!(posted.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Runs `promtool check metrics` on `page`; a missing promtool fails the test, naming it.
fn promtool_accepts(page: &str) {
    use std::io::Write as _;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        panic!(
            "missing: promtool, which checks the metrics page \
             (Debian: apt-get install prometheus; `bash .ci/run` installs it as root)"
        );
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{page}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

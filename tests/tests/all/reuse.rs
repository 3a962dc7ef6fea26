//! Instance reuse, opted into per app (manifest `[reuse]`): a guest-side counter grows across
//! requests only when reuse is on; a trap, a timeout, the request limit and the idle timeout
//! each give the next request a fresh instance; launched instances never share one.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::Duration;
use wasmount_tests::{TestServer, guests};

/// A server with the echo guest as `echo` and `manifest` as its settings.
async fn echo_with(manifest: &str) -> TestServer {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    std::fs::write(apps.path().join("echo.toml"), manifest).unwrap();
    TestServer::start_in(apps, |config| {
        config.admin_token = Some(wasmount_tests::ADMIN_TOKEN.into());
    })
    .await
}

async fn count(server: &TestServer, prefix: &str) -> u64 {
    let response = server.get(&format!("{prefix}/count")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.text().trim().parse().unwrap()
}

async fn counts(server: &TestServer, prefix: &str, n: usize) -> Vec<u64> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(count(server, prefix).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn without_reuse_every_request_gets_a_fresh_instance() {
    let server = echo_with("").await;
    assert_eq!(counts(&server, "/echo", 5).await, [1, 1, 1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_reuse_globals_persist_up_to_the_request_limit() {
    let server = echo_with("[reuse]\nmax_requests = 3\n").await;
    assert_eq!(counts(&server, "/echo", 7).await, [1, 2, 3, 1, 2, 3, 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_or_a_timeout_discards_the_instance() {
    let server =
        echo_with("[limits]\nrequest_timeout = \"300ms\"\n[reuse]\nmax_requests = 100\n").await;
    assert_eq!(counts(&server, "/echo", 2).await, [1, 2]);
    let trapped = server.get("/echo/trap").await;
    assert_eq!(trapped.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        counts(&server, "/echo", 2).await,
        [1, 2],
        "fresh after the trap"
    );
    let late = server.get("/echo/?sleep_ms=2000").await;
    assert_eq!(late.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(count(&server, "/echo").await, 1, "fresh after the timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_instances_are_dropped_after_the_idle_timeout() {
    let server = echo_with("[reuse]\nmax_requests = 100\nidle_timeout = \"200ms\"\n").await;
    assert_eq!(counts(&server, "/echo", 2).await, [1, 2]);
    // Each probe waits longer than the idle timeout first (a probe that found the instance
    // alive has just used it again); bounded, so a slow sweep is waited for, not assumed.
    let fresh_after_idling = || async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        (count(&server, "/echo").await == 1).then_some(())
    };
    wasmount_tests::eventually(
        "the idle instance to be dropped",
        Duration::from_secs(30),
        fresh_after_idling,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn launched_instances_each_reuse_their_own_instances() {
    let server = echo_with("[reuse]\nmax_requests = 100\n").await;
    for (name, input) in [("inst-a", r#"{"a": 1}"#), ("inst-b", r#"{"b": 2}"#)] {
        let body = format!(r#"{{"app": "echo", "name": "{name}", "input": {input}}}"#);
        let launched = server
            .admin(Method::POST, "/_wasmount/instances", Bytes::from(body))
            .await;
        assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    }
    assert_eq!(counts(&server, "/inst-a", 2).await, [1, 2]);
    assert_eq!(count(&server, "/inst-b").await, 1, "not inst-a's instance");
    assert_eq!(count(&server, "/echo").await, 1, "nor the app's own");
    // Each still sees its own input.
    let b = server.get("/inst-b/env").await.text();
    assert!(b.contains("INPUT_JSON={\"b\": 2}"), "{b}");
    let a = server.get("/inst-a/env").await.text();
    assert!(a.contains("INPUT_JSON={\"a\": 1}"), "{a}");
    assert_eq!(count(&server, "/inst-a").await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_request_keeps_its_apps_concurrency_slot() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ONCE, apps.path().join("once.wasm")).unwrap();
    let manifest = "[limits]\nmax_concurrent_requests = 1\n[reuse]\nmax_requests = 100\n";
    std::fs::write(apps.path().join("once.toml"), manifest).unwrap();
    let server = TestServer::start_in(apps, |config| config.public_metrics = true).await;
    // A fresh instance serves, then waits for reuse.
    assert_eq!(server.get("/once/").await.text(), "served\n");
    // The next request gets it, which returns without a response: the request is replayed
    // on a fresh instance, which takes 3 s.
    let addr = server.addr;
    let replayed = tokio::spawn(async move {
        wasmount_tests::try_send(addr, Method::GET, "/once/?sleep_ms=3000", Bytes::new(), &[])
            .await
            .unwrap()
    });
    server.wait_in_flight("once", 1).await;
    // Meanwhile the app is at its limit of one request: the replay still holds the slot.
    let meanwhile = server.get("/once/").await;
    assert_eq!(
        meanwhile.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        meanwhile.text()
    );
    let replayed = replayed.await.unwrap();
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.text());
    assert_eq!(server.get("/once/").await.text(), "served\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relaunch_under_a_deleted_instances_name_never_gets_its_reused_instance() {
    let server = echo_with("[reuse]\nmax_requests = 100\n").await;
    let auth = format!("Bearer {}", wasmount_tests::ADMIN_TOKEN);
    let launch = |input: &'static str| {
        let body = serde_json::json!({"app": "echo", "name": "ds", "input": input});
        let auth = auth.clone();
        let server = &server;
        async move {
            let headers = [("authorization", auth.as_str())];
            server
                .send(
                    Method::POST,
                    "/_wasmount/instances",
                    body.to_string(),
                    &headers,
                )
                .await
        }
    };
    assert_eq!(launch("first user").await.status, StatusCode::CREATED);
    assert!(
        server
            .get("/ds/env")
            .await
            .text()
            .contains("INPUT_JSON=\"first user\"")
    );
    // That instance now waits for reuse. Delete the launch and launch again under its name.
    let deleted = server
        .send(
            Method::DELETE,
            "/_wasmount/instances/ds",
            Bytes::new(),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(launch("second user").await.status, StatusCode::CREATED);
    let env = server.get("/ds/env").await.text();
    assert!(env.contains("INPUT_JSON=\"second user\""), "{env}");
    assert!(!env.contains("first user"), "{env}");
}

//! Forward auth against a real Django platform (`wasmount_tests::django`: sessions, a
//! per-dataset read permission, a check view): a reader opens the launch, another user gets
//! 403, an anonymous client the login redirect; the platform down, slower than the timeout
//! or broken fails closed (503); a decision is cached within its TTL and asked again after; an ended launch
//! is never served from the cache; a public launch and a public app ask nobody.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::Duration;
use wasmount::config::{AuthConfig, Config};
use wasmount_tests::django::Django;
use wasmount_tests::{ADMIN_TOKEN, TestResponse, TestServer, eventually, guests, json, try_send};

/// A server asking `check` (a URL), with `echo` and a `platform` app `private-echo`.
async fn server_asking(check: String, allow_ttl: Duration) -> TestServer {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("private-echo.wasm")).unwrap();
    std::fs::write(
        apps.path().join("private-echo.toml"),
        "access = \"platform\"\n",
    )
    .unwrap();
    TestServer::start_in(apps, |config: &mut Config| {
        config.admin_token = Some(ADMIN_TOKEN.into());
        config.auth = Some(AuthConfig {
            url: check,
            timeout: Duration::from_secs(1),
            response_headers: vec!["X-Auth-Request-User".into()],
            allow_ttl,
            deny_ttl: Duration::from_millis(500),
        });
    })
    .await
}

async fn launch(server: &TestServer, body: &str) -> String {
    let launched = server
        .admin(Method::POST, "/_wasmount/launches", body.to_owned())
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    json(&launched)["name"].as_str().unwrap().to_owned()
}

async fn get_as(server: &TestServer, path: &str, session: Option<&str>) -> TestResponse {
    let cookie = session.map(|session| format!("sessionid={session}"));
    let mut headers = vec![("x-auth-request-user", "forged-by-the-client")];
    if let Some(cookie) = &cookie {
        headers.push(("cookie", cookie));
    }
    try_send(server.addr, Method::GET, path, Bytes::new(), &headers)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_platform_decides_who_opens_a_launch_and_its_answer_is_cached_briefly() {
    let django = Django::start();
    let server = server_asking(django.url("/auth/check"), Duration::from_secs(2)).await;
    let name = launch(
        &server,
        r#"{"app": "echo", "label": "dataset-7", "input": {"n": 7}}"#,
    )
    .await;
    let path = format!("/{name}/data");

    let anonymous = get_as(&server, &path, None).await;
    assert_eq!(anonymous.status, StatusCode::FOUND, "{}", anonymous.text());
    let login = anonymous.header("location");
    assert!(login.starts_with("/accounts/login/?next="), "{login}");
    assert!(
        login.contains(&name),
        "the login page returns to the launch: {login}"
    );

    let bob = get_as(&server, &path, Some(&django.bob)).await;
    assert_eq!(bob.status, StatusCode::FORBIDDEN, "{}", bob.text());

    let calls = django.calls();
    let alice = get_as(&server, &path, Some(&django.alice)).await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.text());
    let seen = &json(&alice)["headers"];
    assert_eq!(
        seen["x-auth-request-user"], "alice",
        "the platform's word, not the client's"
    );
    assert!(
        seen.get("cookie").is_none(),
        "the platform's session stays with it: {seen}"
    );
    assert_eq!(django.calls(), calls + 1);

    // Within the TTL the decision is remembered; after it, the platform is asked again.
    assert_eq!(
        get_as(&server, &path, Some(&django.alice)).await.status,
        StatusCode::OK
    );
    assert_eq!(django.calls(), calls + 1, "a cache hit asks nobody");
    let asked_again = || async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let response = get_as(&server, &path, Some(&django.alice)).await;
        assert_eq!(response.status, StatusCode::OK);
        (django.calls() > calls + 1).then_some(())
    };
    eventually(
        "the platform to be asked after the TTL",
        Duration::from_secs(30),
        asked_again,
    )
    .await;

    // An ended launch is not served from the cache: its name resolves to nothing first.
    let ended = server
        .admin(
            Method::DELETE,
            &format!("/_wasmount/launches/{name}"),
            Bytes::new(),
        )
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get_as(&server, &path, Some(&django.alice)).await.status,
        StatusCode::NOT_FOUND
    );

    // A public launch and a public app ask nobody; a platform app does.
    let public = launch(
        &server,
        r#"{"app": "echo", "access": "public", "input": {}}"#,
    )
    .await;
    assert_eq!(
        get_as(&server, &format!("/{public}/"), None).await.status,
        StatusCode::OK
    );
    assert_eq!(get_as(&server, "/echo/", None).await.status, StatusCode::OK);
    let private_app = get_as(&server, "/private-echo/", None).await;
    assert_eq!(
        private_app.status,
        StatusCode::FOUND,
        "{}",
        private_app.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_platform_that_is_down_slow_or_broken_fails_closed() {
    let django = Django::start();
    let closed = format!(
        "http://127.0.0.1:{}/auth/check",
        wasmount_tests::free_port()
    );
    for (what, check) in [
        ("down", closed),
        ("slow", django.url("/auth/slow-check")),
        ("broken", django.url("/auth/broken-check")),
    ] {
        let server = server_asking(check, Duration::from_secs(5)).await;
        let name = launch(
            &server,
            r#"{"app": "echo", "label": "dataset-7", "input": {}}"#,
        )
        .await;
        // The slow check answers 200 after 3 s: a 503 shows the 1 s timeout cut it short (no
        // wall-clock bound asserted, which a busy machine would break).
        let refused = get_as(&server, &format!("/{name}/"), Some(&django.alice)).await;
        assert_eq!(
            refused.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {}",
            refused.text()
        );
        assert!(
            !refused.text().contains("INPUT_JSON"),
            "{what}: nothing of the launch shown"
        );
    }
}

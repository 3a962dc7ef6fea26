//! App manifests (`NAME.toml`): granted environment and files, per-app limits, and refusals
//! of bad manifests that change nothing.

use bytes::Bytes;
use futures::future::join_all;
use http::{Method, StatusCode};
use std::time::{Duration, Instant};
use wasmount_tests::{TestServer, data_server, guests, json, try_send};

/// A server with `echo` and the given `echo.toml`; `prepare` may add files first.
async fn echo_with(manifest: &str, prepare: impl FnOnce(&std::path::Path)) -> TestServer {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    std::fs::write(apps.path().join("echo.toml"), manifest).unwrap();
    prepare(apps.path());
    let server = TestServer::start_in(apps, |config| {
        config.admin_token = Some(wasmount_tests::ADMIN_TOKEN.into());
        config.watch = true;
    })
    .await;
    assert_eq!(
        server.get("/echo/").await.status,
        StatusCode::OK,
        "echo loads"
    );
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_is_the_manifests_plus_the_hosts_two_and_follows_edits() {
    let server = echo_with("environment = { TITLE = \"Expression heatmap\" }", |_| {}).await;
    let env = server.get("/echo/env").await.text();
    assert!(env.starts_with("3 variables\n"), "{env}");
    assert!(
        env.contains("TITLE=Expression heatmap") && env.contains("WASMOUNT_APP=echo"),
        "{env}"
    );

    // Editing the manifest alone re-applies it (the component is unchanged).
    std::fs::write(
        server.apps_path().join("echo.toml"),
        "environment = { TITLE = \"Scatter\" }",
    )
    .unwrap();
    let started = Instant::now();
    while !server
        .get("/echo/env")
        .await
        .text()
        .contains("TITLE=Scatter")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the manifest change never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_the_apps_own_folder_read_only_with_no_way_out() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let secret = outside.path().join("secret.txt");
    let server = echo_with("files = \"echo-data\"", |apps| {
        std::fs::create_dir(apps.join("echo-data")).unwrap();
        std::fs::write(apps.join("echo-data/table.tsv"), "gene\tA\n").unwrap();
        std::os::unix::fs::symlink(&secret, apps.join("echo-data/escape")).unwrap();
    })
    .await;
    assert_eq!(
        server.get("/echo/read?path=/data/table.tsv").await.text(),
        "read: gene\tA\n"
    );
    for path in [
        "/data/../echo.wasm",
        "/data/escape",
        "/etc/hostname",
        &secret.display().to_string(),
    ] {
        let text = server.get(&format!("/echo/read?path={path}")).await.text();
        assert!(text.starts_with("refused:"), "{path}: {text}");
    }
    let write = server.get("/echo/write?path=/data/new.txt").await.text();
    assert!(write.starts_with("refused:"), "{write}");
    assert!(!server.apps_path().join("echo-data/new.txt").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn per_app_limits_apply_timeout_body_size_and_concurrency() {
    let server = echo_with(
        "[limits]\nrequest_timeout = \"300ms\"\nmax_request_body = \"1KiB\"\nmax_concurrent_requests = 1\n",
        |_| {},
    )
    .await;
    // Compiled and serving first, so the time below is the deadline's alone.
    assert_eq!(server.get("/echo/").await.status, StatusCode::OK);
    let started = Instant::now();
    assert_eq!(
        server.get("/echo/?sleep_ms=3000").await.status,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let declared = server
        .send(Method::POST, "/echo/", vec![b'x'; 2048], &[])
        .await;
    assert_eq!(
        declared.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        declared.text()
    );
    assert_eq!(
        server
            .send(Method::POST, "/echo/", vec![b'x'; 512], &[])
            .await
            .status,
        StatusCode::OK
    );
    // Without a content-length, the limit is enforced while the body streams in.
    let chunks = futures::stream::iter((0..40).map(|_| {
        Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(vec![b'y'; 16 << 10])))
    }));
    let request = http::Request::post("/echo/")
        .header("host", server.addr.to_string())
        .body(http_body_util::StreamBody::new(chunks))
        .unwrap();
    let streamed = wasmount::client::send(&server.addr.to_string(), request)
        .await
        .unwrap();
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let addr = server.addr;
    let slow =
        (0..3).map(|_| try_send(addr, Method::GET, "/echo/?sleep_ms=2000", Bytes::new(), &[]));
    let statuses: Vec<StatusCode> = join_all(slow)
        .await
        .into_iter()
        .map(|r| r.unwrap().status)
        .collect();
    // One holds the app's only slot until its 300 ms deadline (504); the others, sent while
    // it runs (it sleeps far longer than the deadline, so they overlap on any machine), are
    // refused at once (503).
    let held = statuses
        .iter()
        .filter(|s| **s == StatusCode::GATEWAY_TIMEOUT)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(
        held >= 1 && refused >= 1 && held + refused == 3,
        "{statuses:?}"
    );
    let busy =
        (0..2).map(|_| try_send(addr, Method::GET, "/echo/?sleep_ms=2000", Bytes::new(), &[]));
    let refused = join_all(busy)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .find(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .expect("one of two concurrent requests is refused");
    assert_eq!(refused.header("retry-after"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_manifest_is_refused_and_changes_nothing() {
    let server = echo_with("environment = { TITLE = \"ok\" }", |_| {}).await;
    std::fs::write(
        server.apps_path().join("echo.toml"),
        "enviroment = { TITLE = \"typo\" }",
    )
    .unwrap();
    let reported = || async {
        let info = json(
            &server
                .admin(Method::GET, "/_wasmount/apps/echo", Bytes::new())
                .await,
        );
        info.get("error").is_some().then_some(info)
    };
    let info = wasmount_tests::eventually(
        "the bad manifest to be reported",
        Duration::from_secs(60),
        reported,
    )
    .await;
    assert!(
        info["error"].as_str().unwrap().contains("enviroment"),
        "{info}"
    );
    assert!(
        server.get("/echo/env").await.text().contains("TITLE=ok"),
        "old settings still apply"
    );

    // An upload next to the bad manifest is refused with 422 and nothing changes.
    let upload = server
        .admin(
            Method::PUT,
            "/_wasmount/apps/echo",
            std::fs::read(guests::ECHO).unwrap(),
        )
        .await;
    assert_eq!(
        upload.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        upload.text()
    );
    assert!(
        json(&upload)["error"]
            .as_str()
            .unwrap()
            .contains("invalid manifest")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn outgoing_http_reaches_allowed_hosts_only() {
    let (allowed, allowed_hits) = data_server("gene\tA\n").await;
    let (other, other_hits) = data_server("never").await;
    let server = echo_with(
        &format!("allowed_outbound_hosts = [\"http://{allowed}\"]"),
        |_| {},
    )
    .await;

    let fetched = server
        .get(&format!("/echo/fetch?url=http://{allowed}/data.tsv"))
        .await
        .text();
    assert_eq!(fetched, "fetched: 200 OK\n");
    assert_eq!(allowed_hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    for url in [
        format!("http://{other}/"),                      // another port
        format!("https://{allowed}/"),                   // another scheme
        format!("http://localhost:{}/", allowed.port()), // another host name
    ] {
        let refused = server.get(&format!("/echo/fetch?url={url}")).await.text();
        assert!(refused.starts_with("refused:"), "{url}: {refused}");
    }
    assert_eq!(
        other_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection was made"
    );
    assert_eq!(allowed_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_route_replaces_the_default_mount_point() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    std::fs::write(apps.path().join("echo.toml"), "route = \"/tools/echo\"").unwrap();
    let server = TestServer::start_in(apps, |config| {
        config.admin_token = Some(wasmount_tests::ADMIN_TOKEN.into());
    })
    .await;
    // The first request waits for the background compile, then the route is known.
    let routed = || async {
        let response = server.get("/tools/echo/x?y=1").await;
        (response.status == StatusCode::OK).then_some(response)
    };
    let response =
        wasmount_tests::eventually("the custom route to serve", Duration::from_secs(60), routed)
            .await;
    let echoed = json(&response);
    assert_eq!(echoed["path"], "/x");
    assert_eq!(echoed["prefix"], "/tools/echo");
    assert_eq!(
        server.get("/echo/").await.status,
        StatusCode::NOT_FOUND,
        "not at /NAME any more"
    );
    assert_eq!(
        server.get("/tools/echo").await.header("location"),
        "/tools/echo/"
    );
    let info = json(
        &server
            .admin(Method::GET, "/_wasmount/apps/echo", Bytes::new())
            .await,
    );
    assert_eq!(info["route"], "/tools/echo/");

    // Another app cannot take the same route: 409, and the first keeps it.
    let hello = std::fs::read(guests::HELLO).unwrap();
    let taken = server
        .put_multipart(
            "other",
            &[
                ("component", &hello),
                ("manifest", b"route = \"/tools/echo\""),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text());
    let error = json(&taken)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("already the route of app `echo`"), "{error}");
    assert_eq!(json(&server.get("/tools/echo/").await)["path"], "/");
    assert_eq!(server.get("/other/").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_uploads_with_overlapping_routes_at_once_give_one_app_and_one_conflict() {
    let server = TestServer::start_admin(&[], |_| {}).await;
    let hello = std::fs::read(guests::HELLO).unwrap();
    for round in 0..30 {
        let (outer, inner) = (format!("outer{round}"), format!("inner{round}"));
        let outer_route = format!("route = \"/t{round}/a\"");
        let inner_route = format!("route = \"/t{round}/a/b\"");
        let outer_parts = [
            ("component", &hello[..]),
            ("manifest", outer_route.as_bytes()),
        ];
        let inner_parts = [
            ("component", &hello[..]),
            ("manifest", inner_route.as_bytes()),
        ];
        let (first, second) = tokio::join!(
            server.put_multipart(&outer, &outer_parts),
            server.put_multipart(&inner, &inner_parts),
        );
        let mut statuses = [first.status, second.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "round {round}: {} / {}",
            first.text(),
            second.text()
        );
        let listed = json(
            &server
                .admin(Method::GET, "/_wasmount/apps", Bytes::new())
                .await,
        );
        let live = listed["apps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|app| [&outer, &inner].contains(&&app["name"].as_str().unwrap().to_owned()))
            .count();
        assert_eq!(live, 1, "round {round}: {listed}");
    }
}

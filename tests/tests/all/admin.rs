//! The admin API: auth, upload/replace/inspect/delete, every refusal with its status, and a
//! replace under load with no failed request. Nothing refused is stored or changes what serves.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::{Duration, Instant};
use wasmount_tests::{ADMIN_TOKEN, TestServer, guests, json, sha256_of, try_send};

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_configured_token_every_admin_call_is_forbidden() {
    let server = TestServer::start(&[("hello", guests::HELLO)]).await;
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let response = server
            .admin(method, "/_wasmount/apps/hello", Bytes::new())
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN);
        assert!(
            json(&response)["error"]
                .as_str()
                .unwrap()
                .contains("--admin-token")
        );
    }
    assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_wrong_token_gets_401() {
    let server = TestServer::start_admin(&[("hello", guests::HELLO)], |_| {}).await;
    let missing = server.get("/_wasmount/apps").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.header("www-authenticate"), "Bearer");
    let wrong = server
        .send(
            Method::DELETE,
            "/_wasmount/apps/hello",
            Bytes::new(),
            &[("authorization", "Bearer nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(json(&wrong)["error"], "wrong admin token");
    assert_eq!(
        server.get("/hello/").await.status,
        StatusCode::OK,
        "nothing was removed"
    );
    assert_eq!(
        server
            .admin(Method::GET, "/_wasmount/apps", Bytes::new())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_can_be_made_public_but_changes_still_need_the_token() {
    let server =
        TestServer::start_admin(&[("hello", guests::HELLO)], |c| c.public_app_list = true).await;
    let list = server.get("/_wasmount/apps").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(json(&list)["apps"][0]["name"], "hello");
    let put = server
        .send(Method::PUT, "/_wasmount/apps/x", read(guests::ECHO), &[])
        .await;
    assert_eq!(put.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apps_settings_are_shown_only_with_the_token() {
    let server = TestServer::start_admin(&[], |c| c.public_app_list = true).await;
    let manifest =
        "environment = { API_KEY = \"secret-value\" }\n[limits]\nrequest_timeout = \"7s\"\n";
    let component = read(guests::HELLO);
    let uploaded = server
        .put_multipart(
            "hello",
            &[("component", &component), ("manifest", manifest.as_bytes())],
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text());
    let inspected = server.admin(Method::GET, "/_wasmount/apps/hello", "").await;
    let settings = &json(&inspected)["manifest"];
    assert_eq!(
        settings["environment"]["API_KEY"],
        "secret-value",
        "{}",
        inspected.text()
    );
    assert_eq!(settings["limits"]["request_timeout"], "7s");
    let public = server.get("/_wasmount/apps/hello").await;
    assert_eq!(public.status, StatusCode::OK);
    assert!(json(&public).get("manifest").is_none(), "{}", public.text());
    assert!(!public.text().contains("secret-value"));
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_replace_inspect_and_delete() {
    let server = TestServer::start_admin(&[], |_| {}).await;
    let created = server
        .admin(Method::PUT, "/_wasmount/apps/viz", read(guests::HELLO))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let body = json(&created);
    assert_eq!(body["replaced"], false);
    assert_eq!(body["app"]["name"], "viz");
    assert_eq!(body["app"]["route"], "/viz/");
    assert_eq!(body["app"]["sha256"], sha256_of(guests::HELLO));
    assert_eq!(body["app"]["size"], read(guests::HELLO).len());
    assert_eq!(body["app"]["source"], "upload");
    assert!(body["compile_ms"].as_f64().unwrap() > 0.0);
    assert!(
        server
            .get("/viz/")
            .await
            .text()
            .contains("Hello from wasmount!")
    );
    assert_eq!(server.stored_files(), ["viz.wasm"]);

    let replaced = server
        .admin(Method::PUT, "/_wasmount/apps/viz", read(guests::VIZ))
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(json(&replaced)["replaced"], true);
    assert!(server.get("/viz/").await.text().contains("Plot a table"));
    assert_eq!(
        std::fs::read(server.apps_path().join("viz.wasm")).unwrap(),
        read(guests::VIZ)
    );

    let one = json(
        &server
            .admin(Method::GET, "/_wasmount/apps/viz", Bytes::new())
            .await,
    );
    assert_eq!(one["state"], "serving");
    assert_eq!(one["sha256"], sha256_of(guests::VIZ));
    assert!(one["loaded_at"].as_str().unwrap().starts_with("20"));
    let list = json(
        &server
            .admin(Method::GET, "/_wasmount/apps", Bytes::new())
            .await,
    );
    assert_eq!(list["apps"].as_array().unwrap().len(), 1);

    let deleted = server
        .admin(Method::DELETE, "/_wasmount/apps/viz", Bytes::new())
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    assert_eq!(server.get("/viz/").await.status, StatusCode::NOT_FOUND);
    assert!(server.stored_files().is_empty());
    let again = server
        .admin(Method::DELETE, "/_wasmount/apps/viz", Bytes::new())
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let gone = server
        .admin(Method::GET, "/_wasmount/apps/viz", Bytes::new())
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_upload_is_refused_and_changes_nothing() {
    let server = TestServer::start_admin(&[("app", guests::HELLO)], |_| {}).await;
    let hello = read(guests::HELLO);
    // Any engine's artifact: it is refused for what it is, whatever it was compiled for.
    let precompiled = wasmtime::component::Component::new(&wasmtime::Engine::default(), &hello)
        .unwrap()
        .serialize()
        .unwrap();
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "text",
            b"hello, I am not wasm".to_vec(),
            StatusCode::BAD_REQUEST,
            "not a WebAssembly component",
        ),
        ("empty", Vec::new(), StatusCode::BAD_REQUEST, "empty"),
        (
            "truncated",
            hello[..hello.len() / 2].to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid component",
        ),
        (
            "precompiled .cwasm",
            precompiled,
            StatusCode::BAD_REQUEST,
            "precompiled .cwasm files are not accepted",
        ),
        (
            "core module",
            wat::parse_str("(module)").unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "core WebAssembly module",
        ),
        (
            "no handler export",
            wat::parse_str("(component)").unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "incoming-handler",
        ),
        (
            "unknown import",
            wat::parse_str(
                r#"(component (import "acme:vault/secrets" (instance (export "get" (func)))))"#,
            )
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "acme:vault/secrets",
        ),
    ];
    for (what, bytes, status, message) in cases {
        let response = server
            .admin(Method::PUT, "/_wasmount/apps/app", bytes)
            .await;
        assert_eq!(response.status, status, "{what}: {}", response.text());
        let error = json(&response)["error"].as_str().unwrap().to_owned();
        assert!(
            error.contains(message),
            "{what}: `{error}` should mention `{message}`"
        );
        let page = server.get("/app/").await;
        assert!(
            page.text().contains("Hello from wasmount!"),
            "{what}: the old version keeps serving"
        );
        assert_eq!(
            server.stored_files(),
            ["app.wasm"],
            "{what}: nothing left behind"
        );
        assert_eq!(
            std::fs::read(server.apps_path().join("app.wasm")).unwrap(),
            hello
        );
    }
    let bad_name = server
        .admin(Method::PUT, "/_wasmount/apps/Bad_Name", read(guests::ECHO))
        .await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    assert!(
        json(&bad_name)["error"]
            .as_str()
            .unwrap()
            .contains("app name `Bad_Name` is invalid")
    );
    assert_eq!(server.stored_files(), ["app.wasm"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_uploads_get_413_before_and_while_streaming() {
    let server =
        TestServer::start_admin(&[("app", guests::HELLO)], |c| c.max_upload = 400 * 1024).await;
    let auth = format!("Bearer {ADMIN_TOKEN}");

    // Declared too large: refused from the headers alone.
    let declared = server
        .send(
            Method::PUT,
            "/_wasmount/apps/big",
            vec![0u8; 500_000],
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        json(&declared)["error"]
            .as_str()
            .unwrap()
            .contains("limit is 400.0 KiB"),
        "{}",
        declared.text()
    );

    // No length announced (chunked): refused once the limit is crossed mid-stream.
    let chunks = futures::stream::iter((0..40).map(|_| {
        Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(vec![7u8; 16 * 1024])))
    }));
    let request = http::Request::put("/_wasmount/apps/big")
        .header("host", server.addr.to_string())
        .header("authorization", &auth)
        .body(http_body_util::StreamBody::new(chunks))
        .unwrap();
    let address = server.addr.to_string();
    let streamed = tokio::time::timeout(
        Duration::from_secs(10),
        wasmount::client::send(&address, request),
    )
    .await
    .expect("a prompt answer")
    .expect("a response");
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(server.stored_files(), ["app.wasm"]);
    assert_eq!(server.get("/big/").await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/app/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn replacing_an_app_under_load_drops_no_request() {
    let server = TestServer::start_admin(&[("app", guests::HELLO)], |_| {}).await;
    let addr = server.addr;
    let stop_at = Instant::now() + Duration::from_secs(20);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                // Bounded in count and time.
                for _ in 0..2_000 {
                    if Instant::now() > stop_at {
                        break;
                    }
                    let response = try_send(addr, Method::GET, "/app/", Bytes::new(), &[])
                        .await
                        .unwrap();
                    seen.push((response.status, response.text()));
                    if seen.len() > 20
                        && seen
                            .iter()
                            .rev()
                            .take(20)
                            .all(|(_, body)| body.starts_with('{'))
                    {
                        break; // the new version has been answering for a while
                    }
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let replaced = server
        .admin(Method::PUT, "/_wasmount/apps/app", read(guests::ECHO))
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text());

    let (mut old, mut new) = (0, 0);
    for client in clients {
        for (status, body) in client.await.unwrap() {
            assert_eq!(status, StatusCode::OK, "{body}");
            if body.contains("Hello from wasmount!") {
                old += 1;
            } else {
                assert!(
                    body.starts_with(r#"{"method":"GET""#),
                    "neither version: {body}"
                );
                new += 1;
            }
        }
    }
    assert!(
        old > 0 && new > 0,
        "both versions answered: old {old}, new {new}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_loads_apps_from_the_compiled_cache() {
    let server = TestServer::start_admin(&[], |_| {}).await;
    let created = server
        .admin(Method::PUT, "/_wasmount/apps/hello", read(guests::HELLO))
        .await;
    assert_eq!(json(&created)["app"]["compiled"], "baseline", "Winch first");
    let index = server.apps_path().join(".cache/hello.json");
    let within = Duration::from_secs(60);
    let cached = || async { index.exists().then_some(()) };
    wasmount_tests::eventually("the cache to be written", within, cached).await;
    wasmount_tests::eventually("the Cranelift build to replace Winch's", within, || async {
        let app = json(
            &server
                .admin(Method::GET, "/_wasmount/apps/hello", Bytes::new())
                .await,
        );
        assert!(
            matches!(app["compiled"].as_str(), Some("fresh" | "baseline")),
            "{app}"
        );
        (app["compiled"] == "fresh").then_some(())
    })
    .await;
    assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
    let apps_dir = server.stop_keeping_apps().await;

    let restarted =
        TestServer::start_in(apps_dir, |c| c.admin_token = Some(ADMIN_TOKEN.into())).await;
    let app = json(
        &restarted
            .admin(Method::GET, "/_wasmount/apps/hello", Bytes::new())
            .await,
    );
    assert_eq!(app["state"], "serving");
    assert_eq!(app["compiled"], "cache");
    assert_eq!(app["sha256"], sha256_of(guests::HELLO));
    assert_eq!(restarted.get("/hello/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_and_its_manifest_go_live_together() {
    let server = TestServer::start_admin(&[], |_| {}).await;
    let echo = read(guests::ECHO);
    let manifest = b"environment = { TITLE = \"together\" }\n";
    let created = server
        .put_multipart("echo", &[("component", &echo), ("manifest", manifest)])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert!(
        server
            .get("/echo/env")
            .await
            .text()
            .contains("TITLE=together")
    );
    assert_eq!(server.stored_files(), ["echo.toml", "echo.wasm"]);

    // A bad manifest refuses the whole upload: nothing changes.
    let hello = read(guests::HELLO);
    let bad = b"[limits]\nmemory = \"lots\"\n";
    let refused = server
        .put_multipart("echo", &[("component", &hello), ("manifest", bad)])
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text()
    );
    assert!(
        json(&refused)["error"]
            .as_str()
            .unwrap()
            .contains("limits.memory")
    );
    assert!(
        server
            .get("/echo/env")
            .await
            .text()
            .contains("TITLE=together")
    );
    assert!(
        std::fs::read_to_string(server.apps_path().join("echo.toml"))
            .unwrap()
            .contains("together")
    );

    let missing = server.put_multipart("echo", &[("manifest", b"")]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        json(&missing)["error"]
            .as_str()
            .unwrap()
            .contains("no `component` part")
    );

    // A plain upload keeps the stored settings; deleting the app removes both files.
    let plain = server
        .admin(Method::PUT, "/_wasmount/apps/echo", echo.clone())
        .await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(
        server
            .get("/echo/env")
            .await
            .text()
            .contains("TITLE=together")
    );
    let deleted = server
        .admin(Method::DELETE, "/_wasmount/apps/echo", Bytes::new())
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    assert!(server.stored_files().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upload_leaves_neither_its_manifest_nor_its_component() {
    let server = TestServer::start_admin(&[], |_| {}).await;
    std::fs::create_dir(server.apps_path().join("blocked.wasm")).unwrap();
    let hello = read(guests::HELLO);
    let manifest = b"environment = { TITLE = \"x\" }".as_slice();
    let refused = server
        .put_multipart("blocked", &[("component", &hello), ("manifest", manifest)])
        .await;
    assert_eq!(
        refused.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        refused.text()
    );
    assert!(
        !server.apps_path().join("blocked.toml").exists(),
        "no manifest alone"
    );

    // The manifest cannot be written: the component stays the previous one.
    let stored = server.put_multipart("pair", &[("component", &hello)]).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text());
    std::fs::create_dir(server.apps_path().join("pair.toml")).unwrap();
    let echo = read(guests::ECHO);
    let refused = server
        .put_multipart("pair", &[("component", &echo), ("manifest", manifest)])
        .await;
    assert_eq!(
        refused.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        refused.text()
    );
    assert_eq!(
        read(server.apps_path().join("pair.wasm").to_str().unwrap()),
        hello
    );
    assert!(
        server
            .get("/pair/")
            .await
            .text()
            .contains("Hello from wasmount!")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn public_answers_never_show_the_hosts_paths() {
    let apps = tempfile::tempdir().unwrap();
    for name in ["typo", "nofiles", "link"] {
        std::fs::copy(guests::HELLO, apps.path().join(format!("{name}.wasm"))).unwrap();
    }
    std::fs::write(apps.path().join("typo.toml"), "enviroment = {}").unwrap();
    std::fs::write(apps.path().join("nofiles.toml"), "files = \"missing\"").unwrap();
    std::os::unix::fs::symlink("/etc", apps.path().join("etclink")).unwrap();
    std::fs::write(apps.path().join("link.toml"), "files = \"etclink\"").unwrap();
    let folder = apps.path().display().to_string();
    let server = TestServer::start_in(apps, |config| config.public_app_list = true).await;
    let listed =
        wasmount_tests::eventually("the three failures", Duration::from_secs(60), || async {
            let list = server.get("/_wasmount/apps").await;
            (list.text().matches("\"error\"").count() == 3).then_some(list)
        })
        .await;
    let text = listed.text();
    assert!(!text.contains(&folder), "{text}");
    assert!(
        text.contains("enviroment") && text.contains("outside the apps folder"),
        "{text}"
    );
    assert!(!text.contains("/etc"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_route_cannot_cover_or_sit_under_another_apps_or_instances_url() {
    let server =
        TestServer::start_admin(&[("hello", guests::HELLO), ("viz", guests::VIZ)], |_| {}).await;
    let hello = read(guests::HELLO);
    let launch = |name: &str| {
        let body = serde_json::json!({"app": "hello", "name": name, "input": {}});
        server.admin(Method::POST, "/_wasmount/instances", body.to_string())
    };
    assert_eq!(launch("inst").await.status, StatusCode::CREATED);
    for (route, holder) in [
        ("/hello", "`/hello/`, the name of an app"),
        ("/viz/static", "`/viz/`, the name of an app"),
        ("/inst/a", "`/inst/`, the name of a launch"),
    ] {
        let manifest = format!("route = \"{route}\"");
        let refused = server
            .put_multipart(
                "x",
                &[("component", &hello), ("manifest", manifest.as_bytes())],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{route}: {}",
            refused.text()
        );
        assert!(
            refused.text().contains(holder),
            "{route}: {}",
            refused.text()
        );
    }
    assert!(
        server
            .get("/hello/")
            .await
            .text()
            .contains("Hello from wasmount!")
    );

    // A free route is taken, and then nothing else may be mounted over it.
    let manifest = b"route = \"/reports/x\"".as_slice();
    let placed = server
        .put_multipart("x", &[("component", &hello), ("manifest", manifest)])
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text());
    let launched = launch("reports").await;
    assert_eq!(launched.status, StatusCode::CONFLICT, "{}", launched.text());
    assert!(
        launched.text().contains("custom route of app `x`"),
        "{}",
        launched.text()
    );
    let uploaded = server
        .admin(Method::PUT, "/_wasmount/apps/reports", hello.clone())
        .await;
    assert_eq!(uploaded.status, StatusCode::CONFLICT, "{}", uploaded.text());
    let nested = server
        .put_multipart(
            "y",
            &[("component", &hello), ("manifest", b"route = \"/reports\"")],
        )
        .await;
    assert_eq!(nested.status, StatusCode::CONFLICT, "{}", nested.text());
    assert_eq!(server.get("/reports/x/").await.status, StatusCode::OK);
}

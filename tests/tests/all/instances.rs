//! Launched instances (`/_wasmount/instances`): an app bound to an input, served at its own URL
//! with `INPUT_JSON`; the data-driven viz app end to end against real data servers; every
//! refusal with its status and nothing stored; durability, deletion, expiry, app upgrades.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::{Duration, Instant};
use wasmount_tests::{TestResponse, TestServer, data_server, guests, json};

async fn launch(server: &TestServer, body: serde_json::Value) -> TestResponse {
    server
        .admin(Method::POST, "/_wasmount/instances", body.to_string())
        .await
}

fn instance_files(server: &TestServer) -> Vec<String> {
    wasmount_tests::list_files(&server.apps_path().join(".instances"))
}

/// Waits until app `name` serves (its first request may wait for the background compile).
async fn wait_serving(server: &TestServer, path: &str) {
    let serving = || async { (server.get(path).await.status == StatusCode::OK).then_some(()) };
    wasmount_tests::eventually(
        &format!("{path} to serve"),
        Duration::from_secs(60),
        serving,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launched_instance_gets_its_input_exactly_as_given() {
    let server = TestServer::start_admin(&[("echo", guests::ECHO)], |_| {}).await;
    // Odd spacing and key order must survive: the app gets the text, not a re-encoding.
    let input = r#"{ "b":1,  "a" : ["x", {"c": null}] }"#;
    let body = format!(r#"{{"app": "echo", "name": "mine", "input": {input}}}"#);
    let launched = server
        .admin(Method::POST, "/_wasmount/instances", body)
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    let info = json(&launched);
    assert_eq!(info["name"], "mine");
    assert_eq!(info["app"], "echo");
    assert_eq!(info["url"], format!("http://{}/mine/", server.addr));
    assert!(info["created"].as_str().unwrap().ends_with('Z'));

    let env = server.get("/mine/env").await;
    assert_eq!(env.status, StatusCode::OK);
    let env = env.text();
    assert!(env.contains(&format!("\nINPUT_JSON={input}\n")), "{env}");
    assert!(env.contains("\nWASMOUNT_INSTANCE=mine"), "{env}");
    assert!(env.contains("\nWASMOUNT_APP=echo"), "{env}");
    // The app itself has no input, and the instance sees its own prefix.
    assert!(!server.get("/echo/env").await.text().contains("INPUT_JSON"));
    let report = json(&server.get("/mine/deep/path?q=1").await);
    assert_eq!(report["headers"]["x-forwarded-prefix"], "/mine");
    assert_eq!(report["path"], "/deep/path");
    assert_eq!(
        server.get("/mine").await.status,
        StatusCode::PERMANENT_REDIRECT
    );

    // input_url instead: the app gets the address.
    let by_url = launch(
        &server,
        serde_json::json!({"app": "echo", "input_url": "http://127.0.0.1:9/input.json"}),
    )
    .await;
    assert_eq!(by_url.status, StatusCode::CREATED, "{}", by_url.text());
    let name = json(&by_url)["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("echo-"), "{name}");
    let env = server.get(&format!("/{name}/env")).await.text();
    assert!(
        env.contains("\nINPUT_JSON_URL=http://127.0.0.1:9/input.json"),
        "{env}"
    );
    assert!(!env.contains("\nINPUT_JSON="), "{env}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_viz_app_draws_each_instance_s_own_data_file() {
    let (first, _) = data_server("gene\tcontrol\ttreated\nTP53\t1.5\t3.25\nBRCA1\t2\t-1\n").await;
    let (second, _) = data_server("sample,depth\nMYC,7.5\nEGFR,0.5\nKRAS,9\n").await;
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::VIZ, apps.path().join("heatmap.wasm")).unwrap();
    std::fs::write(
        apps.path().join("heatmap.toml"),
        format!("allowed_outbound_hosts = [\"http://{first}\", \"http://{second}\"]\n"),
    )
    .unwrap();
    let server = TestServer::start_in(apps, |config| {
        config.admin_token = Some(wasmount_tests::ADMIN_TOKEN.into());
    })
    .await;
    wait_serving(&server, "/heatmap/").await;

    let mut urls = Vec::new();
    for (addr, file) in [(first, "expression.tsv"), (second, "depth.csv")] {
        let input = serde_json::json!({
            "api_prefix": "http://refinery.example/api/v2/",
            "file_relationships": [format!("http://{addr}/media/{file}")],
            "parameters": [],
            "node_info": {"n1": {"file_url": format!("http://{addr}/media/{file}")}},
            "extra_directories": []
        });
        let launched = launch(
            &server,
            serde_json::json!({"app": "heatmap", "input": input}),
        )
        .await;
        assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
        urls.push(json(&launched)["url"].as_str().unwrap().to_owned());
    }
    let paths: Vec<String> = urls
        .iter()
        .map(|url| {
            url.strip_prefix(&format!("http://{}", server.addr))
                .unwrap()
                .to_owned()
        })
        .collect();
    // Both at the same time.
    let (one, two) = tokio::join!(server.get(&paths[0]), server.get(&paths[1]));
    assert_eq!(one.status, StatusCode::OK, "{}", one.text());
    assert_eq!(two.status, StatusCode::OK, "{}", two.text());
    let (one, two) = (one.text(), two.text());
    assert!(one.contains("<title>expression.tsv</title>"), "{one}");
    assert!(one.contains("2 rows × 2 columns"), "{one}");
    assert!(
        one.contains("<th>TP53</th><td>1.5</td><td>3.25</td>"),
        "{one}"
    );
    assert!(one.contains("<svg"), "{one}");
    assert!(!one.contains("MYC"));
    assert!(two.contains("3 rows × 1 columns"), "{two}");
    assert!(two.contains("<th>KRAS</th><td>9</td>"), "{two}");
    assert!(!two.contains("TP53"));
    // Relative links resolve under the instance's own prefix.
    assert!(one.contains("href=\"static/app.css\""));
    let css = server.get(&format!("{}static/app.css", paths[0])).await;
    assert_eq!(css.status, StatusCode::OK);

    // A data host the manifest does not allow: the page says so, the server goes on.
    let blocked = launch(
        &server,
        serde_json::json!({"app": "heatmap", "input": {"file_relationships": ["http://127.0.0.1:9/x.tsv"]}}),
    )
    .await;
    let path = format!("/{}/", json(&blocked)["name"].as_str().unwrap());
    let refused = server.get(&path).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        refused.text()
    );
    assert!(refused.text().contains("fetching http://127.0.0.1:9/x.tsv"));
    assert_eq!(server.get(&paths[1]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_launches_are_refused_with_their_status_and_store_nothing() {
    let server = TestServer::start_admin(
        &[("echo", guests::ECHO), ("hello", guests::HELLO)],
        |config| {
            config.max_instance_input = 1024;
            config.max_launched_instances = 2;
        },
    )
    .await;
    let ok = launch(
        &server,
        serde_json::json!({"app": "echo", "name": "taken", "input": {}}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED);

    let cases: Vec<(Bytes, StatusCode, &str)> = vec![
        (
            r#"{"app": "nope", "input": {}}"#.into(),
            StatusCode::NOT_FOUND,
            "no app named `nope`",
        ),
        ("not json".into(), StatusCode::BAD_REQUEST, "must be JSON"),
        (
            r#"{"app": "echo", "input": {"a": }"#.into(),
            StatusCode::BAD_REQUEST,
            "must be JSON",
        ),
        (
            r#"{"app": "echo"}"#.into(),
            StatusCode::BAD_REQUEST,
            "exactly one of",
        ),
        (
            r#"{"app": "echo", "input": 1, "input_url": "http://x/"}"#.into(),
            StatusCode::BAD_REQUEST,
            "exactly one of",
        ),
        (
            r#"{"app": "echo", "input_url": "file:///etc/passwd"}"#.into(),
            StatusCode::BAD_REQUEST,
            "not an http(s) URL",
        ),
        (
            r#"{"app": "echo", "input": {}, "surprise": 1}"#.into(),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            r#"{"app": "echo", "name": "Bad Name", "input": {}}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            r#"{"app": "echo", "name": "taken", "input": {}}"#.into(),
            StatusCode::CONFLICT,
            "name of a launch",
        ),
        (
            r#"{"app": "echo", "name": "hello", "input": {}}"#.into(),
            StatusCode::CONFLICT,
            "name of an app",
        ),
        (
            format!(r#"{{"app": "echo", "input": "{}"}}"#, "x".repeat(2000)).into(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "--max-instance-input",
        ),
        (
            format!(r#"{{"app": "echo", "input": "{}"}}"#, "x".repeat(100_000)).into(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "--max-instance-input",
        ),
    ];
    for (body, status, message) in cases {
        let refused = server
            .admin(Method::POST, "/_wasmount/instances", body.clone())
            .await;
        assert_eq!(refused.status, status, "{:?}: {}", body, refused.text());
        let error = json(&refused)["error"].as_str().unwrap().to_owned();
        assert!(error.contains(message), "{error}");
    }
    assert_eq!(instance_files(&server), ["taken.json"]);

    // The limit: one more fits, then 429.
    let second = launch(&server, serde_json::json!({"app": "echo", "input": 2})).await;
    assert_eq!(second.status, StatusCode::CREATED);
    let full = launch(&server, serde_json::json!({"app": "echo", "input": 3})).await;
    assert_eq!(
        full.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        full.text()
    );
    assert_eq!(instance_files(&server).len(), 2);

    // No token, no launch (and no listing: inputs are private).
    let anonymous = server
        .send(
            Method::POST,
            "/_wasmount/instances",
            r#"{"app":"echo","input":1}"#,
            &[],
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.get("/_wasmount/instances").await.status,
        StatusCode::UNAUTHORIZED
    );
    // An app upload cannot take an instance's name.
    let upload = server
        .admin(
            Method::PUT,
            "/_wasmount/apps/taken",
            std::fs::read(guests::HELLO).unwrap(),
        )
        .await;
    assert_eq!(upload.status, StatusCode::CONFLICT, "{}", upload.text());
    // Everything that was serving still serves.
    assert_eq!(server.get("/taken/").await.status, StatusCode::OK);
    assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_are_listed_inspected_deleted_and_survive_a_restart() {
    let server = TestServer::start_admin(&[("echo", guests::ECHO)], |_| {}).await;
    for name in ["alpha", "beta"] {
        let body = serde_json::json!({"app": "echo", "name": name, "input": {"who": name}});
        assert_eq!(launch(&server, body).await.status, StatusCode::CREATED);
    }
    let listed = json(
        &server
            .admin(Method::GET, "/_wasmount/instances", Bytes::new())
            .await,
    );
    let names: Vec<&str> = listed["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    let one = json(
        &server
            .admin(Method::GET, "/_wasmount/instances/alpha", Bytes::new())
            .await,
    );
    assert_eq!(one["input"], serde_json::json!({"who": "alpha"}));

    let deleted = server
        .admin(Method::DELETE, "/_wasmount/instances/beta", Bytes::new())
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get("/beta/").await.status, StatusCode::NOT_FOUND);
    let again = server
        .admin(Method::DELETE, "/_wasmount/instances/beta", Bytes::new())
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let apps = server.stop_keeping_apps().await;
    let restarted = TestServer::start_in(apps, |config| {
        config.admin_token = Some(wasmount_tests::ADMIN_TOKEN.into());
    })
    .await;
    wait_serving(&restarted, "/alpha/env").await;
    let env = restarted.get("/alpha/env").await.text();
    assert!(env.contains(r#"INPUT_JSON={"who":"alpha"}"#), "{env}");
    assert_eq!(restarted.get("/beta/").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn replacing_the_app_upgrades_its_instances_and_removing_it_says_so() {
    let server = TestServer::start_admin(&[("app", guests::ECHO)], |_| {}).await;
    let launched = launch(
        &server,
        serde_json::json!({"app": "app", "name": "inst", "input": {}}),
    )
    .await;
    assert_eq!(launched.status, StatusCode::CREATED);
    assert_eq!(
        server.get("/inst/").await.header("content-type"),
        "application/json"
    );
    let replaced = server
        .admin(
            Method::PUT,
            "/_wasmount/apps/app",
            std::fs::read(guests::HELLO).unwrap(),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text());
    let hello = server.get("/inst/").await;
    assert_eq!(hello.status, StatusCode::OK);
    assert!(
        hello.text().contains("Hello from wasmount"),
        "{}",
        hello.text()
    );

    // Deleting the app deletes its instances, and says so: a later upload under the same
    // name does not inherit them (nor their users' inputs).
    let deleted = server
        .admin(Method::DELETE, "/_wasmount/apps/app", Bytes::new())
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    assert_eq!(json(&deleted)["instances_removed"], 1);
    assert_eq!(server.get("/inst/").await.status, StatusCode::NOT_FOUND);
    assert!(instance_files(&server).is_empty());
    let again = server
        .admin(
            Method::PUT,
            "/_wasmount/apps/app",
            std::fs::read(guests::ECHO).unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    assert_eq!(server.get("/inst/").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_instances_expire_and_used_ones_do_not() {
    let server = TestServer::start_admin(&[("echo", guests::ECHO)], |config| {
        config.instance_idle_timeout = Some(Duration::from_secs(2));
    })
    .await;
    wait_serving(&server, "/echo/").await;
    for name in ["idle", "busy"] {
        let body = serde_json::json!({"app": "echo", "name": name, "input": {}});
        assert_eq!(launch(&server, body).await.status, StatusCode::CREATED);
    }
    // Keep one busy for a while past the other's idle time (bounded: 6 s at most).
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        assert_eq!(server.get("/busy/").await.status, StatusCode::OK);
        if instance_files(&server) == ["busy.json"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        instance_files(&server),
        ["busy.json"],
        "the idle one was swept"
    );
    assert_eq!(server.get("/idle/").await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/busy/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_and_a_launch_racing_for_one_name_never_both_win() {
    let server = TestServer::start_admin(&[("echo", guests::ECHO)], |_| {}).await;
    wait_serving(&server, "/echo/").await;
    let hello = Bytes::from(std::fs::read(guests::HELLO).unwrap());
    for round in 0..30 {
        let name = format!("race-{round}");
        let path = format!("/_wasmount/apps/{name}");
        let upload = server.admin(Method::PUT, &path, hello.clone());
        let body = serde_json::json!({"app": "echo", "name": name, "input": {}});
        let (upload, launched) = tokio::join!(upload, launch(&server, body));
        let statuses = (upload.status, launched.status);
        let winners = [upload.status.is_success(), launched.status.is_success()];
        assert_eq!(
            winners.iter().filter(|won| **won).count(),
            1,
            "round {round}: {statuses:?} {} {}",
            upload.text(),
            launched.text()
        );
        let loser = if winners[0] { &launched } else { &upload };
        assert_eq!(loser.status, StatusCode::CONFLICT, "{}", loser.text());
        // The name serves whichever won, and only that.
        let served = server.get(&format!("/{name}/")).await;
        assert_eq!(served.status, StatusCode::OK, "{}", served.text());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launchs_url_believes_forwarding_headers_only_from_trusted_proxies() {
    let forged = [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
    ];
    let body = serde_json::json!({"app": "echo", "input": {}}).to_string();
    for (trusted, expected) in [
        (false, "http://127.0.0.1:"),
        (true, "https://evil.example/"),
    ] {
        let server = TestServer::start_admin(&[("echo", guests::ECHO)], |config| {
            if trusted {
                config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            }
        })
        .await;
        let auth = format!("Bearer {}", wasmount_tests::ADMIN_TOKEN);
        let mut headers = forged.to_vec();
        headers.push(("authorization", &auth));
        let launched = server
            .send(Method::POST, "/_wasmount/instances", body.clone(), &headers)
            .await;
        assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
        let url = json(&launched)["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(expected), "trusted {trusted}: {url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inputs_of_all_launched_instances_together_are_bounded() {
    let server = TestServer::start_admin(&[("echo", guests::ECHO)], |config| {
        config.max_launch_input_total = 2050;
    })
    .await;
    let input = "x".repeat(1000);
    for round in 0..2 {
        let launched = launch(&server, serde_json::json!({"app": "echo", "input": input})).await;
        assert_eq!(
            launched.status,
            StatusCode::CREATED,
            "{round}: {}",
            launched.text()
        );
    }
    let full = launch(&server, serde_json::json!({"app": "echo", "input": input})).await;
    assert_eq!(
        full.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        full.text()
    );
    assert!(
        full.text().contains("--max-launch-input-total"),
        "{}",
        full.text()
    );
    assert_eq!(
        instance_files(&server).len(),
        2,
        "nothing stored for the refusal"
    );
}

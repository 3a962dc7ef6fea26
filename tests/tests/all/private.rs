//! Private by default: launch names no client can guess, with unknown and ended names
//! answered alike; in path mode no guest header reaches beyond its prefix; a guest sees only
//! the credentials its manifest names and never the control plane's token; manifest errors
//! in public answers keep their secrets; dev mode answers loopback hosts only; a signal
//! other than TERM/INT never ends the server.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::Duration;
use wasmount_tests::{ADMIN_TOKEN, ServerProcess, TestServer, eventually, guests, json, try_send};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

/// A server with `echo` and `echo.toml` holding `manifest`, the admin API on.
async fn echo_with(
    manifest: &str,
    configure: impl FnOnce(&mut wasmount::config::Config),
) -> TestServer {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    std::fs::write(apps.path().join("echo.toml"), manifest).unwrap();
    TestServer::start_in(apps, |config| {
        config.admin_token = Some(ADMIN_TOKEN.into());
        configure(config);
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn launch_names_carry_128_random_bits_and_ended_names_answer_as_unknown_ones() {
    let server = echo_with("", |_| {}).await;
    let body = r#"{"app": "echo", "input": {"dataset": 7}}"#;
    let launched = server
        .admin(Method::POST, "/_wasmount/launches", body)
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    let name = json(&launched)["name"].as_str().unwrap().to_owned();
    let random = name.strip_prefix("echo-").expect("the app's name first");
    assert_eq!(random.len(), 26, "{name}");
    assert!(
        random
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
        "{name}"
    );
    assert_eq!(
        server.get(&format!("/{name}/")).await.status,
        StatusCode::OK
    );

    let unknown = "echo-aaaaaaaaaaaaaaaaaaaaaaaaaa";
    let deleted = server
        .admin(
            Method::DELETE,
            &format!("/_wasmount/launches/{name}"),
            Bytes::new(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    let ended = server.get(&format!("/{name}/x")).await;
    let never = server.get(&format!("/{unknown}/x")).await;
    assert_eq!(ended.status, StatusCode::NOT_FOUND);
    assert_eq!(ended.status, never.status);
    assert_eq!(
        ended.text().replace(&name, "NAME"),
        never.text().replace(unknown, "NAME"),
        "an ended launch answers as a name never launched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_path_mode_no_guest_header_reaches_beyond_its_prefix() {
    let server = echo_with("", |config| config.public_metrics = true).await;
    let response = server.get("/echo/overreach").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    for header in [
        "service-worker-allowed",
        "clear-site-data",
        "strict-transport-security",
    ] {
        assert!(
            !response.headers.contains_key(header),
            "{header} reached the client"
        );
    }
    let cookies: Vec<_> = response.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["own=1; HttpOnly"], "only the app's own cookie");
    assert_eq!(response.header("x-kept"), "yes");
    let metrics = server.get("/_wasmount/metrics").await.text();
    for header in [
        "set-cookie",
        "service-worker-allowed",
        "clear-site-data",
        "strict-transport-security",
    ] {
        let series =
            format!("wasmount_guest_headers_removed_total{{app=\"echo\",header=\"{header}\"}} 1");
        assert!(metrics.contains(&series), "{series} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_sees_only_the_credentials_its_manifest_names() {
    let server = echo_with("cookies = [\"own\"]\n", |_| {}).await;
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let sent = [
        ("cookie", "sessionid=platform-session; csrftoken=c; own=1"),
        ("authorization", admin.as_str()),
    ];
    let seen = try_send(server.addr, Method::GET, "/echo/", Bytes::new(), &sent)
        .await
        .unwrap();
    let headers = &json(&seen)["headers"];
    assert_eq!(headers["cookie"], "own=1", "{headers}");
    assert!(headers.get("authorization").is_none(), "{headers}");

    let opted_in = echo_with("forward_authorization = true\n", |_| {}).await;
    let own_token = [
        ("authorization", "Bearer the-apps-own"),
        ("cookie", "sessionid=s"),
    ];
    let seen = try_send(
        opted_in.addr,
        Method::GET,
        "/echo/",
        Bytes::new(),
        &own_token,
    )
    .await
    .unwrap();
    let headers = &json(&seen)["headers"];
    assert_eq!(headers["authorization"], "Bearer the-apps-own");
    assert!(
        headers.get("cookie").is_none(),
        "no cookie named: none sent"
    );
    let seen = try_send(opted_in.addr, Method::GET, "/echo/", Bytes::new(), &sent)
        .await
        .unwrap();
    assert!(
        json(&seen)["headers"].get("authorization").is_none(),
        "the control plane's token never reaches a guest"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_error_keeps_its_secrets_out_of_public_answers() {
    let broken = "environment = { TITLE = \"x\" }\nSECRET=\"zzz\" oops\n";
    let server = echo_with(broken, |config| config.public_app_list = true).await;
    let failed = || async {
        let listed = server.get("/_wasmount/apps").await;
        listed.text().contains("\"failed\"").then_some(listed)
    };
    let listed = eventually(
        "the broken manifest to fail",
        Duration::from_secs(60),
        failed,
    )
    .await;
    let answered = server.get("/echo/").await;
    for (what, response) in [("the app list", &listed), ("the app's URL", &answered)] {
        let mut everything = response.text();
        for (name, value) in &response.headers {
            everything.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or_default()));
        }
        assert!(
            !everything.contains("zzz"),
            "{what} shows the secret: {everything}"
        );
    }
    assert!(listed.text().contains("line 2"), "{}", listed.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_mode_answers_loopback_hosts_only() {
    let server = TestServer::start_with(&[("hello", guests::HELLO)], |config| {
        config.dev = true;
        config.allowed_hosts = vec!["dev.example".into()];
    })
    .await;
    let with_host = |host: &'static str| async move {
        try_send(
            server.addr,
            Method::GET,
            "/hello/",
            Bytes::new(),
            &[("host", host)],
        )
        .await
        .unwrap()
    };
    let refused = with_host("evil.example").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert_eq!(with_host("localhost:8080").await.status, StatusCode::OK);
    assert_eq!(with_host("dev.example").await.status, StatusCode::OK);
    assert_eq!(
        server.get("/hello/").await.status,
        StatusCode::OK,
        "127.0.0.1:PORT"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_and_the_user_signals_do_not_end_a_plain_http_server() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::HELLO, apps.path().join("hello.wasm")).unwrap();
    let mut server = ServerProcess::start(BIN, &["--apps", apps.path().to_str().unwrap()], &[]);
    let addr = server.addr;
    let health = || async move {
        try_send(addr, Method::GET, "/_wasmount/health", Bytes::new(), &[])
            .await
            .is_ok_and(|response| response.status == StatusCode::OK)
    };
    assert!(health().await);
    for signal in ["HUP", "USR1", "USR2", "HUP"] {
        server.signal(signal);
        let noted = || async {
            let log = server.log.lock().unwrap().join("\n");
            log.matches("received: still serving")
                .count()
                .gt(&0)
                .then_some(())
        };
        eventually("the signal to be noted", Duration::from_secs(30), noted).await;
        assert!(health().await, "after SIG{signal}");
    }
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(30)).success());
}

const TOKENS: &str = r#"
[tokens.refinery]
token = "refinery-launch-token-0001"
scopes = ["launch"]
[tokens.dashboard]
token = "dashboard-read-token-0001"
scopes = ["read"]
[tokens.ci]
token = "ci-deploy-token-000000001"
scopes = ["deploy", "read"]
"#;

async fn call(
    addr: std::net::SocketAddr,
    method: Method,
    path: &str,
    token: &str,
    body: Bytes,
) -> StatusCode {
    let auth = format!("Bearer {token}");
    try_send(addr, method, path, body, &[("authorization", &auth)])
        .await
        .unwrap()
        .status
}

#[tokio::test(flavor = "multi_thread")]
async fn scoped_tokens_do_what_their_scopes_say_and_rotate_without_a_restart() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::HELLO, apps.path().join("hello.wasm")).unwrap();
    let tokens = apps.path().join("tokens.toml");
    std::fs::write(&tokens, TOKENS).unwrap();
    let folder = apps.path().to_str().unwrap();
    let mut server = ServerProcess::start(
        BIN,
        &["--apps", folder, "--tokens-file", tokens.to_str().unwrap()],
        &[],
    );
    let addr = server.addr;
    let hello = Bytes::from(std::fs::read(guests::HELLO).unwrap());
    let launch = Bytes::from_static(br#"{"app": "hello", "input": {}}"#);

    assert_eq!(
        call(
            addr,
            Method::PUT,
            "/_wasmount/apps/other",
            "refinery-launch-token-0001",
            hello.clone()
        )
        .await,
        StatusCode::FORBIDDEN,
        "a launch token cannot deploy"
    );
    assert_eq!(
        call(
            addr,
            Method::POST,
            "/_wasmount/launches",
            "refinery-launch-token-0001",
            launch.clone()
        )
        .await,
        StatusCode::CREATED
    );
    assert_eq!(
        call(
            addr,
            Method::GET,
            "/_wasmount/apps",
            "dashboard-read-token-0001",
            Bytes::new()
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        call(
            addr,
            Method::DELETE,
            "/_wasmount/apps/hello",
            "dashboard-read-token-0001",
            Bytes::new()
        )
        .await,
        StatusCode::FORBIDDEN,
        "a read token cannot delete"
    );
    assert_eq!(
        call(
            addr,
            Method::POST,
            "/_wasmount/launches",
            "ci-deploy-token-000000001",
            launch.clone()
        )
        .await,
        StatusCode::FORBIDDEN,
        "a deploy token cannot launch"
    );
    assert_eq!(
        call(
            addr,
            Method::PUT,
            "/_wasmount/apps/other",
            "ci-deploy-token-000000001",
            hello
        )
        .await,
        StatusCode::CREATED
    );
    let logged = server.log.lock().unwrap().join("\n");
    assert!(
        logged.contains("token=ci") && logged.contains("PUT /_wasmount/apps/other"),
        "writes are logged with the token's name:\n{logged}"
    );

    // Rotation: the file changes, SIGHUP, and the old token stops at once.
    let rotated = TOKENS.replace("refinery-launch-token-0001", "refinery-launch-token-0002");
    std::fs::write(&tokens, rotated).unwrap();
    server.signal("HUP");
    let reread = || async {
        let log = server.log.lock().unwrap().join("\n");
        log.contains("tokens file re-read").then_some(())
    };
    eventually(
        "the tokens file to be re-read",
        Duration::from_secs(30),
        reread,
    )
    .await;
    let old = call(
        addr,
        Method::POST,
        "/_wasmount/launches",
        "refinery-launch-token-0001",
        launch.clone(),
    )
    .await;
    assert_eq!(
        old,
        StatusCode::UNAUTHORIZED,
        "the old token no longer works"
    );
    assert_eq!(
        call(
            addr,
            Method::POST,
            "/_wasmount/launches",
            "refinery-launch-token-0002",
            launch
        )
        .await,
        StatusCode::CREATED
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "SIGHUP did not end it"
    );
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_link_opens_its_launch_in_that_browser_only_and_on_another_node_too() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    // The keys every node is given: 32 bytes of 7, in base64.
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("link-keys");
    std::fs::write(&keys, "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n").unwrap();
    let configure = |config: &mut wasmount::config::Config| {
        config.admin_token = Some(ADMIN_TOKEN.into());
        config.link_keys = Some(keys.clone());
    };
    let first = TestServer::start_in(apps, configure).await;
    let launched = first
        .admin(
            Method::POST,
            "/_wasmount/launches",
            r#"{"app": "echo", "access": "link", "input": {}}"#,
        )
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    let info = json(&launched);
    let name = info["name"].as_str().unwrap().to_owned();
    let link = info["link"].as_str().expect("a signed link").to_owned();
    let link_path = &link[link.find(&format!("/{name}/")).unwrap()..];

    let without = first.get(&format!("/{name}/")).await;
    assert_eq!(
        without.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        without.text()
    );
    let opened = first.get(link_path).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.text());
    assert_eq!(opened.header("location"), format!("/{name}/"));
    let cookie = opened.header("set-cookie").to_owned();
    assert!(
        cookie.contains(&format!("Path=/{name}/")) && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |server: &TestServer, path: String| {
        let (addr, session) = (server.addr, session.clone());
        async move {
            try_send(
                addr,
                Method::GET,
                &path,
                Bytes::new(),
                &[("cookie", &session)],
            )
            .await
            .unwrap()
        }
    };
    let served = with_cookie(&first, format!("/{name}/x")).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
    assert!(
        json(&served)["headers"].get("cookie").is_none(),
        "the link's cookie stays with the host"
    );

    // Forged, or another launch's: 401.
    let forged = link_path.replacen("wasmount-link=", "wasmount-link=9", 1);
    assert_eq!(first.get(&forged).await.status, StatusCode::UNAUTHORIZED);
    let other = json(
        &first
            .admin(
                Method::POST,
                "/_wasmount/launches",
                r#"{"app": "echo", "access": "link", "input": {}}"#,
            )
            .await,
    )["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let borrowed = link_path.replacen(&name, &other, 1);
    assert_eq!(
        first.get(&borrowed).await.status,
        StatusCode::UNAUTHORIZED,
        "another launch's link"
    );

    // Another node with the same keys and the same launches (here: a copy of the first's
    // apps folder, as a node of a cluster gets them from the shared store).
    let copy = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", first.apps_path().display()))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let second = TestServer::start_in(copy, configure).await;
    assert_eq!(
        with_cookie(&second, format!("/{name}/")).await.status,
        StatusCode::OK
    );
    assert_eq!(second.get(link_path).await.status, StatusCode::SEE_OTHER);
}

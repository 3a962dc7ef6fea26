//! Several nodes, one store: real `wasmount` processes sharing a private PostgreSQL server.
//! Uploads, launches and deletes made on one node are served by the others; a killed node
//! loses nothing; a node with an empty cache serves everything; with the database down,
//! nodes serve and refuse writes, then catch up; a lost notification is caught by the
//! resync; bad store settings stop a node at start.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use wasmount_tests::postgres::Postgres;
use wasmount_tests::{
    ADMIN_TOKEN, ServerProcess, TestResponse, eventually, guests, json, try_send,
};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");
/// Long enough for a compile on a busy machine; the README's figures say how fast it is.
const PATIENCE: Duration = Duration::from_secs(60);

/// One node: a `wasmount serve --store …` process with its own cache folder.
struct Node {
    process: ServerProcess,
    _cache: tempfile::TempDir,
    _apps: tempfile::TempDir,
}

impl Node {
    fn start(store: &Postgres, extra: &[&str]) -> Self {
        Self::start_with_url(&store.url(), extra)
    }

    fn start_with_url(url: &str, extra: &[&str]) -> Self {
        let cache = tempfile::tempdir().unwrap();
        let apps = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--store",
            url,
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "--apps",
            apps.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let process = ServerProcess::start(BIN, &args, &[("WASMOUNT_ADMIN_TOKEN", ADMIN_TOKEN)]);
        Self {
            process,
            _cache: cache,
            _apps: apps,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.process.addr
    }

    async fn get(&self, path: &str) -> TestResponse {
        send(self.addr(), Method::GET, path, Bytes::new(), false).await
    }

    async fn admin(&self, method: Method, path: &str, body: impl Into<Bytes>) -> TestResponse {
        send(self.addr(), method, path, body.into(), true).await
    }

    async fn upload(&self, name: &str, component: &str) -> TestResponse {
        let bytes = std::fs::read(component).unwrap();
        self.admin(Method::PUT, &format!("/_wasmount/apps/{name}"), bytes)
            .await
    }

    async fn launch(&self, body: serde_json::Value) -> TestResponse {
        self.admin(Method::POST, "/_wasmount/instances", body.to_string())
            .await
    }

    /// Waits until `path` answers `status` here.
    async fn wait_for(&self, path: &str, status: StatusCode) -> TestResponse {
        let what = format!("{path} to answer {status} on {}", self.addr());
        eventually(&what, PATIENCE, || async {
            let response = self.get(path).await;
            (response.status == status).then_some(response)
        })
        .await
    }

    fn log_lines(&self, containing: &str) -> usize {
        let log = self.process.log.lock().unwrap();
        log.iter().filter(|line| line.contains(containing)).count()
    }
}

async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
    admin: bool,
) -> TestResponse {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers: &[(&str, &str)] = if admin {
        &[("authorization", &auth)]
    } else {
        &[]
    };
    tokio::time::timeout(
        wasmount_tests::REQUEST_DEADLINE,
        try_send(addr, method, path, body, headers),
    )
    .await
    .expect("the request took longer than the deadline")
    .unwrap_or_else(|e| panic!("request to {addr}{path}: {e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_uploads_launches_and_deletes() {
    let store = Postgres::start();
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&store, &[])).collect();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    // An upload on one node is served by the others.
    let uploaded = a.upload("hello", guests::HELLO).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text());
    assert_eq!(
        a.get("/hello/").await.status,
        StatusCode::OK,
        "the writer serves it at once"
    );
    for node in [b, c] {
        node.wait_for("/hello/", StatusCode::OK).await;
    }
    let echo = a.upload("echo", guests::ECHO).await;
    assert_eq!(echo.status, StatusCode::CREATED, "{}", echo.text());

    // A launch on one node: its very first request on another node works.
    let launched = b
        .launch(serde_json::json!({"app": "echo", "input": {"dataset": 7}}))
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    let instance = json(&launched)["name"].as_str().unwrap().to_owned();
    let first = c.get(&format!("/{instance}/env")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert!(
        first.text().contains(r#"INPUT_JSON={"dataset":7}"#),
        "{}",
        first.text()
    );

    // A name taken on one node is taken on all: an app and an instance cannot share it.
    let taken = c.upload(&instance, guests::HELLO).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text());
    let named = a
        .launch(serde_json::json!({"app": "echo", "name": "hello", "input": {}}))
        .await;
    assert_eq!(named.status, StatusCode::CONFLICT, "{}", named.text());

    // Deleting the instance on one node removes it everywhere.
    let deleted = a
        .admin(
            Method::DELETE,
            &format!("/_wasmount/instances/{instance}"),
            "",
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    for node in [b, c] {
        node.wait_for(&format!("/{instance}/env"), StatusCode::NOT_FOUND)
            .await;
    }

    // An app launched on one node and deleted on another takes its instances with it.
    let viz = a
        .launch(serde_json::json!({"app": "echo", "name": "viz-7", "input": {}}))
        .await;
    assert_eq!(viz.status, StatusCode::CREATED, "{}", viz.text());
    let removed = c.admin(Method::DELETE, "/_wasmount/apps/echo", "").await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text());
    for node in [a, b] {
        node.wait_for("/echo/", StatusCode::NOT_FOUND).await;
        node.wait_for("/viz-7/", StatusCode::NOT_FOUND).await;
    }
    assert_eq!(store.sql("SELECT count(*) FROM wasmount_instances"), "0");
    assert_eq!(
        store.sql("SELECT count(*) FROM wasmount_components"),
        "1",
        "the deleted app's component is gone from the store, hello's stays"
    );

    // Health tells the store, that each node is in sync, and the version it applied.
    let version: i64 = store
        .sql("SELECT max(version) FROM wasmount_changes")
        .parse()
        .unwrap();
    for node in &nodes {
        let health = eventually("every node at the store's version", PATIENCE, || async {
            let health = json(&node.get("/_wasmount/health").await);
            (health["store"]["version"] == version).then_some(health)
        })
        .await;
        assert_eq!(health["status"], "ok");
        assert_eq!(health["store"]["in_sync"], true);
        assert_eq!(
            health["store"]["store"],
            format!("postgres://127.0.0.1:{}/wasmount", store.port),
            "health is public: the store without user or password"
        );
        assert!(
            !health
                .to_string()
                .contains(wasmount_tests::postgres::PASSWORD)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_and_a_fresh_node_serves_everything() {
    let store = Postgres::start();
    let mut a = Node::start(&store, &[]);
    for name in ["one", "two", "three"] {
        let uploaded = a.upload(name, guests::HELLO).await;
        assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text());
    }
    let launched = a
        .launch(serde_json::json!({"app": "one", "name": "kept", "input": {}}))
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    a.process.signal("KILL");
    a.process.wait(PATIENCE);

    // A new node, empty cache: everything acknowledged is there.
    let started = Instant::now();
    let fresh = Node::start(&store, &[]);
    for path in ["/one/", "/two/", "/three/", "/kept/"] {
        fresh.wait_for(path, StatusCode::OK).await;
    }
    let health = fresh.wait_for("/_wasmount/health", StatusCode::OK).await;
    assert_eq!(json(&health)["store"]["in_sync"], true);
    eprintln!(
        "a fresh node served 3 apps and an instance {} ms after it was started",
        started.elapsed().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_down_nodes_serve_and_refuse_writes_then_catch_up() {
    let mut store = Postgres::start();
    let (a, b) = (Node::start(&store, &[]), Node::start(&store, &[]));
    assert_eq!(
        a.upload("hello", guests::HELLO).await.status,
        StatusCode::CREATED
    );
    let launched = a
        .launch(serde_json::json!({"app": "hello", "name": "viz", "input": {}}))
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    b.wait_for("/viz/", StatusCode::OK).await;

    store.stop();
    for node in [&a, &b] {
        assert_eq!(node.get("/hello/").await.status, StatusCode::OK);
        assert_eq!(node.get("/viz/").await.status, StatusCode::OK);
    }
    let refused = b.upload("other", guests::HELLO).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text()
    );
    let store_name = format!("postgres://wasmount@127.0.0.1:{}/wasmount", store.port);
    assert!(refused.text().contains(&store_name), "{}", refused.text());
    let launch = b
        .launch(serde_json::json!({"app": "hello", "input": {}}))
        .await;
    assert_eq!(
        launch.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        launch.text()
    );
    let delete = a.admin(Method::DELETE, "/_wasmount/apps/hello", "").await;
    assert_eq!(
        delete.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        delete.text()
    );
    assert_eq!(
        a.get("/hello/").await.status,
        StatusCode::OK,
        "a refused delete deletes nothing"
    );
    let health = eventually("health to say b is out of sync", PATIENCE, || async {
        let health = json(&b.get("/_wasmount/health").await);
        (health["store"]["in_sync"] == false).then_some(health)
    })
    .await;
    assert_eq!(
        health["status"], "ok",
        "a node that lost the store still serves: {health}"
    );
    assert_eq!(b.get("/nobody/").await.status, StatusCode::NOT_FOUND);

    store.start_again();
    let stored = eventually("an upload to work again", PATIENCE, || async {
        let response = b.upload("other", guests::HELLO).await;
        (response.status == StatusCode::CREATED).then_some(response)
    })
    .await;
    assert_eq!(json(&stored)["app"]["name"], "other");
    a.wait_for("/other/", StatusCode::OK).await;
    for node in [&a, &b] {
        eventually("the node to be in sync again", PATIENCE, || async {
            let health = json(&node.get("/_wasmount/health").await);
            (health["store"]["in_sync"] == true).then_some(())
        })
        .await;
    }
}

/// Writes instance `name` of app `app` straight into the store, as a node would, but
/// without the notification: only a catch-up can find it.
fn launch_silently(store: &Postgres, name: &str, app: &str) {
    store.sql(&format!(
        "BEGIN; \
         INSERT INTO wasmount_instances (name, app, input, created_ms, last_used_ms, version) \
           SELECT '{name}', '{app}', '{{}}', 0, (extract(epoch from now()) * 1000)::bigint, \
                  max(version) + 1 FROM wasmount_changes; \
         INSERT INTO wasmount_changes (version, kind, name) \
           SELECT max(version) + 1, 'instance', '{name}' FROM wasmount_changes; \
         COMMIT;"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_a_name_not_yet_known_reads_through_to_the_store() {
    let store = Postgres::start();
    let node = Node::start(&store, &["--store-resync-interval", "10m"]);
    assert_eq!(
        node.upload("hello", guests::HELLO).await.status,
        StatusCode::CREATED
    );
    launch_silently(&store, "unannounced", "hello");
    let listed = node.admin(Method::GET, "/_wasmount/instances", "").await;
    assert!(
        !listed.text().contains("unannounced"),
        "no notification, no timer yet"
    );
    let first = node.get("/unannounced/").await;
    assert_eq!(
        first.status,
        StatusCode::OK,
        "the first request finds it: {}",
        first.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_notifications_are_caught_by_reconnecting_and_by_the_resync() {
    let store = Postgres::start();
    let a = Node::start(&store, &[]);
    // b only learns through its notifications (its timer is far away), c through its timer.
    let b = Node::start(&store, &["--store-resync-interval", "10m"]);
    let c = Node::start(&store, &["--store-resync-interval", "1s"]);
    assert_eq!(
        a.upload("hello", guests::HELLO).await.status,
        StatusCode::CREATED
    );
    b.wait_for("/hello/", StatusCode::OK).await;

    // Cut every listening connection; b reconnects, catches up, and gets what changed.
    let listeners = "FROM pg_stat_activity WHERE application_name = 'wasmount listener'";
    eventually("every node to be listening", PATIENCE, || async {
        (store.sql(&format!("SELECT count(*) {listeners}")) == "3").then_some(())
    })
    .await;
    let cut = store.sql(&format!(
        "SELECT count(pg_terminate_backend(pid)) {listeners}"
    ));
    assert_eq!(cut, "3");
    assert_eq!(
        a.upload("echo", guests::ECHO).await.status,
        StatusCode::CREATED
    );
    eventually("b to list echo", PATIENCE, || async {
        let apps = b.admin(Method::GET, "/_wasmount/apps", "").await;
        apps.text().contains("\"echo\"").then_some(())
    })
    .await;
    assert!(b.log_lines("listening to the store again") >= 1);

    // A change whose notification never came: c's timer finds it (the admin API's list
    // never reads through).
    launch_silently(&store, "silent", "hello");
    eventually("c to list the silent instance", PATIENCE, || async {
        let listed = c.admin(Method::GET, "/_wasmount/instances", "").await;
        listed.text().contains("\"silent\"").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_instance_expires_once_over_the_cluster_and_not_while_used_elsewhere() {
    let store = Postgres::start();
    let idle = ["--instance-idle-timeout", "4s"];
    let (a, b) = (Node::start(&store, &idle), Node::start(&store, &idle));
    assert_eq!(
        a.upload("hello", guests::HELLO).await.status,
        StatusCode::CREATED
    );
    let launched = a
        .launch(serde_json::json!({"app": "hello", "name": "busy", "input": {}}))
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());

    // Used on b only, for twice the idle time: a must not expire it.
    let used_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < used_until {
        assert_eq!(
            b.get("/busy/").await.status,
            StatusCode::OK,
            "expired while in use on b"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Then unused (asking the admin API is not a use): it expires, on both, exactly once.
    for node in [&a, &b] {
        eventually("the instance to expire", PATIENCE, || async {
            let info = node
                .admin(Method::GET, "/_wasmount/instances/busy", "")
                .await;
            (info.status == StatusCode::NOT_FOUND).then_some(())
        })
        .await;
    }
    assert_eq!(b.get("/busy/").await.status, StatusCode::NOT_FOUND);
    let expiries =
        || a.log_lines("idle instance(s) expired") + b.log_lines("idle instance(s) expired");
    eventually("the expiry to be logged", PATIENCE, || async {
        (expiries() > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // a second expiry would be logged by now
    assert_eq!(expiries(), 1, "exactly one node expired it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_store_settings_stop_the_node_at_start_with_one_clear_line() {
    let store = Postgres::start();
    let cache = tempfile::tempdir().unwrap();
    let refusal = |store_url: &str| {
        let cache = cache.path().to_str().unwrap();
        let output = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir", cache])
            .args(["--store", store_url])
            .env("WASMOUNT_LOG", "warn")
            .output()
            .unwrap();
        assert!(!output.status.success(), "started with --store {store_url}");
        String::from_utf8_lossy(&output.stderr).trim().to_owned()
    };
    let bad_url = refusal("postgres://wasmount:secret@127.0.0.1:notaport/wasmount");
    assert!(bad_url.contains("--store"), "{bad_url}");
    assert!(
        !bad_url.contains("secret"),
        "the password is never shown: {bad_url}"
    );
    let wrong_password = refusal(&format!(
        "postgres://wasmount:wrong@127.0.0.1:{}/wasmount",
        store.port
    ));
    assert!(
        wrong_password.contains("password authentication failed"),
        "{wrong_password}"
    );
    assert_eq!(wrong_password.lines().count(), 1, "{wrong_password}");
    assert_eq!(
        store.sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'wasmount%'"),
        "0",
        "nothing written"
    );

    // A schema from a newer wasmount.
    let node = Node::start(&store, &[]);
    drop(node);
    store.sql("INSERT INTO wasmount_schema (version) VALUES (99)");
    let newer = refusal(&store.url());
    assert!(newer.contains("schema version 99"), "{newer}");
    assert!(newer.contains("upgrade wasmount"), "{newer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_store_moves_into_postgres_and_back() {
    let store = Postgres::start();
    let folder = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, folder.path().join("echo.wasm")).unwrap();
    let manifest = "environment = { TITLE = \"Imported\" }\n";
    std::fs::write(folder.path().join("echo.toml"), manifest).unwrap();
    {
        let args = ["--apps", folder.path().to_str().unwrap()];
        let mut single = ServerProcess::start(BIN, &args, &[("WASMOUNT_ADMIN_TOKEN", ADMIN_TOKEN)]);
        let body = serde_json::json!({"app": "echo", "name": "kept", "input": {"n": 1}});
        let launched = send(
            single.addr,
            Method::POST,
            "/_wasmount/instances",
            body.to_string().into(),
            true,
        )
        .await;
        assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
        single.signal("TERM");
        single.wait(PATIENCE);
    }
    let command = |args: &[&str]| {
        let output = std::process::Command::new(BIN).args(args).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        assert!(output.status.success(), "{args:?}: {stdout}{stderr}");
        stdout
    };
    let url = store.url();
    let imported = command(&[
        "store",
        "import",
        "--from",
        folder.path().to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(
        imported.contains("imported 1 app(s) and 1 launch(es)"),
        "{imported}"
    );

    let node = Node::start(&store, &[]);
    let env = node.wait_for("/echo/env", StatusCode::OK).await.text();
    assert!(
        env.contains("TITLE=Imported"),
        "the manifest came along: {env}"
    );
    let kept = node.get("/kept/env").await.text();
    assert!(kept.contains(r#"INPUT_JSON={"n":1}"#), "{kept}");

    let exported = tempfile::tempdir().unwrap();
    let target = exported.path().join("apps");
    let done = command(&[
        "store",
        "export",
        "--from",
        &url,
        "--to",
        target.to_str().unwrap(),
    ]);
    assert!(
        done.contains("exported 1 app(s) and 1 launch(es)"),
        "{done}"
    );
    assert_eq!(
        std::fs::read(target.join("echo.wasm")).unwrap(),
        std::fs::read(guests::ECHO).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(target.join("echo.toml")).unwrap(),
        manifest
    );
    assert!(target.join(".instances/kept.json").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_store_when_the_url_asks_for_it() {
    let store = Postgres::start_with_tls();
    let encrypted = || {
        store.sql(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE ssl AND application_name LIKE 'wasmount%'",
        )
    };
    let ca = store.ca_cert();
    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        store.url(),
        ca.display()
    );
    let node = Node::start_with_url(&verified, &[]);
    assert_eq!(
        node.upload("hello", guests::HELLO).await.status,
        StatusCode::CREATED
    );
    assert_eq!(encrypted(), "2", "the node's two connections use TLS");
    drop(node);

    // require: encrypted, the certificate not checked (libpq's meaning).
    let node = Node::start_with_url(&format!("{}?sslmode=require", store.url()), &[]);
    node.wait_for("/hello/", StatusCode::OK).await;
    drop(node);

    // verify-full against roots that did not sign the server's certificate: refused at start.
    let cache = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(cache.path())
        .args(["--store", &format!("{}?sslmode=verify-full", store.url())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_limits_hold_over_the_whole_cluster() {
    let store = Postgres::start();
    let limit = ["--max-launched-instances", "2"];
    let (a, b) = (Node::start(&store, &limit), Node::start(&store, &limit));
    assert_eq!(
        a.upload("hello", guests::HELLO).await.status,
        StatusCode::CREATED
    );
    for node in [&a, &b] {
        let launched = node
            .launch(serde_json::json!({"app": "hello", "input": {}}))
            .await;
        assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    }
    let third = a
        .launch(serde_json::json!({"app": "hello", "input": {}}))
        .await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        third.text()
    );
    assert_eq!(store.sql("SELECT count(*) FROM wasmount_instances"), "2");
}

//! Hot reload with real file-system events in a temp folder: add, change, break (the old
//! version keeps serving, the error is visible), fix, remove, rename, a burst of writes, an
//! editor-style save, and a build output outside the apps folder.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::path::Path;
use std::time::{Duration, Instant};
use wasmount_tests::{TestServer, eventually, guests, json, sha256_of};

const SETTLE: Duration = Duration::from_secs(60);

async fn watched_server(apps: &[(&str, &str)]) -> TestServer {
    TestServer::start_admin(apps, |config| config.watch = true).await
}

async fn info(server: &TestServer, name: &str) -> serde_json::Value {
    json(
        &server
            .admin(
                Method::GET,
                &format!("/_wasmount/apps/{name}"),
                Bytes::new(),
            )
            .await,
    )
}

/// `Some(())` when `path` answers 200 with `needle` in the body.
async fn serves(server: &TestServer, path: &str, needle: &str) -> Option<()> {
    let response = server.get(path).await;
    (response.status == StatusCode::OK && response.text().contains(needle)).then_some(())
}

fn write(dir: &Path, file: &str, source: &str) {
    std::fs::write(dir.join(file), std::fs::read(source).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn add_change_break_fix_and_remove_an_app_by_saving_files() {
    let server = watched_server(&[]).await;
    let dir = server.apps_path().to_owned();

    write(&dir, "app.wasm", guests::HELLO);
    eventually("the new app is mounted", SETTLE, || {
        serves(&server, "/app/", "Hello from wasmount!")
    })
    .await;

    write(&dir, "app.wasm", guests::ECHO);
    eventually("the change is live", SETTLE, || {
        serves(&server, "/app/", r#""method":"GET""#)
    })
    .await;

    let hello = std::fs::read(guests::HELLO).unwrap();
    std::fs::write(dir.join("app.wasm"), &hello[..hello.len() / 3]).unwrap();
    let broken = eventually("the broken build is reported", SETTLE, || async {
        let app = info(&server, "app").await;
        app.get("error").is_some().then_some(app)
    })
    .await;
    assert_eq!(
        broken["state"], "serving",
        "the previous version keeps serving: {broken}"
    );
    assert_eq!(broken["sha256"], sha256_of(guests::ECHO));
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .contains("invalid component"),
        "{broken}"
    );
    assert!(
        serves(&server, "/app/", r#""method":"GET""#)
            .await
            .is_some(),
        "old version answers"
    );

    write(&dir, "app.wasm", guests::HELLO);
    eventually("the fixed build is live", SETTLE, || {
        serves(&server, "/app/", "Hello from wasmount!")
    })
    .await;
    assert!(
        info(&server, "app").await.get("error").is_none(),
        "the error is cleared"
    );

    std::fs::remove_file(dir.join("app.wasm")).unwrap();
    eventually("the app is unmounted", SETTLE, || async {
        (server.get("/app/").await.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn renames_and_editor_style_saves_are_followed() {
    let server = watched_server(&[("first", guests::HELLO)]).await;
    let dir = server.apps_path().to_owned();

    std::fs::rename(dir.join("first.wasm"), dir.join("second.wasm")).unwrap();
    eventually("the renamed app moves", SETTLE, || async {
        let gone = server.get("/first/").await.status == StatusCode::NOT_FOUND;
        (gone
            && serves(&server, "/second/", "Hello from wasmount!")
                .await
                .is_some())
        .then_some(())
    })
    .await;

    // An editor writes a temp file next to the target, then renames it over the target.
    write(&dir, ".second.wasm.swp", guests::VIZ);
    std::fs::rename(dir.join(".second.wasm.swp"), dir.join("second.wasm")).unwrap();
    eventually("the saved file is live", SETTLE, || {
        serves(&server, "/second/", "Plot a table")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_writes_ends_in_one_reload_of_the_final_content() {
    // A debounce far above any gap between the writes below, even on a busy machine.
    let debounce = Duration::from_millis(1500);
    let server = TestServer::start_admin(&[("app", guests::HELLO)], |config| {
        config.watch = true;
        config.watch_debounce = debounce;
    })
    .await;
    let dir = server.apps_path().to_owned();
    assert_eq!(
        server.get("/app/").await.status,
        StatusCode::OK,
        "loaded before the burst"
    );
    let before = info(&server, "app").await["deploys"].as_u64().unwrap();
    assert_eq!(before, 1);

    let versions = [guests::ECHO, guests::HELLO, guests::TRAP];
    // Twenty complete, different versions back to back, as a build or an editor might.
    let mut longest_gap = Duration::ZERO;
    for i in 0..20 {
        let started = Instant::now();
        let version = if i == 19 {
            guests::VIZ
        } else {
            versions[i % versions.len()]
        };
        write(&dir, "app.wasm", version);
        longest_gap = longest_gap.max(started.elapsed());
    }
    assert!(longest_gap < debounce / 2, "a write took {longest_gap:?}");
    eventually("the final content is live", SETTLE, || {
        serves(&server, "/app/", "Plot a table")
    })
    .await;
    tokio::time::sleep(debounce * 2).await; // nothing else may follow
    let after = info(&server, "app").await;
    assert_eq!(after["sha256"], sha256_of(guests::VIZ));
    assert_eq!(
        after["deploys"].as_u64().unwrap(),
        before + 1,
        "exactly one reload: {after}"
    );

    // Saving the same content again changes nothing.
    write(&dir, "app.wasm", guests::VIZ);
    tokio::time::sleep(debounce * 2).await;
    assert_eq!(
        info(&server, "app").await["deploys"].as_u64().unwrap(),
        before + 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_output_outside_the_folder_is_followed_and_dev_mode_shows_build_errors() {
    let build = tempfile::tempdir().unwrap();
    let output = build.path().join("release").join("viz.wasm");
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    std::fs::copy(guests::HELLO, &output).unwrap();
    let server = TestServer::start_admin(&[], |config| {
        config.watch = true;
        config.dev = true;
        config.external_apps = vec![("viz".into(), output.clone())];
    })
    .await;
    eventually("the external app is mounted", SETTLE, || {
        serves(&server, "/viz/", "Hello from wasmount!")
    })
    .await;
    // An upload under its name would shadow the file until its next save: refused.
    let hello = std::fs::read(guests::HELLO).unwrap();
    let upload = server.put_multipart("viz", &[("component", &hello)]).await;
    assert_eq!(upload.status, StatusCode::CONFLICT, "{}", upload.text());
    assert!(
        upload.text().contains("is mounted from"),
        "{}",
        upload.text()
    );
    let delete = server
        .admin(http::Method::DELETE, "/_wasmount/apps/viz", "")
        .await;
    assert_eq!(delete.status, StatusCode::CONFLICT, "{}", delete.text());
    assert!(
        serves(&server, "/viz/", "Hello from wasmount!")
            .await
            .is_some()
    );

    // A compiler writes its output in place.
    std::fs::copy(guests::VIZ, &output).unwrap();
    eventually("the rebuilt app is live", SETTLE, || {
        serves(&server, "/viz/", "Plot a table")
    })
    .await;
    assert!(
        !server.apps_path().join("viz.wasm").exists(),
        "nothing is copied into the store"
    );

    std::fs::write(&output, b"\0asm\x01\0\0\0").unwrap();
    let response = eventually("the build error is shown", SETTLE, || async {
        let response = server.get("/viz/").await;
        response
            .headers
            .contains_key("x-wasmount-error")
            .then_some(response)
    })
    .await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "the previous build answers"
    );
    assert!(response.text().contains("Plot a table"));
    assert!(
        response
            .header("x-wasmount-error")
            .contains("core WebAssembly module")
    );

    // A launched instance of the app carries its build error too.
    let body = r#"{"app": "viz", "name": "viz-dataset", "input": {}}"#;
    let launched = server
        .admin(http::Method::POST, "/_wasmount/instances", body)
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    let instance = server.get("/viz-dataset/").await;
    assert!(
        instance
            .header("x-wasmount-error")
            .contains("core WebAssembly module")
    );

    // Fixed: the same bytes as the version serving clear the error.
    std::fs::copy(guests::VIZ, &output).unwrap();
    let cleared = |server: &TestServer| {
        let server = server.addr;
        async move {
            let answer = wasmount_tests::try_send(
                server,
                http::Method::GET,
                "/viz/",
                bytes::Bytes::new(),
                &[],
            )
            .await
            .ok()?;
            (!answer.headers.contains_key("x-wasmount-error")).then_some(answer)
        }
    };
    let answer = eventually("an identical good build clears the error", SETTLE, || {
        cleared(&server)
    })
    .await;
    assert!(answer.text().contains("Plot a table"));

    // `cargo clean` deletes the output: the app keeps serving and says why.
    std::fs::remove_file(&output).unwrap();
    let gone = eventually("the deleted output is reported", SETTLE, || async {
        let response = server.get("/viz/").await;
        let error = response.headers.get("x-wasmount-error");
        let gone = error.is_some_and(|e| e.to_str().unwrap_or_default().contains("is gone"));
        gone.then_some(response)
    })
    .await;
    assert_eq!(gone.status, StatusCode::OK);
    assert!(gone.text().contains("Plot a table"));
    std::fs::copy(guests::VIZ, &output).unwrap();
    eventually("built again, the error is gone", SETTLE, || {
        cleared(&server)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_outputs_settings_can_live_in_the_apps_folder_not_the_build_folder() {
    let build = tempfile::tempdir().unwrap();
    let output = build.path().join("viz.wasm");
    std::fs::copy(guests::VIZ, &output).unwrap();
    let server = TestServer::start_with(&[], |config| {
        config.watch = true;
        config.dev = true;
        config.external_apps = vec![("viz".into(), output.clone())];
    })
    .await;
    eventually("the app is mounted at its name", SETTLE, || {
        serves(&server, "/viz/", "Plot a table")
    })
    .await;
    // Settings saved in the apps folder (where `cargo clean` cannot delete them) apply.
    std::fs::write(server.apps_path().join("viz.toml"), "route = \"/plots\"\n").unwrap();
    eventually("the settings in the apps folder apply", SETTLE, || {
        serves(&server, "/plots/", "Plot a table")
    })
    .await;
    // Settings beside the output come first.
    std::fs::write(build.path().join("viz.toml"), "route = \"/beside\"\n").unwrap();
    std::fs::copy(guests::HELLO, &output).unwrap();
    eventually("the settings beside the output apply", SETTLE, || {
        serves(&server, "/beside/", "Hello from wasmount!")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn links_to_devices_and_fifos_are_refused_and_block_nothing() {
    let server = watched_server(&[]).await;
    let dir = server.apps_path().to_owned();
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.wasm")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.join("fifo.wasm"))
        .status()
        .unwrap();
    assert!(made.success());
    // Saved after them, a real app still goes live: the watcher was not blocked.
    write(&dir, "app.wasm", guests::HELLO);
    eventually("the app saved after them is mounted", SETTLE, || {
        serves(&server, "/app/", "Hello from wasmount!")
    })
    .await;
    for name in ["zero", "fifo"] {
        let refused = eventually(&format!("{name} is reported"), SETTLE, || async {
            let app = info(&server, name).await;
            app.get("error").is_some().then_some(app)
        })
        .await;
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("not a regular file"),
            "{refused}"
        );
    }
    let stopped = tokio::time::timeout(Duration::from_secs(20), server.shutdown()).await;
    stopped
        .expect("shut down promptly")
        .expect("shut down cleanly");
}

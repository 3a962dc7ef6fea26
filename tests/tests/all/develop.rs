//! The app developer's loop with the real binary: `wasmount new` writes a project,
//! `wasmount dev DIR` builds it from source (Rust with cargo, Python with componentize-py,
//! JavaScript with componentize-js), serves it, rebuilds it on save, keeps the last good
//! version serving through a broken build with the compiler's message for the page, and
//! clears that message on the next good build. Also dev mode's page script and its guest
//! failure reports, in process.

use http::Method;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wasmount_tests::projects::{FIRST_BUILD, REBUILD, Wasmount, edit, workdir};
use wasmount_tests::{ServerProcess, TestServer, eventually, guests, try_send};

const WASMOUNT: Wasmount = Wasmount(env!("CARGO_BIN_EXE_wasmount-under-test"));

/// The live-reload script's tag, as pages carry it.
const LIVE_SCRIPT: &str = "<script src=\"/_wasmount/dev/live.js\"";

/// Polls `GET path` until it answers `200` with `wanted` in its body (not the page that
/// waits for a first build); the body.
async fn page_containing(addr: SocketAddr, path: &str, wanted: &str, within: Duration) -> String {
    eventually(
        &format!("GET {path} containing {wanted:?}"),
        within,
        || async {
            let response = try_send(addr, Method::GET, path, Default::default(), &[])
                .await
                .ok()?;
            let text = response.text();
            (response.status == 200 && text.contains(wanted)).then_some(text)
        },
    )
    .await
}

/// The first event of app `name`'s live-reload stream: its state as JSON (`None` if it did not
/// come, for [`eventually`] to ask again).
async fn live_state(addr: SocketAddr, name: &str) -> Option<serde_json::Value> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /_wasmount/dev/events/{name} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut received = Vec::new();
    let read = async {
        let mut buffer = [0u8; 8192];
        loop {
            let n = stream.read(&mut buffer).await.ok()?;
            if n == 0 {
                return None; // the stream ended before its first event
            }
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received);
            if let Some(at) = text.find("data: ")
                && let Some(end) = text[at..].find('\n')
            {
                return Some(text[at + 6..at + end].to_owned());
            }
        }
    };
    let data = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .ok()??;
    serde_json::from_str(&data).ok()
}

#[test]
fn wasmount_new_refuses_a_bad_name_and_a_used_folder() {
    let dir = workdir();
    let (ok, said) = WASMOUNT.run(dir.path(), &["new", "My_App"]);
    assert!(!ok && said.contains("not an app name"), "{said}");
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("taken/notes.txt"), "mine").unwrap();
    let (ok, said) = WASMOUNT.run(dir.path(), &["new", "taken", "--lang", "python"]);
    assert!(!ok && said.contains("not empty"), "{said}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("taken/notes.txt")).unwrap(),
        "mine"
    );
    let (ok, said) = WASMOUNT.run(dir.path(), &["new", "x", "--lang", "cobol"]);
    assert!(!ok && said.contains("cobol"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_project_is_built_served_rebuilt_on_save_and_survives_a_broken_build() {
    let dir = workdir();
    let project = WASMOUNT.new_project(dir.path(), "dev-app", "rust");
    let apps = dir.path().join("apps");
    let server = WASMOUNT.start_dev(&apps, &[&project]);
    let addr = server.addr;

    // Built from source and serving every route of the template.
    let page = page_containing(addr, "/dev-app/", "<h1>dev-app</h1>", FIRST_BUILD).await;
    assert!(page.contains(LIVE_SCRIPT), "{page}");
    let hello = try_send(
        addr,
        Method::GET,
        "/dev-app/api/hello",
        Default::default(),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(hello.header("content-type"), "application/json");
    assert_eq!(wasmount_tests::json(&hello)["app"], "dev-app");
    let greeted = try_send(
        addr,
        Method::POST,
        "/dev-app/greet",
        "name=Ada".into(),
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await
    .unwrap();
    assert!(greeted.text().contains("Ada"), "{}", greeted.text());
    let style = try_send(
        addr,
        Method::GET,
        "/dev-app/static/style.css",
        Default::default(),
        &[],
    )
    .await
    .unwrap();
    assert!(!style.text().contains(LIVE_SCRIPT), "CSS is not a page");

    // A saved edit is live without anything else.
    let main = project.join("src/main.rs");
    edit(&main, "Rust on wasmount", "Rust on wasmount, edited live");
    page_containing(addr, "/dev-app/", "edited live", REBUILD).await;

    // A syntax error: the edited version keeps answering, the page gets the compiler's words.
    edit(&main, "async fn main", "async fn main(");
    let state = eventually("the broken build reported", REBUILD, || async {
        let state = live_state(addr, "dev-app").await?;
        state["error"].is_string().then_some(state)
    })
    .await;
    let error = state["error"].as_str().unwrap();
    assert!(error.contains("src/main.rs:"), "file:line in {error}");
    let still = try_send(addr, Method::GET, "/dev-app/", Default::default(), &[])
        .await
        .unwrap();
    assert!(still.text().contains("edited live"), "{}", still.text());
    assert!(
        still.header("x-wasmount-error").contains("build failed"),
        "{still:?}"
    );

    // New settings while the sources are broken: built again (and failing again), never the
    // old output put live with the error hidden.
    let failures = |server: &ServerProcess| {
        let log = server.log.lock().unwrap();
        log.iter()
            .filter(|line| line.contains("build failed"))
            .count()
    };
    let before = failures(&server);
    let settings = project.join("wasmount.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(&settings, format!("{text}\n# touched\n")).unwrap();
    eventually("the settings change rebuilt", REBUILD, || async {
        (failures(&server) > before).then_some(())
    })
    .await;
    let state = live_state(addr, "dev-app").await.expect("the state");
    assert!(state["error"].is_string(), "{state}");

    // Settings saved in the apps folder for a project's app leave it mounted.
    std::fs::write(apps.join("dev-app.toml"), "# nothing yet\n").unwrap();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = try_send(addr, Method::GET, "/dev-app/", Default::default(), &[])
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
    }

    // Fixed: the error is gone, from the stream and the responses.
    edit(&main, "async fn main(", "async fn main");
    eventually("the error cleared", REBUILD, || async {
        live_state(addr, "dev-app").await?["error"]
            .is_null()
            .then_some(())
    })
    .await;
    let fixed = try_send(addr, Method::GET, "/dev-app/", Default::default(), &[])
        .await
        .unwrap();
    assert!(!fixed.headers.contains_key("x-wasmount-error"), "{fixed:?}");

    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("live at http://"), "{log}");
    assert!(log.contains("save_to_live_ms="), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_projects_from_the_templates_build_and_answer() {
    let dir = workdir();
    let python = WASMOUNT.new_project(dir.path(), "py-app", "python");
    let js = WASMOUNT.new_project(dir.path(), "js-app", "js");
    let server = WASMOUNT.start_dev(&dir.path().join("apps"), &[&python, &js]);
    let addr = server.addr;
    for name in ["py-app", "js-app"] {
        let page = page_containing(addr, &format!("/{name}/"), name, FIRST_BUILD).await;
        assert!(page.contains(LIVE_SCRIPT), "{page}");
        let hello = try_send(
            addr,
            Method::GET,
            &format!("/{name}/api/hello"),
            Default::default(),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(wasmount_tests::json(&hello)["app"], name, "{hello:?}");
        let greeted = try_send(
            addr,
            Method::POST,
            &format!("/{name}/greet"),
            "name=Grace".into(),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await
        .unwrap();
        assert!(
            greeted.text().contains("Grace"),
            "{name}: {}",
            greeted.text()
        );
    }
}

#[test]
fn wasmount_build_writes_the_component_and_reports_a_compile_error_plainly() {
    let dir = workdir();
    let project = WASMOUNT.new_project(dir.path(), "built", "rust");
    let out = dir.path().join("out/built.wasm");
    let (ok, said) = WASMOUNT.run(&project, &["build", ".", "-o", out.to_str().unwrap()]);
    assert!(ok, "{said}");
    assert!(said.contains("built in"), "{said}");
    assert!(std::fs::metadata(&out).unwrap().len() > 1000);

    edit(
        &project.join("src/main.rs"),
        "async fn main",
        "async fn main(",
    );
    let (ok, said) = WASMOUNT.run(&project, &["build"]);
    assert!(!ok, "{said}");
    assert!(said.contains("src/main.rs:"), "{said}");
    assert!(!said.contains("compiler-message"), "no raw JSON: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_appends_the_reload_script_to_pages_only_and_serve_mode_never() {
    let dev = TestServer::start_with(&[("viz", guests::VIZ)], |config| config.dev = true).await;
    let page = dev.get("/viz/").await;
    assert!(page.text().contains(LIVE_SCRIPT), "{}", page.text());
    // A fragment a script fetches is not a page to reload.
    let fragment = dev
        .send(Method::GET, "/viz/", "", &[("sec-fetch-dest", "empty")])
        .await;
    assert!(
        !fragment.text().contains(LIVE_SCRIPT),
        "{}",
        fragment.text()
    );
    let css = dev.get("/viz/static/app.css").await;
    assert!(!css.text().contains("<script"), "{}", css.text());
    let script = dev.get("/_wasmount/dev/live.js").await;
    assert!(script.header("content-type").starts_with("text/javascript"));
    dev.shutdown().await.unwrap();

    let serve = TestServer::start(&[("viz", guests::VIZ)]).await;
    let page = serve.get("/viz/").await;
    assert!(!page.text().contains(LIVE_SCRIPT), "{}", page.text());
    assert_eq!(serve.get("/_wasmount/dev/live.js").await.status, 404);
    serve.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_panic_in_dev_mode_names_the_request_and_shows_the_message() {
    let dev = TestServer::start_with(&[("trap", guests::TRAP)], |config| config.dev = true).await;
    let failed = dev.get("/trap/boom").await;
    assert_eq!(failed.status, 500);
    let text = failed.text();
    assert!(text.contains("GET /boom"), "{text}");
    assert!(text.contains("trap guest asked to fail at /boom"), "{text}");
    assert!(
        failed.header("x-wasmount-error").contains("panicked"),
        "{failed:?}"
    );
    dev.shutdown().await.unwrap();

    // Outside dev mode the client learns nothing of the guest's insides.
    let serve = TestServer::start(&[("trap", guests::TRAP)]).await;
    let failed = serve.get("/trap/boom").await;
    assert_eq!(failed.status, 500);
    assert!(
        !failed.text().contains("asked to fail"),
        "{}",
        failed.text()
    );
    assert!(!failed.headers.contains_key("x-wasmount-error"));
    serve.shutdown().await.unwrap();
}

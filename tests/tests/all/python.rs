//! Python apps as their authors write them, built with `wasmount build` and served by the
//! real server: an unmodified Flask app (a template, a form, a JSON route, a static file,
//! `url_for`) under a base path; an app on the Python SDK (routing, typed launch input,
//! outgoing HTTP through the allow-list); readable tracebacks; a package that needs native
//! code refused at build by name; and the SDK's own unit tests.

use http::{Method, StatusCode};
use std::path::{Path, PathBuf};
use wasmount_tests::projects::{Wasmount, workdir};
use wasmount_tests::{ADMIN_TOKEN, TestServer};

const WASMOUNT: Wasmount = Wasmount(env!("CARGO_BIN_EXE_wasmount-under-test"));

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Copies the fixture project `name` into `dir` and builds it into `apps/NAME.wasm`.
fn build_fixture(dir: &Path, name: &str, apps: &Path) {
    let project = dir.join(name);
    copy_tree(&root().join("tests/fixtures").join(name), &project);
    std::fs::create_dir_all(apps).unwrap();
    let output = apps.join(format!("{name}.wasm"));
    let (ok, said) = WASMOUNT.run(&project, &["build", ".", "-o", output.to_str().unwrap()]);
    assert!(ok, "wasmount build {name}: {said}");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Moves a built apps folder into a fresh temp folder a [`TestServer`] can own.
fn apps_folder(built: &Path) -> tempfile::TempDir {
    let apps = tempfile::tempdir().unwrap();
    copy_tree(built, apps.path());
    apps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmodified_flask_app_serves_templates_forms_json_and_static_files_under_a_base_path() {
    let dir = workdir();
    let built = dir.path().join("apps");
    build_fixture(dir.path(), "flask-app", &built);
    let server = TestServer::start_in(apps_folder(&built), |config| {
        config.base_path = "/tools".into();
        config.dev = true;
    })
    .await;

    let page = server.get("/tools/flask-app/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let text = page.text();
    assert!(text.contains("<h1>Flask on wasmount</h1>"), "{text}");
    assert!(
        text.contains(r#"href="/tools/flask-app/static/style.css""#),
        "url_for: {text}"
    );
    assert!(
        text.contains(r#"action="/tools/flask-app/notes""#),
        "{text}"
    );

    let style = server.get("/tools/flask-app/static/style.css").await;
    assert_eq!(style.status, StatusCode::OK);
    assert!(style.header("content-type").starts_with("text/css"));
    assert!(style.text().contains("font-family"));

    let added = server
        .send(
            Method::POST,
            "/tools/flask-app/notes",
            "note=hello",
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(added.status, StatusCode::FOUND, "{}", added.text());
    assert_eq!(added.header("location"), "/tools/flask-app/");

    let square = wasmount_tests::json(&server.get("/tools/flask-app/api/square/7").await);
    assert_eq!(square["square"], 49);
    assert_eq!(square["link"], "/tools/flask-app/api/square/7");

    // An exception: one readable traceback, the developer's file and line, no mount paths.
    let failed = server.get("/tools/flask-app/boom").await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = failed.text();
    assert!(text.contains(r#"File "app.py", line"#), "{text}");
    assert!(text.contains("ZeroDivisionError"), "{text}");
    assert!(!text.contains(r#"File "/0/"#), "{text}");
    assert_eq!(
        failed.header("x-wasmount-error"),
        "ZeroDivisionError: division by zero"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_sdk_app_routes_reads_typed_input_and_fetches_through_the_allow_list() {
    let (data, _) = wasmount_tests::data_server("gene,value\nTP53,4.5\n").await;
    let dir = workdir();
    let built = dir.path().join("apps");
    build_fixture(dir.path(), "python-sdk-app", &built);
    let manifest = format!(
        "allowed_outbound_hosts = [\"http://{data}\"]\nenvironment = {{ DATA_URL = \"http://{data}/table.csv\" }}\n"
    );
    std::fs::write(built.join("python-sdk-app.toml"), manifest).unwrap();
    let server = TestServer::start_in(apps_folder(&built), |config| {
        config.admin_token = Some(ADMIN_TOKEN.into());
    })
    .await;

    let page = server.get("/python-sdk-app/").await;
    assert!(
        page.text().contains(r#"href="/python-sdk-app/items/1""#),
        "{}",
        page.text()
    );
    let item = wasmount_tests::json(&server.get("/python-sdk-app/items/21").await);
    assert_eq!(item["twice"], 42);
    assert_eq!(server.get("/python-sdk-app/items/x").await.status, 404);
    let refused = server
        .send(
            Method::POST,
            "/python-sdk-app/items",
            "{}",
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.header("content-type"), "application/json");
    assert_eq!(
        wasmount_tests::json(&refused)["error"],
        "an item needs a name"
    );

    let fetched = wasmount_tests::json(&server.get("/python-sdk-app/data").await);
    assert_eq!(fetched["status"], 200);
    assert_eq!(fetched["first_line"], "gene,value");

    let launch = r#"{"app": "python-sdk-app", "name": "dataset-7", "input": {
        "file_relationships": [["http://data.example/a.csv"], ["http://data.example/b.csv"]],
        "parameters": [{"name": "threshold", "value": "2.5"}]}}"#;
    let launched = server
        .admin(Method::POST, "/_wasmount/instances", launch)
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    let input = wasmount_tests::json(&server.get("/dataset-7/input").await);
    assert_eq!(
        input["files"],
        serde_json::json!(["http://data.example/a.csv", "http://data.example/b.csv"])
    );
    assert_eq!(input["threshold"], 2.5);
    assert_eq!(input["instance"], "dataset-7");
    server.shutdown().await.unwrap();
}

#[test]
fn a_package_that_needs_native_code_is_refused_at_build_by_name() {
    let dir = workdir();
    let project = dir.path().join("native-dep");
    copy_tree(&root().join("tests/fixtures/python-sdk-app"), &project);
    std::fs::write(project.join("requirements.txt"), "ujson==5.10.0\n").unwrap();
    let (ok, said) = WASMOUNT.run(&project, &["build"]);
    assert!(!ok, "{said}");
    assert!(said.contains("ujson needs native code"), "{said}");
    assert!(!said.contains("Stack backtrace"), "{said}");
}

#[test]
fn the_python_sdks_unit_tests_pass() {
    let ran = std::process::Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .current_dir(root().join("sdk/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("running python3 (Python 3.11 or newer is needed)");
    let said = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{said}");
    let ran_tests = said
        .split("Ran ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse::<u32>().ok());
    assert!(ran_tests.is_some_and(|count| count >= 90), "{said}");
}

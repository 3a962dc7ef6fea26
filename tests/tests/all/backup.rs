//! Backups of a folder store with `wasmount store export|import`: taken while the server
//! replaces an app (component and manifest together) over and over, every backup pairs each
//! component with its own settings; a backup restored into an empty folder serves the same
//! apps and launched instances.

use http::{Method, StatusCode};
use std::process::Command;
use std::time::{Duration, Instant};
use wasmount_tests::{TestServer, guests, sha256_of};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

fn wasmount(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running wasmount")
}

/// `wasmount store export --from APPS --to TARGET`, which must succeed.
fn export(apps: &str, target: &str) {
    let made = wasmount(&["store", "export", "--from", apps, "--to", target]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// The files of a `.tar` backup, by path.
fn entries(tar: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let listed = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    let mut files = std::collections::BTreeMap::new();
    for path in String::from_utf8_lossy(&listed.stdout).lines() {
        let content = Command::new("tar")
            .arg("-xOf")
            .arg(tar)
            .arg(path)
            .output()
            .unwrap();
        files.insert(path.to_owned(), content.stdout);
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_taken_while_an_app_is_replaced_pair_each_component_with_its_settings() {
    let server = TestServer::start_admin(&[("hello", guests::HELLO)], |_| {}).await;
    let launched = server
        .admin(
            Method::POST,
            "/_wasmount/instances",
            r#"{"app": "hello", "name": "dataset-1", "input": {"x": 1}}"#,
        )
        .await;
    assert_eq!(launched.status, StatusCode::CREATED, "{}", launched.text());
    let versions = [("hello", guests::HELLO), ("echo", guests::ECHO)];
    let sha_of = |kind: &str| sha256_of(versions.iter().find(|(k, _)| *k == kind).unwrap().1);

    // Replace `pair` again and again, each version with settings naming it.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let writer = {
        let addr = server.addr;
        tokio::spawn(async move {
            let mut written = 0;
            for round in 0..400 {
                if *stopped.borrow_and_update() {
                    break;
                }
                let (kind, path) = versions[round % 2];
                let component = std::fs::read(path).unwrap();
                let manifest = format!("environment = {{ VERSION = \"{kind}\" }}\n");
                let parts: [(&str, &[u8]); 2] =
                    [("component", &component), ("manifest", manifest.as_bytes())];
                let uploaded = wasmount_tests::put_multipart_to(addr, "pair", &parts).await;
                assert!(uploaded.status.is_success(), "{}", uploaded.text());
                written += 1;
            }
            written
        })
    };
    let folder = tempfile::tempdir().unwrap();
    let apps = server.apps_path().to_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut checked = 0;
    while checked < 12 && Instant::now() < deadline {
        let tar = folder.path().join(format!("backup-{checked}.tar"));
        export(&apps, tar.to_str().unwrap());
        let files = entries(&tar);
        if let (Some(component), Some(manifest)) = (files.get("pair.wasm"), files.get("pair.toml"))
        {
            let manifest = String::from_utf8_lossy(manifest);
            let kind = if manifest.contains("\"hello\"") {
                "hello"
            } else {
                "echo"
            };
            let sha = wasmount::client::sha256_hex(component);
            assert_eq!(sha, sha_of(kind), "backup {checked}: {manifest}");
            checked += 1;
        }
        assert!(files.contains_key("hello.wasm"), "{:?}", files.keys());
        assert!(
            files.contains_key(".instances/dataset-1.json"),
            "{:?}",
            files.keys()
        );
        assert!(
            !files.keys().any(|p| p.starts_with(".cache")),
            "{:?}",
            files.keys()
        );
    }
    stop.send_replace(true);
    let written = writer.await.unwrap();
    assert!(checked >= 12, "only {checked} backups held the app");
    assert!(written > 1, "the app was replaced only {written} times");

    // Restored into an empty folder, the same apps and instance serve.
    let tar = folder.path().join("backup-0.tar");
    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().to_str().unwrap().to_owned();
    let made = wasmount(&[
        "store",
        "import",
        "--from",
        tar.to_str().unwrap(),
        "--to",
        &target,
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let second = TestServer::start_in(restored, |_| {}).await;
    assert_eq!(second.get("/hello/").await.status, StatusCode::OK);
    assert_eq!(second.get("/pair/").await.status, StatusCode::OK);
    assert_eq!(second.get("/dataset-1/").await.status, StatusCode::OK);

    // A backup into a folder holds the same files.
    let as_folder = folder.path().join("as-folder");
    export(&apps, as_folder.to_str().unwrap());
    assert!(as_folder.join("hello.wasm").is_file());
    assert!(as_folder.join(".instances/dataset-1.json").is_file());
}

//! OCI registries with a real registry on loopback (Debian's `docker-registry`): `wasmount
//! push` then `wasmount deploy oci://…` by tag and by digest, an artifact pushed by an
//! independent client (ORAS) deployed, and the refusals — a wrong media type, a missing tag,
//! a tampered blob — each a clear error with nothing deployed.

use http::StatusCode;
use std::process::{Command, Output};
use wasmount_tests::registry::{Registry, oras_push};
use wasmount_tests::{ADMIN_TOKEN, TestServer, guests};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

/// Runs `wasmount ARGS…` against `server` (plain HTTP to the registry).
fn wasmount(args: &[&str], server: &TestServer) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--plain-http")
        .env("WASMOUNT_SERVER", format!("http://{}", server.addr))
        .env("WASMOUNT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("DOCKER_CONFIG", "/nonexistent")
        .output()
        .expect("running wasmount")
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pushed_component_deploys_by_tag_and_by_digest() {
    let registry = Registry::start();
    let server = TestServer::start_admin(&[], |_| {}).await;
    let target = format!("oci://{}/apps/echo:1.0", registry.address);
    let pushed = wasmount(&["push", guests::ECHO, &target], &server);
    assert!(pushed.status.success(), "{}", said(&pushed));
    let pinned = said(&pushed)
        .lines()
        .find_map(|line| line.strip_prefix("pinned: ").map(str::to_owned))
        .expect("push prints the pinned address");
    assert!(pinned.contains("/apps/echo@sha256:"), "{pinned}");

    let deployed = wasmount(&["deploy", &target], &server);
    assert!(deployed.status.success(), "{}", said(&deployed));
    let answer = server.get("/echo/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.text().contains(r#""prefix":"/echo""#));

    let by_digest = wasmount(&["deploy", &pinned, "--name", "pinned"], &server);
    assert!(by_digest.status.success(), "{}", said(&by_digest));
    assert_eq!(server.get("/pinned/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_artifact_pushed_by_another_client_deploys() {
    let registry = Registry::start();
    let server = TestServer::start_admin(&[], |_| {}).await;
    let target = format!("{}/others/viz:latest", registry.address);
    oras_push(
        std::path::Path::new(guests::ECHO),
        "application/vnd.wasm.content.layer.v1+wasm",
        &target,
    );
    let deployed = wasmount(&["deploy", &format!("oci://{target}")], &server);
    assert!(deployed.status.success(), "{}", said(&deployed));
    assert_eq!(server.get("/viz/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_media_type_a_missing_tag_or_a_tampered_blob_deploys_nothing() {
    let registry = Registry::start();
    let server = TestServer::start_admin(&[], |_| {}).await;
    let address = &registry.address;

    let text = format!("{address}/bad/kind:1");
    oras_push(std::path::Path::new(guests::ECHO), "text/plain", &text);
    let refused = wasmount(&["deploy", &format!("oci://{text}")], &server);
    assert!(!refused.status.success());
    let message = said(&refused);
    assert!(
        message.contains("not a wasm component") && message.contains("text/plain"),
        "{message}"
    );

    let missing = wasmount(
        &["deploy", &format!("oci://{address}/apps/echo:nope")],
        &server,
    );
    assert!(!missing.status.success());
    assert!(
        said(&missing).contains("pulling the manifest"),
        "{}",
        said(&missing)
    );

    let tampered = format!("oci://{address}/apps/tampered:1");
    let pushed = wasmount(&["push", guests::ECHO, &tampered], &server);
    assert!(pushed.status.success(), "{}", said(&pushed));
    let layer = said(&pushed)
        .split("layer ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("push names the layer digest")
        .to_owned();
    let blob = registry.blob_path(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff; // same size, different content
    std::fs::write(&blob, bytes).unwrap();
    let refused = wasmount(&["deploy", &tampered], &server);
    assert!(!refused.status.success());
    assert!(
        said(&refused).to_lowercase().contains("digest"),
        "{}",
        said(&refused)
    );

    let not_wasm = wasmount(&["push", "/etc/hostname", &tampered], &server);
    assert!(
        said(&not_wasm).contains("not a WebAssembly file"),
        "{}",
        said(&not_wasm)
    );

    let apps = server.admin(http::Method::GET, "/_wasmount/apps", "").await;
    assert_eq!(wasmount_tests::json(&apps)["apps"], serde_json::json!([]));
    for path in ["/kind/", "/echo/", "/tampered/"] {
        assert_eq!(
            server.get(path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

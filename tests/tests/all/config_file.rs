//! `serve --config FILE` on the real program: the file's settings applied, flags and
//! environment variables winning over it, unknown keys refused with their line, and
//! `wasmount config check`.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::process::Command;
use wasmount_tests::{ServerProcess, guests, try_send};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

/// A folder with `echo.wasm` and a config file holding `settings` (with `[apps.NAME]`
/// tables, the folder is `apps.folder`).
fn setup(settings: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("apps");
    std::fs::create_dir(&apps).unwrap();
    std::fs::copy(guests::ECHO, apps.join("echo.wasm")).unwrap();
    let file = dir.path().join("wasmount.toml");
    let text = match settings.contains("[apps.") {
        false => format!("apps = {:?}\n{settings}", apps.to_str().unwrap()),
        true => format!(
            "{settings}\n[apps]\nfolder = {:?}\n",
            apps.to_str().unwrap()
        ),
    };
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap().to_owned();
    (dir, file)
}

/// The body of a `200` for `path`, once the app has loaded (compiled in the background).
async fn answered(server: &ServerProcess, path: &str) -> String {
    let within = std::time::Duration::from_secs(120);
    wasmount_tests::eventually(path, within, || async {
        let answer = try_send(server.addr, Method::GET, path, Bytes::new(), &[]).await;
        answer
            .ok()
            .filter(|a| a.status == StatusCode::OK)
            .map(|a| a.text())
    })
    .await
}

async fn slow_request(server: &ServerProcess) -> StatusCode {
    let path = "/echo/?sleep_ms=3000";
    let answer = try_send(server.addr, Method::GET, path, Bytes::new(), &[]).await;
    answer.unwrap().status
}

#[tokio::test(flavor = "multi_thread")]
async fn the_files_settings_apply_and_flags_and_environment_win() {
    let (_dir, file) = setup("request-timeout = \"1s\"\n");
    let from_file = ServerProcess::start(BIN, &["--config", &file], &[]);
    assert_eq!(slow_request(&from_file).await, StatusCode::GATEWAY_TIMEOUT);
    drop(from_file);

    let env = [("WASMOUNT_REQUEST_TIMEOUT", "20s")];
    let from_env = ServerProcess::start(BIN, &["--config", &file], &env);
    assert_eq!(slow_request(&from_env).await, StatusCode::OK);
    drop(from_env);

    let args = ["--config", &file, "--request-timeout", "1s"];
    let from_flag = ServerProcess::start(BIN, &args, &env);
    assert_eq!(slow_request(&from_flag).await, StatusCode::GATEWAY_TIMEOUT);
}

#[test]
fn unknown_keys_stop_the_server_with_their_line_and_check_says_the_same() {
    let (_dir, file) = setup("listen = \"127.0.0.1:0\"\nrequest-timout = \"1s\"\n");
    let served = Command::new(BIN)
        .args(["serve", "--config", &file])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&served.stderr);
    assert_eq!(served.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("wasmount.toml:3: unknown setting `request-timout`"),
        "{stderr}"
    );
    let checked = Command::new(BIN)
        .args(["config", "check", &file])
        .output()
        .unwrap();
    assert!(!checked.status.success());
    assert!(String::from_utf8_lossy(&checked.stderr).contains("request-timout"));

    let (_dir, good) = setup("listen = \"127.0.0.1:0\"\nwatch = true\n");
    let checked = Command::new(BIN)
        .args(["config", "check", &good])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(stdout.contains(": ok"), "{stdout}");

    let (_dir, bad_tls) =
        setup("tls-cert = \"/nonexistent.pem\"\ntls-key = \"/nonexistent.key\"\n");
    let checked = Command::new(BIN)
        .args(["config", "check", &bad_tls])
        .output()
        .unwrap();
    assert!(!checked.status.success());
    assert!(String::from_utf8_lossy(&checked.stderr).contains("reading the TLS certificate"));

    let inline = format!(
        "[apps.tool]\npath = {:?}\n[apps.tool.limits]\nmemory = \"lots\"\n",
        guests::ECHO
    );
    let (_dir, bad_app) = setup(&inline);
    let checked = Command::new(BIN)
        .args(["config", "check", &bad_app])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success());
    assert!(
        said.contains("app `tool`") && said.contains("memory"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_apps_mount_with_inline_settings_and_from_a_registry_cached_by_digest() {
    let registry = wasmount_tests::registry::Registry::start();
    let target = format!("oci://{}/apps/echo:1", registry.address);
    let pushed = Command::new(BIN)
        .args(["push", guests::ECHO, &target, "--plain-http"])
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let declared = format!(
        "[apps.tool]\npath = {:?}\nroute = \"/tools/x\"\nenvironment = {{ GREETING = \"from-the-config\" }}\n\n\
         [apps.fromreg]\noci = {target:?}\nplain-http = true\n",
        guests::ECHO
    );
    let (_dir, file) = setup(&declared);
    let server = ServerProcess::start(BIN, &["--config", &file], &[]);
    let env = answered(&server, "/tools/x/env").await;
    assert!(env.contains("GREETING=from-the-config"), "{env}");
    answered(&server, "/fromreg/").await;
    drop(server);

    // The registry gone, a restart serves the version last pulled for the tag.
    drop(registry);
    let server = ServerProcess::start(BIN, &["--config", &file], &[]);
    answered(&server, "/fromreg/").await;
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("serving the version last pulled"), "{log}");
}

//! Socket activation as systemd does it, under `systemd-socket-activate` (from systemd, on
//! these machines): the server adopts the sockets it is passed — the first for apps, a second
//! for the control plane — and binds nothing itself. The units in `deploy/` are checked with
//! `systemd-analyze verify` when it can run here.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wasmount_tests::{ADMIN_TOKEN, eventually, guests, try_send};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");
const ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

/// The activator and the server it starts, killed on drop.
struct Activated(Child);

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback address nobody listens on now.
fn free_address() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], wasmount_tests::free_port()))
}

/// `systemd-socket-activate` holding `sockets` for `wasmount SERVE… --apps APPS`, its output
/// (and the server's) in `log`.
fn activate_with(
    sockets: &[std::net::SocketAddr],
    serve: &[&str],
    apps: &std::path::Path,
    log: &std::path::Path,
) -> Activated {
    let mut command = Command::new(ACTIVATE);
    for socket in sockets {
        command.args(["-l", &socket.to_string()]);
    }
    let child = command
        .args(["-E", &format!("WASMOUNT_ADMIN_TOKEN={ADMIN_TOKEN}")])
        .arg(BIN)
        .args(serve)
        .arg("--apps")
        .arg(apps)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Activated(child)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_serves_on_the_sockets_systemd_passes() {
    assert!(
        std::path::Path::new(ACTIVATE).exists(),
        "missing: {ACTIVATE} (Debian package systemd)"
    );
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    let (public, admin) = (free_address(), free_address());
    let log = apps.path().join("server.log");
    let serve = ["serve", "--listen", "127.0.0.1:1"];
    let _activated = activate_with(&[public, admin], &serve, apps.path(), &log);

    // The first connection starts the server, which then answers on the passed socket.
    let answered = eventually(
        "an answer on the passed socket",
        Duration::from_secs(120),
        || async {
            let sent = try_send(public, Method::GET, "/echo/", Bytes::new(), &[]).await;
            sent.ok().filter(|answer| answer.status == StatusCode::OK)
        },
    )
    .await;
    assert!(answered.text().contains(r#""prefix":"/echo""#));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("using the sockets the service manager passed"),
        "{logged}"
    );

    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let auth = [("authorization", bearer.as_str())];
    let listed = try_send(admin, Method::GET, "/_wasmount/apps", Bytes::new(), &auth).await;
    assert_eq!(listed.unwrap().status, StatusCode::OK);
    let hidden = try_send(public, Method::GET, "/_wasmount/apps", Bytes::new(), &auth).await;
    assert_eq!(hidden.unwrap().status, StatusCode::NOT_FOUND);
}

#[test]
fn the_units_in_deploy_pass_systemd_analyze_verify() {
    let analyze = "/usr/bin/systemd-analyze";
    assert!(
        std::path::Path::new(analyze).exists(),
        "missing: {analyze} (Debian package systemd)"
    );
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let units = tempfile::tempdir().unwrap();
    for unit in ["wasmount.socket", "wasmount.service"] {
        let text = std::fs::read_to_string(deploy.join(unit)).unwrap();
        // The binary where the unit expects it, so the check can find it.
        let text = text.replace("/usr/local/bin/wasmount", BIN);
        std::fs::write(units.path().join(unit), text).unwrap();
    }
    let checked = Command::new(analyze)
        .arg("verify")
        .arg(units.path().join("wasmount.socket"))
        .arg(units.path().join("wasmount.service"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{said}");
    let complaints: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("wasmount.s"))
        .collect();
    assert!(complaints.is_empty(), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_passed_socket_with_an_admin_address_is_refused_rather_than_exposing_the_api() {
    let apps = tempfile::tempdir().unwrap();
    let public = free_address();
    let log = apps.path().join("server.log");
    let serve = ["serve", "--admin-listen", "127.0.0.1:0"];
    let _activated = activate_with(&[public], &serve, apps.path(), &log);
    // The first connection starts the server, which refuses to run.
    eventually(
        "the refusal in the log",
        Duration::from_secs(60),
        || async {
            let _ = tokio::net::TcpStream::connect(public).await;
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            logged.contains("only one socket was passed").then_some(())
        },
    )
    .await;
}

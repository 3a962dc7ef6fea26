//! The `wasmount` binary as a user runs it: flags, the ready line, health, SIGTERM, errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount");

/// Reads the child's stderr until the ready line; returns the address it names.
fn wait_for_listening(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(at) = line.find("listening on http://") {
            let rest = &line[at + "listening on http://".len()..];
            let addr = rest.split('/').next().unwrap().to_owned();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return addr;
        }
    }
    panic!("no `listening on` line within 60 s");
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn wait_with_deadline(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > deadline {
            child.kill().unwrap();
            panic!("process did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_prints_its_real_port_answers_health_and_stops_on_sigterm() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::write(apps.path().join("junk.wasm"), b"not wasm").unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--apps"])
        .arg(apps.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr = wait_for_listening(&mut child);
    assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");

    let health = http_get(&addr, "/_wasmount/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with(r#"{"status":"ok","apps":0}"#), "{health}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_with_deadline(&mut child, Duration::from_secs(15));
    assert!(exit.success(), "graceful exit after SIGTERM: {exit}");
}

#[test]
fn environment_variables_set_the_flags() {
    let apps = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("WASMOUNT_APPS", apps.path())
        .env("WASMOUNT_LISTEN", "127.0.0.1:0")
        .env("WASMOUNT_BASE_PATH", "/visualizations/")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = wait_for_listening(&mut child);
    let index = http_get(&addr, "/visualizations/");
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(http_get(&addr, "/").starts_with("HTTP/1.1 404"));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn help_documents_every_flag_with_its_environment_variable() {
    let output = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for (flag, env) in [
        ("--apps", "WASMOUNT_APPS"),
        ("--listen", "WASMOUNT_LISTEN"),
        ("--base-path", "WASMOUNT_BASE_PATH"),
        ("--request-timeout", "WASMOUNT_REQUEST_TIMEOUT"),
        ("--shutdown-timeout", "WASMOUNT_SHUTDOWN_TIMEOUT"),
        ("--header-read-timeout", "WASMOUNT_HEADER_READ_TIMEOUT"),
        ("--max-instances", "WASMOUNT_MAX_INSTANCES"),
        ("--max-memory-mib", "WASMOUNT_MAX_MEMORY_MIB"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
        assert!(
            help.contains(&format!("env: {env}")),
            "{env} missing from --help:\n{help}"
        );
    }
    assert!(help.contains("127.0.0.1:8080"), "default address shown");
}

#[test]
fn bad_settings_exit_non_zero_with_a_clear_message() {
    let missing = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--apps",
            "/no/such/apps/folder",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("reading apps folder /no/such/apps/folder"),
        "{stderr}"
    );

    let bad_base = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--base-path", "/a/../b"])
        .output()
        .unwrap();
    assert!(!bad_base.status.success());
    assert!(String::from_utf8_lossy(&bad_base.stderr).contains("base path `/a/../b` is invalid"));

    let bad_timeout = Command::new(BIN)
        .args(["serve", "--request-timeout", "soon"])
        .output()
        .unwrap();
    assert!(!bad_timeout.status.success());
    assert!(String::from_utf8_lossy(&bad_timeout.stderr).contains("--request-timeout"));
}

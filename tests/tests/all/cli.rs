//! The `wasmount` program as a user runs it: flags, the ready line, health, SIGTERM, errors,
//! and the `deploy` / `apps` / `remove` / `launch` client commands.

use std::process::Command;
use std::time::Duration;
use wasmount_tests::{ADMIN_TOKEN, ServerProcess, guests, try_send};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

fn run_client(args: &[&str], server: &ServerProcess, token: Option<&str>) -> std::process::Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("WASMOUNT_SERVER", format!("http://{}", server.addr))
        .env_remove("WASMOUNT_ADMIN_TOKEN");
    if let Some(token) = token {
        command.env("WASMOUNT_ADMIN_TOKEN", token);
    }
    command.output().expect("running the client")
}

async fn get(server: &ServerProcess, path: &str) -> (http::StatusCode, String) {
    let response = try_send(
        server.addr,
        http::Method::GET,
        path,
        bytes::Bytes::new(),
        &[],
    )
    .await
    .expect("request");
    (response.status, response.text())
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_prints_its_real_port_answers_health_and_stops_on_sigterm() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::write(apps.path().join("junk.wasm"), b"not wasm").unwrap();
    let mut server = ServerProcess::start(BIN, &["--apps", apps.path().to_str().unwrap()], &[]);
    assert_ne!(server.addr.port(), 0, "the real port is printed");
    let (status, body) = get(&server, "/_wasmount/health").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"{"status":"ok""#), "{body}");
    server.signal("TERM");
    let exit = server.wait(Duration::from_secs(15));
    assert!(exit.success(), "graceful exit after SIGTERM: {exit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_variables_set_the_flags() {
    let apps = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        BIN,
        &[],
        &[
            ("WASMOUNT_APPS", apps.path().to_str().unwrap()),
            ("WASMOUNT_BASE_PATH", "/visualizations/"),
        ],
    );
    assert_eq!(get(&server, "/visualizations/").await.0, 200);
    assert_eq!(get(&server, "/").await.0, 404);
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
        ("--admin-token", "WASMOUNT_ADMIN_TOKEN"),
        ("--admin-token-file", "WASMOUNT_ADMIN_TOKEN_FILE"),
        ("--public-app-list", "WASMOUNT_PUBLIC_APP_LIST"),
        ("--max-upload", "WASMOUNT_MAX_UPLOAD"),
        ("--max-header-size", "WASMOUNT_MAX_HEADER_SIZE"),
        ("--max-connections", "WASMOUNT_MAX_CONNECTIONS"),
        ("--watch", "WASMOUNT_WATCH"),
        ("--memory", "WASMOUNT_MEMORY"),
        ("--max-request-body", "WASMOUNT_MAX_REQUEST_BODY"),
        (
            "--max-concurrent-requests",
            "WASMOUNT_MAX_CONCURRENT_REQUESTS",
        ),
        ("--app", "WASMOUNT_APP"),
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
    let run = |args: &[&str]| {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let missing = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--apps",
        "/no/such/apps/folder",
    ]);
    assert!(
        missing.contains("reading apps folder /no/such/apps/folder"),
        "{missing}"
    );
    let bad_base = run(&["serve", "--listen", "127.0.0.1:0", "--base-path", "/a/../b"]);
    assert!(
        bad_base.contains("base path `/a/../b` is invalid"),
        "{bad_base}"
    );
    let bad_timeout = run(&["serve", "--request-timeout", "soon"]);
    assert!(bad_timeout.contains("--request-timeout"), "{bad_timeout}");
    let short_token = run(&["serve", "--listen", "127.0.0.1:0", "--admin-token", "short"]);
    assert!(
        short_token.contains("at least 16 characters"),
        "{short_token}"
    );
    let blank = " ".repeat(16);
    let blank_token = run(&["serve", "--listen", "127.0.0.1:0", "--admin-token", &blank]);
    assert!(
        blank_token.contains("not counting surrounding white space"),
        "{blank_token}"
    );
    let absurd = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--request-timeout",
        "500000000000years",
    ]);
    assert!(
        absurd.contains("longer than the longest accepted"),
        "{absurd}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_with_a_trailing_newline_works_with_any_case_of_bearer() {
    let apps = tempfile::tempdir().unwrap();
    let token = format!("{ADMIN_TOKEN}\n");
    let args = ["--apps", apps.path().to_str().unwrap()];
    let server = ServerProcess::start(BIN, &args, &[("WASMOUNT_ADMIN_TOKEN", &token)]);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} {ADMIN_TOKEN}");
        let listed = try_send(
            server.addr,
            http::Method::GET,
            "/_wasmount/apps",
            Default::default(),
            &[("authorization", &auth)],
        )
        .await
        .unwrap();
        assert_eq!(listed.status, 200, "{scheme}: {}", listed.text());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_apps_and_remove_drive_a_running_server() {
    let apps = tempfile::tempdir().unwrap();
    let token_file = apps
        .path()
        .join("..")
        .join(format!("token-{}", std::process::id()));
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
    let server = ServerProcess::start(
        BIN,
        &[
            "--apps",
            apps.path().to_str().unwrap(),
            "--admin-token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
    );

    let deployed = run_client(
        &["deploy", guests::HELLO, "--name", "greeter"],
        &server,
        Some(ADMIN_TOKEN),
    );
    let stdout = String::from_utf8_lossy(&deployed.stdout);
    assert!(
        deployed.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    assert!(stdout.starts_with("deployed greeter:"), "{stdout}");
    assert!(stdout.contains("/greeter/"), "{stdout}");
    assert_eq!(get(&server, "/greeter/").await.0, 200);

    let listed = run_client(&["apps"], &server, Some(ADMIN_TOKEN));
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success());
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("greeter") && l.contains("serving") && l.contains("upload")),
        "{table}"
    );

    let refused = run_client(
        &["deploy", guests::HELLO, "--name", "x"],
        &server,
        Some("wrong-token-wrong-token"),
    );
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("wrong admin token"), "{message}");
    let not_wasm = run_client(
        &["deploy", token_file.to_str().unwrap(), "--name", "x"],
        &server,
        Some(ADMIN_TOKEN),
    );
    assert!(!not_wasm.status.success());
    assert!(String::from_utf8_lossy(&not_wasm.stderr).contains("400 Bad Request"));

    let manifest = apps
        .path()
        .join("..")
        .join(format!("echo-{}.toml", std::process::id()));
    std::fs::write(
        &manifest,
        "environment = { GREETING = \"from the manifest\" }\n",
    )
    .unwrap();
    let with_settings = run_client(
        &[
            "deploy",
            guests::ECHO,
            "--name",
            "echo",
            "--manifest",
            manifest.to_str().unwrap(),
        ],
        &server,
        Some(ADMIN_TOKEN),
    );
    assert!(
        with_settings.status.success(),
        "{}",
        String::from_utf8_lossy(&with_settings.stderr)
    );
    assert!(
        get(&server, "/echo/env")
            .await
            .1
            .contains("GREETING=from the manifest")
    );
    let _ = std::fs::remove_file(manifest);

    // `launch`: the file's JSON, exactly as written, becomes the instance's INPUT_JSON.
    let input = apps
        .path()
        .join("..")
        .join(format!("input-{}.json", std::process::id()));
    std::fs::write(
        &input,
        "{\"file_relationships\": [ \"http://data/a.tsv\" ]}\n",
    )
    .unwrap();
    let launched = run_client(
        &[
            "launch",
            "echo",
            "--input",
            input.to_str().unwrap(),
            "--name",
            "dataset-1",
        ],
        &server,
        Some(ADMIN_TOKEN),
    );
    assert!(
        launched.status.success(),
        "{}",
        String::from_utf8_lossy(&launched.stderr)
    );
    let url = String::from_utf8_lossy(&launched.stdout).trim().to_owned();
    assert_eq!(url, format!("http://{}/dataset-1/", server.addr));
    let env = get(&server, "/dataset-1/env").await.1;
    assert!(
        env.contains("INPUT_JSON={\"file_relationships\": [ \"http://data/a.tsv\" ]}\n"),
        "{env}"
    );
    let unknown = run_client(
        &["launch", "nope", "--input", input.to_str().unwrap()],
        &server,
        Some(ADMIN_TOKEN),
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("404 Not Found"));
    let _ = std::fs::remove_file(input);

    // Launched instances: listed, and removed by name like apps.
    let listed = run_client(&["instances"], &server, Some(ADMIN_TOKEN));
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("dataset-1") && l.contains("echo")),
        "{table}"
    );
    let removed = run_client(&["remove", "dataset-1"], &server, Some(ADMIN_TOKEN));
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(String::from_utf8_lossy(&removed.stdout).contains("removed launch dataset-1"));
    assert_eq!(get(&server, "/dataset-1/").await.0, 404);

    let removed = run_client(&["remove", "greeter"], &server, Some(ADMIN_TOKEN));
    assert!(removed.status.success());
    assert_eq!(get(&server, "/greeter/").await.0, 404);
    let again = run_client(&["remove", "greeter"], &server, Some(ADMIN_TOKEN));
    assert!(!again.status.success());
    // A client's error is one plain line, not a log record.
    let said = String::from_utf8_lossy(&again.stderr);
    assert_eq!(said.trim(), "error: no app or launch named `greeter`");
    let _ = std::fs::remove_file(token_file);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_open_file_limit_caps_connections_and_does_not_flood_the_log() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::HELLO, apps.path().join("hello.wasm")).unwrap();
    let args = [
        "--apps",
        apps.path().to_str().unwrap(),
        "--header-read-timeout",
        "2s",
    ];
    let server = ServerProcess::start_with_open_files(BIN, 512, &args, &[]);
    let logged = |needle: &str| {
        let log = server.log.lock().unwrap();
        log.iter().filter(|line| line.contains(needle)).count()
    };
    let lowered = "--max-connections 10000 lowered to 256";
    wasmount_tests::eventually(lowered, Duration::from_secs(60), || async {
        (logged(lowered) == 1).then_some(())
    })
    .await;
    // More idle connections than the server may hold: the rest wait in the backlog.
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // The header timeout closes the idle ones it accepted; then the rest, and a real client,
    // are served.
    let addr = server.addr;
    let answered =
        wasmount_tests::eventually("a request answered", Duration::from_secs(60), || {
            let health = try_send(
                addr,
                http::Method::GET,
                "/_wasmount/health",
                Default::default(),
                &[],
            );
            async move { health.await.ok().filter(|r| r.status == 200) }
        })
        .await;
    assert_eq!(answered.status, 200);
    drop(idle);
    assert_eq!(
        logged("Too many open files"),
        0,
        "{:?}",
        server.log.lock().unwrap()
    );
}

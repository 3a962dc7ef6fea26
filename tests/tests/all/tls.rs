//! HTTPS on the real program: HTTP/2 and HTTP/1.1 by ALPN with certificates made by openssl,
//! guests told `x-forwarded-proto: https`, the certificate rotated on disk (and on SIGHUP)
//! while a keep-alive connection stays open, bad certificate files refused at start; and the
//! control plane on its own address with `--admin-listen`.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::path::Path;
use std::time::Duration;
use wasmount_tests::https::{self, client, connect, negotiated};
use wasmount_tests::{ADMIN_TOKEN, ServerProcess, certs, eventually, guests, try_send};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

/// An apps folder with `echo`, and a CA with a server certificate `server.crt/key`.
fn setup() -> (tempfile::TempDir, tempfile::TempDir) {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ECHO, apps.path().join("echo.wasm")).unwrap();
    let pki = tempfile::tempdir().unwrap();
    certs::make_ca(pki.path());
    certs::issue(pki.path(), "server");
    (apps, pki)
}

fn start_tls(apps: &Path, pki: &Path) -> ServerProcess {
    let (cert, key) = (pki.join("server.crt"), pki.join("server.key"));
    let args = [
        "--apps",
        apps.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    ServerProcess::start(BIN, &args, &[("WASMOUNT_ADMIN_TOKEN", ADMIN_TOKEN)])
}

/// The DER of the first certificate in a PEM file.
fn der_of(pem: &Path) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::from_pem_file(pem)
        .unwrap()
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn https_speaks_http2_and_http1_and_guests_see_https() {
    let (apps, pki) = setup();
    let server = start_tls(apps.path(), pki.path());
    let logged = server.log.lock().unwrap().join("\n");
    assert!(logged.contains("listening on https://"), "{logged}");
    let ca = pki.path().join("ca.crt");

    let stream = connect(server.addr, client(&ca, &["h2", "http/1.1"]))
        .await
        .unwrap();
    assert_eq!(negotiated(&stream).0, "h2");
    let answer = https::get_h2(stream, server.addr, "/echo/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.version, http::Version::HTTP_2);
    let seen: serde_json::Value = serde_json::from_str(&answer.text).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https", "{seen}");
    let authority = server.addr.to_string();
    assert_eq!(seen["headers"]["x-forwarded-host"], authority, "{seen}");

    let stream = connect(server.addr, client(&ca, &["http/1.1"]))
        .await
        .unwrap();
    assert_eq!(negotiated(&stream).0, "http/1.1");
    let mut sender = https::open_h1(stream).await;
    let answer = https::get_h1(&mut sender, server.addr, "/echo/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.version, http::Version::HTTP_11);
    assert!(answer.text.contains(r#""x-forwarded-proto":"https""#));

    // The command-line client speaks HTTPS too, trusting the given CA.
    let client_run = |extra: &[&str]| {
        std::process::Command::new(BIN)
            .args(["apps", "--server", &format!("https://{}", server.addr)])
            .args(extra)
            .env("WASMOUNT_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("WASMOUNT_CA_CERT")
            .output()
            .unwrap()
    };
    let listed = client_run(&["--ca-cert", ca.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(said.contains("echo"), "{said}");
    let untrusted = client_run(&[]);
    assert!(!untrusted.status.success());
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(said.contains("certificate"), "{said}");

    // Plain HTTP on the TLS port gets no answer, and the server keeps serving.
    let plain = try_send(server.addr, Method::GET, "/echo/", Bytes::new(), &[]).await;
    assert!(plain.is_err(), "{plain:?}");
    let again = connect(server.addr, client(&ca, &["h2"])).await.unwrap();
    let answer = https::get_h2(again, server.addr, "/echo/").await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_certificate_is_used_without_a_restart_or_a_dropped_connection() {
    let (apps, pki) = setup();
    let server = start_tls(apps.path(), pki.path());
    let ca = pki.path().join("ca.crt");
    let first = der_of(&pki.path().join("server.crt"));
    let stream = connect(server.addr, client(&ca, &["http/1.1"]))
        .await
        .unwrap();
    assert_eq!(negotiated(&stream).1, first);
    let mut kept = https::open_h1(stream).await;
    assert_eq!(
        https::get_h1(&mut kept, server.addr, "/echo/").await.status,
        StatusCode::OK
    );

    // Renewed in place, as certbot does: a new pair in the same files.
    certs::issue(pki.path(), "renewed");
    std::fs::copy(
        pki.path().join("renewed.key"),
        pki.path().join("server.key"),
    )
    .unwrap();
    std::fs::copy(
        pki.path().join("renewed.crt"),
        pki.path().join("server.crt"),
    )
    .unwrap();
    let renewed = der_of(&pki.path().join("renewed.crt"));
    let config = client(&ca, &["http/1.1"]);
    eventually(
        "new connections get the renewed certificate",
        Duration::from_secs(60),
        || {
            let config = config.clone();
            let renewed = renewed.clone();
            async move {
                let stream = connect(server.addr, config).await.ok()?;
                (negotiated(&stream).1 == renewed).then_some(())
            }
        },
    )
    .await;
    let answer = https::get_h1(&mut kept, server.addr, "/echo/").await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "the open connection was dropped"
    );

    // A broken pair is reported and the current one kept; SIGHUP reads the files again.
    std::fs::write(pki.path().join("server.key"), "not a key").unwrap();
    eventually(
        "the broken pair reported",
        Duration::from_secs(60),
        || async {
            let log = server.log.lock().unwrap().join("\n");
            log.contains("TLS certificate not reloaded").then_some(())
        },
    )
    .await;
    let stream = connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(negotiated(&stream).1, renewed);
    std::fs::copy(
        pki.path().join("renewed.key"),
        pki.path().join("server.key"),
    )
    .unwrap();
    server.signal("HUP");
    eventually("SIGHUP reloads", Duration::from_secs(60), || async {
        let log = server.log.lock().unwrap();
        let reloads = log
            .iter()
            .filter(|l| l.contains("TLS certificate reloaded"))
            .count();
        (reloads >= 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_certificate_files_stop_the_server_at_start_with_a_clear_message() {
    let (apps, pki) = setup();
    certs::issue(pki.path(), "other");
    let path = |name: &str| pki.path().join(name).to_str().unwrap().to_owned();
    let empty = path("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let cases = [
        (
            path("server.crt"),
            path("other.key"),
            "does not belong to the certificate",
        ),
        (
            path("server.crt"),
            path("missing.key"),
            "reading the TLS key",
        ),
        (
            empty.clone(),
            path("server.key"),
            "holds no PEM certificate",
        ),
        (path("server.crt"), empty, "reading the TLS key"),
    ];
    for (cert, key, expected) in cases {
        let output = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--apps"])
            .arg(apps.path())
            .args(["--tls-cert", &cert, "--tls-key", &key])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{cert} {key}: {stderr}");
        assert!(stderr.contains(expected), "{cert} {key}: {stderr}");
    }
    let only_cert = std::process::Command::new(BIN)
        .args(["serve", "--tls-cert", &path("server.crt")])
        .output()
        .unwrap();
    assert!(!only_cert.status.success());
    assert!(String::from_utf8_lossy(&only_cert.stderr).contains("--tls-key"));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_admin_address_the_control_plane_answers_only_there() {
    let (apps, _pki) = setup();
    let args = [
        "--apps",
        apps.path().to_str().unwrap(),
        "--admin-listen",
        "127.0.0.1:0",
    ];
    let server = ServerProcess::start(BIN, &args, &[("WASMOUNT_ADMIN_TOKEN", ADMIN_TOKEN)]);
    let admin: std::net::SocketAddr = eventually(
        "the admin address logged",
        Duration::from_secs(60),
        || async {
            let log = server.log.lock().unwrap();
            let line = log
                .iter()
                .find_map(|l| l.split("admin listening on http://").nth(1))?;
            line.split('/').next()?.parse().ok()
        },
    )
    .await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let auth = [("authorization", bearer.as_str())];
    let send = |addr, path: &'static str| async move {
        try_send(addr, Method::GET, path, Bytes::new(), &auth)
            .await
            .unwrap()
            .status
    };
    for path in [
        "/_wasmount/apps",
        "/_wasmount/instances",
        "/_wasmount/metrics",
        "/_wasmount/ui/",
    ] {
        assert_eq!(
            send(server.addr, path).await,
            StatusCode::NOT_FOUND,
            "public {path}"
        );
        assert_eq!(send(admin, path).await, StatusCode::OK, "admin {path}");
    }
    assert_eq!(send(server.addr, "/_wasmount/health").await, StatusCode::OK);
    assert_eq!(send(admin, "/_wasmount/health").await, StatusCode::OK);
    assert_eq!(send(server.addr, "/echo/").await, StatusCode::OK);
    assert_eq!(send(admin, "/echo/").await, StatusCode::NOT_FOUND);
    let component = Bytes::from(std::fs::read(guests::HELLO).unwrap());
    for (addr, expected) in [
        (server.addr, StatusCode::NOT_FOUND),
        (admin, StatusCode::CREATED),
    ] {
        let path = "/_wasmount/apps/other";
        let upload = try_send(addr, Method::PUT, path, component.clone(), &auth).await;
        assert_eq!(upload.unwrap().status, expected, "upload to {addr}");
    }
    assert_eq!(send(server.addr, "/other/").await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_http2_connection_is_closed_and_a_busy_one_kept() {
    let (apps, pki) = setup();
    let (cert, key) = (pki.path().join("server.crt"), pki.path().join("server.key"));
    let args = [
        "--apps",
        apps.path().to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--header-read-timeout",
        "1s",
    ];
    let server = ServerProcess::start(BIN, &args, &[]);
    let config = client(&pki.path().join("ca.crt"), &["h2"]);
    let open = |stream| async move {
        let io = hyper_util::rt::TokioIo::new(stream);
        let (sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        let ended = tokio::spawn(connection);
        (sender, ended)
    };
    // Silent after the handshake: closed by the server.
    let (_idle, idle_ended) = open(connect(server.addr, config.clone()).await.unwrap()).await;
    let closed = tokio::time::timeout(Duration::from_secs(60), idle_ended).await;
    assert!(closed.is_ok(), "an idle HTTP/2 connection stayed open");

    // Busy: a request every 300 ms for 3 s on one connection, all answered.
    let (mut busy, busy_ended) = open(connect(server.addr, config).await.unwrap()).await;
    for _ in 0..10 {
        let request = http::Request::get(format!("https://{}/echo/", server.addr))
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let answer = busy
            .send_request(request)
            .await
            .expect("the connection is kept");
        assert_eq!(answer.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!busy_ended.is_finished());
}

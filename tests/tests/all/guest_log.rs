//! A guest's stdout and stderr reach the host log, line by line, tagged with the app name.

use std::io::Write;
use std::sync::{Arc, Mutex};
use wasmount_tests::{TestServer, guests};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_output_is_logged_with_the_app_name() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let server = TestServer::start(&[("echo", guests::ECHO)]).await;
    let response = server.get("/echo/log?msg=first+line%0Asecond+line").await;
    assert_eq!(response.text(), "logged\n");
    // A carriage return or an escape sequence cannot forge a log line or drive a terminal.
    let forged = server
        .get("/echo/log?msg=ok%0D2026-01-01+ERROR+forged%1B%5B31m")
        .await;
    assert_eq!(forged.text(), "logged\n");
    drop(server);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for (stream, line) in [
        ("stdout", "first line"),
        ("stdout", "second line"),
        ("stderr", "first line"),
    ] {
        let found = log.lines().any(|entry| {
            entry.contains(line)
                && entry.contains("app=echo")
                && entry.contains(&format!("stream=\"{stream}\""))
        });
        assert!(
            found,
            "no {stream} line `{line}` tagged app=echo in the log:\n{log}"
        );
    }
    assert!(
        log.contains(r"ok\r2026-01-01 ERROR forged\u{1b}[31m"),
        "control characters escaped:\n{log}"
    );
    assert!(!log.contains('\r') && !log.contains('\u{1b}'), "{log}");
}

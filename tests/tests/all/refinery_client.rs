//! The Python launcher of `examples/refinery/` (Refinery's side) against the real `wasmount`
//! program: its own unittest suite, run with `python3`.

use std::process::Command;
use wasmount_tests::{ADMIN_TOKEN, ServerProcess, guests};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

#[test]
fn the_python_launcher_s_tests_pass_against_a_real_server() {
    let apps = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        BIN,
        &["--apps", apps.path().to_str().unwrap()],
        &[("WASMOUNT_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    let client_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/refinery");
    let output = Command::new("python3")
        .args(["-m", "unittest", "-v", "test_wasmount_launcher"])
        .current_dir(client_dir)
        .env("WASMOUNT_URL", format!("http://{}", server.addr))
        .env("WASMOUNT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("WASMOUNT_TEST_VIZ", guests::VIZ)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("running python3 (it must be installed)");
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("Ran 4 tests"), "{report}");
}

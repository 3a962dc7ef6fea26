//! Test certificates made with `openssl` (Debian package `openssl`): a CA, and server
//! certificates for `127.0.0.1` and `localhost` signed by it.

use std::path::Path;
use std::process::Command;

/// The key options: a P-256 key, unencrypted.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// Writes `ca.crt` and `ca.key` into `dir`.
pub fn make_ca(dir: &Path) {
    let subject = ["-subj", "/CN=wasmount test CA"];
    let out = ["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"];
    openssl(
        dir,
        &[&["req", "-x509"], &EC_KEY[..], &out, &subject].concat(),
    );
}

/// Writes `NAME.crt` and `NAME.key` into `dir`, signed by its CA ([`make_ca`] first).
pub fn issue(dir: &Path, name: &str) {
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let request = ["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"];
    openssl(dir, &[&["req"], &EC_KEY[..], &request].concat());
    let signing = [
        "x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key",
    ];
    let output = [
        "-CAcreateserial",
        "-out",
        &crt,
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ];
    openssl(dir, &[&signing[..], &output].concat());
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl (Debian package openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

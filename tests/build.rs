//! Builds the guest apps in `guests/` for `wasm32-wasip2` (a workspace of their own, with its
//! own target folder) and exposes their paths as constants in `guests.rs`, so every test runs
//! components built from the current source.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const GUESTS: &[&str] = &["hello", "echo", "trap", "viz"];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let guests_dir = root.join("guests");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests");

    watch(&guests_dir.join("Cargo.toml"));
    watch(&guests_dir.join("Cargo.lock"));
    watch(&root.join("sdk/Cargo.toml"));
    watch(&root.join("sdk/src"));
    for guest in GUESTS {
        for part in ["Cargo.toml", "src", "static"] {
            watch(&guests_dir.join(guest).join(part));
        }
    }

    require_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&guests_dir)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        build.env_remove(var);
    }
    let status = build.status().expect("running cargo to build the guests");
    assert!(
        status.success(),
        "building the guests in {} failed",
        guests_dir.display()
    );

    let artifacts = target_dir.join(TARGET).join("release");
    let mut constants = String::new();
    for guest in GUESTS {
        let path = artifacts.join(format!("{guest}.wasm"));
        assert!(
            path.is_file(),
            "guest artifact {} is missing",
            path.display()
        );
        constants.push_str(&format!(
            "/// The `{guest}` guest component, built from `guests/{guest}`.\n\
             pub const {}: &str = {:?};\n",
            guest.to_uppercase(),
            path.display().to_string()
        ));
    }
    let out = PathBuf::from(env("OUT_DIR")).join("guests.rs");
    std::fs::write(&out, constants).expect("writing guests.rs");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

/// Fails early with the fix when the standard library for the guest target is missing.
fn require_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc --print sysroot");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    let std_dir = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    assert!(
        std_dir.is_dir(),
        "the {TARGET} target is not installed (no {}): run `rustup target add {TARGET}`",
        std_dir.display()
    );
}

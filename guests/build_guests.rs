//! Builds the guest apps of this folder for `wasm32-wasip2` from a build script, in their own
//! target folder, and returns the component paths. Shared by `tests/build.rs` and
//! `examples/build.rs` through `#[path]`, so both always run components built from source.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest target triple.
pub const TARGET: &str = "wasm32-wasip2";

/// Builds `guests` (crate names in `guests/`) in release mode and returns `(name, path)` of
/// each component. `root` is the repository root. Cargo reruns the caller's build script when
/// a guest's or the SDK's sources change.
pub fn build_guests(root: &Path, guests: &[&str]) -> Vec<(String, PathBuf)> {
    let guests_dir = root.join("guests");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests");

    for path in [
        "guests/Cargo.toml",
        "guests/Cargo.lock",
        "guests/build_guests.rs",
        "sdk",
    ] {
        watch(&root.join(path));
    }
    for guest in guests {
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
    for guest in guests {
        build.args(["-p", guest]);
    }
    // Settings meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
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
    guests
        .iter()
        .map(|guest| {
            let path = artifacts.join(format!("{guest}.wasm"));
            assert!(
                path.is_file(),
                "guest artifact {} is missing",
                path.display()
            );
            (guest.to_string(), path)
        })
        .collect()
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

/// Fails early, with the fix, when the standard library for the guest target is missing.
fn require_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc --print sysroot");
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let std_dir = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    assert!(
        std_dir.is_dir(),
        "the {TARGET} target is not installed (no {}): run `rustup target add {TARGET}`",
        std_dir.display()
    );
}

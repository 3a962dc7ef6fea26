//! Builds the demo apps from `guests/` so `cargo run -p wasmount-demo` serves current source.

#[path = "../guests/build_guests.rs"]
mod build_guests;

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().expect("examples/ has a parent");
    let built = build_guests::build_guests(root, &["hello", "viz", "echo"]);
    let entries: String = built
        .iter()
        .map(|(name, path)| format!("    ({name:?}, {:?}),\n", path.display().to_string()))
        .collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("demo_apps.rs");
    std::fs::write(
        out,
        format!("const DEMO_APPS: &[(&str, &str)] = &[\n{entries}];\n"),
    )
    .expect("writing demo_apps.rs");
}

//! Builds the guest apps from `guests/` and exposes their paths as constants in `guests.rs`,
//! so every test runs components built from the current source.

#[path = "../guests/build_guests.rs"]
mod build_guests;

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().expect("tests/ has a parent");
    let built = build_guests::build_guests(root, &["hello", "echo", "trap", "viz", "hostile"]);
    let constants: String = built
        .iter()
        .map(|(name, path)| {
            format!(
                "/// The `{name}` guest component, built from `guests/{name}`.\n\
                 pub const {}: &str = {:?};\n",
                name.to_uppercase(),
                path.display().to_string()
            )
        })
        .collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests.rs");
    std::fs::write(out, constants).expect("writing guests.rs");
}

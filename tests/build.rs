//! Builds the guest apps from `guests/` and the Python and JavaScript examples, and exposes
//! their paths as constants in `guests.rs`, so every test runs components built from the
//! current source.

#[path = "../examples/build_componentized.rs"]
mod build_componentized;
#[path = "../guests/build_guests.rs"]
mod build_guests;

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().expect("tests/ has a parent");
    let mut built =
        build_guests::build_guests(root, &["hello", "echo", "trap", "viz", "hostile", "once"]);
    built.extend(build_componentized::build_componentized(root));
    let constants: String = built
        .iter()
        .map(|(name, path)| {
            format!(
                "/// The `{name}` component, built from source.\n\
                 pub const {}: &str = {:?};\n",
                name.to_uppercase().replace('-', "_"),
                path.display().to_string()
            )
        })
        .collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests.rs");
    std::fs::write(out, constants).expect("writing guests.rs");
}

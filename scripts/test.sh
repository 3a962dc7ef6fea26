#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the wasm32-wasip2 target (and rustfmt
# and clippy when missing), checks formatting and lints (host workspace and guests), then
# runs every test. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
rustup component add rustfmt clippy
cargo fmt --all --check
cargo fmt --manifest-path guests/Cargo.toml --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path guests/Cargo.toml --target wasm32-wasip2 --all-targets -- -D warnings
cargo test --workspace
cargo test --manifest-path guests/Cargo.toml

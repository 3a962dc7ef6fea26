#!/usr/bin/env bash
# Run with `bench/reload.sh` from anywhere. Loopback only, every wait bounded.
#
# Hot reload as an app developer sees it: `wasmount dev --app NAME=FILE` follows a build
# output outside the apps folder; each round writes a new build (same component, unique bytes)
# and times from the file being closed to the new version answering, debounce included.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
TOKEN=bench-admin-token-0123456789
ROUNDS=${ROUNDS:-7}

rustup target add wasm32-wasip2 >/dev/null
cargo build --release -q -p wasmount -p wasmount-bench
(cd guests && cargo build --release -q --locked --target wasm32-wasip2 -p hello -p viz --target-dir "$root/target/guests")
guests="$root/target/guests/wasm32-wasip2/release"

work=$(mktemp -d)
mkdir -p "$work/apps" "$work/build"
cp "$guests/hello.wasm" "$work/build/hello.wasm"
cp "$guests/viz.wasm" "$work/build/viz.wasm"
WASMOUNT_LOG=warn WASMOUNT_ADMIN_TOKEN=$TOKEN "$root/target/release/wasmount" dev --apps "$work/apps" \
  --listen 127.0.0.1:18120 --app "hello=$work/build/hello.wasm" --app "viz=$work/build/viz.wasm" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do curl -sf -o /dev/null http://127.0.0.1:18120/viz/ && curl -sf -o /dev/null http://127.0.0.1:18120/hello/ && break; sleep 0.1; done
sleep 1 # let the start-up compilations finish: measure reloads, not contention with them

for app in hello viz; do
  "$root/target/release/reload-latency" 127.0.0.1:18120 "$TOKEN" "$app" "$work/build/$app.wasm" "$guests/$app.wasm" "$ROUNDS"
done

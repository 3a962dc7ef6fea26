#!/usr/bin/env bash
# Run with `bench/reload.sh` from anywhere. Loopback only, every wait bounded.
#
# Hot reload as an app developer sees it: `wasmount dev --app NAME=FILE` follows a build
# output outside the apps folder; each round writes a new build (same component, unique bytes)
# and times from the file being closed to the new version answering, debounce included.
source "$(dirname "$0")/common.sh"
TOKEN=bench-admin-token-0123456789
ROUNDS=${ROUNDS:-7}

mkdir -p "$work/apps" "$work/build"
cp "$guests/hello.wasm" "$work/build/hello.wasm"
cp "$guests/viz.wasm" "$work/build/viz.wasm"
WASMOUNT_LOG=warn WASMOUNT_ADMIN_TOKEN=$TOKEN "$root/target/release/wasmount" dev --apps "$work/apps" \
  --listen 127.0.0.1:18120 --app "hello=$work/build/hello.wasm" --app "viz=$work/build/viz.wasm" &
pids+=($!)
wait_for http://127.0.0.1:18120/viz/
wait_for http://127.0.0.1:18120/hello/
sleep 1 # let the start-up compilations finish: measure reloads, not contention with them

for app in hello viz; do
  "$root/target/release/reload-latency" 127.0.0.1:18120 "$TOKEN" "$app" "$work/build/$app.wasm" "$guests/$app.wasm" "$ROUNDS"
done

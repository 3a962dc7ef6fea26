#!/usr/bin/env bash
# Run with `bench/python.sh` from anywhere (DURATION=5 seconds per load run by default).
# Loopback only, every run bounded.
#
# Python apps as Refinery's authors write them, each built with `wasmount build`:
#   1. build time of the SDK hello and of an unmodified Flask hello (dependencies cached);
#   2. GET /hello at c=16 (wrk, one thread), a fresh instance per request and with
#      `[reuse] max_requests = 1000`, beside `wasmtime serve -Scli` 50 on the same components
#      (fresh, and `--max-instance-reuse-count 1000`);
#   3. save -> live in `wasmount dev` for the SDK hello (componentize-py on every save).
BENCH_GUESTS=hello source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-5}
wasmtime_bin=$(command -v wasmtime || echo "$HOME/.cargo/bin/wasmtime")
lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print "cpu: " $2}'
export WASMOUNT_TOOLS=${WASMOUNT_TOOLS:-$root/target/tools}

mkdir -p "$work/apps"
for app in sdk-hello flask-hello; do
  cp -r "$root/bench/python/$app" "$work/$app"
  "$wasmount" build "$work/$app" -o "$work/built-$app.wasm" >/dev/null 2>&1 # dependencies, once
  start=$(date +%s%N)
  "$wasmount" build "$work/$app" -o "$work/built-$app.wasm" >/dev/null
  echo "build $app: $(( ($(date +%s%N) - start) / 1000000 )) ms, $(du -h "$work/built-$app.wasm" | cut -f1)"
  cp "$work/built-$app.wasm" "$work/apps/$app.wasm"
  cp "$work/built-$app.wasm" "$work/apps/$app-reuse.wasm"
  printf '[reuse]\nmax_requests = 1000\n' >"$work/apps/$app-reuse.toml"
done

load() { # NAME URL
  wrk -t1 -c16 -d1s "$2" >/dev/null 2>&1
  local out; out=$(wrk -t1 -c16 -d"${DURATION}s" --latency "$2")
  local failed; failed=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  printf '%-44s %7s req/s   p50 %s%s\n' "$1" "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')" \
    "$(echo "$out" | awk '$1 == "50%" {print $2}')" "${failed:+   ($failed responses were errors)}"
}

WASMOUNT_LOG=info "$wasmount" serve --apps "$work/apps" --listen 127.0.0.1:18140 2>"$work/serve.log" &
pids+=($!)
for app in sdk-hello sdk-hello-reuse flask-hello flask-hello-reuse; do wait_for "http://127.0.0.1:18140/$app/hello"; done
# Measure the optimized code, not the baseline tier with the optimizing compiles running
# beside it (four big components take a while on two cores).
for _ in $(seq 1 600); do
  [ "$(grep -c 'optimized code swapped in' "$work/serve.log")" -ge 4 ] && break
  sleep 1
done
for app in sdk-hello flask-hello; do
  load "wasmount $app, fresh" "http://127.0.0.1:18140/$app/hello"
  load "wasmount $app, reuse" "http://127.0.0.1:18140/$app-reuse/hello"
  for mode in fresh reuse; do
    flags=(); [ "$mode" = reuse ] && flags=(--max-instance-reuse-count 1000)
    "$wasmtime_bin" serve -Scli "${flags[@]}" --addr 127.0.0.1:18141 "$work/built-$app.wasm" >/dev/null 2>&1 &
    wt=$!
    wait_for http://127.0.0.1:18141/hello
    load "wasmtime serve $app, $mode" http://127.0.0.1:18141/hello
    kill $wt; wait $wt 2>/dev/null || true
  done
done

# Save -> live in dev mode: each round edits app.py and times until the new text is served.
cp -r "$root/bench/python/sdk-hello" "$work/loop"
WASMOUNT_LOG=info "$wasmount" dev --apps "$work/dev-apps" --listen 127.0.0.1:18142 "$work/loop" 2>"$work/dev.log" &
pids+=($!)
for _ in $(seq 1 1200); do curl -sf -o /dev/null http://127.0.0.1:18142/loop/hello && break; sleep 0.1; done
sleep 3
for round in 1 2 3 4 5; do
  sed -i "s/hello from the Python SDK[^\\\\]*/hello from the Python SDK, round $round/" "$work/loop/app.py"
  start=$(date +%s%N)
  for _ in $(seq 1 3000); do
    curl -sf http://127.0.0.1:18142/loop/hello | grep -q "round $round$" && break
    sleep 0.01
  done
  end=$(date +%s%N)
  build=$(grep 'INFO built' "$work/dev.log" | tail -1 | sed -E 's/.*build_ms=([0-9]+).*/\1/')
  live=$(grep 'live at' "$work/dev.log" | tail -1 | sed -E 's/.*save_to_live_ms=([0-9]+).*/\1/')
  echo "dev round $round: save -> page $(((end - start) / 1000000)) ms (build $build ms, save -> live $live ms)"
  sleep 3 # the optimized tier of a 19 MB component
done

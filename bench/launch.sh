#!/usr/bin/env bash
# Run with `bench/launch.sh` from anywhere. Loopback only, every loop bounded.
#
# Measures, in one run, with release builds, on one server with `hello` and `viz` mounted:
#   1. launch -> first 200 from the instance URL: hello (input not used: no data fetch), then
#      viz drawing a TSV it fetches from a local data server on every request;
#   2. launch throughput: $INSTANCES instances of hello, 8 launches at a time;
#   3. RSS per idle instance: RSS after those launches minus before, per instance, minus the
#      100-byte input each holds.
source "$(dirname "$0")/common.sh"
TOKEN=bench-admin-token-0123456789
ROUNDS=${ROUNDS:-200}
INSTANCES=${INSTANCES:-10000}
DATA=127.0.0.1:18201
launcher="$root/target/release/launch-latency"

mkdir -p "$work/apps"
cp "$guests/hello.wasm" "$work/apps/hello.wasm"
cp "$guests/viz.wasm" "$work/apps/viz.wasm"
echo "allowed_outbound_hosts = [\"http://$DATA\"]" > "$work/apps/viz.toml"
WASMOUNT_LOG=warn WASMOUNT_ADMIN_TOKEN=$TOKEN "$wasmount" serve --apps "$work/apps" \
  --listen 127.0.0.1:18200 --max-launched-instances $((INSTANCES + 2 * ROUNDS + 10)) 2>"$work/server.log" &
pid=$!; pids+=("$pid")
wait_for http://127.0.0.1:18200/_wasmount/health
for app in hello viz; do   # wait for the start-up compiles (bounded: 60 s)
  for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:18200/$app/" && break; sleep 0.1; done
done

echo "== launch -> first 200"
"$launcher" 127.0.0.1:18200 "$TOKEN" latency hello "$ROUNDS"
"$launcher" 127.0.0.1:18200 "$TOKEN" latency viz "$DATA" "$ROUNDS"
sleep 1
rss_before=$(rss_kib "$pid")

echo
echo "== launch throughput and memory"
"$launcher" 127.0.0.1:18200 "$TOKEN" fill hello "$INSTANCES" 8
sleep 1
rss_after=$(rss_kib "$pid")
files=$(ls "$work/apps/.instances" | wc -l)
echo "instance files: $files ($(du -sk "$work/apps/.instances" | cut -f1) KiB on disk)"
echo "RSS: ${rss_before} KiB before, ${rss_after} KiB after $INSTANCES instances => $(awk -v a="$rss_after" -v b="$rss_before" -v n="$INSTANCES" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }') bytes per idle instance, 100 of them input"

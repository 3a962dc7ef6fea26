#!/usr/bin/env bash
# Run with `bench/dev-loop.sh` from anywhere. Loopback only, every wait bounded.
#
# The app developer's loop on the Rust template: `wasmount new`, `wasmount dev DIR`, then
# ROUNDS saves of src/main.rs, each timed from the save to the page answering with the new
# text (as the browser would see it), and split with the server's own log into cargo's
# incremental build and wasmount's share: the settle wait after the save, reading, compiling
# (baseline tier) and swapping in the new version.
source "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-10}
PORT=18130
lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print "cpu: " $2}'
nproc | sed 's/^/cores: /'

cd "$work"
"$wasmount" new loop-app >/dev/null
# Dependencies build once, outside the measured rounds (and are kept between runs).
export CARGO_TARGET_DIR="$root/target/dev-projects"
WASMOUNT_LOG=info "$wasmount" dev --apps "$work/apps" --listen 127.0.0.1:$PORT loop-app 2>"$work/dev.log" &
pids+=($!)
for _ in $(seq 1 6000); do curl -sf -o /dev/null http://127.0.0.1:$PORT/loop-app/ && break; sleep 0.1; done
curl -sf -o /dev/null http://127.0.0.1:$PORT/loop-app/ || { echo "the first build did not go live" >&2; exit 1; }
sleep 2 # the first version's optimized tier

printf '%-6s %-14s %-10s %-14s %-13s %s\n' round "save→page ms" "build ms" "save→live ms" "wasmount ms" "of which swap ms"
for round in $(seq 1 "$ROUNDS"); do
  sed -i "s/Rust on wasmount[^<]*</Rust on wasmount, round $round</" loop-app/src/main.rs
  start=$(date +%s%N)
  for _ in $(seq 1 3000); do
    curl -sf http://127.0.0.1:$PORT/loop-app/ | grep -q "round $round<" && break
    sleep 0.01
  done
  end=$(date +%s%N)
  sleep 1.5 # the optimized tier compiles in the background: let it finish before the next save
  build=$(grep 'INFO built' "$work/dev.log" | tail -1 | sed -E 's/.*build_ms=([0-9]+).*/\1/')
  live=$(grep 'live at' "$work/dev.log" | tail -1 | sed -E 's/.*save_to_live_ms=([0-9]+).*/\1/')
  swap=$(grep "live at" "$work/dev.log" | tail -1 | sed -E "s/.*swap_ms=([0-9]+).*/\1/")
  printf '%-6s %-14s %-10s %-14s %-13s %s\n' "$round" $(((end - start) / 1000000)) "$build" "$live" $((live - build)) "$swap"
done

#!/usr/bin/env bash
# Run with `bench/deploy.sh` from anywhere. Loopback only, every wait bounded.
#
# Measures, in one run, with release builds:
#   1. upload → first 200, for the hello and the viz guest, on fresh servers (3 rounds);
#   2. restart with 1,000 mounted apps (copies of hello) → time until all are routable, and the
#      latency of the first request after it;
#   3. RSS per idle mounted app (1,000 apps vs 1 app, both idle after start).
source "$(dirname "$0")/common.sh"
TOKEN=bench-admin-token-0123456789
APPS=${APPS:-1000}

hello="$guests/hello.wasm"
viz="$guests/viz.wasm"
now_ms() { date +%s%3N; }

# Starts a server on $1 (apps folder) and $2 (port), logging to $3; sets $pid. Waits for ready.
start_server() {
  WASMOUNT_LOG=info WASMOUNT_ADMIN_TOKEN=$TOKEN "$wasmount" serve --apps "$1" --listen "127.0.0.1:$2" 2>"$3" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 600); do grep -q "listening on" "$3" && return 0; sleep 0.01; done
  echo "server did not start; log:" >&2; cat "$3" >&2; exit 1
}

echo "== upload -> first 200 (fresh server each round, no cache)"
for round in 1 2 3; do
  mkdir -p "$work/up$round"
  start_server "$work/up$round" $((18100 + round)) "$work/up$round.log"
  "$root/target/release/deploy-latency" "127.0.0.1:$((18100 + round))" "$TOKEN" "hello=$hello" "viz=$viz"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo
echo "== restart with $APPS apps"
mkdir -p "$work/many" "$work/one"
for i in $(seq 1 "$APPS"); do cp "$hello" "$work/many/hello$i.wasm"; done
cp "$hello" "$work/one/hello.wasm"
start_server "$work/many" 18110 "$work/warm.log"
for _ in $(seq 1 1200); do   # first start compiles once and caches every app (bounded: 120 s)
  unfinished=$(curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18110/_wasmount/apps | grep -c '"state": "loading"\|"compiled": "baseline"' || true)
  [ "$unfinished" = 0 ] && break; sleep 0.1
done
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true

started=$(now_ms)
start_server "$work/many" 18111 "$work/restart.log"
ready=$(now_ms)
first=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:18111/hello$((APPS / 2))/")
from_cache=$(grep -o 'from_cache=[0-9]*' "$work/restart.log" | head -1)
routable=$(grep -o 'apps routable after [0-9.]* ms' "$work/restart.log" | head -1)
echo "process start -> listening with all apps routable: $((ready - started)) ms ($routable, $from_cache)"
echo "first request after restart: $(awk -v s="$first" 'BEGIN { printf "%.2f", s * 1000 }') ms"
sleep 1
rss_many=$(rss_kib "$pid")

start_server "$work/one" 18112 "$work/one.log"
sleep 1
rss_one=$(rss_kib "$pid")
echo "RSS idle: 1 app ${rss_one} KiB, $APPS apps ${rss_many} KiB => $(awk -v a="$rss_many" -v b="$rss_one" -v n="$APPS" 'BEGIN { printf "%.0f", (a - b) / (n - 1) }') KiB per extra idle app"

#!/usr/bin/env bash
# Run with `bench/deploy.sh` from anywhere. Loopback only, every wait bounded.
#
# Measures, in one run, with release builds:
#   1. upload → first 200, for the hello and the viz guest, on fresh servers (3 rounds);
#   2. restart with 1,000 mounted apps (copies of hello) → time until all are routable, and the
#      latency of the first request after it;
#   3. idle cost per mounted app: RSS of 1,000 copies vs 1 app, and anonymous memory and PSS of
#      DISTINCT (200) distinct apps vs 1, all from the cache after a trim period.
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
kill "$pid"; wait "$pid" 2>/dev/null || true

# Idle cost per app, from the cache and after one memory-trim period (10 s), as anonymous memory
# and PSS (/proc/PID/smaps_rollup): RSS overstates copies, which share one mapped artifact. The
# distinct apps are hello with a custom section that differs per app (other bytes, own build).
DISTINCT=${DISTINCT:-200}
tag() { cp "$hello" "$2"; printf '\0\005\004%04d' "$1" >> "$2"; }
mkdir -p "$work/distinct"
for i in $(seq 1 "$DISTINCT"); do tag "$i" "$work/distinct/d$i.wasm"; done
tag 0 "$work/one/hello.wasm"
smaps() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/smaps_rollup"; }
settled() { # DIR PORT: compiles DIR's apps once, restarts from the cache, waits 12 s; sets $pid
  start_server "$1" "$2" "$work/settle$2.log"
  for _ in $(seq 1 3000); do   # bounded: 300 s
    unfinished=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$2/_wasmount/apps" | grep -c '"state": "loading"\|"compiled": "baseline"' || true)
    [ "$unfinished" = 0 ] && break; sleep 0.1
  done
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  start_server "$1" "$(($2 + 1))" "$work/settled$2.log"
  sleep 12
}
settled "$work/one" 18112; one=$pid
rss_one=$(rss_kib "$one"); anon_one=$(smaps "$one" Anonymous); pss_one=$(smaps "$one" Pss)
settled "$work/distinct" 18114; many=$pid
anon_many=$(smaps "$many" Anonymous); pss_many=$(smaps "$many" Pss)
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.0f", (a - b) / n }'; }
echo "RSS idle, from the cache: 1 app ${rss_one} KiB, $APPS copies of it ${rss_many} KiB" \
  "=> $(per "$rss_many" "$rss_one" $((APPS - 1))) KiB per extra copy"
echo "$DISTINCT distinct apps vs 1: anonymous $(per "$anon_many" "$anon_one" $((DISTINCT - 1))) KiB," \
  "PSS $(per "$pss_many" "$pss_one" $((DISTINCT - 1))) KiB per extra idle app (target: anonymous <= 256 KiB)"

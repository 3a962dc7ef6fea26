#!/usr/bin/env bash
# Run with `bench/load.sh` from anywhere (DURATION=30 seconds per phase by default).
# Loopback only; every load run is bounded in time.
#
# Load and leaks: good traffic (hello, c=48) alone, then the same together with hostile traffic
# (the hostile guest's loops, memory hogs, recursion, header floods, c=16) — good req/s side by
# side, the hostile statuses, and RSS before, right after, and 60 s after. Then the cost of epoch interruption on
# the hello benchmark (c=64), with and without, in the same run.
BENCH_GUESTS="hello hostile" source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-30}
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

mkdir -p "$work/apps"
cp "$guests/hello.wasm" "$work/apps/hello.wasm"
cp "$guests/hostile.wasm" "$work/apps/bad.wasm"
WASMOUNT_LOG=error "$wasmount" serve --apps "$work/apps" --listen 127.0.0.1:18130 \
  --request-timeout 1s --memory 64MiB &
pids+=($!); server=$!
wait_for http://127.0.0.1:18130/hello/
wait_for http://127.0.0.1:18130/bad/ok
good_rps() { awk '/Requests\/sec/ {printf "%.0f", $2}'; }

wrk -t1 -c48 -d2s http://127.0.0.1:18130/hello/ >/dev/null   # warm up
rss_start=$(rss_kib "$server")
alone=$(wrk -t1 -c48 -d"${DURATION}s" http://127.0.0.1:18130/hello/ | good_rps)
wrk -t1 -c16 -d"${DURATION}s" --timeout 5s -s "$root/bench/hostile-mix.lua" http://127.0.0.1:18130/ > "$work/hostile.txt" &
hostile=$!
mixed=$(wrk -t1 -c48 -d"${DURATION}s" http://127.0.0.1:18130/hello/ | good_rps)
wait "$hostile"
sleep 2
rss_end=$(rss_kib "$server")
sleep 58
rss_quiet=$(rss_kib "$server")
echo "good traffic (hello, c=48): alone ${alone} req/s, beside hostile traffic ${mixed} req/s"
grep "hostile statuses" "$work/hostile.txt"
echo "hostile requests completed: $(awk '/requests in/ {print $1}' "$work/hostile.txt")"
echo "server RSS: ${rss_start} KiB before, ${rss_end} KiB after, ${rss_quiet} KiB 60 s after the load" \
  "($(awk -v a="$rss_quiet" -v w="$rss_start" 'BEGIN { printf "%.2f", a / w }')x; target <= 1.5x or + 24 MiB)"
kill "$server"

echo
echo "== epoch interruption cost (hello, c=64, ${DURATION}s each)"
for mode in on off; do
  flag=(); port=18131
  if [ "$mode" = off ]; then flag=(--unsafe-no-epoch-interruption); port=18132; fi
  WASMOUNT_LOG=error "$wasmount" serve --apps "$work/apps" --listen "127.0.0.1:$port" "${flag[@]}" &
  pids+=($!); pid=$!
  wait_for "http://127.0.0.1:$port/hello/"
  wrk -t1 -c64 -d2s "http://127.0.0.1:$port/hello/" >/dev/null
  echo "epoch interruption $mode: $(wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:$port/hello/" | good_rps) req/s"
  kill "$pid"
done

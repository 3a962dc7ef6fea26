#!/usr/bin/env bash
# Run with `bench/callgrind.sh` from anywhere (N=2000 requests by default). Instructions per
# request, counted by valgrind's callgrind (repeatable on a busy machine, unlike seconds):
#   - wasmount serving the hello guest: the server runs under callgrind, is warmed up (its
#     optimized build cached beforehand), its counters are zeroed, N sequential requests are
#     sent (wrk, one connection, keep-alive), and the counters dumped;
#   - the floor: `instantiate-floor`, an in-process wasmtime loop instantiating the same
#     component and handing it the same request, counted as (run with N+200) - (run with 200).
# Prints both and their ratio (the engine issue's target: wasmount <= 1.5x the floor).
BENCH_GUESTS=hello source "$(dirname "$0")/common.sh"
N=${N:-2000}
PORT=18601
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

mkdir -p "$work/apps"
cp "$guests/hello.wasm" "$work/apps/hello.wasm"
# Fill the compiled cache natively first, so no compiler runs under callgrind.
# --max-instances 2: the floor's pool size (valgrind cannot map the default pool's reservation).
WASMOUNT_LOG=warn "$wasmount" serve --apps "$work/apps" --listen "127.0.0.1:$PORT" --max-instances 2 &
pid=$!; pids+=("$pid")
wait_for "http://127.0.0.1:$PORT/hello/"
for _ in $(seq 1 300); do [ -f "$work/apps/.cache/hello.json" ] && break; sleep 0.1; done
kill "$pid"; wait "$pid" 2>/dev/null || true

total_of() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }
# Under valgrind the kernel's PAGEMAP_SCAN is not available, so wasmtime resets a slot's kept
# pages with memset instead of only the dirtied ones: counted apart, as it is not what runs
# natively.
memset_of() { callgrind_annotate "$1" 2>/dev/null | awk '/__memset/ {gsub(/,/, "", $1); s += $1} END {print s + 0}'; }
WASMOUNT_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/server.%p" \
  "$wasmount" serve --apps "$work/apps" --listen "127.0.0.1:$PORT" --max-instances 2 \
  2>"$work/valgrind.log" & pid=$!
pids+=("$pid")
for _ in $(seq 1 3000); do   # slow under valgrind: up to 5 minutes
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/hello/" && break; sleep 0.1
done
for _ in $(seq 1 200); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/hello/"; done
callgrind_control -z "$pid" >/dev/null
# wrk is bounded by time, not count: give it time for N, then read how many it sent.
sent=$(wrk -t1 -c1 -d"${SECONDS_UNDER_VALGRIND:-20}s" "http://127.0.0.1:$PORT/hello/" | awk '/requests in/ {print $1}')
callgrind_control -d "$pid" >/dev/null
sleep 1
dump=$(ls -t "$work"/server.*.* 2>/dev/null | head -1)
server_total=$(total_of "$dump"); server_memset=$(memset_of "$dump")
kill "$pid"; wait "$pid" 2>/dev/null || true

floor_run() { # COUNT: runs the floor for COUNT requests under callgrind
  valgrind --tool=callgrind --callgrind-out-file="$work/floor.$1" \
    "$root/target/release/instantiate-floor" "$guests/hello.wasm" "$1" >/dev/null 2>&1
}
floor_run 200; floor_run $((N + 200))
base=$(total_of "$work/floor.200"); more=$(total_of "$work/floor.$((N + 200))")
base_memset=$(memset_of "$work/floor.200"); more_memset=$(memset_of "$work/floor.$((N + 200))")

echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}'), kernel $(uname -r)"
awk -v s="$server_total" -v sm="$server_memset" -v sent="$sent" -v b="$base" -v m="$more" \
    -v bm="$base_memset" -v mm="$more_memset" -v n="$N" 'BEGIN {
  per_server = s / sent; per_floor = (m - b) / n
  set_server = sm / sent; set_floor = (mm - bm) / n
  printf "wasmount (hello, HTTP over loopback, %d requests): %.0f instructions per request (%.0f without memset)\n", sent, per_server, per_server - set_server
  printf "floor (in-process instantiate + handle, %d requests): %.0f instructions per request (%.0f without memset)\n", n, per_floor, per_floor - set_floor
  printf "ratio: %.2fx the floor, %.2fx without memset (target <= 1.5x)\n", per_server / per_floor, (per_server - set_server) / (per_floor - set_floor) }'

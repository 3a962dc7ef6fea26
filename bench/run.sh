#!/usr/bin/env bash
# Run with `bench/run.sh` from anywhere (DURATION=5 seconds per load run by default).
#
# In one run, on loopback only, with every load run bounded in time, it measures req/s and
# p50/p99 latency at 1, 16 and 64 connections (wrk, one thread) for:
#   - wasmount serving the hello guest,
#   - a native hyper hello server built from this repo (the ceiling),
#   - `wasmtime serve -Scli` 50 on the same hello component;
# then server CPU per request and wasmount's RSS with 1 and with 50 apps mounted, and prints
# the ratios the foundation issue targets.
BENCH_GUESTS=hello source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-5}
WASMTIME_VERSION=50.0.1
PORT_WASMOUNT=18081 PORT_NATIVE=18082 PORT_WASMTIME=18083 PORT_MANY=18084

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
wasmtime_bin=$(command -v wasmtime || echo "$HOME/.cargo/bin/wasmtime")
if ! "$wasmtime_bin" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
  echo "installing wasmtime-cli $WASMTIME_VERSION (about 13 minutes, cached afterwards)" >&2
  cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked >&2
  wasmtime_bin="$HOME/.cargo/bin/wasmtime"
fi

hello="$guests/hello.wasm"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

mkdir -p "$work/one" "$work/many"
cp "$hello" "$work/one/hello.wasm"
for i in $(seq 1 50); do cp "$hello" "$work/many/hello$i.wasm"; done

WASMOUNT_LOG=warn "$wasmount" serve --apps "$work/one" --listen "127.0.0.1:$PORT_WASMOUNT" & pids+=($!); pid_wasmount=$!
"$root/target/release/native-hello" "127.0.0.1:$PORT_NATIVE" 2>/dev/null & pids+=($!); pid_native=$!
"$wasmtime_bin" serve -Scli --addr "127.0.0.1:$PORT_WASMTIME" "$hello" >/dev/null 2>&1 & pids+=($!); pid_wasmtime=$!

declare -A url=(
  [wasmount]="http://127.0.0.1:$PORT_WASMOUNT/hello/"
  [native]="http://127.0.0.1:$PORT_NATIVE/"
  [wasmtime]="http://127.0.0.1:$PORT_WASMTIME/"
)
declare -A pid=([wasmount]=$pid_wasmount [native]=$pid_native [wasmtime]=$pid_wasmtime)
for server in wasmount native wasmtime; do wait_for "${url[$server]}"; done
rss_one_idle=$(rss_kib "$pid_wasmount")

# wrk prints latency as e.g. 1.23ms / 456.00us / 1.02s: normalize to ms.
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else if (v ~ /s$/) printf "%.3f", v*1000; else print v }'; }

declare -A rps p50 p99 cpu_us
printf '\n%-9s %5s %12s %10s %10s\n' server conns "req/s" "p50 ms" "p99 ms"
for conns in 1 16 64; do
  for server in wasmount native wasmtime; do
    # warm up briefly, then measure
    wrk -t1 -c"$conns" -d1s "${url[$server]}" >/dev/null 2>&1
    before=$(cpu_ticks "${pid[$server]}")
    out=$(wrk -t1 -c"$conns" -d"${DURATION}s" --latency "${url[$server]}")
    after=$(cpu_ticks "${pid[$server]}")
    if echo "$out" | grep -q "Non-2xx"; then echo "$server returned errors:" >&2; echo "$out" >&2; exit 1; fi
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    key="$server,$conns"
    rps[$key]=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
    p50[$key]=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
    p99[$key]=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
    cpu_us[$key]=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    printf '%-9s %5s %12s %10s %10s\n' "$server" "$conns" "${rps[$key]}" "${p50[$key]}" "${p99[$key]}"
  done
done
rss_one_loaded=$(rss_kib "$pid_wasmount")

WASMOUNT_LOG=warn "$wasmount" serve --apps "$work/many" --listen "127.0.0.1:$PORT_MANY" & pids+=($!); pid_many=$!
wait_for "http://127.0.0.1:$PORT_MANY/hello50/"
rss_many_idle=$(rss_kib "$pid_many")
for i in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$PORT_MANY/hello$i/"; done
rss_many_used=$(rss_kib "$pid_many")

echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}'), $(nproc) cores, kernel $(uname -r)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "server CPU per request at c=64: wasmount ${cpu_us[wasmount,64]} µs, wasmtime serve ${cpu_us[wasmtime,64]} µs, native ${cpu_us[native,64]} µs"
echo "wasmount RSS, 1 app:   idle ${rss_one_idle} KiB, after the load runs ${rss_one_loaded} KiB"
echo "wasmount RSS, 50 apps: idle ${rss_many_idle} KiB, after one request to each ${rss_many_used} KiB"
echo "  => $(awk -v a="$rss_many_idle" -v b="$rss_one_idle" 'BEGIN { printf "%.0f", (a - b) / 49 }') KiB per extra idle app"
echo
echo "c=64 throughput: wasmount / wasmtime serve = $(ratio "${rps[wasmount,64]}" "${rps[wasmtime,64]}")x (target >= 5)"
echo "c=64 throughput: wasmount / native hyper   = $(ratio "${rps[wasmount,64]}" "${rps[native,64]}")x (target >= 0.3)"
echo "c=16 p99: wasmount ${p99[wasmount,16]} ms vs wasmtime serve ${p99[wasmtime,16]} ms (target: below)"

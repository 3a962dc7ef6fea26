#!/usr/bin/env bash
# Run with `bench/languages.sh` from anywhere (DURATION=5 seconds per load run by default).
#
# The Python and JavaScript examples (built by the tests' build script with the pinned
# componentize-py / componentize-js), in one run, loopback only, every run bounded:
#   1. GET /hello at c=16 (wrk, one thread): wasmount with a fresh instance per request vs
#      `wasmtime serve -Scli` 50 (fresh, its default); wasmount with `[reuse] max_requests =
#      1000` vs `wasmtime serve -Scli --max-instance-reuse-count 1000`;
#   2. upload -> first 200 of the Python app on a fresh server (no cache: Winch first);
#   3. restart with the Python app cached -> first 200;
#   4. RSS of a server with the Python and JS apps mounted, idle, vs one with none.
BENCH_GUESTS=hello source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-5}
TOKEN=bench-admin-token-0123456789
wasmtime_bin=$(command -v wasmtime || echo "$HOME/.cargo/bin/wasmtime")
"$wasmtime_bin" --version | grep -q "50.0.1" || { echo "needs wasmtime-cli 50.0.1 (see bench/run.sh)" >&2; exit 1; }

cargo build -q -p wasmount-tests --tests   # its build script builds the componentized apps
python="$root/target/componentized/python-chart.wasm"
js="$root/target/componentized/js-chart.wasm"
now_ms() { date +%s%3N; }
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.2f", v/1000; else if (v ~ /ms$/) printf "%.2f", v+0; else if (v ~ /s$/) printf "%.2f", v*1000; else print v }'; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { # NAME URL PID: prints req/s, p50 and the server's CPU per request at c=16
  wrk -t1 -c16 -d1s "$2" >/dev/null 2>&1
  local before; before=$(cpu_ticks "$3")
  local out; out=$(wrk -t1 -c16 -d"${DURATION}s" --latency "$2")
  local after; after=$(cpu_ticks "$3")
  local failed; failed=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  local requests; requests=$(echo "$out" | awk '/requests in/ {print $1}')
  printf '%-52s %7s req/s   p50 %7s ms   CPU %6s us/req%s\n' "$1" "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')" \
    "$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")" \
    "$(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')" \
    "${failed:+   (all but $((requests - failed)) of $requests were errors)}"
}

mkdir -p "$work/apps"
cp "$python" "$work/apps/py.wasm"; cp "$python" "$work/apps/py-reuse.wasm"
cp "$js" "$work/apps/js.wasm"; cp "$js" "$work/apps/js-reuse.wasm"
printf '[reuse]\nmax_requests = 1000\n' > "$work/apps/py-reuse.toml"
cp "$work/apps/py-reuse.toml" "$work/apps/js-reuse.toml"
WASMOUNT_LOG=warn WASMOUNT_ADMIN_TOKEN=$TOKEN "$wasmount" serve --apps "$work/apps" --listen 127.0.0.1:18400 & pids+=($!); pid_wasmount=$!
wait_for http://127.0.0.1:18400/_wasmount/health
for _ in $(seq 1 1800); do   # until every app runs its optimized build (180 s at most)
  unfinished=$(curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18400/_wasmount/apps | grep -c '"state": "loading"\|"compiled": "baseline"' || true)
  [ "$unfinished" = 0 ] && break; sleep 0.1
done

for app in py js py-reuse js-reuse; do curl -sf -o /dev/null "http://127.0.0.1:18400/$app/hello"; done
sleep 2; rss_warm=$(rss_kib "$pid_wasmount")
echo "== GET /hello at c=16, ${DURATION}s each"
load "wasmount python, fresh instance" http://127.0.0.1:18400/py/hello "$pid_wasmount"
load "wasmount javascript, fresh instance" http://127.0.0.1:18400/js/hello "$pid_wasmount"
load "wasmount python, reuse 1000" http://127.0.0.1:18400/py-reuse/hello "$pid_wasmount"
load "wasmount javascript, reuse 1000 (turns itself off)" http://127.0.0.1:18400/js-reuse/hello "$pid_wasmount"
rss_loaded=$(rss_kib "$pid_wasmount"); sleep 60
echo "wasmount RSS: warm ${rss_warm} KiB, right after the runs ${rss_loaded} KiB, 60 s later $(rss_kib "$pid_wasmount") KiB"
kill "$pid_wasmount"

for lang in python js; do
  component=$python; [ "$lang" = js ] && component=$js
  "$wasmtime_bin" serve -Scli --addr 127.0.0.1:18401 "$component" >/dev/null 2>&1 & pids+=($!); pid=$!
  wait_for http://127.0.0.1:18401/hello
  load "wasmtime serve $lang, fresh instance" http://127.0.0.1:18401/hello "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  "$wasmtime_bin" serve -Scli --max-instance-reuse-count 1000 --addr 127.0.0.1:18401 "$component" >/dev/null 2>&1 & pids+=($!); pid=$!
  wait_for http://127.0.0.1:18401/hello
  load "wasmtime serve $lang, reuse 1000" http://127.0.0.1:18401/hello "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo
echo "== upload -> first 200, Python app ($(du -k "$python" | cut -f1) KiB), fresh server each round"
for round in 1 2 3; do
  mkdir -p "$work/up$round"
  WASMOUNT_LOG=warn WASMOUNT_ADMIN_TOKEN=$TOKEN "$wasmount" serve --apps "$work/up$round" --listen "127.0.0.1:$((18410 + round))" & pids+=($!); pid=$!
  wait_for "http://127.0.0.1:$((18410 + round))/_wasmount/health"
  "$root/target/release/deploy-latency" "127.0.0.1:$((18410 + round))" "$TOKEN" "py=$python" "js=$js"
  [ "$round" = 3 ] || { kill "$pid"; wait "$pid" 2>/dev/null || true; }
done
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true   # round 3 left the optimized builds cached

echo
echo "== restart with the Python and JS apps cached -> first 200"
for round in 1 2 3; do
  started=$(now_ms)
  WASMOUNT_LOG=warn "$wasmount" serve --apps "$work/up3" --listen 127.0.0.1:18420 & pids+=($!); pid=$!
  for _ in $(seq 1 2000); do curl -sf -o /dev/null http://127.0.0.1:18420/py/hello && break; sleep 0.005; done
  echo "round $round: process start -> first 200 from /py/hello: $(( $(now_ms) - started )) ms"
  sleep 1
  rss_apps=$(rss_kib "$pid")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
done
mkdir -p "$work/none"
WASMOUNT_LOG=warn "$wasmount" serve --apps "$work/none" --listen 127.0.0.1:18421 & pids+=($!); pid=$!
wait_for http://127.0.0.1:18421/_wasmount/health; sleep 1
echo "RSS idle: no apps $(rss_kib "$pid") KiB; python + js mounted from cache, after one request ${rss_apps} KiB"

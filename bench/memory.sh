#!/usr/bin/env bash
# Run with `bench/memory.sh` from anywhere. Does memory come back after a burst?
#
# For two builds in the same run — BEFORE_BIN (default: the release build of BEFORE_REV, the
# commit before the memory work, built once into target/memory-before) and this tree's —
# it starts a server with one small app (the hostile guest), warms it, sends three bursts of
# 16 concurrent requests that each grow the guest's memory by FILL_MIB MiB and answer 4 MiB,
# then stays quiet for QUIET seconds, sampling the server's RSS every 250 ms. Writes
# bench/results/memory.csv (seconds, build, RSS MiB) and draws bench/results/memory.png
# (gnuplot, installed from Debian when missing). Loopback only, bounded in time.
BENCH_GUESTS="hostile" source "$(dirname "$0")/common.sh"
BEFORE_REV=${BEFORE_REV:-061ecb7}
BEFORE_LABEL=${BEFORE_LABEL:-$BEFORE_REV}
QUIET=${QUIET:-70}
[ "$QUIET" -ge 60 ] || { echo "QUIET must be at least 60 (seconds)" >&2; exit 1; }
FILL_MIB=${FILL_MIB:-100}
results="$root/bench/results"
mkdir -p "$results"

if ! command -v gnuplot >/dev/null; then
  echo "installing gnuplot (Debian package gnuplot-nox)" >&2
  apt-get update -qq && apt-get install -y -qq gnuplot-nox >/dev/null
fi
if [ -z "${BEFORE_BIN:-}" ]; then
  before_tree="$root/target/memory-before/src"
  if [ ! -x "$root/target/memory-before/release/wasmount" ]; then
    echo "building $BEFORE_REV for comparison (once, cached in target/memory-before)" >&2
    rm -rf "$before_tree"; mkdir -p "$before_tree"
    git -C "$root" archive "$BEFORE_REV" | tar -x -C "$before_tree"
    (cd "$before_tree" && cargo build --release -q -p wasmount --target-dir "$root/target/memory-before")
  fi
  BEFORE_BIN="$root/target/memory-before/release/wasmount"
fi

mkdir -p "$work/apps"
cp "$guests/hostile.wasm" "$work/apps/bad.wasm"
csv="$results/memory.csv"
echo "seconds,build,rss_mib" > "$csv"

sample() { # LABEL PID START_NS: appends an RSS sample every 250 ms until killed
  while kill -0 "$2" 2>/dev/null; do
    awk -v label="$1" -v start="$3" -v now="$(date +%s%N)" '/VmRSS/ {
      printf "%.2f,%s,%.1f\n", (now - start) / 1e9, label, $2 / 1024 }' "/proc/$2/status" >> "$csv"
    sleep 0.25
  done
}

measure() { # LABEL BINARY PORT
  local label=$1 bin=$2 port=$3 url="http://127.0.0.1:$3/bad"
  WASMOUNT_LOG=warn "$bin" serve --apps "$work/apps" --listen "127.0.0.1:$port" &
  local pid=$!; pids+=("$pid")
  wait_for "$url/ok"
  for _ in $(seq 1 20); do curl -sf -o /dev/null "$url/ok"; done   # warm
  sleep 2
  local warm; warm=$(rss_kib "$pid")
  sample "$label" "$pid" "$(date +%s%N)" & local sampler=$!
  sleep 2
  for _ in 1 2 3; do
    ( for _ in $(seq 1 16); do
        curl -s -o /dev/null -w '%{http_code}\n' "$url/fill?mib=$FILL_MIB" >> "$work/$label.statuses" &
      done; wait )
  done
  local peak; peak=$(awk -F, -v l="$label" '$2 == l && $3 > m {m = $3} END {print m * 1024}' "$csv")
  sleep 60
  local after60; after60=$(rss_kib "$pid")
  sleep $((QUIET - 60))
  kill "$sampler" "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  echo "$label: burst statuses $(sort "$work/$label.statuses" | uniq -c | awk '{printf "%s x%s ", $2, $1}')"
  awk -v l="$label" -v w="$warm" -v p="$peak" -v a="$after60" 'BEGIN {
    target = (1.5 * w > w + 24 * 1024) ? 1.5 * w : w + 24 * 1024
    printf "%-7s warm %6.1f MiB   peak %6.1f MiB   60 s after the bursts %6.1f MiB = %.2fx warm (target <= %.1f MiB: %s)\n",
      l, w / 1024, p / 1024, a / 1024, a / w, target / 1024, (a <= target) ? "met" : "missed" }'
}

echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}'), kernel $(uname -r)"
echo "3 bursts of 16 x GET /bad/fill?mib=$FILL_MIB (4 MiB answers), then ${QUIET}s quiet"
measure before "$BEFORE_BIN" 18501
measure after "$wasmount" 18502

gnuplot <<PLOT
set terminal pngcairo size 900,420 font ",10"
set output "$results/memory.png"
set datafile separator ","
set title "wasmount RSS through 3 bursts of 16 heavy requests and the quiet after"
set xlabel "seconds"; set ylabel "RSS (MiB)"; set key top right; set grid
plot "< grep ',before,' '$csv'" using 1:3 with lines lw 2 title "before ($BEFORE_LABEL, wasmtime 48)", \
     "< grep ',after,' '$csv'" using 1:3 with lines lw 2 title "after (this tree, wasmtime 50)"
PLOT
echo "wrote $csv and $results/memory.png"

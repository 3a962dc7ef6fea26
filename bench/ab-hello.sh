#!/usr/bin/env bash
# Run with `bench/ab-hello.sh OLD_BINARY NEW_BINARY` (C=64 connections, D=10 seconds, ROUNDS=3).
# Loopback only, bounded in time: hello throughput and latency of two wasmount builds,
# alternating, in one run (wrk, one thread), so machine drift hits both alike.
BENCH_GUESTS=hello source "$(dirname "$0")/common.sh"
C=${C:-64} D=${D:-10} ROUNDS=${ROUNDS:-3}
for round in $(seq 1 "$ROUNDS"); do
  for binary in "$1" "$2"; do
    mkdir -p "$work/apps-$round"; cp "$guests/hello.wasm" "$work/apps-$round/"
    WASMOUNT_LOG=warn "$binary" serve --apps "$work/apps-$round" --listen 127.0.0.1:18090 &
    pid=$!; pids+=("$pid")
    wait_for http://127.0.0.1:18090/hello/
    wrk -t1 -c"$C" -d2s http://127.0.0.1:18090/hello/ >/dev/null
    out=$(wrk -t1 -c"$C" -d"${D}s" --latency http://127.0.0.1:18090/hello/)
    echo "round $round $binary: $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s," \
      "p50 $(echo "$out" | awk '$1=="50%" {print $2}'), p99 $(echo "$out" | awk '$1=="99%" {print $2}')"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done

#!/usr/bin/env bash
# Runs the whole test suite (`bash .ci/run`) RUNS times in a row (default 3) while two
# `yes` processes keep both cores busy, to show the suite does not depend on a fast machine.
# Prints one line per run: its exit code and duration.
set -uo pipefail
cd "$(dirname "$0")/.."
for run in $(seq 1 "${RUNS:-3}"); do
  timeout 3600 yes >/dev/null & busy1=$!
  timeout 3600 yes >/dev/null & busy2=$!
  started=$(date +%s)
  bash .ci/run > "target/test-under-load-$run.log" 2>&1
  code=$?
  kill "$busy1" "$busy2" 2>/dev/null
  echo "run $run: exit $code in $(( $(date +%s) - started )) s (log: target/test-under-load-$run.log)"
done

# Sourced by the bench scripts: builds what they measure (release), and gives them a work
# folder and background processes that are cleaned up on exit.
#   root      the repository root          guests   the built guest components' folder
#   wasmount  the release binary           work     a temp folder, removed on exit
#   pids      processes killed on exit     wait_for URL, rss_kib PID
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
BENCH_GUESTS=${BENCH_GUESTS:-hello viz}

rustup target add wasm32-wasip2 >/dev/null
cargo build --release -q -p wasmount -p wasmount-bench
guest_flags=()
for guest in $BENCH_GUESTS; do guest_flags+=(-p "$guest"); done
(cd guests && cargo build --release -q --locked --target wasm32-wasip2 "${guest_flags[@]}" --target-dir "$root/target/guests")
guests="$root/target/guests/wasm32-wasip2/release"
# WASMOUNT_BIN: measure another build (e.g. the previous commit's), side by side.
wasmount="${WASMOUNT_BIN:-$root/target/release/wasmount}"

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_for() { # URL: until it answers 2xx, at most 30 s
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "server at $1 did not come up" >&2; exit 1
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

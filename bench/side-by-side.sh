#!/usr/bin/env bash
# Run with `OLD=path/to/old/wasmount bench/side-by-side.sh` from anywhere (DURATION=5 seconds
# per load run by default). Loopback only, every load run bounded in time.
#
# In one run, alternating so that noise hits both alike, with wrk (one thread):
#   1. hello at 1, 16 and 64 connections: this build beside $OLD (another build, e.g. the
#      previous commit's: `git worktree add /tmp/old HEAD~N && cargo build --release
#      --manifest-path /tmp/old/Cargo.toml --target-dir target/old`);
#   2. the cost of forward auth with a cached allow: hello in a launch that is `public`
#      beside the same in a launch that is `platform`, asking a local check that always
#      says yes (its yes cached for the whole run), at 64 connections.
source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
TOKEN=bench-admin-token-0123456789
: "${OLD:?set OLD to the wasmount binary to compare with}"

mkdir -p "$work/apps"
cp "$guests/hello.wasm" "$work/apps/hello.wasm"
start() { # PORT BINARY [ARGS…]: serves $work/apps, waits until hello answers
  local port=$1 bin=$2; shift 2
  WASMOUNT_LOG=warn WASMOUNT_ADMIN_TOKEN=$TOKEN "$bin" serve --apps "$work/apps" \
    --listen "127.0.0.1:$port" "$@" 2>>"$work/server-$port.log" &
  pids+=($!)
  for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$port/hello/" && return 0; sleep 0.1; done
  echo "server on $port did not come up" >&2; exit 1
}
rate() { # URL CONNECTIONS -> requests/s
  wrk -t1 -c"$2" -d"${DURATION}s" "$1" | awk '/Requests\/sec/ {print int($2)}'
}

# A check that always allows (python's http.server, answering 200 to every GET).
python3 -c '
import http.server, sys
class Yes(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("X-Auth-Request-User", "bench"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", 18309), Yes).serve_forever()' & pids+=($!)

start 18301 "$OLD"
start 18302 "$wasmount" --auth-url http://127.0.0.1:18309/check --auth-allow-ttl 1h
launch() { # ACCESS -> the launch's URL
  curl -sf -X POST -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18302/_wasmount/launches \
    -d "{\"app\": \"hello\", \"access\": \"$1\", \"input\": {}}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])'
}
public=$(launch public); platform=$(launch platform)
curl -sf -o /dev/null "$platform" || { echo "the platform launch does not answer" >&2; exit 1; }

echo "CPU: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores; ${DURATION}s per run, $ROUNDS rounds"
echo "connections,old_hello_rps,new_hello_rps"
for c in 1 16 64; do
  for round in $(seq 1 "$ROUNDS"); do
    echo "$c,$(rate http://127.0.0.1:18301/hello/ "$c"),$(rate http://127.0.0.1:18302/hello/ "$c")"
  done
done
echo "connections,public_launch_rps,platform_launch_cached_allow_rps"
for round in $(seq 1 "$ROUNDS"); do
  echo "64,$(rate "$public" 64),$(rate "$platform" 64)"
done

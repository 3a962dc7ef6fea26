#!/usr/bin/env bash
# Run with `bench/cluster.sh` from anywhere (as root on Debian, or with PostgreSQL's server
# programs, HAProxy and wrk installed). Loopback only, every loop bounded.
#
# A private PostgreSQL server, three nodes sharing it, and HAProxy in front of them (health
# checks on /_wasmount/health), all on 127.0.0.1. Measures, in one run, release builds:
#   1. upload on one node -> known to / served by both others (p50/p99 over $ROUNDS uploads);
#   2. launch on one node -> first 200 on another (read-through; $ROUNDS launches);
#   3. hello throughput through the balancer vs one node alone (wrk, c=64, side by side);
#   4. a fresh node with an empty cache and $APPS distinct apps in the store: time to healthy
#      and to serving all of them;
#   5. recovery after a PostgreSQL restart: time until writes work and every node is in sync.
source "$(dirname "$0")/common.sh"
TOKEN=bench-admin-token-0123456789
ROUNDS=${ROUNDS:-50}
APPS=${APPS:-100}
DURATION=${DURATION:-10}
PG_PORT=18300 LB_PORT=18310
NODES=(127.0.0.1:18301 127.0.0.1:18302 127.0.0.1:18303)
FRESH=127.0.0.1:18304
measure="$root/target/release/cluster-latency"

need() { # COMMAND PACKAGE: installs the Debian package when the command is missing
  command -v "$1" >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "missing: $1 (Debian package $2)" >&2; exit 1; }
  echo "installing $2 (Debian package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need wrk wrk
need haproxy haproxy
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pg_bin/initdb" ] || need /usr/lib/postgresql/15/bin/initdb postgresql
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

# PostgreSQL, as the postgres user when running as root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdir="$work/pg"; mkdir -p "$pgdir"; [ "$(id -u)" = 0 ] && chown postgres "$pgdir" "$work"
echo "bench-db-password" > "$pgdir/pw"; [ "$(id -u)" = 0 ] && chown postgres "$pgdir/pw"
as_pg "$pg_bin/initdb" -D "$pgdir/data" -U postgres --auth=scram-sha-256 --pwfile="$pgdir/pw" >/dev/null
pg_ctl() { as_pg "$pg_bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" "$@" >/dev/null; }
pg_start() { pg_ctl start -w -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pgdir"; }
pg_start
trap 'pg_ctl stop -m immediate || true; cleanup' EXIT
PGPASSWORD=bench-db-password "$pg_bin/psql" -q -h 127.0.0.1 -p $PG_PORT -U postgres -d postgres \
  -c "CREATE ROLE wasmount LOGIN PASSWORD 'bench'" -c "CREATE DATABASE wasmount OWNER wasmount"
store="postgres://wasmount:bench@127.0.0.1:$PG_PORT/wasmount"

wait_quiet() { # until the nodes use under 5% of a core for a second (at most 5 minutes)
  local before after
  for _ in $(seq 1 300); do
    before=0; for pid in "${pids[@]}"; do before=$((before + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
    sleep 1
    after=0; for pid in "${pids[@]}"; do after=$((after + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
    [ $((after - before)) -lt 5 ] && return 0
  done
}
start_node() { # ADDR CACHE_DIR
  WASMOUNT_LOG=warn WASMOUNT_ADMIN_TOKEN=$TOKEN "$wasmount" serve --store "$store" \
    --listen "$1" --cache-dir "$2" --apps "$work/no-apps" 2>>"$work/nodes.log" &
  pids+=($!)
}
for i in 0 1 2; do start_node "${NODES[$i]}" "$work/cache-$i"; done
for node in "${NODES[@]}"; do wait_for "http://$node/_wasmount/health"; done

cat > "$work/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend wasmount
  bind 127.0.0.1:$LB_PORT
  default_backend nodes
backend nodes
  balance roundrobin
  option httpchk GET /_wasmount/health
  http-check expect status 200
  default-server check inter 1s fall 2 rise 1
$(for i in 0 1 2; do echo "  server node$i ${NODES[$i]}"; done)
EOF
haproxy -q -f "$work/haproxy.cfg" & pids+=($!)

echo "== 1. upload -> every other node ($ROUNDS uploads of hello, each distinct, ${PAUSE_MS:-1000} ms apart)"
"$measure" propagation "$TOKEN" "$guests/hello.wasm" "$ROUNDS" "${NODES[0]}" "${NODES[1]}" "${NODES[2]}"

echo
echo "== 2. launch -> first request on another node ($ROUNDS launches)"
curl -sf -o /dev/null -X PUT -H "authorization: Bearer $TOKEN" --data-binary @"$guests/hello.wasm" "http://${NODES[0]}/_wasmount/apps/hello"
wait_for "http://${NODES[1]}/hello/"   # compiled there: what follows measures the read-through
"$measure" launch "$TOKEN" hello "$ROUNDS" "${NODES[0]}" "${NODES[1]}"

echo
echo "== 3. hello, c=64, ${DURATION}s each: one node alone, then three behind HAProxy"
wait_for "http://127.0.0.1:$LB_PORT/hello/"
for target in "${NODES[0]}" "127.0.0.1:$LB_PORT"; do
  wrk -t1 -c64 -d1s "http://$target/hello/" >/dev/null 2>&1
  out=$(wrk -t2 -c64 -d"${DURATION}s" --latency "http://$target/hello/")
  if echo "$out" | grep -q "Non-2xx"; then echo "$target returned errors:" >&2; echo "$out" >&2; exit 1; fi
  printf '%-18s %8s req/s   p50 %s   p99 %s\n' "$target" \
    "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')" \
    "$(echo "$out" | awk '$1 == "50%" {print $2}')" "$(echo "$out" | awk '$1 == "99%" {print $2}')"
done

echo
echo "== 4. a fresh node, empty cache, $APPS distinct apps in the store"
"$measure" fill "$TOKEN" "$guests/hello.wasm" "$APPS" "${NODES[0]}"
wait_quiet   # the nodes' background optimizing compiles of those apps
started=$(date +%s%N)
start_node "$FRESH" "$work/cache-fresh"
for _ in $(seq 1 1200); do curl -s -o /dev/null "http://$FRESH/" && break; sleep 0.05; done
echo "listening (first sync done) after $(( ($(date +%s%N) - started) / 1000000 )) ms"
"$measure" serving "$APPS" "$FRESH"
echo "(from the node's start: add the line above)"

echo
echo "== 5. PostgreSQL restart"
pg_ctl stop -m fast
sleep 1
started=$(date +%s%N)
pg_start
echo "PostgreSQL accepting connections after $(( ($(date +%s%N) - started) / 1000000 )) ms"
"$measure" recovered "$TOKEN" "$guests/hello.wasm" "${NODES[@]}" "$FRESH"

echo
echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}'), $(nproc) cores, kernel $(uname -r)"
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'), $(haproxy -v | head -1)"

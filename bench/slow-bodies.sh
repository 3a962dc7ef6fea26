#!/usr/bin/env bash
# Run with `bench/slow-bodies.sh` from anywhere (DURATION=10 seconds by default).
# Loopback only, bounded in count and time.
#
# 1000 connections each announce a 100,000-byte POST body to `echo` and send a byte every
# 2 s; meanwhile wrk asks `hello` (4 connections) for DURATION seconds. Prints hello's status
# counts and latency percentiles: with the body read before an instance is taken, the slow
# clients hold no instance and hello keeps answering.
BENCH_GUESTS="hello echo" source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-10}
SLOW=${SLOW:-1000}
ulimit -n 8192
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
mkdir -p "$work/apps"
cp "$guests/hello.wasm" "$guests/echo.wasm" "$work/apps/"
WASMOUNT_LOG=error "$wasmount" serve --apps "$work/apps" --listen 127.0.0.1:18150 &
pids+=($!)
wait_for http://127.0.0.1:18150/hello/
wait_for http://127.0.0.1:18150/echo/
python3 - "$SLOW" "$((DURATION + 4))" <<'PY' &
import asyncio, sys
count, seconds = int(sys.argv[1]), float(sys.argv[2])
async def slow():
    reader, writer = await asyncio.open_connection("127.0.0.1", 18150)
    writer.write(b"POST /echo/ HTTP/1.1\r\nhost: bench\r\ncontent-length: 100000\r\n\r\nx")
    await writer.drain()
    loop = asyncio.get_running_loop(); end = loop.time() + seconds
    while loop.time() < end:
        await asyncio.sleep(2)
        writer.write(b"x")
        try:
            await writer.drain()
        except ConnectionError:
            return
    writer.close()
async def main():
    await asyncio.gather(*(slow() for _ in range(count)), return_exceptions=True)
asyncio.run(main())
PY
pids+=($!)
sleep 2
echo "hello beside $SLOW slow request bodies (wrk, 4 connections, ${DURATION}s):"
wrk -t1 -c4 -d"${DURATION}s" --latency http://127.0.0.1:18150/hello/ | grep -E "Latency|50%|90%|99%|requests in|Non-2xx"

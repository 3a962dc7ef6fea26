-- wrk script for bench/load.sh: cycles through the hostile guest's misbehaviours and counts
-- the statuses the server answers with.
local paths = {
  "/bad/loop", "/bad/alloc", "/bad/recurse", "/bad/headers",
  "/bad/big-header", "/bad/no-response", "/bad/loop-after-headers",
}
local threads = {}
local next_path = 0
counts = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end

function response(status)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local line = "hostile statuses:"
  for status, n in pairs(total) do
    line = line .. string.format(" %d x%d", status, n)
  end
  line = line .. string.format("; cut connections (read errors) %d, timeouts %d",
    summary.errors.read, summary.errors.timeout)
  print(line)
end

-- wrk script for P2: replay prepared requests, stop after a fixed number of answers.
--
-- Arguments (after "--"): the requests file and how many answers to wait for.
-- The file holds "H<TAB>name<TAB>value" header lines, then one request per line:
-- "R<TAB>METHOD<TAB>path<TAB>body". Requests are sent in order; each is used once, so a
-- request that must be unique (a new upload, completing one upload) is never repeated.

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *ts);
  int getpid(void);
  int kill(int pid, int sig);
]]
local MONOTONIC, SIGINT = 1, 2

local function now_us()
  local ts = ffi.new("bench_timespec")
  ffi.C.clock_gettime(MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local requests = {}
local sent = 0
local answered = 0
local wanted = 0
statuses = {}
first_us = 0
last_us = 0

function init(args)
  local headers = {}
  local lines = {}
  for line in io.lines(args[1]) do
    local kind, a, b, c = line:match("^(%a)\t([^\t]*)\t([^\t]*)\t?(.*)$")
    if kind == "H" then
      headers[a] = b
    elseif kind == "R" then
      lines[#lines + 1] = {a, b, c}
    end
  end
  for i, r in ipairs(lines) do
    local body = r[3] ~= "" and r[3] or nil
    requests[i] = wrk.format(r[1], r[2], headers, body)
  end
  wanted = tonumber(args[2])
end

function request()
  if sent == 0 then
    first_us = now_us()
  end
  sent = sent + 1
  if sent > #requests then
    -- Never reached when enough requests were prepared; repeating would change what is measured.
    sent = #requests
  end
  return requests[sent]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  answered = answered + 1
  if answered == wanted then
    last_us = now_us()
    wrk.thread:stop()
    -- wrk's main thread sleeps for the whole -d duration; SIGINT (which it handles by
    -- stopping) ends the run now. kill() on the process reaches the main thread first.
    ffi.C.kill(ffi.C.getpid(), SIGINT)
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local codes = {}
  local elapsed = 0
  for _, thread in ipairs(threads) do
    elapsed = math.max(elapsed, thread:get("last_us") - thread:get("first_us"))
    for code, count in pairs(thread:get("statuses")) do
      codes[#codes + 1] = string.format('"%s": %d', code, count)
    end
  end
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "elapsed_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, elapsed, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean,
    summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.status + summary.errors.timeout,
    table.concat(codes, ", ")))
end

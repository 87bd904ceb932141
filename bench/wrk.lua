-- Shared by every workload: `bench/run.py` prepends a `make_request` function
-- (and its data) to this file. Counts every non-2xx response as an error
-- (wrk's own counter only counts >= 400) and prints one JSON line at the end.
--
-- A workload that mixes kinds of request sets `by_kind = true` and starts
-- each request's X-Request-ID with its kind and a dash ("compose-..."): the
-- services echo that header, so each response, and each non-2xx one, is
-- counted under its kind. (wrk keeps one latency histogram for all.)
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  non2xx = 0
  responses, failed = {}, {}
end

function request()
  return make_request()
end

function response(status, headers, body)
  local bad = status < 200 or status > 299
  if bad then
    non2xx = non2xx + 1
  end
  if by_kind then
    local kind = string.match(headers["X-Request-ID"] or "", "^(%a+)-") or "untagged"
    responses[kind] = (responses[kind] or 0) + 1
    if bad then
      failed[kind] = (failed[kind] or 0) + 1
    end
  end
end

function done(summary, latency, requests)
  local bad = 0
  local kinds = {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    local failed = thread:get("failed")
    for kind, n in pairs(thread:get("responses")) do
      local total = kinds[kind] or {0, 0}
      kinds[kind] = {total[1] + n, total[2] + (failed[kind] or 0)}
    end
  end
  local by = {}
  for kind, total in pairs(kinds) do
    table.insert(by, string.format('"%s":{"responses":%d,"non2xx":%d}', kind, total[1], total[2]))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"kinds":{%s}}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(by, ",")))
end

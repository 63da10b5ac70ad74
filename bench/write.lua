-- POST /v1/instances as a random tenant, unique names per thread.
local tokens, clusters = {}, {}
local counter, prefix = 0, ""
function init(args)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    local t, c = line:match("^(%S+)%s+(%S+)")
    tokens[#tokens + 1] = t
    clusters[#clusters + 1] = c
  end
  prefix = string.format("w%x", math.floor(os.clock() * 1e9) % 0xfffffff + math.random(1, 1e6))
  math.randomseed(os.time() + #prefix * 7919 + math.random(1, 1e6))
end
function request()
  counter = counter + 1
  local i = math.random(#tokens)
  local body = string.format('{"name":"%s-%d","cluster_id":"%s","cpu_cores":1,"memory_gb":1}', prefix, counter, clusters[i])
  return wrk.format("POST", "/v1/instances", { ["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json" }, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_s":%.3f,"rps":%.1f,"non2xx":%d,"socket_errors":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

-- GET /v1/instances?limit=20 as a random tenant (BENCH_TOKENS: "token cluster" per line).
local tokens = {}
function init(args)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    tokens[#tokens + 1] = line:match("^(%S+)")
  end
  math.randomseed(os.time() + tonumber(tostring(tokens):match("0x(%x+)") or "0", 16) % 100000)
end
function request()
  return wrk.format("GET", "/v1/instances?limit=20", { ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] })
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_s":%.3f,"rps":%.1f,"non2xx":%d,"socket_errors":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

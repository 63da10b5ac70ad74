-- Walks the token list in order (each thread a stride), so every tenant is
-- requested at least once in a long enough run.
local tokens = {}
local next_index, stride = 1, 1
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end
function init(args)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    tokens[#tokens + 1] = line:match("^(%S+)")
  end
  next_index = id
  stride = tonumber(os.getenv("BENCH_THREADS") or "2")
end
function request()
  local t = tokens[((next_index - 1) % #tokens) + 1]
  next_index = next_index + stride
  return wrk.format("GET", "/v1/tenant", { ["Authorization"] = "Bearer " .. t })
end

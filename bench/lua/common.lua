-- Shared by the bench scripts: per-thread ids, a nanosecond clock, counters, a parseable summary.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function now_ns()
  local p = io.popen("date +%s%N")
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

COUNTERS = COUNTERS or {}
counts = {}
for _, name in ipairs(COUNTERS) do counts[name] = 0 end
function bump(name) counts[name] = (counts[name] or 0) + 1 end

-- Lines from the code file assigned to this thread (round-robin split over threads).
function load_lines(path, id, nthreads)
  local lines, i = {}, 0
  for line in io.lines(path) do
    if line ~= "" then
      if i % nthreads == id then lines[#lines + 1] = line end
      i = i + 1
    end
  end
  return lines
end

function basic_header()
  return "Basic " .. os.getenv("BENCH_BASIC")
end

-- One prebuilt pairing_code token request per code of this thread.
function token_requests(id)
  local codes = load_lines(os.getenv("BENCH_CODES"), id, tonumber(os.getenv("BENCH_THREADS")))
  local headers = {["Authorization"] = basic_header(), ["Content-Type"] = "application/x-www-form-urlencoded"}
  local built = {}
  for i, code in ipairs(codes) do
    built[i] = wrk.format("POST", "/oauth/access_token", headers, "grant_type=pairing_code&pairing_code=" .. code)
  end
  return built
end

function done(summary, latency, requests)
  local total = {}
  local t_start, t_end = nil, nil
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
    local s, e = thread:get("t_start"), thread:get("t_end")
    if s and (t_start == nil or s < t_start) then t_start = s end
    if e and (t_end == nil or e > t_end) then t_end = e end
  end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = string.format("%s=%d", k, v) end
  parts[#parts + 1] = string.format("duration_us=%d", summary.duration)
  parts[#parts + 1] = string.format("requests=%d", summary.requests)
  parts[#parts + 1] = string.format("errors=%d", summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout)
  parts[#parts + 1] = string.format("status_errors=%d", summary.errors.status)
  parts[#parts + 1] = string.format("p50_us=%d", latency:percentile(50))
  parts[#parts + 1] = string.format("p99_us=%d", latency:percentile(99))
  if t_start and t_end then parts[#parts + 1] = string.format("elapsed_ns=%d", t_end - t_start) end
  io.write("BENCH " .. table.concat(parts, " ") .. "\n")
end

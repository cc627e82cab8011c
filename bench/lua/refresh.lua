-- Chains refresh-token rotations: each response's new refresh_token is queued and used next.
COUNTERS = {"ok", "other", "starved"}
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function init(args)
  queue = load_lines(os.getenv("BENCH_CODES"), id, tonumber(os.getenv("BENCH_THREADS")))
  head, tail = 1, #queue + 1  -- explicit ends: `#` is unreliable once the front is nil
  headers = {["Authorization"] = basic_header(), ["Content-Type"] = "application/x-www-form-urlencoded"}
  filler = wrk.format("GET", "/healthz")
end

function request()
  if head >= tail then
    bump("starved")
    return filler
  end
  local token = queue[head]
  queue[head] = nil
  head = head + 1
  return wrk.format("POST", "/oauth/access_token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  if body:find('"status":"ok"', 1, true) then return end
  local token = status == 200 and body:match('"refresh_token":"([%w_%-]+)"')
  if token then
    bump("ok")
    queue[tail] = token
    tail = tail + 1
  else
    bump("other")
  end
end

-- Redeems each approved pairing code in $BENCH_CODES once; counts only 200s.
-- When this thread's codes are all answered it notes the time and stops. (A code whose
-- connection failed is never answered: after 500 filler answers the thread stops anyway,
-- timed at its last code answer.)
COUNTERS = {"ok", "other"}
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function init(args)
  reqs = token_requests(id)
  filler = wrk.format("GET", "/healthz")
  nxt, answered, fillers = 0, 0, 0
  t_start = now_ns()
end

function request()
  nxt = nxt + 1
  if nxt <= #reqs then return reqs[nxt] end
  return filler  -- codes ran out; answered by /healthz while the last redemptions finish
end

function response(status, headers, body)
  if body:find('"status":"ok"', 1, true) then
    fillers = fillers + 1
    if fillers == 500 then wrk.thread:stop() end
    return
  end
  answered = answered + 1
  if status == 200 then bump("ok") else bump("other") end
  if nxt >= #reqs then t_end = now_ns() end  -- the tail: at most one answer per connection
  if answered >= #reqs then wrk.thread:stop() end
end

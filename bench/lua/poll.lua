-- Token requests on pending pairing codes, rotating through $BENCH_CODES;
-- counts authorization_pending and slow_down answers separately.
COUNTERS = {"pending", "slow_down", "other"}
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function init(args)
  reqs = token_requests(id)
  nxt = 0
end

function request()
  nxt = nxt % #reqs + 1
  return reqs[nxt]
end

function response(status, headers, body)
  if body:find("authorization_pending", 1, true) then bump("pending")
  elseif body:find("slow_down", 1, true) then bump("slow_down")
  else bump("other") end
end

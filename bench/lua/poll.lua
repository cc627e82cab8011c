-- Token requests on pending pairing codes, rotating through $BENCH_CODES;
-- counts authorization_pending and slow_down answers separately.
COUNTERS = {"pending", "slow_down", "other"}
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function init(args)
  local codes = load_lines(os.getenv("BENCH_CODES"), id, tonumber(os.getenv("BENCH_THREADS")))
  local headers = {["Authorization"] = basic_header(), ["Content-Type"] = "application/x-www-form-urlencoded"}
  reqs = {}
  for i, code in ipairs(codes) do
    reqs[i] = wrk.format("POST", "/oauth/access_token", headers, "grant_type=pairing_code&pairing_code=" .. code)
  end
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

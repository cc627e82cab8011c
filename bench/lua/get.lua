-- GET the URL (headers from -H); count 200s and everything else.
COUNTERS = {"ok", "other"}
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function response(status, headers, body)
  if status == 200 then bump("ok") else bump("other") end
end

-- uvicorn's floor: a poll-shaped POST (form body, Basic credentials) to bench/hello.py --bare.
COUNTERS = {"ok", "other"}
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

wrk.method = "POST"
wrk.body = "grant_type=pairing_code&pairing_code=0123456789ab"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. string.rep("A", 88)

function response(status, headers, body)
  if status == 200 then bump("ok") else bump("other") end
end

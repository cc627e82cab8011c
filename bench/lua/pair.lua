-- POST /oauth/pair with HTTP Basic; keeps every pairing code it gets in $BENCH_OUT.<thread id>.
COUNTERS = {"ok", "other"}
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function init(args)
  out = io.open(os.getenv("BENCH_OUT") .. "." .. id, "w")
  out:setvbuf("full")
  req = wrk.format("POST", "/oauth/pair", {
    ["Authorization"] = basic_header(),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, "mode=device")
end

function request() return req end

local kept = 0
function response(status, headers, body)
  if status == 200 then
    bump("ok")
    local code = body:match('"pairing_code":"(%w+)"')
    if code then
      out:write(code, "\n")
      kept = kept + 1
      if kept % 200 == 0 then out:flush() end
    end
  else
    bump("other")
  end
end

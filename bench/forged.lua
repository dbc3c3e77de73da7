-- wrk script for the forged-token flood (run.sh's agentward-forged): every request carries the
-- same forged token (bench/issuer.ts's "forged": valid shape and claims, the issuer's kid, signed
-- by another key), so every answer must be a refusal, and a refusal only counts when it is the
-- right one: 401 with agentward's code ERR_TOKEN_SIGNATURE in the problem body. Every response
-- is checked (a plain substring search in a ~300-byte body; cheap next to the request itself).
--
--   wrk -t1 ... -s bench/forged.lua -H "Authorization: Bearer $FORGED" URL
--
-- Prints bench/report.lua's RESULT line (its status_err counts these 401s, by design) and
-- FORGED refused=N other=M first_other=STATUS: refused the responses that were 401
-- ERR_TOKEN_SIGNATURE, other everything else (must be 0), first_other the status of the first
-- other answer (0 when none).
dofile("bench/report.lua")
local report = done
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- The expected refusal (default 401 ERR_TOKEN_SIGNATURE) may be given after `--`: STATUS CODE.
function init(args)
  expected_status = tonumber(args[1] or "401")
  expected_code = '"code":"' .. (args[2] or "ERR_TOKEN_SIGNATURE") .. '"'
  refused = 0
  other = 0
  first_other = 0
end

function response(status, headers, body)
  if status == expected_status and body and string.find(body, expected_code, 1, true) then
    refused = refused + 1
  else
    other = other + 1
    if first_other == 0 then first_other = status end
  end
end

done = function(summary, latency, requests)
  report(summary, latency, requests)
  local r, o, f = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("refused")
    o = o + t:get("other")
    if f == 0 then f = t:get("first_other") end
  end
  io.write(string.format("FORGED refused=%d other=%d first_other=%d\n", r, o, f))
end

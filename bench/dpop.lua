-- wrk script for DPoP (RFC 9449): every request carries the next proof of a file written by
-- bench/dpop-proofs.ts (one proof per line), since a proof is single-use and wrk's headers are
-- otherwise static. The Authorization: DPoP header comes from the command line (-H).
--
--   wrk -t1 ... -s bench/dpop.lua -H "Authorization: DPoP $TOKEN" URL -- PROOF_FILE
--
-- Use one thread (-t1): each thread would read the file from its start, and reuse is a replay.
-- When the file runs out the request goes without a proof (agentward answers 401, which wrk counts
-- as an error, so the run fails rather than measuring refusals); the PROOFS line says how many
-- were used and how many requests found none. The RESULT line is bench/report.lua's.
dofile("bench/report.lua")
local report = done
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  proofs = assert(io.open(assert(args[1], "usage: -- PROOF_FILE"), "r"))
  used = 0
  missing = 0
end

function request()
  local proof = proofs:read("*l")
  if proof then
    used = used + 1
  else
    missing = missing + 1
  end
  wrk.headers["DPoP"] = proof
  return wrk.format()
end

function done(summary, latency, requests)
  report(summary, latency, requests)
  local u, m = 0, 0
  for _, thread in ipairs(threads) do
    u = u + thread:get("used")
    m = m + thread:get("missing")
  end
  io.write(string.format("PROOFS used=%d missing=%d threads=%d\n", u, m, #threads))
end

-- wrk script for single-use proofs: every request carries the next line of a file (one proof per
-- line) in a header, since a DPoP proof (RFC 9449) or a WPT (wpt-02) is single-use and wrk's
-- headers are otherwise static. Written by bench/dpop-proofs.ts or bench/wimse.ts just before the
-- run; the other credentials come from the command line (-H).
--
--   wrk -t1 ... -s bench/proofs.lua -H "Authorization: DPoP $TOKEN" URL -- PROOF_FILE DPoP
--   wrk -t1 ... -s bench/proofs.lua -H "Workload-Identity-Token: $WIT" URL -- PROOF_FILE Authorization "WPT "
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
  proofs = assert(io.open(assert(args[1], "usage: -- PROOF_FILE HEADER [PREFIX]"), "r"))
  header = assert(args[2], "usage: -- PROOF_FILE HEADER [PREFIX]")
  prefix = args[3] or ""
  used = 0
  missing = 0
end

function request()
  local proof = proofs:read("*l")
  if proof then
    used = used + 1
    wrk.headers[header] = prefix .. proof
  else
    missing = missing + 1
    wrk.headers[header] = nil
  end
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

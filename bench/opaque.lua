-- wrk script: a different opaque access token on every request ("Bearer PREFIX1", "PREFIX2", ...),
-- so no answer can come from agentward's introspection cache or be shared by its single flight:
-- each request costs one introspection call. bench/introspection.ts answers every token with the
-- prefix it wrote as active. The RESULT line is bench/report.lua's.
--
--   wrk -t1 ... -s bench/opaque.lua URL -- PREFIX
dofile("bench/report.lua")

function init(args)
  prefix = assert(args[1], "usage: -- PREFIX")
  n = 0
end

function request()
  n = n + 1
  wrk.headers["Authorization"] = "Bearer " .. prefix .. n
  return wrk.format()
end

-- wrk script for the MCP contenders: every request is the same JSON-RPC POST (the body is the
-- first script argument), with the Accept header MCP Streamable HTTP clients send, next to the
-- headers given with -H. The RESULT line is bench/report.lua's.
--
--   wrk -t1 ... -s bench/mcp.lua -H "Authorization: Bearer $TOKEN" URL -- '{"jsonrpc":"2.0",...}'
dofile("bench/report.lua")

function init(args)
  body = assert(args[1], "usage: -- JSON_BODY")
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
end

function request()
  return wrk.format("POST", nil, nil, body)
end

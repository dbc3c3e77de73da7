# Worked policy: a read-only research agent (docs/policy-guide.md, "Worked policies").
#
# The agent `research-bot` may read: plain GET/HEAD/OPTIONS requests, and over MCP only
# tools/list and tools/call of the read tools listed in data.research.readTools (plus the MCP
# lifecycle calls every session needs). Everything else is denied with a reason.
#
# MCP list filtering needs no rule of its own: when agentward asks whether one tool of a
# tools/list result may be shown, input.mcp is the tools/call of that tool with listFilter true,
# so the tools/call rule below answers it. The agent sees exactly the tools it may call.
package agentward

import data.agentward.lib.request
import data.agentward.lib.scopes

# Used when data.research lacks a key.
default_settings := {
	"clients": ["research-bot"],
	"scopes": ["tools.read"],
	"readTools": [],
}

cfg := object.union(default_settings, s) if {
	s := data.research
	is_object(s)
} else := default_settings

# MCP lifecycle (MCP specification, "Lifecycle" and "Utilities: Ping"): no data, but without them no
# client can open a session.
mcp_lifecycle := {"initialize", "notifications/initialized", "ping"}

default decision := {"allow": false, "reason": "no rule allowed the request"}

# One else chain: exactly one value for every input, the first matching branch wins. Every
# `not` below negates a named rule: OPA leaves `not f(x)` undefined (not true) when `x` is
# undefined, which would skip a deny.
decision := deny("no access token") if {
	not has_token
} else := deny(concat("", ["client ", label(input.subject.clientId), " is not the research agent"])) if {
	not research_client
} else := {
	"allow": false,
	"reason": concat("", ["the research agent needs scope(s) ", concat(" ", sort(scopes.missing(cfg.scopes)))]),
	"requiredScopes": sort({s | some s in cfg.scopes}),
} if {
	not scopes.has_all(cfg.scopes)
} else := deny(concat("", ["A2A ", label(input.a2a.operation), " is not allowed for the research agent"])) if {
	is_object(input.a2a)
} else := mcp_decision if {
	is_object(input.mcp)
} else := {"allow": true} if {
	request.is_read
} else := deny(concat("", ["the research agent is read-only: ", input.request.method, " ", input.request.path, " refused"]))

# One MCP JSON-RPC call (a batch is decided element by element).
mcp_decision := {"allow": true} if {
	input.mcp.method in mcp_lifecycle
} else := {"allow": true} if {
	input.mcp.method == "tools/list"
} else := {"allow": true} if {
	# Also answers listFilter evaluations: a read tool is listed, any other tool is hidden.
	input.mcp.method == "tools/call"
	input.mcp.name in cfg.readTools
} else := deny(concat("", ["tool ", label(input.mcp.name), " is not a read tool"])) if {
	input.mcp.method == "tools/call"
} else := deny(concat("", ["MCP method ", label(input.mcp.method), " is not allowed for the research agent"]))

has_token if is_object(input.subject)

research_client if input.subject.clientId in cfg.clients

deny(reason) := {"allow": false, "reason": reason}

label(x) := x if {
	is_string(x)
} else := "(none)"

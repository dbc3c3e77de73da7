# Worked policy: an agent acting for a user, with per-tool scopes (docs/policy-guide.md,
# "Worked policies").
#
# The token is the user's (`sub`), issued to the agent (`client_id` in data.tools.agents). Each
# MCP tool needs the scopes data.tools.toolScopes lists for it; a missing scope denies with
# requiredScopes, so the agent can ask the user for exactly those. Destructive tools also need a
# recent strong login: acr `mfa` at most 300 seconds old, else a step-up denial (RFC 9470).
# When the token carries RFC 9396 authorization_details of type data.tools.detailsType, they
# narrow it further: a tool must be listed in one element's `actions`, and when that element
# names a repository (`identifier`), the call's `repo` argument must be that repository.
package agentward

import data.agentward.lib.agent
import data.agentward.lib.delegation
import data.agentward.lib.rar
import data.agentward.lib.scopes
import data.agentward.lib.stepup

default_settings := {
	"agents": [],
	"maxDelegationDepth": 1,
	"toolScopes": {},
	"destructiveTools": [],
	"stepUp": {"acrValues": "mfa", "maxAge": 300},
	"detailsType": "tool_call",
}

cfg := object.union(default_settings, s) if {
	s := data.tools
	is_object(s)
} else := default_settings

mcp_lifecycle := {"initialize", "notifications/initialized", "ping"}

default decision := {"allow": false, "reason": "no rule allowed the request"}

# One else chain: exactly one value for every input, the first matching branch wins. Every
# `not` below negates a named rule: OPA leaves `not f(x)` undefined (not true) when `x` is
# undefined, which would skip a deny.
decision := deny("no access token") if {
	not has_token
} else := deny("the token acts for no user (no sub)") if {
	not has_user
} else := deny(concat("", ["client ", label(input.subject.clientId), " is not an agent allowed to act for users"])) if {
	not client_allowed
} else := deny("the proven workload is not the agent the token was issued to") if {
	# When the agent also proved a workload identity, it must be the token's client or current
	# actor (spec E.1 ACT-N05).
	input.agent != null
	not agent.acts_for_token
} else := deny(concat("", ["delegation chain of ", format_int(delegation.depth, 10), " actors is too long"])) if {
	not delegation.within_depth(cfg.maxDelegationDepth)
} else := deny("only MCP calls are served here") if {
	not is_mcp
} else := {"allow": true} if {
	input.mcp.method in mcp_lifecycle
} else := {"allow": true} if {
	# Each tool of the result is then asked about as a tools/call with listFilter: true.
	input.mcp.method == "tools/list"
} else := deny(concat("", ["MCP method ", label(input.mcp.method), " is not allowed"])) if {
	not is_tool_call
} else := deny(concat("", ["unknown tool ", label(tool)])) if {
	not known_tool
} else := {
	"allow": false,
	"reason": concat("", ["tool ", tool, " needs scope(s) ", concat(" ", sort(scopes.missing(tool_scopes)))]),
	"requiredScopes": sort({s | some s in tool_scopes}),
} if {
	not has_tool_scopes
} else := deny(concat("", ["the token's ", cfg.detailsType, " authorization_details do not allow ", tool, " here"])) if {
	not details_ok
} else := {
	"allow": false,
	"reason": concat("", ["tool ", tool, " needs a recent multi-factor login"]),
	"stepUp": cfg.stepUp,
} if {
	not step_up_ok
} else := {"allow": true} if {
	# Restated positively, so an input that slipped past every deny above still cannot allow.
	known_tool
	has_tool_scopes
	details_ok
	step_up_ok
}

has_token if is_object(input.subject)

has_user if is_string(input.subject.sub)

client_allowed if input.subject.clientId in cfg.agents

is_mcp if is_object(input.mcp)

is_tool_call if input.mcp.method == "tools/call"

tool := input.mcp.name

tool_scopes := cfg.toolScopes[tool]

known_tool if is_array(tool_scopes)

has_tool_scopes if scopes.has_all(tool_scopes)

# RFC 9396: details of the configured type present in the token restrict it, whatever its scope
# (RAR-N07). A token without such details is judged by its scopes alone.
details_ok if count(rar.details_of(cfg.detailsType)) == 0

details_ok if details_allow

# Only destructive tools need a recent strong login. A listFilter evaluation only decides whether
# the tool is shown: a destructive tool is shown to a user who could call it after stepping up,
# and the call itself asks for the step-up.
step_up_ok if not tool in cfg.destructiveTools

step_up_ok if input.mcp.listFilter == true

step_up_ok if recently_authenticated

# One element of the configured type allows this tool here (and this repository, if it names one).
details_allow if {
	some d in rar.details_here(cfg.detailsType)
	rar.lists(d, "actions", tool)
	repository_allowed(d)
}

repository_allowed(d) if object.get(d, "identifier", null) == null

repository_allowed(d) if rar.has_identifier(d, input.mcp.arguments.repo)

# A listFilter evaluation has no arguments: the tool is shown, and the call is checked.
repository_allowed(_) if input.mcp.listFilter == true

recently_authenticated if {
	stepup.acr_in(split(cfg.stepUp.acrValues, " "))
	stepup.authenticated_within(cfg.stepUp.maxAge)
}

deny(reason) := {"allow": false, "reason": reason}

label(x) := x if {
	is_string(x)
} else := "(none)"

# Worked policy: agent-to-agent calls over A2A (docs/policy-guide.md, "Worked policies").
#
# This server is an A2A agent. Other agents may call it when all of these hold, checked in this
# order (the first failure is the reason):
#   1. the call proves a workload identity (input.agent) from an allowed trust domain;
#   2. the access token was issued to that agent: its client_id or current actor names it
#      (agent.acts_for_token, spec E.1 ACT-N05), so a token taken from another agent is useless;
#   3. neither the caller nor any actor of the delegation chain is a denied agent, and the chain
#      is at most maxDelegationDepth actors long (RFC 8693 §4.1: the chain may only deny);
#   4. the A2A operation is known; operations that change state need a proof of possession
#      (not a bearer JWT-SVID); push-notification configs, which make this server call a URL
#      the caller chooses, are only for agents of our own trust domain;
#   5. the token has the scopes data.a2a.operationScopes lists for the operation.
# input.a2a.operation is the A2A 1.0 name whichever protocol version the caller spoke
# (`message/send` arrives as SendMessage), so one name per operation is enough.
package agentward

import data.agentward.lib.agent
import data.agentward.lib.delegation
import data.agentward.lib.scopes

default_settings := {
	"trustDomains": [],
	"internalTrustDomains": [],
	"maxDelegationDepth": 1,
	"deniedActors": [],
	"operationScopes": {},
}

cfg := object.union(default_settings, s) if {
	s := data.a2a
	is_object(s)
} else := default_settings

# A2A operations that only read. Every other operation changes state.
read_operations := {"GetTask", "ListTasks", "SubscribeToTask", "GetTaskPushNotificationConfig", "ListTaskPushNotificationConfigs", "GetExtendedAgentCard"}

push_config_operations := {"CreateTaskPushNotificationConfig", "GetTaskPushNotificationConfig", "ListTaskPushNotificationConfigs", "DeleteTaskPushNotificationConfig"}

# Proofs that bind the request to the agent's key; a JWT-SVID alone is a bearer credential.
possession_proofs := {"wit+wpt", "wit+http_signature", "x509_svid"}

default decision := {"allow": false, "reason": "no rule allowed the request"}

# One else chain; every `not` negates a named rule (OPA leaves `not f(x)` undefined when `x` is).
decision := {"allow": true} if {
	# The public Agent Card (A2A 1.0 well-known path) describes the agent; any caller that got
	# this far (authenticated, as configured) may read it.
	input.request.method == "GET"
	input.request.path == "/.well-known/agent-card.json"
} else := deny("only A2A calls are served here") if {
	not is_a2a
} else := deny("A2A calls need a proven agent identity") if {
	not has_agent
} else := deny(concat("", ["agent ", agent.id, " is not from an allowed trust domain"])) if {
	not agent.in_trust_domain(cfg.trustDomains)
} else := deny(concat("", ["the access token was not issued to agent ", agent.id])) if {
	not agent.acts_for_token
} else := deny(concat("", ["agent ", agent.id, " is denied"])) if {
	agent.is_one_of(cfg.deniedActors)
} else := deny(concat("", ["delegation chain includes denied actor ", denied_in_chain[0]])) if {
	count(denied_in_chain) > 0
} else := deny(concat("", [
	"delegation chain depth ", format_int(delegation.depth, 10),
	" exceeds the maximum of ", format_int(cfg.maxDelegationDepth, 10),
])) if {
	not delegation.within_depth(cfg.maxDelegationDepth)
} else := deny(concat("", ["unknown A2A operation ", label(operation)])) if {
	not known_operation
} else := deny(concat("", [operation, " needs a proof of possession, not a bearer JWT-SVID"])) if {
	not operation in read_operations
	not agent.proven_by(possession_proofs)
} else := deny(concat("", [operation, " is only for agents of our own trust domain"])) if {
	operation in push_config_operations
	not agent.in_trust_domain(cfg.internalTrustDomains)
} else := {
	"allow": false,
	"reason": concat("", [operation, " needs scope(s) ", concat(" ", sort(scopes.missing(operation_scopes)))]),
	"requiredScopes": sort({s | some s in operation_scopes}),
} if {
	not scopes.has_all(operation_scopes)
} else := {"allow": true, "headers": {"x-a2a-caller": agent.id}} if {
	# Restated positively: only a known operation with its scopes is ever allowed.
	known_operation
	scopes.has_all(operation_scopes)
	agent.acts_for_token
}

is_a2a if is_object(input.a2a)

has_agent if is_string(agent.id)

operation := input.a2a.operation

operation_scopes := cfg.operationScopes[operation]

known_operation if is_array(operation_scopes)

# Denied actors that take part anywhere in the chain, in deniedActors order. Looking past the
# current actor is allowed here because it can only deny (RFC 8693 §4.1).
denied_in_chain := [sub |
	some sub in cfg.deniedActors
	delegation.actor_appears(sub)
]

deny(reason) := {"allow": false, "reason": reason}

label(x) := x if {
	is_string(x)
} else := "(none)"

# agentward default policy. Entrypoint: agentward/decision (docs/policy-guide.md "The decision").
#
# Allows a request when all of these hold, and otherwise denies with the reason of the first
# failing check, in this fixed order:
#   1. data.agentward.settings is valid (unknown keys and wrong types deny everything, so a typo
#      such as "allowedClient" cannot silently widen access);
#   2. an access token was presented (input.subject is not null);
#   3. no actor anywhere in the delegation chain is in deniedActors (deny-style use of the
#      informational chain, allowed by RFC 8693 §4.1);
#   4. the chain is at most maxDelegationDepth actors long;
#   5. allowedClients is empty, or contains the token's client_id;
#   6. the token grants every scope in readScopes (GET, HEAD, OPTIONS) or writeScopes (any
#      other method); otherwise the decision carries requiredScopes and the proxy answers 403
#      insufficient_scope (RFC 6750 §3.1).
#
# Nothing here grants on an earlier actor or on may_act (RFC 8693 §4.1, §4.4; spec E.1 ACT-N01,
# ACT-N06): the grant depends only on the token's top-level claims (client_id, scope).
#
# Decision shapes (only allow, reason and requiredScopes are used here):
#   {"allow": true}
#   {"allow": false, "reason": "..."}
#   {"allow": false, "reason": "...", "requiredScopes": ["..."]}
package agentward

import data.agentward.lib.delegation
import data.agentward.lib.request
import data.agentward.lib.scopes

# Settings used when data.agentward.settings (policies/data.json) lacks a key.
default_settings := {
	"readScopes": ["tools.read"],
	"writeScopes": ["tools.write"],
	"maxDelegationDepth": 3,
	"deniedActors": [],
	"allowedClients": [], # empty: any client
}

# data.agentward.settings as given, or {} when absent.
configured := s if {
	s := data.agentward.settings
	is_object(s)
} else := {}

# Effective settings: the configured values over the defaults. (Not named `settings`: that path
# is the base document data.agentward.settings itself.)
cfg := object.union(default_settings, configured)

# Settings that are present but unusable; any of them denies every request.
invalid_settings contains "settings (not an object)" if {
	s := data.agentward.settings
	not is_object(s)
}

invalid_settings contains key if {
	some key, _ in configured
	not key in object_keys(default_settings)
}

invalid_settings contains key if {
	some key in {"readScopes", "writeScopes", "deniedActors", "allowedClients"}
	value := configured[key]
	not string_array(value)
}

invalid_settings contains "maxDelegationDepth" if {
	value := configured.maxDelegationDepth
	not non_negative_integer(value)
}

# Scopes this request needs: writes need writeScopes; anything that is not a read (including
# an unexpected method) is a write.
required_scopes := cfg.readScopes if {
	request.is_read
} else := cfg.writeScopes

# Entries of deniedActors that appear anywhere in the chain, in deniedActors order. Looking past
# the current actor is fine here because it can only deny (RFC 8693 §4.1).
denied_actors_in_chain := [sub |
	some sub in cfg.deniedActors
	delegation.actor_appears(sub)
]

# An access token was presented. A named rule, because `not is_object(input.subject)` would be
# undefined rather than true when input.subject is missing altogether.
has_token if is_object(input.subject)

client_allowed if count(cfg.allowedClients) == 0

client_allowed if input.subject.clientId in cfg.allowedClients

# Every check passes, stated positively: a check that cannot be evaluated never allows.
allowed if {
	count(invalid_settings) == 0
	has_token
	count(denied_actors_in_chain) == 0
	delegation.within_depth(cfg.maxDelegationDepth)
	client_allowed
	scopes.has_all(required_scopes)
}

default decision := {"allow": false, "reason": "denied: no rule allowed the request"}

decision := {"allow": true} if {
	allowed
} else := denial

# The deny decision for the first failing check. An else chain has exactly one value, so several
# failing checks can never produce conflicting decisions.
denial := deny(concat("", ["invalid policy settings: ", concat(", ", sort(invalid_settings))])) if {
	count(invalid_settings) > 0
} else := deny("no access token") if {
	not has_token
} else := deny(concat("", ["delegation chain includes denied actor ", denied_actors_in_chain[0]])) if {
	count(denied_actors_in_chain) > 0
} else := deny(concat("", [
	"delegation chain depth ", format_int(delegation.depth, 10),
	" exceeds the maximum of ", format_int(cfg.maxDelegationDepth, 10),
])) if {
	not delegation.within_depth(cfg.maxDelegationDepth)
} else := deny(concat("", ["client ", client_label, " is not in allowedClients"])) if {
	not client_allowed
} else := scope_denial if {
	not scopes.has_all(required_scopes)
}

# Insufficient scope. The reason names the missing scopes; requiredScopes is the full
# requirement (RFC 6750 §3.1: the scope "necessary to access the protected resource"), so a
# client that asks for a new token with exactly these scopes gets everything it needs.
scope_denial := {
	"allow": false,
	"reason": concat("", [
		input.request.method, " ", input.request.path,
		" needs scope(s) ", concat(" ", sort(scopes.missing(required_scopes))),
	]),
	"requiredScopes": sort({s | some s in required_scopes}),
}

deny(reason) := {"allow": false, "reason": reason}

client_label := c if {
	c := input.subject.clientId
	is_string(c)
} else := "(none)"

object_keys(obj) := {k | some k, _ in obj}

string_array(value) if {
	is_array(value)
	every item in value {
		is_string(item)
	}
}

non_negative_integer(value) if {
	is_number(value)
	value >= 0
	floor(value) == value
}

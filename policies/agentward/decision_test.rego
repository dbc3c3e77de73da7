package agentward_test

import data.agentward

planner := "spiffe://agents.example.com/planner"

admin := "spiffe://agents.example.com/admin"

# The example input of docs/policy-input.md: POST /mcp, token with tools.read only, one actor.
base := {
	"version": 1,
	"now": 1764460800,
	"request": {
		"id": "r1", "method": "POST", "scheme": "https", "host": "tools.example.com",
		"path": "/mcp", "query": {}, "headers": {},
	},
	"resource": {"id": "https://tools.example.com/mcp"},
	"agent": null,
	"subject": {
		"iss": "https://as.example.com", "sub": "user-42", "clientId": "research-bot",
		"scopes": ["tools.read"], "aud": ["https://tools.example.com/mcp"], "acr": null,
		"amr": [], "authTime": null, "authorizationDetails": [], "format": "jwt",
		"binding": "bearer", "claims": {}, "mayAct": null,
	},
	"delegation": {"chain": [{"sub": planner, "iss": null}], "depth": 1},
	"txn": null,
	"mcp": null,
	"credentials": {"presented": ["access_token"]},
}

# base with `patch` deep-merged over it (arrays and null values are replaced).
with_input(patch) := object.union(base, patch)

call(method, granted) := with_input({"request": {"method": method}, "subject": {"scopes": granted}})

acting(subs) := with_input({"delegation": {
	"chain": [{"sub": s, "iss": null} | some s in subs],
	"depth": count(subs),
}})

# Settings as in policies/data.json; tests override them with `with data.agentward.settings`.
defaults := {
	"readScopes": ["tools.read"],
	"writeScopes": ["tools.write"],
	"maxDelegationDepth": 3,
	"deniedActors": [],
	"allowedClients": [],
}

settings(patch) := object.union(defaults, patch)

allow := {"allow": true}

# --- scopes: read vs write ---

test_example_input_needs_tools_write if {
	agentward.decision == {
		"allow": false,
		"reason": "POST /mcp needs scope(s) tools.write",
		"requiredScopes": ["tools.write"],
	} with input as base
}

test_read_methods_need_read_scopes if {
	every m in ["GET", "HEAD", "OPTIONS"] {
		agentward.decision == allow with input as call(m, ["tools.read"])
		agentward.decision == {
			"allow": false,
			"reason": concat("", [m, " /mcp needs scope(s) tools.read"]),
			"requiredScopes": ["tools.read"],
		} with input as call(m, ["tools.write"])
	}
}

test_write_methods_need_write_scopes if {
	every m in ["POST", "PUT", "PATCH", "DELETE"] {
		agentward.decision == allow with input as call(m, ["tools.write"])
		agentward.decision.requiredScopes == ["tools.write"] with input as call(m, ["tools.read"])
	}
}

# Methods are case-sensitive (RFC 9110 §9.1); an odd one is treated as a write.
test_lowercase_get_is_a_write if {
	agentward.decision.requiredScopes == ["tools.write"] with input as call("get", ["tools.read"])
}

test_token_without_scopes_is_denied if {
	agentward.decision.requiredScopes == ["tools.write"] with input as call("POST", [])
}

# The reason names what is missing; requiredScopes is the whole requirement (RFC 6750 §3.1).
test_required_scopes_is_the_full_requirement if {
	agentward.decision == {
		"allow": false,
		"reason": "POST /mcp needs scope(s) tools.admin tools.write",
		"requiredScopes": ["tools.admin", "tools.read", "tools.write"],
	} with input as base
		with data.agentward.settings as settings({"writeScopes": ["tools.write", "tools.read", "tools.admin", "tools.write"]})
}

test_configured_scopes_are_used if {
	s := settings({"readScopes": ["files.read"], "writeScopes": ["files.write"]})
	agentward.decision == allow with input as call("GET", ["files.read"]) with data.agentward.settings as s
	agentward.decision.requiredScopes == ["files.read"] with input as call("GET", ["tools.read"]) with data.agentward.settings as s
	agentward.decision == allow with input as call("POST", ["files.write"]) with data.agentward.settings as s
}

test_empty_read_scopes_let_any_token_read if {
	agentward.decision == allow with input as call("GET", []) with data.agentward.settings as settings({"readScopes": []})
}

# --- no access token ---

test_null_subject_is_denied if {
	agentward.decision == {"allow": false, "reason": "no access token"} with input as with_input({"subject": null})
}

test_missing_subject_is_denied if {
	inp := object.remove(base, ["subject"])
	agentward.decision == {"allow": false, "reason": "no access token"} with input as inp
}

test_no_token_is_denied_even_when_no_scope_is_required if {
	agentward.decision == {"allow": false, "reason": "no access token"} with input as with_input({"subject": null})
		with data.agentward.settings as settings({"writeScopes": []})
}

# oauth.anonymous: policy (docs/configuration.md): a request that presented nothing reaches the
# policy with subject and agent null. The default policy stays closed for it, on every method and
# path, even with no scope required.
anonymous(method, path) := with_input({
	"request": {"method": method, "path": path, "methodOverride": null},
	"agent": null,
	"subject": null,
	"delegation": {"chain": [], "depth": 0},
	"credentials": {"presented": []},
})

test_anonymous_request_is_denied if {
	every inp in [anonymous("GET", "/healthz"), anonymous("GET", "/"), anonymous("POST", "/mcp"), anonymous("HEAD", "/docs")] {
		agentward.decision == {"allow": false, "reason": "no access token"} with input as inp
	}
}

test_anonymous_request_is_denied_even_when_no_scope_is_required if {
	agentward.decision == {"allow": false, "reason": "no access token"} with input as anonymous("GET", "/healthz")
		with data.agentward.settings as settings({"readScopes": [], "writeScopes": []})
}

# --- denied actors (deny-style use of the whole chain) ---

test_denied_current_actor if {
	agentward.decision == {
		"allow": false,
		"reason": concat("", ["delegation chain includes denied actor ", planner]),
	} with input as with_input({"subject": {"scopes": ["tools.write"]}})
		with data.agentward.settings as settings({"deniedActors": [planner]})
}

test_denied_actor_anywhere_in_the_chain if {
	inp := object.union(acting([planner, "spiffe://x/mid", admin]), {"subject": {"scopes": ["tools.write"]}})
	agentward.decision == {
		"allow": false,
		"reason": concat("", ["delegation chain includes denied actor ", admin]),
	} with input as inp
		with data.agentward.settings as settings({"deniedActors": [admin]})
}

# Several denied actors in the chain: the reason names the first one listed in deniedActors.
test_denied_actor_reason_is_deterministic if {
	inp := object.union(acting([planner, admin]), {"subject": {"scopes": ["tools.write"]}})
	agentward.decision.reason == concat("", ["delegation chain includes denied actor ", admin]) with input as inp
		with data.agentward.settings as settings({"deniedActors": ["spiffe://x/absent", admin, planner]})
	agentward.decision.reason == concat("", ["delegation chain includes denied actor ", planner]) with input as inp
		with data.agentward.settings as settings({"deniedActors": [planner, admin]})
}

test_denied_actor_not_in_chain_allows if {
	agentward.decision == allow with input as with_input({"subject": {"scopes": ["tools.write"]}})
		with data.agentward.settings as settings({"deniedActors": [admin]})
}

# --- delegation depth ---

test_chain_within_max_depth_allowed if {
	inp := object.union(acting([planner, "spiffe://x/b", admin]), {"subject": {"scopes": ["tools.write"]}})
	agentward.decision == allow with input as inp
}

test_chain_deeper_than_max_denied if {
	inp := object.union(acting([planner, "spiffe://x/b", "spiffe://x/c", admin]), {"subject": {"scopes": ["tools.write"]}})
	agentward.decision == {"allow": false, "reason": "delegation chain depth 4 exceeds the maximum of 3"} with input as inp
}

test_max_depth_zero_forbids_delegation if {
	s := settings({"maxDelegationDepth": 0})
	agentward.decision == {"allow": false, "reason": "delegation chain depth 1 exceeds the maximum of 0"} with input as call("GET", ["tools.read"])
		with data.agentward.settings as s
	agentward.decision == allow with input as object.union(acting([]), {"request": {"method": "GET"}})
		with data.agentward.settings as s
}

test_no_chain_is_allowed if {
	agentward.decision == allow with input as object.union(acting([]), {"subject": {"scopes": ["tools.write"]}})
}

# --- allowed clients ---

test_client_not_in_allowed_clients_denied if {
	agentward.decision == {"allow": false, "reason": "client research-bot is not in allowedClients"} with input as call("GET", ["tools.read"])
		with data.agentward.settings as settings({"allowedClients": ["other-bot"]})
}

test_client_in_allowed_clients_allowed if {
	agentward.decision == allow with input as call("GET", ["tools.read"])
		with data.agentward.settings as settings({"allowedClients": ["other-bot", "research-bot"]})
}

test_null_client_id_denied_when_clients_are_restricted if {
	agentward.decision == {"allow": false, "reason": "client (none) is not in allowedClients"} with input as with_input({"subject": {"clientId": null}})
		with data.agentward.settings as settings({"allowedClients": ["research-bot"]})
}

test_empty_allowed_clients_allows_any_client if {
	agentward.decision == allow with input as object.union(call("GET", ["tools.read"]), {"subject": {"clientId": "anyone"}})
}

# --- RFC 8693 §4.1 / spec E.1 ---

# ACT-N01: a privileged identity only as an earlier (nested) actor grants nothing: neither the
# scopes the token lacks, nor a place in allowedClients.
test_act_n01_nested_privileged_actor_does_not_grant if {
	inp := object.union(acting([planner, admin]), {"subject": {"scopes": []}})
	agentward.decision.requiredScopes == ["tools.write"] with input as inp
	agentward.decision.reason == "client research-bot is not in allowedClients" with input as inp
		with data.agentward.settings as settings({"allowedClients": [admin]})
}

# ACT-N06: may_act never grants; the decision is the same with or without it.
test_act_n06_may_act_never_grants if {
	inp := with_input({"subject": {"scopes": [], "mayAct": {"sub": admin, "iss": "https://as.example.com"}}})
	agentward.decision.requiredScopes == ["tools.write"] with input as inp
	agentward.decision.reason == "client research-bot is not in allowedClients" with input as inp
		with data.agentward.settings as settings({"allowedClients": [admin]})
	agentward.decision == agentward.decision with input as with_input({"subject": {"scopes": []}})
}

# --- priority order: settings, token, denied actor, depth, client, scopes ---

test_priority_order if {
	bad := object.union(acting([planner, "spiffe://x/b", "spiffe://x/c", admin]), {"subject": {"scopes": []}})
	strict := settings({"deniedActors": [admin], "allowedClients": ["other-bot"]})

	agentward.decision.reason == "invalid policy settings: surprise" with input as object.union(bad, {"subject": null})
		with data.agentward.settings as object.union(strict, {"surprise": true})
	agentward.decision.reason == "no access token" with input as object.union(bad, {"subject": null})
		with data.agentward.settings as strict
	agentward.decision.reason == concat("", ["delegation chain includes denied actor ", admin]) with input as bad
		with data.agentward.settings as strict
	agentward.decision.reason == "delegation chain depth 4 exceeds the maximum of 3" with input as bad
		with data.agentward.settings as settings({"allowedClients": ["other-bot"]})
	agentward.decision.reason == "client research-bot is not in allowedClients" with input as acting([planner])
		with data.agentward.settings as settings({"allowedClients": ["other-bot"]})
	agentward.decision.requiredScopes == ["tools.write"] with input as acting([planner])
}

# --- settings ---

test_partial_settings_use_defaults if {
	agentward.decision == allow with input as call("GET", ["tools.read"]) with data.agentward.settings as {}
	agentward.decision == allow with input as call("POST", ["tools.write"]) with data.agentward.settings as {"maxDelegationDepth": 1}
	agentward.decision.requiredScopes == ["tools.write"] with input as base with data.agentward.settings as {"deniedActors": []}
}

test_invalid_settings_deny_everything if {
	ok := call("GET", ["tools.read"])
	agentward.decision == {"allow": false, "reason": "invalid policy settings: allowedClient"} with input as ok
		with data.agentward.settings as {"allowedClient": ["x"]}
	agentward.decision.reason == "invalid policy settings: readScopes" with input as ok
		with data.agentward.settings as {"readScopes": "tools.read"}
	agentward.decision.reason == "invalid policy settings: readScopes" with input as ok
		with data.agentward.settings as {"readScopes": null}
	agentward.decision.reason == "invalid policy settings: deniedActors" with input as ok
		with data.agentward.settings as {"deniedActors": [1]}
	agentward.decision.reason == "invalid policy settings: allowedClients, writeScopes" with input as ok
		with data.agentward.settings as {"writeScopes": {}, "allowedClients": "research-bot"}
	agentward.decision.reason == "invalid policy settings: settings (not an object)" with input as ok
		with data.agentward.settings as ["tools.read"]
	every depth in [-1, 1.5, "3", null] {
		agentward.decision.reason == "invalid policy settings: maxDelegationDepth" with input as ok
			with data.agentward.settings as {"maxDelegationDepth": depth}
	}
}

test_shipped_data_json_matches_the_defaults if {
	data.agentward.settings == defaults
	agentward.default_settings == defaults
}

# --- decision shape ---

allowed_keys := {"allow", "reason", "status", "requiredScopes", "stepUp", "headers"}

test_decision_only_uses_known_keys if {
	every inp in [
		base,
		call("GET", ["tools.read"]),
		with_input({"subject": null}),
		acting([planner, "b", "c", admin]),
	] {
		d := agentward.decision with input as inp
		is_boolean(d.allow)
		every key, _ in d {
			key in allowed_keys
		}
	}
}

test_decision_is_defined_for_an_empty_input if {
	agentward.decision == {"allow": false, "reason": "no access token"} with input as {}
}

# A deny whose reason cannot be built (here: no request method or path, which the proxy always
# sends) still denies, through the default decision.
test_default_decision_when_no_branch_applies if {
	agentward.decision == {"allow": false, "reason": "denied: no rule allowed the request"} with input as object.remove(base, ["request"])
}

mcp_input(method, name, granted, list_filter) := with_input({
	"subject": {"scopes": granted},
	"mcp": {"method": method, "name": name, "arguments": {}, "id": 1, "listFilter": list_filter},
})

test_mcp_reads_need_read_scopes_although_posted if {
	agentward.decision == {"allow": true} with input as mcp_input("tools/list", null, ["tools.read"], false)
	agentward.decision == {"allow": true} with input as mcp_input("initialize", null, ["tools.read"], false)
}

test_mcp_tool_calls_need_write_scopes if {
	d := agentward.decision with input as mcp_input("tools/call", "create_issue", ["tools.read"], false)
	d.allow == false
	d.requiredScopes == ["tools.write"]
	agentward.decision == {"allow": true} with input as mcp_input("tools/call", "create_issue", ["tools.read", "tools.write"], false)
}

# A list shows a tool exactly when the token could call it.
test_mcp_list_filter_follows_the_call if {
	hidden := agentward.decision with input as mcp_input("tools/call", "create_issue", ["tools.read"], true)
	hidden.allow == false
	shown := agentward.decision with input as mcp_input("tools/call", "create_issue", ["tools.write"], true)
	shown.allow == true
}

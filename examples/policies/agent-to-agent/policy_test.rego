package agentward_test

import data.agentward

now := 1764460800

planner := "spiffe://agents.example.com/planner"

partner := "spiffe://partners.example.org/travel-agent"

# The planner agent, proven by its WIT and a WPT, sends a message to this A2A agent with a token
# issued to it (client_id planner, after workload.binding.clients) for user-42.
base := {
	"version": 1,
	"now": now,
	"request": {
		"id": "c2f1a9d4-7e3b-4f8a-9d61-0b5e8c2a4f17",
		"method": "POST",
		"scheme": "https",
		"host": "booking.agents.example.com",
		"path": "/a2a",
		"query": {},
		"headers": {"content-type": "application/json", "a2a-version": "1.0"},
		"clientCertificate": null,
	},
	"resource": {"id": "https://booking.agents.example.com/a2a"},
	"agent": {
		"id": planner,
		"trustDomain": "agents.example.com",
		"path": "/planner",
		"via": "wit+wpt",
		"expiresAt": now + 3600,
		"claims": {"iss": "https://spire.agents.example.com", "jti": "wit-81c2"},
		"token": {"clientId": true, "actor": null},
	},
	"subject": {
		"iss": "https://as.example.com",
		"sub": "user-42",
		"clientId": "planner",
		"scopes": ["a2a.message", "a2a.tasks.read", "a2a.tasks.write", "a2a.push"],
		"aud": ["https://booking.agents.example.com/a2a"],
		"acr": null,
		"amr": [],
		"authTime": null,
		"authorizationDetails": [],
		"jti": "at-77e0",
		"expiresAt": now + 300,
		"format": "jwt",
		"binding": "bearer",
		"mayAct": null,
		"claims": {},
	},
	"delegation": {"chain": [], "depth": 0},
	"txn": null,
	"mcp": null,
	"a2a": {
		"method": "SendMessage",
		"operation": "SendMessage",
		"id": "req-1",
		"arguments": {"message": {"role": "ROLE_USER", "messageId": "m-1", "parts": [{"text": "Book a flight to Lisbon"}]}},
	},
	"credentials": {"presented": ["wpt", "wit"]},
}

op(method, operation) := object.union(base, {"a2a": {"method": method, "operation": operation, "id": 2, "arguments": {"id": "task-9"}}})

as_partner(inp) := object.union(inp, {
	"agent": {"id": partner, "trustDomain": "partners.example.org", "path": "/travel-agent"},
	"subject": {"clientId": "travel-agent"},
})

actors(subs) := {"delegation": {"chain": [{"sub": s, "iss": null, "claims": {}} | some s in subs], "depth": count(subs)}}

test_send_message_allowed_with_caller_header if {
	agentward.decision == {"allow": true, "headers": {"x-a2a-caller": planner}} with input as base
}

test_a2a_0_3_method_names_decide_by_operation if {
	agentward.decision.allow with input as op("message/send", "SendMessage")
	agentward.decision.allow with input as op("tasks/get", "GetTask")
	agentward.decision.allow with input as op("tasks/pushNotificationConfig/set", "CreateTaskPushNotificationConfig")
}

test_partner_agent_may_message_and_read if {
	agentward.decision.allow with input as as_partner(base)
	agentward.decision.allow with input as as_partner(op("GetTask", "GetTask"))
}

test_push_config_only_for_our_trust_domain if {
	d := agentward.decision with input as as_partner(op("CreateTaskPushNotificationConfig", "CreateTaskPushNotificationConfig"))
	d == {"allow": false, "reason": "CreateTaskPushNotificationConfig is only for agents of our own trust domain"}
	not agentward.decision.allow with input as as_partner(op("tasks/pushNotificationConfig/list", "ListTaskPushNotificationConfigs"))
}

test_no_agent_identity_denied if {
	# A valid token alone is not enough: A2A calls must prove which agent is calling.
	inp := object.union(base, {"agent": null, "credentials": {"presented": ["access_token"]}})
	agentward.decision == {"allow": false, "reason": "A2A calls need a proven agent identity"} with input as inp
}

test_other_trust_domain_denied if {
	inp := object.union(base, {"agent": {"id": "spiffe://evil.example.net/planner", "trustDomain": "evil.example.net", "path": "/planner"}})
	d := agentward.decision with input as inp
	d == {"allow": false, "reason": "agent spiffe://evil.example.net/planner is not from an allowed trust domain"}
}

test_token_of_another_agent_denied if { # ACT-N05
	inp := object.union(base, {"agent": {"token": {"clientId": false, "actor": null}}})
	d := agentward.decision with input as inp
	d == {"allow": false, "reason": "the access token was not issued to agent spiffe://agents.example.com/planner"}

	# The current actor naming the agent counts (a token exchanged for it) ...
	as_actor := object.union(object.union(base, actors([planner])), {"agent": {"token": {"clientId": false, "actor": true}}})
	agentward.decision.allow with input as as_actor

	# ... no token at all does not.
	no_token := object.union(base, {"subject": null, "agent": {"token": null}})
	not agentward.decision.allow with input as no_token
}

test_denied_actor_anywhere_in_the_chain if {
	crawler := "spiffe://agents.example.com/legacy-crawler"
	inp := object.union(object.union(base, actors([planner, crawler])), {"agent": {"token": {"clientId": true, "actor": true}}})
	agentward.decision == {"allow": false, "reason": "delegation chain includes denied actor spiffe://agents.example.com/legacy-crawler"} with input as inp

	# The caller itself denied.
	self := object.union(base, {"agent": {"id": crawler, "path": "/legacy-crawler"}})
	agentward.decision.reason == "agent spiffe://agents.example.com/legacy-crawler is denied" with input as self
}

test_delegation_depth if {
	two := object.union(base, actors([planner, "spiffe://agents.example.com/router"]))
	agentward.decision.allow with input as two
	three := object.union(base, actors([planner, "spiffe://agents.example.com/router", "spiffe://partners.example.org/concierge"]))
	agentward.decision == {"allow": false, "reason": "delegation chain depth 3 exceeds the maximum of 2"} with input as three
}

test_earlier_actor_grants_nothing if { # ACT-N01
	# An earlier actor from our trust domain does not make a foreign caller acceptable.
	foreign := object.union(object.union(base, actors(["spiffe://evil.example.net/bot", planner])), {"agent": {"id": "spiffe://evil.example.net/bot", "trustDomain": "evil.example.net", "path": "/bot"}})
	not agentward.decision.allow with input as foreign
}

test_bearer_jwt_svid_may_only_read if {
	svid := {"agent": {"via": "jwt_svid"}}
	d := agentward.decision with input as object.union(base, svid)
	d == {"allow": false, "reason": "SendMessage needs a proof of possession, not a bearer JWT-SVID"}
	not agentward.decision.allow with input as object.union(op("CancelTask", "CancelTask"), svid)
	agentward.decision.allow with input as object.union(op("GetTask", "GetTask"), svid)
	agentward.decision.allow with input as object.union(op("ListTasks", "ListTasks"), {"agent": {"via": "x509_svid"}})
}

test_missing_scope_returns_required_scopes if {
	inp := object.union(op("CancelTask", "CancelTask"), {"subject": {"scopes": ["a2a.message"]}})
	d := agentward.decision with input as inp
	d == {"allow": false, "reason": "CancelTask needs scope(s) a2a.tasks.write", "requiredScopes": ["a2a.tasks.write"]}
	e := agentward.decision with input as object.union(op("GetExtendedAgentCard", "GetExtendedAgentCard"), {"subject": {"scopes": []}})
	e.requiredScopes == ["a2a.card"]
}

test_unknown_operation_denied if {
	d := agentward.decision with input as op("tasks/delete", "tasks/delete")
	d == {"allow": false, "reason": "unknown A2A operation tasks/delete"}
}

test_non_a2a_requests if {
	card := object.union(base, {"a2a": null, "request": {"method": "GET", "path": "/.well-known/agent-card.json"}})
	agentward.decision == {"allow": true} with input as card
	other := object.union(base, {"a2a": null, "request": {"method": "GET", "path": "/admin"}})
	agentward.decision == {"allow": false, "reason": "only A2A calls are served here"} with input as other
	post_card := object.union(base, {"a2a": null, "request": {"method": "POST", "path": "/.well-known/agent-card.json"}})
	not agentward.decision.allow with input as post_card
}

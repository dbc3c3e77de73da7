package agentward_test

import data.agentward

now := 1764460800

# issue-bot calls a git hosting MCP tool server for user alice. Alice's token was issued to
# issue-bot with issue and admin scopes; she logged in with a password an hour ago.
base := {
	"version": 1,
	"now": now,
	"request": {
		"id": "9b1c7f0e-2a41-4d7e-8a55-6f1c2b7d9e10",
		"method": "POST",
		"scheme": "https",
		"host": "git-tools.example.com",
		"path": "/mcp",
		"query": {},
		"headers": {"content-type": "application/json", "mcp-protocol-version": "2025-06-18"},
		"clientCertificate": null,
	},
	"resource": {"id": "https://git-tools.example.com/mcp"},
	"agent": null,
	"subject": {
		"iss": "https://login.example.com",
		"sub": "alice",
		"clientId": "issue-bot",
		"scopes": ["issues.read", "issues.write", "repo.admin"],
		"aud": ["https://git-tools.example.com/mcp"],
		"acr": "pwd",
		"amr": ["pwd"],
		"authTime": now - 3600,
		"authorizationDetails": [],
		"jti": "at-5f2c",
		"expiresAt": now + 600,
		"format": "jwt",
		"binding": "dpop",
		"mayAct": null,
		"claims": {"iat": now - 60},
	},
	"delegation": {"chain": [], "depth": 0},
	"txn": null,
	"mcp": null,
	"a2a": null,
	"credentials": {"presented": ["access_token", "dpop"]},
}

call(tool, args) := object.union(base, {"mcp": {"method": "tools/call", "name": tool, "arguments": args, "id": 11, "listFilter": false}})

# How agentward asks whether one tool of a tools/list result is shown: as its tools/call, without
# arguments or id.
listing(tool) := object.union(base, {"mcp": {"method": "tools/call", "name": tool, "arguments": null, "id": null, "listFilter": true}})

with_subject(inp, fields) := object.union(inp, {"subject": fields})

mfa_now := {"acr": "mfa", "amr": ["pwd", "otp"], "authTime": now - 60}

allowed := {"allow": true}

test_read_and_write_tools_with_their_scopes if {
	agentward.decision == allowed with input as call("search_issues", {"repo": "acme/website", "query": "is:open"})
	agentward.decision == allowed with input as call("create_issue", {"repo": "acme/website", "title": "Broken link"})
}

test_tools_list_and_lifecycle if {
	agentward.decision == allowed with input as object.union(base, {"mcp": {"method": "tools/list", "name": null, "arguments": null, "id": 1, "listFilter": false}})
	agentward.decision == allowed with input as object.union(base, {"mcp": {"method": "initialize", "name": null, "arguments": null, "id": 0, "listFilter": false}})
}

test_missing_scope_returns_required_scopes if {
	inp := with_subject(call("create_issue", {"repo": "acme/website", "title": "x"}), {"scopes": ["issues.read"]})
	d := agentward.decision with input as inp
	d == {"allow": false, "reason": "tool create_issue needs scope(s) issues.write", "requiredScopes": ["issues.write"]}
}

test_destructive_tool_needs_step_up if {
	d := agentward.decision with input as call("delete_repo", {"repo": "acme/website"})
	d == {
		"allow": false,
		"reason": "tool delete_repo needs a recent multi-factor login",
		"stepUp": {"acrValues": "mfa", "maxAge": 300},
	}
}

test_destructive_tool_after_step_up if {
	agentward.decision == allowed with input as with_subject(call("delete_repo", {"repo": "acme/website"}), mfa_now)
}

test_step_up_too_old_or_wrong_acr if {
	old := with_subject(call("delete_repo", {"repo": "acme/website"}), {"acr": "mfa", "authTime": now - 301})
	agentward.decision.stepUp == {"acrValues": "mfa", "maxAge": 300} with input as old
	pwd := with_subject(call("delete_repo", {"repo": "acme/website"}), {"acr": "pwd", "authTime": now - 10})
	agentward.decision.stepUp with input as pwd
	no_auth_time := with_subject(call("delete_repo", {"repo": "acme/website"}), {"acr": "mfa", "authTime": null})
	agentward.decision.stepUp with input as no_auth_time
}

test_scope_is_checked_before_step_up if {
	# Two separate failures, two separate answers (SU-N05): first the scope.
	inp := with_subject(call("delete_repo", {"repo": "acme/website"}), {"scopes": ["issues.read"]})
	d := agentward.decision with input as inp
	d.requiredScopes == ["repo.admin"]
	not d.stepUp
}

test_list_filter if {
	# A listed tool is shown when the token has its scopes; a destructive one without step-up too
	# (calling it will ask for the step-up).
	agentward.decision.allow with input as listing("search_issues")
	agentward.decision.allow with input as listing("delete_repo")

	# Hidden: tools whose scopes the token lacks, and unknown tools.
	not agentward.decision.allow with input as with_subject(listing("create_issue"), {"scopes": ["issues.read"]})
	not agentward.decision.allow with input as with_subject(listing("delete_repo"), {"scopes": ["issues.read", "issues.write"]})
	not agentward.decision.allow with input as listing("run_shell")
}

test_unknown_tool_and_method if {
	agentward.decision == {"allow": false, "reason": "unknown tool run_shell"} with input as call("run_shell", {"cmd": "id"})
	d := agentward.decision with input as object.union(base, {"mcp": {"method": "resources/read", "name": "repo://acme/website/.env", "arguments": null, "id": 4, "listFilter": false}})
	d == {"allow": false, "reason": "MCP method resources/read is not allowed"}
}

test_identity_checks if {
	agentward.decision == {"allow": false, "reason": "no access token"} with input as object.union(call("search_issues", {}), {"subject": null})
	agentward.decision.reason == "the token acts for no user (no sub)" with input as with_subject(call("search_issues", {}), {"sub": null})
	agentward.decision.reason == "client ci-bot is not an agent allowed to act for users" with input as with_subject(call("search_issues", {}), {"clientId": "ci-bot"})
	agentward.decision.reason == "only MCP calls are served here" with input as base
}

test_proven_workload_must_be_the_token_client if { # ACT-N05
	bot := {"id": "spiffe://agents.example.com/issue-bot", "trustDomain": "agents.example.com", "path": "/issue-bot", "via": "wit+wpt", "expiresAt": now + 3600, "claims": {}}
	ok := object.union(call("search_issues", {}), {"agent": object.union(bot, {"token": {"clientId": true, "actor": null}})})
	agentward.decision == allowed with input as ok
	other := object.union(call("search_issues", {}), {"agent": object.union(bot, {"token": {"clientId": false, "actor": null}})})
	agentward.decision.reason == "the proven workload is not the agent the token was issued to" with input as other
}

test_delegation_depth if {
	one := {"delegation": {"chain": [{"sub": "issue-bot", "iss": "https://login.example.com", "claims": {}}], "depth": 1}}
	agentward.decision == allowed with input as object.union(call("search_issues", {}), one)
	two := {"delegation": {"chain": [{"sub": "issue-bot", "iss": null, "claims": {}}, {"sub": "planner", "iss": null, "claims": {}}], "depth": 2}}
	agentward.decision.reason == "delegation chain of 2 actors is too long" with input as object.union(call("search_issues", {}), two)
}

# RFC 9396: tool_call details narrow the token (RAR-N07: the scopes alone would allow).
details := [{
	"type": "tool_call",
	"actions": ["search_issues", "create_issue"],
	"identifier": "acme/website",
	"locations": ["https://git-tools.example.com/mcp"],
}]

test_details_allow_listed_tools_on_the_named_repository if {
	inp := with_subject(call("create_issue", {"repo": "acme/website", "title": "x"}), {"authorizationDetails": details})
	agentward.decision == allowed with input as inp
}

test_details_restrict_what_scope_would_allow if {
	# Another repository: scope issues.write covers it, the details do not.
	other_repo := with_subject(call("create_issue", {"repo": "acme/payroll", "title": "x"}), {"authorizationDetails": details})
	agentward.decision.reason == "the token's tool_call authorization_details do not allow create_issue here" with input as other_repo

	# A tool the details do not list, although the token has repo.admin and a fresh MFA login.
	delete := with_subject(call("delete_repo", {"repo": "acme/website"}), object.union(mfa_now, {"authorizationDetails": details}))
	not agentward.decision.allow with input as delete

	# Details meant for another resource server apply nowhere here (RAR-N04).
	elsewhere := [object.union(details[0], {"locations": ["https://other-tools.example.com/mcp"]})]
	not agentward.decision.allow with input as with_subject(call("search_issues", {"repo": "acme/website"}), {"authorizationDetails": elsewhere})

	# Hidden in tools/list as well; a listed tool is shown although the list names no repository.
	not agentward.decision.allow with input as with_subject(listing("comment_on_issue"), {"authorizationDetails": details})
	agentward.decision.allow with input as with_subject(listing("create_issue"), {"authorizationDetails": details})
}

test_details_of_other_types_are_ignored if { # RAR-N02: grant nothing, restrict nothing here
	inp := with_subject(call("create_issue", {"repo": "acme/payroll"}), {"authorizationDetails": [{"type": "payment_initiation", "actions": ["initiate"]}]})
	agentward.decision == allowed with input as inp

	# A type that matches only after case folding is another type (RAR-N06).
	folded := [object.union(details[0], {"type": "Tool_Call"})]
	agentward.decision == allowed with input as with_subject(call("create_issue", {"repo": "acme/payroll"}), {"authorizationDetails": folded})
}

test_details_without_identifier_allow_any_repository if {
	any_repo := [object.remove(details[0], ["identifier"])]
	agentward.decision == allowed with input as with_subject(call("create_issue", {"repo": "acme/payroll"}), {"authorizationDetails": any_repo})
}

package agentward_test

import data.agentward

# A version-1 input as agentward builds it for research-bot calling the MCP endpoint of the
# tools server: DPoP-bound token for user-42, no workload identity, no delegation.
base := {
	"version": 1,
	"now": 1764460800,
	"request": {
		"id": "475b2e03-9c8f-4455-bde8-5ed685afe337",
		"method": "POST",
		"scheme": "https",
		"host": "tools.example.com",
		"path": "/mcp",
		"query": {},
		"headers": {"accept": "application/json, text/event-stream", "content-type": "application/json", "mcp-protocol-version": "2025-06-18"},
		"clientCertificate": null,
	},
	"resource": {"id": "https://tools.example.com/mcp"},
	"agent": null,
	"subject": {
		"iss": "https://as.example.com",
		"sub": "user-42",
		"clientId": "research-bot",
		"scopes": ["tools.read"],
		"aud": ["https://tools.example.com/mcp"],
		"acr": null,
		"amr": ["pwd"],
		"authTime": 1764460000,
		"authorizationDetails": [],
		"jti": "jti-gptuz7hfoc8",
		"expiresAt": 1764461100,
		"format": "jwt",
		"binding": "dpop",
		"mayAct": null,
		"claims": {"iat": 1764460800},
	},
	"delegation": {"chain": [], "depth": 0},
	"txn": null,
	"mcp": null,
	"a2a": null,
	"credentials": {"presented": ["access_token", "dpop"]},
}

mcp(method, name) := object.union(base, {"mcp": {"method": method, "name": name, "arguments": null, "id": 7, "listFilter": false}})

call(tool, args) := object.union(base, {"mcp": {"method": "tools/call", "name": tool, "arguments": args, "id": 8, "listFilter": false}})

# How agentward asks whether one tool of a tools/list result is shown: as its tools/call, without
# arguments or id.
listing(tool) := object.union(base, {"mcp": {"method": "tools/call", "name": tool, "arguments": null, "id": null, "listFilter": true}})

http(method, path) := object.union(base, {"request": {"method": method, "path": path, "headers": {}}})

allowed := {"allow": true}

test_read_tool_call_allowed if {
	agentward.decision == allowed with input as call("search", {"query": "RFC 9396 rich authorization requests"})
	agentward.decision == allowed with input as call("fetch_page", {"url": "https://www.rfc-editor.org/rfc/rfc9396"})
}

test_tools_list_and_lifecycle_allowed if {
	agentward.decision == allowed with input as mcp("tools/list", null)
	agentward.decision == allowed with input as mcp("initialize", null)
	agentward.decision == allowed with input as object.union(mcp("notifications/initialized", null), {"mcp": {"id": null}})
	agentward.decision == allowed with input as mcp("ping", null)
}

test_write_tool_call_denied if {
	d := agentward.decision with input as call("create_issue", {"repo": "acme/website", "title": "x"})
	d == {"allow": false, "reason": "tool create_issue is not a read tool"}
}

test_list_filter_shows_only_read_tools if {
	agentward.decision.allow with input as listing("search")
	agentward.decision.allow with input as listing("get_issue")
	not agentward.decision.allow with input as listing("create_issue")
	not agentward.decision.allow with input as listing("delete_repo")
}

test_other_mcp_methods_denied if {
	d := agentward.decision with input as mcp("resources/read", "file:///etc/passwd")
	d == {"allow": false, "reason": "MCP method resources/read is not allowed for the research agent"}
	not agentward.decision.allow with input as mcp("prompts/get", "summarize")
	not agentward.decision.allow with input as mcp("resources/list", null)
	not agentward.decision.allow with input as mcp("sampling/createMessage", null)
}

test_tools_call_without_a_name_denied if {
	d := agentward.decision with input as mcp("tools/call", null)
	d.reason == "tool (none) is not a read tool"
}

test_plain_reads_allowed if {
	agentward.decision == allowed with input as http("GET", "/docs/index.html")
	agentward.decision == allowed with input as http("HEAD", "/docs/index.html")

	# The MCP SSE stream a client opens with GET (no JSON-RPC body, so input.mcp is null).
	agentward.decision == allowed with input as http("GET", "/mcp")
}

test_plain_writes_denied if {
	d := agentward.decision with input as http("POST", "/api/issues")
	d == {"allow": false, "reason": "the research agent is read-only: POST /api/issues refused"}
	not agentward.decision.allow with input as http("DELETE", "/mcp")
	not agentward.decision.allow with input as http("get", "/docs") # methods are case-sensitive
}

test_a2a_denied if {
	inp := object.union(base, {"a2a": {"method": "message/send", "operation": "SendMessage", "id": 1, "arguments": {"message": {}}}})
	d := agentward.decision with input as inp
	d == {"allow": false, "reason": "A2A SendMessage is not allowed for the research agent"}
}

test_no_token_denied if {
	agentward.decision == {"allow": false, "reason": "no access token"} with input as object.union(call("search", {}), {"subject": null})
}

test_other_client_denied if {
	d := agentward.decision with input as object.union(call("search", {}), {"subject": {"clientId": "deploy-bot"}})
	d == {"allow": false, "reason": "client deploy-bot is not the research agent"}
	e := agentward.decision with input as object.union(call("search", {}), {"subject": {"clientId": null}})
	e.reason == "client (none) is not the research agent"
}

test_missing_scope_asks_for_it if {
	d := agentward.decision with input as object.union(call("search", {}), {"subject": {"scopes": ["profile"]}})
	d == {"allow": false, "reason": "the research agent needs scope(s) tools.read", "requiredScopes": ["tools.read"]}
}

test_read_tools_come_from_data if {
	agentward.decision.allow with input as call("create_issue", {}) with data.research.readTools as ["create_issue"]
	not agentward.decision.allow with input as call("search", {}) with data.research.readTools as []
}

test_defaults_without_data if {
	# Without data.research nothing is a read tool, but plain reads still work.
	not agentward.decision.allow with input as call("search", {}) with data.research as null
	agentward.decision.allow with input as http("GET", "/docs") with data.research as null
}

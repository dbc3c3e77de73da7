package agentward.lib.request_test

import data.agentward.lib.request

req(method, path) := {"request": {"method": method, "path": path}}

test_read_methods if {
	every m in ["GET", "HEAD", "OPTIONS"] {
		request.is_read with input as req(m, "/mcp")
		not request.is_write with input as req(m, "/mcp")
	}
}

test_write_methods if {
	every m in ["POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT", "PROPFIND"] {
		request.is_write with input as req(m, "/mcp")
		not request.is_read with input as req(m, "/mcp")
	}
}

# RFC 9110 §9.1: methods are case-sensitive, so "get" is not GET; it takes the stricter side.
test_lowercase_method_is_a_write if {
	request.is_write with input as req("get", "/mcp")
	not request.is_read with input as req("get", "/mcp")
}

test_no_method_is_neither if {
	not request.is_read with input as {"request": {}}
	not request.is_write with input as {"request": {}}
}

test_path_matches_itself if {
	request.path_matches("/mcp") with input as req("GET", "/mcp")
}

test_path_matches_below_the_prefix if {
	request.path_matches("/mcp") with input as req("GET", "/mcp/tools/x")
}

test_path_matches_whole_segments_only if {
	not request.path_matches("/mcp") with input as req("GET", "/mcpadmin")
	not request.path_matches("/mcp") with input as req("GET", "/")
	not request.path_matches("/mcp/tools") with input as req("GET", "/mcp")
}

test_path_matches_a_prefix_ending_in_slash if {
	request.path_matches("/api/") with input as req("GET", "/api/v1")
	request.path_matches("/api/") with input as req("GET", "/api/")
	not request.path_matches("/api/") with input as req("GET", "/api")
}

test_root_prefix_matches_every_path if {
	request.path_matches("/") with input as req("GET", "/")
	request.path_matches("/") with input as req("GET", "/anything/at/all")
}

mcp_call(method) := {"request": {"method": "POST", "path": "/mcp"}, "mcp": {"method": method, "name": "t", "arguments": null, "id": 1, "listFilter": false}}

test_mcp_reads_are_reads_although_posted if {
	request.is_read with input as mcp_call("tools/list")
	request.is_read with input as mcp_call("resources/read")
	request.is_read with input as mcp_call("notifications/initialized")
	not request.is_write with input as mcp_call("initialize")
}

test_mcp_tool_calls_and_unknown_methods_are_writes if {
	request.is_write with input as mcp_call("tools/call")
	request.is_write with input as mcp_call("sampling/createMessage")
	not request.is_read with input as mcp_call("tools/call")
}

test_a2a_operations if {
	request.is_read with input as {"request": {"method": "POST"}, "a2a": {"method": "tasks/get", "operation": "GetTask"}}
	request.is_write with input as {"request": {"method": "POST"}, "a2a": {"method": "message/send", "operation": "SendMessage"}}
}

test_a_get_carrying_an_rpc_call_is_decided_by_the_call if {
	request.is_write with input as {"request": {"method": "GET"}, "mcp": {"method": "tools/call"}}
}

# forward.methodOverride: pass. A forwarded override to anything but a read makes a read a write.
overridden(method, action, values) := {"request": {"method": method, "path": "/items/1", "methodOverride": {
	"action": action,
	"fields": [{"source": "header", "name": "x-http-method-override", "value": v} | some v in values],
}}}

test_forwarded_override_to_a_write_is_a_write if {
	every values in [["DELETE"], ["delete"], ["GET", "PUT"], ["PROPFIND"], [""]] {
		request.is_write with input as overridden("GET", "forwarded", values)
		not request.is_read with input as overridden("GET", "forwarded", values)
	}
}

test_forwarded_override_to_a_read_stays_a_read if {
	every values in [["GET"], ["head"], ["GET", "OPTIONS"]] {
		request.is_read with input as overridden("GET", "forwarded", values)
	}
}

test_stripped_override_does_not_count if {
	request.is_read with input as overridden("GET", "stripped", ["DELETE"])
}

test_forwarded_override_on_an_mcp_read_call_is_a_write if {
	inp := object.union(overridden("POST", "forwarded", ["DELETE"]), {"mcp": {"method": "tools/list"}})
	request.is_write with input as inp
	not request.is_read with input as inp
}

test_anonymous if {
	request.anonymous with input as {"subject": null, "agent": null, "credentials": {"presented": []}}
}

test_not_anonymous if {
	every inp in [
		{"subject": {"sub": "u"}, "agent": null, "credentials": {"presented": ["access_token"]}},
		{"subject": null, "agent": {"id": "spiffe://a/b"}, "credentials": {"presented": ["x509_svid"]}},
		{"subject": null, "agent": null, "credentials": {"presented": ["client_certificate"]}},
		{"agent": null, "credentials": {"presented": []}},
		{},
	] {
		not request.anonymous with input as inp
	}
}

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

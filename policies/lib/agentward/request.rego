# Helpers over the HTTP request in input.request (design §3.3).
package agentward.lib.request

# Methods treated as reads. GET, HEAD and OPTIONS are safe methods (RFC 9110 §9.2.1). TRACE is
# safe too but is left out on purpose: it echoes the request and is rarely wanted through a
# proxy, so it needs write scopes.
read_methods := {"GET", "HEAD", "OPTIONS"}

# Method names are case-sensitive (RFC 9110 §9.1): "get" is not GET and counts as a write,
# which is the stricter side.
is_read if input.request.method in read_methods

# Any other method (POST, PUT, PATCH, DELETE, TRACE, extension methods) is a write.
is_write if {
	is_string(input.request.method)
	not is_read
}

# path_matches(prefix) holds when input.request.path is `prefix` or lies below it, matching
# whole path segments: "/mcp" matches "/mcp" and "/mcp/x" but not "/mcpx". A prefix ending in
# "/" matches everything below it ("/" matches every path). The path is compared as the proxy
# passes it; it does not decode or normalize anything.
path_matches(prefix) if input.request.path == prefix

path_matches(prefix) if {
	endswith(prefix, "/")
	startswith(input.request.path, prefix)
}

path_matches(prefix) if startswith(input.request.path, concat("", [prefix, "/"]))

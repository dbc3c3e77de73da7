# Helpers over the HTTP request in input.request (docs/policy-input.md).
package agentward.lib.request

# Methods treated as reads. GET, HEAD and OPTIONS are safe methods (RFC 9110 §9.2.1). TRACE is
# safe too but is left out on purpose: it echoes the request and is rarely wanted through a
# proxy, so it needs write scopes.
read_methods := {"GET", "HEAD", "OPTIONS"}

# MCP calls that change nothing on the server and run no tool (MCP specification 2025-11-25 and
# 2026-07-28: lifecycle, listing, reading, completion). tools/call is always a write: what a tool
# does is the tool's business. Client notifications (notifications/initialized, /cancelled,
# /progress, /roots/list_changed) carry no action either.
mcp_read_methods := {
	"initialize", "ping",
	"tools/list", "prompts/list", "prompts/get",
	"resources/list", "resources/templates/list", "resources/read",
	"completion/complete",
}

# A2A operations that only read (input.a2a.operation, the A2A 1.0 names).
a2a_read_operations := {
	"GetTask", "ListTasks", "SubscribeToTask",
	"GetTaskPushNotificationConfig", "ListTaskPushNotificationConfigs",
	"GetExtendedAgentCard",
}

# The request is one JSON-RPC call on an MCP or A2A path (input.mcp / input.a2a set): its
# method, not the HTTP POST that carries it, says whether it reads.
rpc_call if is_object(input.mcp)

rpc_call if is_object(input.a2a)

# A read: by its method or its JSON-RPC call (below), and not overridden to anything else.
is_read if {
	reads
	not overrides_to_write
}

# Method names are case-sensitive (RFC 9110 §9.1): "get" is not GET and counts as a write,
# which is the stricter side.
reads if {
	not rpc_call
	input.request.method in read_methods
}

reads if input.mcp.method in mcp_read_methods

reads if startswith(input.mcp.method, "notifications/")

reads if input.a2a.operation in a2a_read_operations

# With forward.methodOverride: pass, the upstream gets the override fields (X-HTTP-Method-Override,
# _method, ...) and may act on the method they name instead of input.request.method. Frameworks
# upper-case the value, so it is compared upper-cased; any value that is not a read method makes
# the request a write. (With strip or reject, the upstream never sees an override.)
overrides_to_write if {
	input.request.methodOverride.action == "forwarded"
	some field in input.request.methodOverride.fields
	not upper(field.value) in read_methods
}

# Any other method (POST, PUT, PATCH, DELETE, TRACE, extension methods) is a write, and so is
# every JSON-RPC call that is not a read above (tools/call, SendMessage, CancelTask, ...).
is_write if {
	is_string(input.request.method)
	not is_read
}

# The request presented no credential at all: it reaches the policy only with
# oauth.anonymous: policy (docs/configuration.md, "Anonymous requests"), with subject and agent
# null. Undefined, so never anonymous, when a key is missing.
anonymous if {
	input.subject == null
	input.agent == null
	count(input.credentials.presented) == 0
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

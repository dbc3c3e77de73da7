# The MCP contenders' policy (agentward-mcp-call, agentward-mcp-list*): a subject with tools.read
# may list tools and call tool-0 ... tool-49; the other 50 of the upstream's 100 tools are
# denied, so a filtered tools/list answer keeps half of its items.
package agentward

default decision := {"allow": false, "reason": "not an allowed tool"}

# A literal set: a comprehension would be recomputed on every evaluation (WebAssembly keeps no
# rule values between calls), 100 times for one filtered list.
allowed_tools := {"tool-0", "tool-1", "tool-2", "tool-3", "tool-4", "tool-5", "tool-6", "tool-7", "tool-8", "tool-9", "tool-10", "tool-11", "tool-12", "tool-13", "tool-14", "tool-15", "tool-16", "tool-17", "tool-18", "tool-19", "tool-20", "tool-21", "tool-22", "tool-23", "tool-24", "tool-25", "tool-26", "tool-27", "tool-28", "tool-29", "tool-30", "tool-31", "tool-32", "tool-33", "tool-34", "tool-35", "tool-36", "tool-37", "tool-38", "tool-39", "tool-40", "tool-41", "tool-42", "tool-43", "tool-44", "tool-45", "tool-46", "tool-47", "tool-48", "tool-49"}

decision := {"allow": true} if {
	"tools.read" in input.subject.scopes
	input.mcp.method == "tools/list"
}

decision := {"allow": true} if {
	"tools.read" in input.subject.scopes
	input.mcp.method == "tools/call"
	input.mcp.name in allowed_tools
}

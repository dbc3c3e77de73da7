# The agentward-wpt contender's policy: the request is authenticated by the agent's workload
# identity alone (WIT + WPT, oauth.requireToken: false), which the default policy refuses ("no
# access token"). The same shape of checks as the default policy's, on input.agent: a proven agent
# of the bench trust domain, not on a deny list, reading.
package agentward

import data.agentward.lib.agent

default decision := {"allow": false, "reason": "not an allowed agent"}

denied_agents := {"spiffe://agents.bench.test/revoked"}

decision := {"allow": true} if {
	agent.in_trust_domain({"agents.bench.test"})
	not agent.is_one_of(denied_agents)
	input.request.method in {"GET", "HEAD", "OPTIONS"}
}

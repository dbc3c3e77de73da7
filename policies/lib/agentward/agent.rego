# Workload (agent) identity helpers over input.agent (docs/policy-input.md; docs/workload-identity.md).
#
# input.agent is the workload identity agentward proved cryptographically (WIT + WPT, WIT + HTTP
# message signature, X.509-SVID, JWT-SVID); it is null when the request proved none, and every
# helper here then fails closed. Identities are compared whole: identifier-03 §4.3 asks consumers
# to authorize on the complete URI, so there is deliberately no helper that matches a path alone
# (spiffe://a.example/bot and spiffe://b.example/bot are different agents).
package agentward.lib.agent

# id is the proven workload identifier; undefined without one.
id := input.agent.id if is_string(input.agent.id)

# is_one_of(ids) holds when the proven identifier is exactly one of `ids` (array or set).
is_one_of(ids) if id in ids

# in_trust_domain(domains) holds when the agent belongs to one of `domains` (array or set of
# trust domain names, e.g. {"agents.example.com"}).
in_trust_domain(domains) if {
	is_string(input.agent.trustDomain)
	input.agent.trustDomain in domains
}

# proven_by(methods) holds when the identity was proven by one of `methods`:
# "wit+wpt", "wit+http_signature", "x509_svid", "jwt_svid". Use it to refuse bearer-only proofs
# (a JWT-SVID is a bearer credential, JWT-SVID §7.1) for sensitive operations.
proven_by(methods) if input.agent.via in methods

# is_token_client holds when the access token was issued to this agent: its client_id names the
# proven workload (after workload.binding.clients). Fails without a token or without client_id.
is_token_client if input.agent.token.clientId == true

# is_token_actor holds when the token's current actor (act.sub, RFC 8693 §4.1) is this agent.
# Earlier actors never count.
is_token_actor if input.agent.token.actor == true

# acts_for_token holds when the agent is the token's client or its current actor (ACT-N05).
acts_for_token if is_token_client

acts_for_token if is_token_actor

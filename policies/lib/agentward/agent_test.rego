package agentward.lib.agent_test

import data.agentward.lib.agent

bot := "spiffe://agents.example.com/research-bot"

with_agent(fields) := {"agent": object.union({"id": bot, "trustDomain": "agents.example.com", "path": "/research-bot", "via": "wit+wpt", "token": null}, fields)}

test_id if {
	agent.id == bot with input as with_agent({})
	not agent.id with input as {"agent": null}
}

test_is_one_of_compares_whole_identifiers if {
	agent.is_one_of({bot}) with input as with_agent({})
	agent.is_one_of([bot, "spiffe://agents.example.com/planner"]) with input as with_agent({})
	not agent.is_one_of({"spiffe://other.example.com/research-bot"}) with input as with_agent({})
	not agent.is_one_of({"/research-bot"}) with input as with_agent({})
}

test_in_trust_domain if {
	agent.in_trust_domain({"agents.example.com"}) with input as with_agent({})
	not agent.in_trust_domain({"partners.example.org"}) with input as with_agent({})
}

test_proven_by if {
	agent.proven_by({"wit+wpt", "x509_svid"}) with input as with_agent({})
	not agent.proven_by({"x509_svid"}) with input as with_agent({"via": "jwt_svid"})
}

test_token_binding if { # ACT-N05
	agent.acts_for_token with input as with_agent({"token": {"clientId": true, "actor": null}})
	agent.acts_for_token with input as with_agent({"token": {"clientId": false, "actor": true}})
	agent.is_token_actor with input as with_agent({"token": {"clientId": false, "actor": true}})
	not agent.is_token_client with input as with_agent({"token": {"clientId": false, "actor": true}})
	not agent.acts_for_token with input as with_agent({"token": {"clientId": false, "actor": false}})
	not agent.acts_for_token with input as with_agent({"token": {"clientId": null, "actor": null}})
	not agent.acts_for_token with input as with_agent({"token": null})
}

test_everything_fails_closed_without_an_agent if {
	no_agent := {"agent": null}
	not agent.is_one_of({bot}) with input as no_agent
	not agent.in_trust_domain({"agents.example.com"}) with input as no_agent
	not agent.proven_by({"wit+wpt"}) with input as no_agent
	not agent.acts_for_token with input as no_agent
}

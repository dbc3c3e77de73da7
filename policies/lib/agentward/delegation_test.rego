package agentward.lib.delegation_test

import data.agentward.lib.delegation

planner := "spiffe://agents.example.com/planner"

admin := "spiffe://agents.example.com/admin"

# Chain as the proxy flattens `act`: current actor first, earliest last.
chain(subs) := {"delegation": {
	"chain": [{"sub": s, "iss": null} | some s in subs],
	"depth": count(subs),
}}

no_chain := {"delegation": {"chain": [], "depth": 0}}

test_depth if {
	delegation.depth == 2 with input as chain([planner, admin])
	delegation.depth == 0 with input as no_chain
}

test_depth_without_delegation_member if {
	delegation.depth == 0 with input as {"delegation": null}
	delegation.depth == 0 with input as {}
}

test_depth_falls_back_to_chain_length if {
	delegation.depth == 1 with input as {"delegation": {"chain": [{"sub": planner}]}}
}

test_current_actor_is_chain_0 if {
	delegation.current_actor == planner with input as chain([planner, admin])
}

test_no_current_actor_without_chain if {
	not delegation.current_actor with input as no_chain
	not delegation.current_actor with input as {"delegation": null}
}

test_within_depth if {
	delegation.within_depth(2) with input as chain([planner, admin])
	delegation.within_depth(0) with input as no_chain
	not delegation.within_depth(1) with input as chain([planner, admin])
}

test_within_depth_needs_a_number if {
	not delegation.within_depth("3") with input as chain([planner])
	not delegation.within_depth(null) with input as no_chain
}

test_actor_appears_anywhere_in_the_chain if {
	delegation.actor_appears(planner) with input as chain([planner, admin])
	delegation.actor_appears(admin) with input as chain([planner, admin])
	not delegation.actor_appears("spiffe://agents.example.com/other") with input as chain([planner, admin])
	not delegation.actor_appears(planner) with input as no_chain
}

test_current_actor_in if {
	delegation.current_actor_in({planner}) with input as chain([planner, admin])
	delegation.current_actor_in([admin, planner]) with input as chain([planner])
	not delegation.current_actor_in({planner}) with input as no_chain
}

# ACT-N01 (RFC 8693 §4.1): a privileged identity that appears only as an earlier (nested) actor
# is informational; the grant helper must not see it, only the deny-style one does.
test_act_n01_earlier_actor_does_not_count_as_current if {
	not delegation.current_actor_in({admin}) with input as chain([planner, admin])
	not delegation.current_actor_in({admin}) with input as chain([planner, "spiffe://x/y", admin])
	delegation.actor_appears(admin) with input as chain([planner, admin])
}

# ACT-N06 (RFC 8693 §4.4): may_act names who MAY act; it is not an actor.
test_act_n06_may_act_is_not_an_actor if {
	inp := object.union(no_chain, {"subject": {"sub": "user-42", "mayAct": {"sub": admin}}})
	not delegation.current_actor_in({admin}) with input as inp
	not delegation.actor_appears(admin) with input as inp
	delegation.depth == 0 with input as inp
}

# ACT-N04: a token without `act` (impersonation or direct use) is not delegated.
test_act_n04_impersonation_token_is_not_delegated if {
	not delegation.is_delegated with input as {"delegation": {"chain": [], "depth": 0}}
	delegation.is_delegated with input as {"delegation": {"chain": [{"sub": "planner", "iss": null}], "depth": 1}}
}

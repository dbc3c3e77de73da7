package agentward.lib.stepup_test

import data.agentward.lib.stepup

now := 1764460800

auth(acr, auth_time) := {"now": now, "subject": {"sub": "user-42", "acr": acr, "authTime": auth_time}}

test_acr_in if {
	stepup.acr_in({"mfa", "phr"}) with input as auth("mfa", null)
	stepup.acr_in(["phr"]) with input as auth("phr", null)
}

test_acr_not_in_the_set if { # SU-N02
	not stepup.acr_in({"mfa"}) with input as auth("pwd", null)
}

test_null_acr_never_matches if { # SU-N01
	not stepup.acr_in({"mfa"}) with input as auth(null, null)
	not stepup.acr_in({"mfa", null}) with input as auth(null, null)
}

test_acr_without_a_token if {
	not stepup.acr_in({"mfa"}) with input as {"now": now, "subject": null}
}

test_authenticated_within if {
	stepup.authenticated_within(300) with input as auth(null, now - 299)
	stepup.authenticated_within(300) with input as auth(null, now - 300)
	stepup.authenticated_within(0) with input as auth(null, now)
}

test_authenticated_too_long_ago if { # SU-N03
	not stepup.authenticated_within(300) with input as auth(null, now - 301)
}

test_null_auth_time_is_too_old if { # SU-N04: fail closed
	not stepup.authenticated_within(300) with input as auth(null, null)
	not stepup.authenticated_within(1000000000000) with input as auth(null, null)
}

test_authenticated_within_without_a_token if {
	not stepup.authenticated_within(300) with input as {"now": now, "subject": null}
}

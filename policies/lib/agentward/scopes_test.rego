package agentward.lib.scopes_test

import data.agentward.lib.scopes

token(granted) := {"subject": {"sub": "user-42", "scopes": granted}}

no_token := {"subject": null}

test_granted_is_the_token_scopes if {
	scopes.granted == {"tools.read", "tools.write"} with input as token(["tools.read", "tools.write"])
}

test_granted_is_empty_without_a_token if {
	count(scopes.granted) == 0 with input as no_token
}

test_missing_lists_only_what_the_token_lacks if {
	scopes.missing(["tools.read", "tools.write", "admin"]) == {"tools.write", "admin"} with input as token(["tools.read"])
}

test_missing_accepts_a_set if {
	scopes.missing({"tools.read", "admin"}) == {"admin"} with input as token(["tools.read"])
}

test_missing_is_empty_when_all_granted if {
	scopes.missing(["tools.read"]) == set() with input as token(["tools.read", "tools.write"])
}

test_missing_is_everything_without_a_token if {
	scopes.missing(["tools.read", "tools.write"]) == {"tools.read", "tools.write"} with input as no_token
}

test_scopes_are_case_sensitive if {
	scopes.missing(["tools.read"]) == {"tools.read"} with input as token(["Tools.Read"])
}

test_has_all if {
	scopes.has_all(["tools.read", "tools.write"]) with input as token(["tools.write", "tools.read", "x"])
}

test_has_all_fails_when_one_is_missing if {
	not scopes.has_all(["tools.read", "tools.write"]) with input as token(["tools.read"])
}

test_has_all_fails_without_a_token if {
	not scopes.has_all(["tools.read"]) with input as no_token
}

test_has_all_of_nothing_holds if {
	scopes.has_all([]) with input as no_token
}

test_has_any if {
	scopes.has_any(["admin", "tools.read"]) with input as token(["tools.read"])
}

test_has_any_fails_when_none_granted if {
	not scopes.has_any(["admin", "tools.write"]) with input as token(["tools.read"])
}

test_has_any_fails_without_a_token if {
	not scopes.has_any(["tools.read"]) with input as no_token
}

test_has_any_of_nothing_fails if {
	not scopes.has_any([]) with input as token(["tools.read"])
}

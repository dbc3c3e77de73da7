package agentward.lib.txn_test

import data.agentward.lib.txn

buy_msft := {
	"request": {"method": "POST", "path": "/trades", "query": {"ticker": ["MSFT"]}},
	"txn": {
		"txn": "97053963-771d-49cc-a4e3-20aad399c312",
		"sub": "d084sdrt234fsaw34tr23t",
		"scopes": ["trade.stocks"],
		"tctx": {"action": "BUY", "ticker": "MSFT", "quantity": "100"},
		"reqWl": "apigateway.trust-domain.example",
	},
}

test_has_scope if { # TXN-N10
	txn.has_scope("trade.stocks") with input as buy_msft
	not txn.has_scope("trade.options") with input as buy_msft
}

test_context_matches_the_request if {
	txn.context_matches("ticker", input.request.query.ticker[0]) with input as buy_msft
}

test_context_contradicting_the_request_does_not_match if { # TXN-N11
	aapl := json.patch(buy_msft, [{"op": "replace", "path": "/request/query/ticker/0", "value": "AAPL"}])
	not txn.context_matches("ticker", input.request.query.ticker[0]) with input as aapl
	not txn.context_matches("ticker", "msft") with input as buy_msft
}

test_requested_by if {
	txn.requested_by({"apigateway.trust-domain.example"}) with input as buy_msft
	not txn.requested_by({"other.trust-domain.example"}) with input as buy_msft
}

test_everything_fails_closed_without_a_txn_token if {
	no_txn := {"txn": null}
	not txn.has_scope("trade.stocks") with input as no_txn
	not txn.context("ticker") with input as no_txn
	not txn.context_matches("ticker", "MSFT") with input as no_txn
	not txn.requested_by({"apigateway.trust-domain.example"}) with input as no_txn
}

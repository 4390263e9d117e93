"""Prometheus metrics of the service, on its own registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from web3 import Web3
from web3.middleware import Web3Middleware

REGISTRY = CollectorRegistry()
HTTP_REQUESTS = Counter(
    "tealedger_http_requests", "HTTP requests served", ["method", "status"], registry=REGISTRY
)
TRANSACTIONS_SENT = Counter(
    "tealedger_transactions_sent", "Transactions sent to the chain", registry=REGISTRY
)
ERRORS = Counter("tealedger_errors", "Errors by kind", ["kind"], registry=REGISTRY)
INDEXER_LAG = Gauge(
    "tealedger_indexer_lag_blocks", "Chain head minus last indexed block", registry=REGISTRY
)

SEND_METHODS = frozenset({"eth_sendRawTransaction", "eth_sendTransaction"})
_MIDDLEWARE = "tealedger-transactions-sent"


class _CountTransactions(Web3Middleware):
    """Counts transactions the node accepted (every write of the service goes through one)."""

    def wrap_make_request(self, make_request: Callable[..., Any]) -> Callable[..., Any]:
        """Count successful eth_send*Transaction calls."""

        def middleware(method: str, params: Any) -> Any:
            response = make_request(method, params)
            if method in SEND_METHODS and "error" not in response:
                TRANSACTIONS_SENT.inc()
            return response

        return middleware


def count_transactions(w3: Web3) -> None:
    """Make `w3` count the transactions it sends (once per Web3 instance)."""
    if _MIDDLEWARE not in w3.middleware_onion:
        w3.middleware_onion.add(_CountTransactions, name=_MIDDLEWARE)

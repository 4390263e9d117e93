"""Prometheus metrics of the service, on its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

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

"""Prometheus metrics of the service, on its own registry."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from web3 import Web3
from web3.middleware import Web3Middleware

from risk.alerts import alert_counts

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


logger = logging.getLogger(__name__)
RISK_ALERTS = "tealedger_risk_alerts"


class _AlertCounts(Collector):
    """Risk alerts by rule and status, counted in the database at every scrape (so alerts
    a `tealedger risk scan` in another process kept show up too)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The family without samples (registration must not read the database)."""
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per (rule, status) that has alerts."""
        family = self._family()
        if self.engine is not None:
            try:
                counts = alert_counts(self.engine)
            except SQLAlchemyError as exc:  # a scrape must not fail on the alert table
                logger.warning("risk alert counts unavailable: %s", exc)
                counts = {}
            for (rule, status), number in sorted(counts.items()):
                family.add_metric([rule, status], number)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        """The empty family."""
        return GaugeMetricFamily(
            RISK_ALERTS, "Risk monitor alerts by rule and status", labels=["rule", "status"]
        )


_ALERT_COUNTS = _AlertCounts()
REGISTRY.register(_ALERT_COUNTS)


def count_alerts(engine: Engine) -> None:
    """Count the alerts of `engine`'s database at every scrape (the app's database; one per
    process: the last app built wins)."""
    _ALERT_COUNTS.engine = engine

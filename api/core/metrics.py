"""Prometheus metrics of the service, on its own registry."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from chain.client import ChainClient
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


def count_transactions(client: ChainClient) -> None:
    """Count the transactions the node accepts from `client`'s senders (every write of the
    service goes through one; they send over raw JSON-RPC, past web3's middleware)."""
    client.on_sent(TRANSACTIONS_SENT.inc)


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

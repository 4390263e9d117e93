"""Alerts: one per finding key, refreshed (never reset) by later scans, and the review workflow
with its reasons and trail."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from risk.alerts import (
    AlertNotFoundError,
    AlertStatus,
    AlertTransitionError,
    alert_counts,
    change_status,
    evidence_of,
    get_alert,
    list_alerts,
    record_findings,
)
from risk.rules import Evidence, Finding


def _finding(key: str, observed_at: int = 100, returned: int = 5_000) -> Finding:
    return Finding(
        rule="cash_out", key=key, subject="loan:1", severity="high", explanation_zh="回流",
        explanation_en="came back", observed_at=observed_at,
        evidence=Evidence(loans=(1,), amounts_fen={"returned": returned}),
    )  # fmt: skip


def test_a_finding_seen_again_is_one_alert_with_fresh_evidence(engine: Engine) -> None:
    first = record_findings(engine, [_finding("a"), _finding("b")])
    assert (first.new, first.seen_again, first.by_rule) == (2, 0, {"cash_out": 2})
    (alert,), _ = list_alerts(engine, subject="loan:1", offset=0, limit=1)
    change_status(engine, alert.id or 0, AlertStatus.DISMISSED, "known refund", "监管 A")
    again = record_findings(engine, [_finding(alert.key, observed_at=200, returned=7_000)])
    assert (again.new, again.seen_again) == (0, 1)
    kept, trail = get_alert(engine, alert.id or 0)
    assert kept.status == AlertStatus.DISMISSED  # a later scan never reopens it
    assert evidence_of(kept).amounts_fen == {"returned": 7_000} and kept.observed_at == 200
    assert [(c.from_status, c.to_status, c.reason, c.by) for c in trail] == [
        ("open", "dismissed", "known refund", "监管 A")
    ]
    assert alert_counts(engine) == {("cash_out", "dismissed"): 1, ("cash_out", "open"): 1}


def test_the_workflow_moves_only_along_its_arrows(engine: Engine) -> None:
    record_findings(engine, [_finding("a")])
    (alert,), total = list_alerts(engine)
    assert total == 1 and alert.status == AlertStatus.OPEN
    with pytest.raises(AlertTransitionError, match="say why"):
        change_status(engine, alert.id or 0, AlertStatus.REVIEWED, "  ", "r")
    change_status(engine, alert.id or 0, AlertStatus.REVIEWED, "looking", "r")
    with pytest.raises(AlertTransitionError, match="cannot become open"):
        change_status(engine, alert.id or 0, AlertStatus.OPEN, "why not", "r")
    change_status(engine, alert.id or 0, AlertStatus.CONFIRMED, "merchant admitted it", "r")
    reopened = change_status(engine, alert.id or 0, AlertStatus.REVIEWED, "new facts", "r")
    assert reopened.status == AlertStatus.REVIEWED
    assert [c.to_status for c in get_alert(engine, alert.id or 0)[1]] == [
        "reviewed",
        "confirmed",
        "reviewed",
    ]
    with pytest.raises(AlertTransitionError, match="at most"):
        change_status(engine, alert.id or 0, AlertStatus.DISMISSED, "x" * 2_001, "r")
    with pytest.raises(AlertNotFoundError):
        change_status(engine, 999, AlertStatus.REVIEWED, "x", "r")
    assert list_alerts(engine, status=AlertStatus.OPEN) == ([], 0)

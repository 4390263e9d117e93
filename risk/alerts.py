"""Alerts: findings kept once per key, and the regulator's status workflow over them.

open -> reviewed -> confirmed | dismissed (a dismissal needs a reason; so does every change, so
the trail says why). A confirmed or dismissed alert may be reopened to `reviewed` with a reason.
A later scan that sees the same pattern again refreshes the alert's evidence and last-seen time
but never its status: a dismissed alert stays dismissed until someone reopens it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from risk.models import RiskAlert, RiskAlertChange
from risk.rules import Evidence, Finding


class AlertStatus(StrEnum):
    """Where an alert is in the regulator's review."""

    OPEN = "open"
    REVIEWED = "reviewed"
    DISMISSED = "dismissed"
    CONFIRMED = "confirmed"


TRANSITIONS: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.OPEN: frozenset(
        {AlertStatus.REVIEWED, AlertStatus.DISMISSED, AlertStatus.CONFIRMED}
    ),
    AlertStatus.REVIEWED: frozenset({AlertStatus.DISMISSED, AlertStatus.CONFIRMED}),
    AlertStatus.DISMISSED: frozenset({AlertStatus.REVIEWED}),
    AlertStatus.CONFIRMED: frozenset({AlertStatus.REVIEWED}),
}
MAX_REASON = 2_000


class AlertError(ValueError):
    """An alert change that is refused (the message says why)."""


class AlertNotFoundError(AlertError):
    """No alert has this id."""


class AlertTransitionError(AlertError):
    """The status cannot move this way (or needs a reason it was not given)."""


@dataclass(frozen=True)
class ScanSummary:
    """What one scan found: new alerts, ones seen again, findings per rule."""

    new: int
    seen_again: int
    by_rule: dict[str, int]


def record_findings(engine: Engine, findings: Iterable[Finding]) -> ScanSummary:
    """Keep each finding as an alert (new: open; known key: evidence and last-seen refreshed)."""
    now = _now()
    new = seen = 0
    per_rule: Counter[str] = Counter()
    with Session(engine) as session:
        for finding in findings:
            per_rule[finding.rule] += 1
            found = session.exec(select(RiskAlert).where(RiskAlert.key == finding.key)).first()
            if found is None:
                session.add(_alert(finding, now))
                new += 1
            else:
                _refresh(found, finding, now)
                session.add(found)
                seen += 1
        session.commit()
    return ScanSummary(new, seen, dict(per_rule))


def _alert(finding: Finding, now: datetime) -> RiskAlert:
    """A new, open alert."""
    return RiskAlert(
        rule=finding.rule, key=finding.key, subject=finding.subject, severity=finding.severity,
        status=AlertStatus.OPEN, explanation_zh=finding.explanation_zh,
        explanation_en=finding.explanation_en, evidence_json=finding.evidence.model_dump_json(),
        observed_at=finding.observed_at, first_seen=now, last_seen=now,
    )  # fmt: skip


def _refresh(alert: RiskAlert, finding: Finding, now: datetime) -> None:
    """The same pattern seen again: newest evidence, status untouched."""
    alert.explanation_zh, alert.explanation_en = finding.explanation_zh, finding.explanation_en
    alert.evidence_json = finding.evidence.model_dump_json()
    alert.observed_at, alert.severity, alert.last_seen = finding.observed_at, finding.severity, now


def change_status(
    engine: Engine, alert_id: int, to: AlertStatus, reason: str, by: str
) -> RiskAlert:
    """Move an alert along the workflow, keeping who, when and why."""
    reason = reason.strip()
    if not reason:
        raise AlertTransitionError("say why: every status change keeps its reason")
    if len(reason) > MAX_REASON:
        raise AlertTransitionError(f"a reason is at most {MAX_REASON} characters")
    with Session(engine) as session:
        alert = session.get(RiskAlert, alert_id)
        if alert is None:
            raise AlertNotFoundError(f"no alert {alert_id}")
        current = AlertStatus(alert.status)
        if to not in TRANSITIONS[current]:
            allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
            raise AlertTransitionError(
                f"an alert that is {current} cannot become {to} (it can become: {allowed})"
            )
        session.add(RiskAlertChange(alert_id=alert_id, from_status=current, to_status=to,
                                    reason=reason, by=by, at=_now()))  # fmt: skip
        alert.status = to
        session.add(alert)
        session.commit()
        session.refresh(alert)
        return alert


def list_alerts(
    engine: Engine,
    status: AlertStatus | None = None,
    rule: str | None = None,
    subject: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[RiskAlert], int]:
    """A page of alerts, newest observation first, and how many match in all."""
    query = select(RiskAlert)
    if status is not None:
        query = query.where(RiskAlert.status == status)
    if rule is not None:
        query = query.where(RiskAlert.rule == rule)
    if subject is not None:
        query = query.where(RiskAlert.subject == subject)
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(RiskAlert.observed_at).desc(), col(RiskAlert.id).desc())
            .offset(offset)
            .limit(limit)
        ).all()
    return list(rows), total


def get_alert(engine: Engine, alert_id: int) -> tuple[RiskAlert, list[RiskAlertChange]]:
    """One alert and its status history, oldest change first."""
    with Session(engine) as session:
        alert = session.get(RiskAlert, alert_id)
        if alert is None:
            raise AlertNotFoundError(f"no alert {alert_id}")
        changes = session.exec(
            select(RiskAlertChange)
            .where(RiskAlertChange.alert_id == alert_id)
            .order_by(col(RiskAlertChange.id))
        ).all()
    return alert, list(changes)


def alert_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """(rule, status) -> number of alerts (for /metrics and the overview)."""
    with Session(engine) as session:
        rows = session.exec(
            select(RiskAlert.rule, RiskAlert.status, func.count()).group_by(
                RiskAlert.rule, RiskAlert.status
            )
        ).all()
    return {(r, s): n for r, s, n in rows}


def evidence_of(alert: RiskAlert) -> Evidence:
    """An alert's evidence, parsed."""
    return Evidence.model_validate_json(alert.evidence_json)


def _now() -> datetime:
    """Wall-clock time of the review trail (when a person or scan acted, not chain time)."""
    return datetime.now(UTC)


def statuses(values: Sequence[str]) -> list[AlertStatus]:
    """Parse status names, naming the bad one."""
    try:
        return [AlertStatus(v) for v in values]
    except ValueError as exc:
        raise AlertError(f"{exc}; statuses are {', '.join(AlertStatus)}") from exc

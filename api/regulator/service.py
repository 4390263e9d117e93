"""The regulator's risk monitor: scans over the indexed chain, alerts across every organisation
and their review (risk.alerts does the workflow; this names wallets and shapes the answers).

Wallets are named from the service's organisations: a lender, merchant or cooperative by its
name, a farmer's wallet by the member's pseudonymous id only (never a person's name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.core.errors import Invalid
from api.core.indexed import index_ready, indexer_engine
from api.core.models import Farmer, Organisation, Role
from api.core.pagination import Page, PageParams
from api.core.types import Text
from risk.alerts import (
    MAX_REASON,
    TRANSITIONS,
    AlertStatus,
    alert_counts,
    change_status,
    evidence_of,
    get_alert,
    list_alerts,
)
from risk.flows import (
    Transfer,
    WalletDirectory,
    WalletLabel,
    Why,
    load_directory,
    wallet_transfers,
    why_moved,
)
from risk.models import RiskAlert, RiskAlertChange
from risk.rules import RULES, Evidence
from risk.scan import UnknownRuleError, scan

# The wallet kind (risk.flows.WalletLabel.kind) of each organisation role.
KINDS: dict[Role, str] = {
    Role.LENDER: "lender",
    Role.MERCHANT: "merchant",
    Role.FARMER: "farmer",
}


class RuleView(BaseModel):
    """A rule the monitor runs: its name, titles and what it looks for."""

    name: str
    title_zh: str
    title_en: str
    explanation: str


class AlertView(BaseModel):
    """An alert as listed."""

    id: int
    rule: str
    rule_title_zh: str
    rule_title_en: str
    key: str = Field(description="the pattern's identity: a later scan that sees it again")
    subject: str
    severity: str
    status: AlertStatus
    explanation_zh: str
    explanation_en: str
    observed_at: int = Field(description="chain time of the latest fact the finding rests on")
    first_seen: datetime
    last_seen: datetime


class ChangeView(BaseModel):
    """One status change: from, to, why, who, when."""

    from_status: AlertStatus
    to_status: AlertStatus
    reason: str
    by: str
    at: datetime


class AlertDetail(BaseModel):
    """An alert, its evidence, its review trail and the statuses it may move to."""

    alert: AlertView
    evidence: Evidence
    changes: list[ChangeView]
    allowed: list[AlertStatus]


Reason = Annotated[Text, Field(max_length=MAX_REASON, description="why (kept in the trail)")]
_REASON: TypeAdapter[str] = TypeAdapter(Reason)


class StatusChange(BaseModel):
    """Move an alert along the review: the new status and why."""

    status: AlertStatus
    reason: Reason


class ScanReport(BaseModel):
    """What a scan found: new alerts, ones seen again, findings per rule."""

    rules: list[str]
    chain_time: int = Field(description="the latest indexed block's time")
    findings: int
    new: int
    seen_again: int
    by_rule: dict[str, int]


class CountRow(BaseModel):
    """How many alerts of one rule are in one status."""

    rule: str
    status: AlertStatus
    count: int


class AlertCounts(BaseModel):
    """Alerts by rule and status, with totals."""

    rows: list[CountRow]
    by_status: dict[str, int]
    by_rule: dict[str, int]
    total: int


def rules() -> list[RuleView]:
    """Every registered rule."""
    return [
        RuleView(name=r.name, title_zh=r.title_zh, title_en=r.title_en, explanation=r.explanation)
        for r in RULES.values()
    ]


def rule_titles(name: str) -> tuple[str, str]:
    """(中文, English) title of a rule (its name for one no longer registered)."""
    found = RULES.get(name)
    return (found.title_zh, found.title_en) if found else (name, name)


def _view(alert: RiskAlert) -> AlertView:
    """An alert row as the API shows it."""
    assert alert.id is not None
    zh, en = rule_titles(alert.rule)
    return AlertView(
        id=alert.id, rule=alert.rule, rule_title_zh=zh, rule_title_en=en, key=alert.key,
        subject=alert.subject,
        severity=alert.severity, status=AlertStatus(alert.status),
        explanation_zh=alert.explanation_zh, explanation_en=alert.explanation_en,
        observed_at=alert.observed_at, first_seen=alert.first_seen, last_seen=alert.last_seen,
    )  # fmt: skip


def _change(change: RiskAlertChange) -> ChangeView:
    """A review-trail row as the API shows it."""
    return ChangeView(
        from_status=AlertStatus(change.from_status), to_status=AlertStatus(change.to_status),
        reason=change.reason, by=change.by, at=change.at,
    )  # fmt: skip


def alerts(
    engine: Engine, page: PageParams, status: AlertStatus | None = None, rule: str | None = None
) -> Page[AlertView]:
    """A page of alerts of every organisation, newest observation first."""
    rows, total = list_alerts(engine, status, rule, None, page.offset, page.limit)
    return Page(items=[_view(a) for a in rows], total=total, limit=page.limit, offset=page.offset)


def alert(engine: Engine, alert_id: int) -> AlertDetail:
    """One alert with its parsed evidence, review trail and next statuses (404 if unknown)."""
    row, changes = get_alert(engine, alert_id)
    allowed = sorted(TRANSITIONS[AlertStatus(row.status)])
    return AlertDetail(
        alert=_view(row),
        evidence=evidence_of(row),
        changes=[_change(c) for c in changes],
        allowed=allowed,
    )


def set_status(engine: Engine, alert_id: int, body: StatusChange, by: Organisation) -> AlertDetail:
    """Move an alert along the review, signed with the regulator's name."""
    change_status(engine, alert_id, body.status, body.reason, by.name)
    return alert(engine, alert_id)


def counts(engine: Engine) -> AlertCounts:
    """Alerts by rule and status (every registered rule listed, even without alerts)."""
    found = alert_counts(engine)
    rows = [CountRow(rule=r, status=AlertStatus(s), count=n) for (r, s), n in sorted(found.items())]
    by_status = {s.value: 0 for s in AlertStatus}
    by_rule = dict.fromkeys(RULES, 0)
    for row in rows:
        by_status[row.status.value] += row.count
        by_rule[row.rule] = by_rule.get(row.rule, 0) + row.count
    return AlertCounts(rows=rows, by_status=by_status, by_rule=by_rule, total=sum(by_rule.values()))


def wallet_names(engine: Engine) -> dict[bytes, WalletLabel]:
    """Every organisation's chain address, named: farmers by pseudonymous id only."""
    with Session(engine) as session:
        orgs = session.exec(select(Organisation)).all()
        members = {
            f.wallet_org_id: f.farmer_id
            for f in session.exec(select(Farmer).where(Farmer.wallet_org_id != None))  # noqa: E711
        }
    named: dict[bytes, WalletLabel] = {}
    for org in orgs:
        address = _address(org.chain_address)
        if address is None:
            continue
        kind = KINDS.get(org.role, "organisation")
        named[address] = WalletLabel(kind, _wallet_name(org, members.get(org.id)))
    return named


def _wallet_name(org: Organisation, farmer_id: str | None) -> str:
    """An organisation's wallet as people read it; a farmer's as its pseudonym."""
    if org.role == Role.FARMER:
        return f"茶农 farmer {farmer_id[:10]}" if farmer_id else f"茶农 farmer #{org.id}"
    return org.name


def _address(value: str) -> bytes | None:
    """A 0x address as 20 bytes (None for anything else: never a reason to fail a scan)."""
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        return None
    return raw if len(raw) == 20 else None


def check_rules(names: Iterable[str] | None) -> list[str] | None:
    """The rule names asked for, each registered (422 naming the registered ones otherwise)."""
    if names is None:
        return None
    chosen = list(dict.fromkeys(names))
    unknown = [n for n in chosen if n not in RULES]
    if unknown:
        raise UnknownRuleError(
            f"unknown rule {', '.join(unknown)}; rules are {', '.join(RULES) or 'none'}"
        )
    return chosen or None


def run_scan(indexer: Engine, service: Engine, names: Sequence[str] | None = None) -> ScanReport:
    """Run the rules (all, or `names`) over the indexed chain now and keep their findings."""
    chosen = check_rules(names)
    with index_ready():
        result = scan(indexer, service, wallet_names(service), {}, chosen)
    summary = result.summary
    return ScanReport(
        rules=list(result.rules), chain_time=result.chain_time, findings=len(result.findings),
        new=summary.new, seen_again=summary.seen_again, by_rule=summary.by_rule,
    )  # fmt: skip


def scan_database(
    database_url: str, service: Engine, names: Sequence[str] | None = None
) -> ScanReport:
    """`run_scan` on the indexer's tables of `database_url` (the service's own database)."""
    return run_scan(indexer_engine(database_url), service, names)


def reason_text(value: str) -> str:
    """A reason typed into a page's form, checked as the JSON body's is (422 with the why)."""
    try:
        return _REASON.validate_python(value)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"] if exc.errors() else "invalid"
        raise Invalid(f"理由 reason: {problem}", loc=("body", "reason")) from None


class FlowView(BaseModel):
    """One transfer into or out of a wallet, with the other side's name and why it moved."""

    tx: str
    block: int
    at: int
    direction: Literal["in", "out"]
    counterparty: str
    counterparty_name: str
    counterparty_kind: str
    amount_fen: int
    why: str = Field(description="minted, funded, disbursed, returned, repaid, sale_in, "
                     "share_out, share_repaid, claimed or direct")  # fmt: skip
    why_zh: str
    why_en: str
    loan_id: int | None


class WalletFlows(BaseModel):
    """A wallet's money, followed: who is behind it, totals, a page of its transfers."""

    wallet: str
    name: str
    kind: str
    farmers: list[str]
    in_fen: int
    out_fen: int
    total: int
    offset: int
    limit: int
    items: list[FlowView]


def wallet_flows(database_url: str, service: Engine, wallet: str, page: PageParams) -> WalletFlows:
    """Follow a wallet's money: each transfer in and out, the other side, and why it moved."""
    raw = bytes.fromhex(wallet[2:])
    with index_ready(), indexer_engine(database_url).connect() as conn:
        directory = load_directory(conn, wallet_names(service))
        found = wallet_transfers(conn, raw, page.offset, page.limit)
        why = why_moved(conn, found.transfers)
    label = directory.label(raw)
    return WalletFlows(
        wallet="0x" + raw.hex(), name=label.name, kind=label.kind,
        farmers=["0x" + f.hex() for f in sorted(directory.farmers_of.get(raw, ()))],
        in_fen=found.in_fen, out_fen=found.out_fen, total=found.total, offset=page.offset,
        limit=page.limit, items=[_flow(t, raw, directory, why[t.key]) for t in found.transfers],
    )  # fmt: skip


def _flow(t: Transfer, wallet: bytes, directory: WalletDirectory, why: Why) -> FlowView:
    """One transfer as seen from `wallet`."""
    out = t.sender == wallet
    other = t.recipient if out else t.sender
    label = directory.label(other)
    return FlowView(
        tx="0x" + t.tx_hash.hex(), block=t.block_number, at=t.at,
        direction="out" if out else "in", counterparty="0x" + other.hex(),
        counterparty_name=label.name, counterparty_kind=label.kind, amount_fen=t.amount_fen,
        why=why.kind, why_zh=why.zh, why_en=why.en, loan_id=why.loan_id,
    )  # fmt: skip

"""One scan: every registered rule over the indexed chain, findings kept as alerts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

import risk.detectors  # noqa: F401  (registers the rules)
from indexer.models import RawEvent, WindowBlock
from risk.alerts import ScanSummary, record_findings
from risk.flows import WalletLabel, flow_graph, load_directory, load_transfers
from risk.rules import RULES, Finding, ScanContext


class UnknownRuleError(ValueError):
    """A rule name that is not registered."""


@dataclass(frozen=True)
class ScanResult:
    """The findings of one scan and what became of them as alerts."""

    findings: list[Finding]
    summary: ScanSummary
    rules: tuple[str, ...]
    chain_time: int


def chain_time(conn: Connection) -> int:
    """The latest indexed block's time (0 before anything is indexed)."""
    latest = conn.execute(select(func.max(WindowBlock.timestamp))).scalar()
    if latest is None:
        latest = conn.execute(select(func.max(RawEvent.block_timestamp))).scalar()
    return int(latest or 0)


def context(
    conn: Connection,
    service: Connection | None = None,
    named: Mapping[bytes, WalletLabel] = {},
    extra: Mapping[str, object] = {},
) -> ScanContext:
    """Everything a rule reads, loaded once per scan."""
    transfers = load_transfers(conn)
    return ScanContext(
        conn=conn, service=service, directory=load_directory(conn, named), transfers=transfers,
        graph=flow_graph(transfers), now=chain_time(conn), extra=dict(extra),
    )  # fmt: skip


def find(ctx: ScanContext, names: Iterable[str] | None = None) -> list[Finding]:
    """Findings of the named rules (all when None), rule by rule."""
    chosen = list(RULES) if names is None else list(names)
    unknown = [n for n in chosen if n not in RULES]
    if unknown:
        raise UnknownRuleError(f"unknown rule {', '.join(unknown)}; rules are {', '.join(RULES)}")
    return [f for name in chosen for f in RULES[name].detect(ctx)]


def scan(
    indexer: Engine,
    alerts: Engine,
    named: Mapping[bytes, WalletLabel] = {},
    extra: Mapping[str, object] = {},
    names: Iterable[str] | None = None,
) -> ScanResult:
    """Run the rules over the indexed chain and keep their findings as alerts (`alerts` is the
    service's database: its decisions and offers are read from it too)."""
    with indexer.connect() as conn, alerts.connect() as service:
        ctx = context(conn, service, named, extra)
        findings = find(ctx, names)
    summary = record_findings(alerts, findings)
    chosen = tuple(RULES) if names is None else tuple(names)
    return ScanResult(findings, summary, chosen, ctx.now)

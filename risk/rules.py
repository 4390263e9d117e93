"""What a detector is and what it reports: named rules, findings with their evidence.

A rule reads the indexed chain through a `ScanContext` and returns findings. A finding names its
subject (the farmer, loan, wallet or lot it is about), explains itself in plain words (中文 first,
English beside), and carries the evidence a regulator checks: the transfers (with the path money
took), lots, wallets and amounts. Its `key` is stable across scans, so one pattern seen again is
one alert, not a new one each time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import networkx as nx
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection

from risk.flows import Transfer, WalletDirectory
from risk.ledger import LoanRecord, load_loans

DAY = 86_400


class Hop(BaseModel):
    """One transfer of the evidence, with the names of both wallets."""

    model_config = ConfigDict(frozen=True)

    tx: str
    block: int
    at: int
    sender: str
    sender_name: str
    recipient: str
    recipient_name: str
    amount_fen: int


class Evidence(BaseModel):
    """What a finding rests on (hex ids; pseudonymous, no personal data)."""

    model_config = ConfigDict(frozen=True)

    path: tuple[Hop, ...] = ()
    """Money's path, in order, when the rule follows money."""
    transfers: tuple[Hop, ...] = ()
    """Other transfers the finding rests on."""
    farmers: tuple[str, ...] = ()
    loans: tuple[int, ...] = ()
    lots: tuple[str, ...] = ()
    wallets: tuple[str, ...] = ()
    amounts_fen: dict[str, int] = {}
    figures: dict[str, str] = {}
    """Named measurements (ratios, yields, rates) as exact decimal strings."""


class Finding(BaseModel):
    """One rule matched: about whom, why in plain words, and the evidence."""

    model_config = ConfigDict(frozen=True)

    rule: str
    key: str
    """Stable identity: the same pattern seen by a later scan has the same key."""
    subject: str
    """What it is about, e.g. 'farmer:0x..', 'loan:12', 'wallet:0x..', 'lot:0x..'."""
    severity: str
    """high, medium or low."""
    explanation_zh: str
    explanation_en: str
    evidence: Evidence
    observed_at: int
    """Chain time of the latest fact the finding rests on."""


@dataclass
class ScanContext:
    """What every rule may read: the indexer database, the flows, who is who, chain time."""

    conn: Connection
    """The indexer's database."""
    service: Connection | None
    """The service's database (credit decisions, loan offers), when the scan has one."""
    directory: WalletDirectory
    transfers: list[Transfer]
    graph: nx.MultiDiGraph
    now: int
    """The latest indexed block's time (never the server's clock)."""
    extra: dict[str, object] = field(default_factory=dict)
    """Off-chain facts a rule may need, given by the caller (e.g. the LPR table)."""

    @cached_property
    def loans(self) -> dict[int, LoanRecord]:
        """Every indexed loan with its terms and events (read once per scan)."""
        return load_loans(self.conn)

    @cached_property
    def by_wallet(self) -> dict[bytes, list[Transfer]]:
        """Every wallet's transfers, in and out, in chain order."""
        found: dict[bytes, list[Transfer]] = defaultdict(list)
        for t in self.transfers:
            found[t.sender].append(t)
            if t.recipient != t.sender:
                found[t.recipient].append(t)
        return found

    @cached_property
    def contracts(self) -> frozenset[bytes]:
        """Wallets that are contracts (escrows, the mint, named ones): never a hop of a path."""
        return frozenset(w for w in self.graph.nodes if self.directory.is_contract(w))

    def hop(self, t: Transfer) -> Hop:
        """A transfer as evidence, with names."""
        d = self.directory
        return Hop(
            tx="0x" + t.tx_hash.hex(), block=t.block_number, at=t.at,
            sender="0x" + t.sender.hex(), sender_name=d.label(t.sender).name,
            recipient="0x" + t.recipient.hex(), recipient_name=d.label(t.recipient).name,
            amount_fen=t.amount_fen,
        )  # fmt: skip


class Rule(Protocol):
    """A named detector."""

    name: str
    title_zh: str
    title_en: str
    explanation: str
    """What it looks for, its thresholds and its blind spots (docs/risk.md repeats it)."""

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """Every finding in the indexed chain."""
        ...


RULES: dict[str, Rule] = {}


def rule(cls: Callable[[], Rule]) -> Callable[[], Rule]:
    """Register a rule class (instantiated once, with its default thresholds)."""
    instance = cls()
    RULES[instance.name] = instance
    return cls


def hexid(value: bytes) -> str:
    """0x-prefixed hex of an id or address."""
    return "0x" + value.hex()

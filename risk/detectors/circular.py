"""Circular payments: money goes round a ring of ordinary wallets and comes back where it started.

Round-tripping inflates turnover (a merchant's sales, a farmer's income) and launders loan money
through relatives or fronts. The rule looks at ordinary wallets only (escrows, the mint and
named contracts are left out, so a lender funding an escrow that returns the rest, or a farmer
repaying an escrow, can never be a ring) and finds rings of `min_len`..`max_len` wallets
(networkx `simple_cycles` with a length bound) whose transfers are time-respecting and all made
within `within_days` days of the first. Every transfer of a ring carries at least
`min_share` of the first transfer and at least `min_fen` (the circulated amount, the
narrowest hop, is reported). A ring is reported once per occurrence: its key is the sorted
wallets and the first transfer; rings that share a transfer with one already reported are the
same money seen from another start and are not reported again. Severity is high when a merchant
is in the ring (sales made up), medium otherwise.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import networkx as nx

from lending.pricing.units import format_fen
from risk.flows import Transfer
from risk.ledger import LoanRecord
from risk.money import narrowest
from risk.rules import DAY, Evidence, Finding, ScanContext, hexid, rule

Ring = list[Transfer]


@rule
class CircularPayments:
    """A -> B -> ... -> A among ordinary wallets, within a window, each hop after the last."""

    name = "circular"
    title_zh = "循环转账"
    title_en = "Circular payments"
    explanation = __doc__ or ""

    def __init__(
        self, within_days: int = 14, min_len: int = 2, max_len: int = 5,
        min_fen: int = 100_000, min_share: Fraction = Fraction(1, 2),
    ) -> None:  # fmt: skip
        self.within = within_days * DAY
        self.min_len = min_len
        self.max_len = max_len
        self.min_fen = min_fen
        self.min_share = min_share

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """One finding per ring and episode (rounds starting within the window of the first)."""
        edges = self._edges(ctx)
        graph = nx.DiGraph(list(edges))
        by_id = ctx.loans
        found: list[Finding] = []
        for cycle in nx.simple_cycles(graph, length_bound=self.max_len):
            if len(cycle) < self.min_len:
                continue
            for episode in self._episodes(self._occurrences(cycle, edges)):
                found.append(self._finding(ctx, episode, by_id))
        return sorted(found, key=lambda f: f.key)

    def _edges(self, ctx: ScanContext) -> dict[tuple[bytes, bytes], list[Transfer]]:
        """(sender, recipient) -> transfers large enough to be a hop, among ordinary wallets."""
        edges: dict[tuple[bytes, bytes], list[Transfer]] = defaultdict(list)
        d = ctx.directory
        for t in ctx.transfers:
            if t.sender == t.recipient or t.amount_fen < self.min_fen:
                continue
            if d.is_contract(t.sender) or d.is_contract(t.recipient):
                continue
            edges[(t.sender, t.recipient)].append(t)
        return edges

    def _occurrences(
        self, cycle: list[bytes], edges: dict[tuple[bytes, bytes], list[Transfer]]
    ) -> list[Ring]:
        """Every time money went round this ring, each transfer in at most one occurrence."""
        candidates: list[Ring] = []
        for start in range(len(cycle)):
            order = cycle[start:] + cycle[:start]
            hops = list(pairwise([*order, order[0]]))
            for first in edges[hops[0]]:
                ring = self._complete(first, hops[1:], edges)
                if ring is not None:
                    candidates.append(ring)
        # Ordered by the ring's last transfer: a later scan only adds rings that close later, so
        # an occurrence already reported keeps its transfers (and its key).
        candidates.sort(key=lambda r: (r[-1].key, r[0].key))
        used: set[tuple[int, int]] = set()
        kept: list[Ring] = []
        for ring in candidates:
            if any(t.key in used for t in ring):
                continue
            used.update(t.key for t in ring)
            kept.append(ring)
        return kept

    def _episodes(self, rings: list[Ring]) -> list[list[Ring]]:
        """Rounds of one ring grouped: a round starting within the window of an episode's first
        round belongs to it (money spun round three times is one alert, not three)."""
        episodes: list[list[Ring]] = []
        for ring in sorted(rings, key=lambda r: r[0].key):
            if episodes and ring[0].at <= episodes[-1][0][0].at + self.within:
                episodes[-1].append(ring)
            else:
                episodes.append([ring])
        return episodes

    def _complete(
        self,
        first: Transfer,
        rest: list[tuple[bytes, bytes]],
        edges: dict[tuple[bytes, bytes], list[Transfer]],
    ) -> Ring | None:
        """The earliest time-respecting way round from `first`, within the window, if any."""
        floor = self.min_share * first.amount_fen
        ring = [first]
        for hop in rest:
            after = ring[-1].key
            nxt = next(
                (t for t in edges[hop]
                 if t.key > after and t.at <= first.at + self.within and t.amount_fen >= floor),
                None,
            )  # fmt: skip
            if nxt is None:
                return None
            ring.append(nxt)
        return ring

    def _finding(
        self, ctx: ScanContext, episode: list[Ring], by_id: dict[int, LoanRecord]
    ) -> Finding:
        """The finding: the first round's transfers as its path, later rounds beside it."""
        ring, rounds = episode[0], len(episode)
        first, last = ring[0], episode[-1][-1]
        wallets = [t.sender for t in ring]
        circulated = narrowest(ring)
        total = sum(narrowest(r) for r in episode)
        days = Decimal(last.at - first.at) / DAY
        digest = hashlib.sha256(b"".join(sorted(wallets))).hexdigest()[:16]
        farmers = sorted({f for w in wallets for f in ctx.directory.farmers_of.get(w, ())})
        loan_ids = sorted(i for i, row in by_id.items() if row.farmer in set(farmers))
        merchant = any(w in ctx.directory.merchants for w in wallets)
        names = " -> ".join(ctx.directory.label(w).name for w in [*wallets, first.sender])
        times_zh = f"，共 {rounds} 圈" if rounds > 1 else ""
        times_en = f", {rounds} times round" if rounds > 1 else ""
        return Finding(
            rule=self.name,
            key=f"{self.name}:{digest}:{first.block_number}:{first.log_index}",
            subject=f"wallet:{hexid(first.sender)}",
            severity="high" if merchant else "medium",
            explanation_zh=(
                f"{len(wallets)} 个普通钱包在 {days:.1f} 天内经 {len(ring)} 次转账，"
                f"把至少 ¥{format_fen(circulated)} 转了一圈回到起点{times_zh}：{names}。"
            ),
            explanation_en=(
                f"At least ¥{format_fen(circulated)} went round {len(wallets)} ordinary wallets "
                f"in {len(ring)} transfers{times_en} within {days:.1f} days, back to where it "
                f"started: {names}."
            ),
            evidence=Evidence(
                path=tuple(ctx.hop(t) for t in ring),
                transfers=tuple(ctx.hop(t) for r in episode[1:] for t in r),
                farmers=tuple(hexid(f) for f in farmers),
                loans=tuple(loan_ids),
                wallets=tuple(hexid(w) for w in wallets),
                amounts_fen={
                    "first": first.amount_fen,
                    "circulated": circulated,
                    "circulated_all_rounds": total,
                },
                figures={"days": f"{days:.2f}", "hops": str(len(ring)), "rounds": str(rounds)},
            ),
            observed_at=last.at,
        )

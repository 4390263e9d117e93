"""What the money rules share: disbursements (escrow -> merchant transfers with their loan), the
ordinary-wallet test, money followed forward."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from risk.flows import Transfer, onward_paths
from risk.ledger import LoanRecord
from risk.rules import ScanContext

PLAIN_KINDS = frozenset({"unknown", "farmer", "agent"})
"""Wallets the chain does not tie to a contract, a lender, a merchant or a named organisation."""


@dataclass(frozen=True)
class Disbursement:
    """Loan money paid by a loan's escrow to an approved merchant."""

    loan: LoanRecord
    transfer: Transfer


def disbursements(ctx: ScanContext, by_id: Mapping[int, LoanRecord]) -> list[Disbursement]:
    """Escrow -> merchant transfers in chain order (repayments and returns are not merchants)."""
    found: list[Disbursement] = []
    for t in ctx.transfers:
        loan_id = ctx.directory.escrows.get(t.sender)
        if loan_id is None or loan_id not in by_id or t.recipient not in ctx.directory.merchants:
            continue
        found.append(Disbursement(by_id[loan_id], t))
    return found


def is_plain(ctx: ScanContext, wallet: bytes) -> bool:
    """An ordinary wallet: no contract, lender, merchant or named organisation behind it."""
    d = ctx.directory
    return (
        not d.is_contract(wallet)
        and wallet not in d.merchants
        and d.label(wallet).kind in PLAIN_KINDS
    )


def reached(
    ctx: ScanContext, first: Transfer, within: int, max_hops: int, cap: int
) -> dict[bytes, dict[tuple[int, int], list[Transfer]]]:
    """Wallets money from `first` reached onward: for each, by each last transfer into it, the
    path carrying the most (its narrowest hop). Paths are time-respecting, within `within`
    seconds, never through a contract, and no onward transfer is larger than `cap`."""
    best: dict[bytes, dict[tuple[int, int], list[Transfer]]] = defaultdict(dict)
    for path in onward_paths(ctx.graph, first, None, within, max_hops, ctx.contracts, cap):
        last = path[-1]
        old = best[last.recipient].get(last.key)
        if old is None or narrowest(path[1:]) > narrowest(old[1:]):
            best[last.recipient][last.key] = path
    return best


def narrowest(path: Iterable[Transfer]) -> int:
    """The amount that went all the way along a path (its smallest transfer)."""
    return min(t.amount_fen for t in path)

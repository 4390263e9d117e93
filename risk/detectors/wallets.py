"""One wallet behind several farmers: shared registrations, payouts, several borrowers' loans.

Ghost borrowers (loans in the names of people who do not farm, or do not know) end in one
wallet: the broker's. The rule reports an ordinary wallet when
- it is or was the registered wallet of at least `min_farmers` farmer ids, or received the
  settlement payouts (`farmer_settlement`, paid out to the farmer's wallet) of that many; or
- loan money of at least `min_borrowers` different borrowers reached it: a disbursement
  (escrow -> merchant) followed onward, time-respecting, at most `max_hops` transfers in all
  and `within_days` days, never through a contract, the narrowest onward hop at least
  `min_share` of the payment. Two borrowers are enough when the wallet is tied to them: it is a
  farmer's or an agent's wallet, or it paid one of those borrowers' wallets or escrows
  (repaying for them). Each borrower counts only with a transfer of its own into the wallet,
  and no onward transfer may be larger than the disbursement (a merchant paying its supplier
  for many loans at once is not one loan's money).
Severity is high when loan money is involved (the derived route, or at least two of the
farmers have loans), medium for a wallet merely shared by farmers without loans (a family).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import networkx as nx
from sqlalchemy import select

from indexer.models import Farmer, FarmerSettlement
from lending.pricing.units import format_fen
from risk.flows import Transfer
from risk.ledger import LoanRecord
from risk.money import (
    Disbursement,
    disbursements,
    is_plain,
    narrowest,
    reached,
)
from risk.rules import DAY, Evidence, Finding, ScanContext, hexid, rule


@dataclass
class WalletFacts:
    """What ties one wallet to several farmers."""

    registered: set[bytes] = field(default_factory=set)
    paid: dict[bytes, list[Transfer]] = field(default_factory=lambda: defaultdict(list))
    derived: dict[bytes, list[list[Transfer]]] = field(default_factory=lambda: defaultdict(list))
    """Borrower farmer -> the paths their loans' money took to this wallet."""


@rule
class SharedWallet:
    """A wallet registered for, paid for, or fed by the loans of several farmers."""

    name = "shared_wallet"
    title_zh = "多名农户共用一个钱包"
    title_en = "One wallet behind several farmers"
    explanation = __doc__ or ""

    def __init__(
        self, min_farmers: int = 2, min_borrowers: int = 3, within_days: int = 30,
        max_hops: int = 3, min_share: Fraction = Fraction(1, 10),
    ) -> None:  # fmt: skip
        self.min_farmers = min_farmers
        self.min_borrowers = min_borrowers
        self.within = within_days * DAY
        self.max_hops = max_hops
        self.min_share = min_share

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """One finding per wallet (its key stays while its evidence grows)."""
        by_id = ctx.loans
        facts: dict[bytes, WalletFacts] = defaultdict(WalletFacts)
        for wallet, farmers in ctx.directory.farmers_of.items():
            facts[wallet].registered |= farmers
        for farmer, t in _payouts(ctx):
            facts[t.recipient].paid[farmer].append(t)
        for d, wallet, path in self._derived(ctx, by_id):
            facts[wallet].derived[d.loan.farmer].append(path)
        found = [
            self._finding(ctx, wallet, f, by_id)
            for wallet, f in facts.items()
            if is_plain(ctx, wallet) and self._matches(ctx, wallet, f, by_id)
        ]
        return sorted(found, key=lambda f: f.key)

    def _derived(
        self, ctx: ScanContext, by_id: dict[int, LoanRecord]
    ) -> list[tuple[Disbursement, bytes, list[Transfer]]]:
        """(disbursement, wallet, path) for every ordinary wallet its money reached."""
        found: list[tuple[Disbursement, bytes, list[Transfer]]] = []
        for d in disbursements(ctx, by_id):
            pay = d.transfer
            # No onward transfer larger than the payment: that is not this loan's money alone
            # (a merchant restocking from its supplier pays for many loans at once).
            ends = reached(ctx, pay, self.within, self.max_hops, pay.amount_fen)
            for wallet, paths in ends.items():
                if not is_plain(ctx, wallet):
                    continue
                found.extend(
                    (d, wallet, p) for p in paths.values()
                    if narrowest(p[1:]) >= self.min_share * pay.amount_fen
                )  # fmt: skip
        return found

    def _matches(
        self, ctx: ScanContext, wallet: bytes, f: WalletFacts, by_id: dict[int, LoanRecord]
    ) -> bool:
        """Registered or paid for enough farmers, or fed by enough borrowers' loans."""
        if len(f.registered | set(f.paid)) >= self.min_farmers:
            return True
        borrowers = _separately_paid(f.derived)
        if len(borrowers) >= self.min_borrowers:
            return True
        return len(borrowers) >= 2 and _tied(ctx, wallet, borrowers, by_id)

    def _finding(
        self, ctx: ScanContext, wallet: bytes, f: WalletFacts, by_id: dict[int, LoanRecord]
    ) -> Finding:
        """The finding: the farmers, their loans, the payouts and the paths of loan money."""
        farmers = sorted(f.registered | set(f.paid) | set(f.derived))
        loan_ids = sorted(i for i, row in by_id.items() if row.farmer in set(farmers))
        borrowers_with_loans = {row.farmer for row in by_id.values()} & set(farmers)
        paid = [t for ts in f.paid.values() for t in ts]
        paths = [p for ps in f.derived.values() for p in ps]
        moved = {t.key: t for t in [*paid, *(t for p in paths for t in p)]}
        into: dict[tuple[int, int], int] = {}
        for p in paths:  # per transfer into the wallet: one payment counted once
            into[p[-1].key] = max(into.get(p[-1].key, 0), narrowest(p[1:]))
        derived_fen = sum(into.values())
        severe = bool(f.derived) or len(borrowers_with_loans) >= 2
        registered_at = _registered_at(ctx, f.registered)
        w = hexid(wallet)
        paid_fen = format_fen(sum(t.amount_fen for t in paid))
        return Finding(
            rule=self.name,
            key=f"{self.name}:{w}",
            subject=f"wallet:{w}",
            severity="high" if severe else "medium",
            explanation_zh=(
                f"钱包 {w} 关联 {len(farmers)} 名农户：登记为 {len(f.registered)} 名农户的钱包，"
                f"收到 {len(f.paid)} 名农户的结算款（¥{paid_fen}），{len(f.derived)} 名借款人的"
                f"贷款资金经商户流入（至少 ¥{format_fen(derived_fen)}）；"
                f"涉及贷款 {len(loan_ids)} 笔。"
            ),
            explanation_en=(
                f"Wallet {w} is behind {len(farmers)} farmers: registered for "
                f"{len(f.registered)}, received the settlement payouts of {len(f.paid)} "
                f"(¥{paid_fen}), and loan money of "
                f"{len(f.derived)} borrowers reached it through merchants (at least "
                f"¥{format_fen(derived_fen)}); {len(loan_ids)} loan(s) involved."
            ),
            evidence=Evidence(
                transfers=tuple(ctx.hop(moved[k]) for k in sorted(moved)),
                farmers=tuple(hexid(x) for x in farmers),
                loans=tuple(loan_ids),
                wallets=(w,),
                amounts_fen={
                    "paid_out": sum(t.amount_fen for t in paid),
                    "loan_money_reached": derived_fen,
                },
                figures={
                    "registered_farmers": str(len(f.registered)),
                    "paid_farmers": str(len(f.paid)),
                    "borrowers_reached": str(len(f.derived)),
                },
            ),
            observed_at=max([registered_at, *(t.at for t in moved.values())]),
        )


def _separately_paid(derived: dict[bytes, list[list[Transfer]]]) -> set[bytes]:
    """Borrowers whose money reached the wallet each by a transfer of its own (a maximum
    matching of borrowers to last transfers): one payment cannot stand for several loans."""
    graph = nx.Graph()
    top = [("farmer", b) for b in derived]
    graph.add_nodes_from(top)
    graph.add_edges_from(
        (("farmer", b), ("transfer", p[-1].key)) for b, paths in derived.items() for p in paths
    )
    matching = nx.bipartite.maximum_matching(graph, top_nodes=top)
    return {b for kind, b in top if (kind, b) in matching}


def _tied(
    ctx: ScanContext, wallet: bytes, borrowers: set[bytes], by_id: dict[int, LoanRecord]
) -> bool:
    """A farmer's or agent's wallet, or one that paid the borrowers' wallets or escrows."""
    if ctx.directory.label(wallet).kind in ("farmer", "agent"):
        return True
    theirs = {w for b in borrowers for w in ctx.directory.wallets_of.get(b, ())}
    theirs |= {row.escrow for row in by_id.values() if row.farmer in borrowers}
    return any(t.sender == wallet and t.recipient in theirs for t in ctx.transfers)


def _payouts(ctx: ScanContext) -> list[tuple[bytes, Transfer]]:
    """(farmer, transfer) for every settlement payout: SaleSettlement emits FarmerShareSettled
    and then transfers `paid_out` fen to the farmer's wallet, in the same block."""
    in_block: dict[int, list[Transfer]] = defaultdict(list)
    for t in ctx.transfers:
        if not ctx.directory.is_contract(t.recipient):
            in_block[t.block_number].append(t)
    rows = ctx.conn.execute(
        select(FarmerSettlement.block_number, FarmerSettlement.log_index, FarmerSettlement.farmer,
               FarmerSettlement.paid_out_fen)
        .where(FarmerSettlement.paid_out_fen > 0)
        .order_by(FarmerSettlement.block_number, FarmerSettlement.log_index)
    )  # fmt: skip
    found: list[tuple[bytes, Transfer]] = []
    taken: set[tuple[int, int]] = set()
    for block, log_index, farmer, paid in rows:
        after = (
            t for t in in_block[block]
            if t.log_index > log_index and t.amount_fen == paid and t.key not in taken
        )  # fmt: skip
        payout = next(after, None)
        if payout is not None:
            taken.add(payout.key)
            found.append((bytes(farmer), payout))
    return found


def _registered_at(ctx: ScanContext, farmers: set[bytes]) -> int:
    """When the latest of these farmers registered (0 when none did)."""
    if not farmers:
        return 0
    rows = ctx.conn.execute(
        select(Farmer.block_timestamp).where(Farmer.farmer.in_(list(farmers)))  # type: ignore[attr-defined]
    )
    return max((at for (at,) in rows), default=0)

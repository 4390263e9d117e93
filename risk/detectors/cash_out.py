"""Cash-out through a merchant: loan money paid to a merchant comes back to the borrower's side.

Directed payment stops the escrow paying the farmer, not a merchant paying the farmer back (a
fake invoice, a kickback). The rule follows every disbursement (escrow -> merchant) forward in
time through ordinary wallets, up to `max_hops` transfers and `within_days` days, and reports a
path that ends at the borrower's side: any wallet the farmer has had, the loan's agent, or a
wallet that dealt directly with the farmer's wallet in the `link_days` before the loan (a
relative, a front). Only paths whose narrowest hop carries at least `min_share` of the payment
count: money that trickles back in small unrelated payments is not a cash-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from lending.pricing.units import format_fen
from risk.flows import Transfer, onward_paths
from risk.ledger import LoanRecord
from risk.money import is_plain
from risk.rules import DAY, Evidence, Finding, ScanContext, hexid, rule


@rule
class CashOutThroughMerchant:
    """Escrow -> merchant -> (a few hops) -> the borrower, its agent or a linked wallet."""

    name = "cash_out"
    title_zh = "经商户套现"
    title_en = "Cash-out through a merchant"
    explanation = __doc__ or ""

    def __init__(
        self, within_days: int = 30, max_hops: int = 5, min_share: Fraction = Fraction(1, 10),
        link_days: int = 180,
    ) -> None:  # fmt: skip
        self.within = within_days * DAY
        self.max_hops = max_hops
        self.min_share = min_share
        self.link = link_days * DAY

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """One finding per disbursement whose money reached the borrower's side."""
        by_id = ctx.loans
        found: list[Finding] = []
        for t in ctx.transfers:
            loan_id = ctx.directory.escrows.get(t.sender)
            if loan_id is None or loan_id not in by_id or ctx.directory.is_contract(t.recipient):
                continue
            parties = by_id[loan_id]
            targets = self._borrower_side(ctx, parties)
            if t.recipient in targets:
                continue  # a disbursement to the borrower's side is another rule's business
            path = self._best_path(ctx, t, targets)
            if path is not None:
                found.append(self._finding(ctx, parties, path))
        return found

    def _borrower_side(self, ctx: ScanContext, parties: LoanRecord) -> set[bytes]:
        """The farmer's wallets, the agent, and wallets that dealt with the farmer's wallets."""
        own = set(ctx.directory.wallets_of.get(parties.farmer, ())) | {parties.borrower}
        side = own | ({parties.agent} if parties.agent != bytes(20) else set())
        start = parties.issued_at - self.link
        for t in (t for w in own for t in ctx.by_wallet.get(w, ())):
            if not start <= t.at <= parties.issued_at:
                continue
            other = t.recipient if t.sender in own else t.sender if t.recipient in own else None
            if other is not None and is_plain(ctx, other):
                side.add(other)
        return side

    def _best_path(
        self, ctx: ScanContext, first: Transfer, targets: set[bytes]
    ) -> list[Transfer] | None:
        """The path back carrying the most money (its narrowest hop), if any is large enough."""
        paths = onward_paths(ctx.graph, first, targets, self.within, self.max_hops, ctx.contracts)
        best = max(paths, key=lambda p: (min(h.amount_fen for h in p[1:]), -len(p)), default=None)
        if best is None or min(h.amount_fen for h in best[1:]) < self.min_share * first.amount_fen:
            return None
        return best

    def _finding(self, ctx: ScanContext, parties: LoanRecord, path: list[Transfer]) -> Finding:
        """The finding, with the path as evidence."""
        first, last = path[0], path[-1]
        back = min(h.amount_fen for h in path[1:])
        days = Decimal(last.at - first.at) / DAY
        merchant = ctx.directory.label(first.recipient).name
        end = ctx.directory.label(last.recipient).name
        return Finding(
            rule=self.name,
            key=f"{self.name}:{parties.loan_id}:{first.block_number}:{first.log_index}",
            subject=f"loan:{parties.loan_id}",
            severity="high",
            explanation_zh=(
                f"贷款 #{parties.loan_id} 付给{merchant}的 ¥{format_fen(first.amount_fen)} 中，"
                f"至少 ¥{format_fen(back)} 经 {len(path) - 1} 次转账在 {days:.1f} 天内回到借款方"
                f"（{end}）。"
            ),
            explanation_en=(
                f"Of the ¥{format_fen(first.amount_fen)} loan #{parties.loan_id} paid to "
                f"{merchant}, at least ¥{format_fen(back)} came back to the borrower's side "
                f"({end}) in {len(path) - 1} transfer(s) within {days:.1f} days."
            ),
            evidence=Evidence(
                path=tuple(ctx.hop(h) for h in path),
                farmers=(hexid(parties.farmer),),
                loans=(parties.loan_id,),
                wallets=tuple(hexid(h.recipient) for h in path),
                amounts_fen={"disbursed": first.amount_fen, "returned": back},
                figures={"days": f"{days:.2f}", "hops": str(len(path) - 1)},
            ),
            observed_at=last.at,
        )

"""Merchants that take too much of the loan money: one lender's favourite, a new merchant's surge.

Directed payment only says the escrow pays an approved merchant; it does not say which. A
lender (or its agent) steering borrowers to one merchant, or a merchant approved just to
collect a season's loans (a front), shows in where the disbursements (escrow -> merchant
transfers, joined with the loan's lender) go:
- `merchant_concentration`: one merchant took more than `max_share` of a lender's disbursed
  fen while at least `min_alternatives` other merchants were approved in a category the
  merchant is approved for (the lender had a choice), and so many of the lender's loans paid it
  that chance cannot explain it: under the null of each loan choosing uniformly among the
  approved merchants (at most `reachable` of them: a farmer reaches a few shops, not every one
  the registry approves), the exact binomial tail of that many loans or more giving it most of
  their money, times the number of
  merchants that could have been the favourite (Bonferroni), is below `alpha`. A small lender is
  judged too, once its loans are many enough to be significant (5 of 5 with 2 alternatives).
- `new_merchant_surge`: in its first `within_days` days after its first approval a merchant
  received more than `factor` times the median inflow of the established merchants (approved at
  least `within_days` before it, with inflow) over the same days in money, or more loans than
  chance allows (over `factor` times their median number, or a Poisson tail under `alpha` at
  the median's rate: a front collecting many small loans), from at least `min_loans` loans (one
  large order is not a surge); at least `min_established` established merchants make the
  baseline. No fixed amount: the baseline is the region's own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from sqlalchemy import select

from indexer.models import MerchantApproval
from lending.pricing.units import format_fen
from risk.figures import binomial_tail, decimal_str, median, poisson_tail
from risk.money import Disbursement, disbursements
from risk.rules import DAY, Evidence, Finding, ScanContext, hexid, rule

MAX_EVIDENCE = 50
"""Transfers listed in a finding (the latest); the figures count them all."""


@dataclass
class Approvals:
    """When merchants were first approved, and for which categories."""

    first: dict[bytes, int] = field(default_factory=dict)
    categories: dict[bytes, set[bytes]] = field(default_factory=lambda: defaultdict(set))
    approved_in: dict[bytes, set[bytes]] = field(default_factory=lambda: defaultdict(set))


def _approvals(ctx: ScanContext) -> Approvals:
    """Every approval the registry emitted (revocations do not undo a past choice)."""
    found = Approvals()
    rows = ctx.conn.execute(
        select(MerchantApproval.merchant, MerchantApproval.category,
               MerchantApproval.block_timestamp).where(MerchantApproval.approved)
    )  # fmt: skip
    for merchant, category, at in rows:
        m, c = bytes(merchant), bytes(category)
        found.first[m] = min(at, found.first.get(m, at))
        found.categories[m].add(c)
        found.approved_in[c].add(m)
    return found


@dataclass
class LenderBook:
    """One lender's disbursements, by merchant."""

    loans: set[int] = field(default_factory=set)
    total: int = 0
    by_merchant: dict[bytes, list[Disbursement]] = field(default_factory=lambda: defaultdict(list))


def _favouring(book: LenderBook, merchant: bytes) -> int:
    """How many of the lender's loans paid this merchant more than half of what they paid."""
    per_loan: dict[int, int] = defaultdict(int)
    for ds in book.by_merchant.values():
        for d in ds:
            per_loan[d.loan.loan_id] += d.transfer.amount_fen
    mine: dict[int, int] = defaultdict(int)
    for d in book.by_merchant[merchant]:
        mine[d.loan.loan_id] += d.transfer.amount_fen
    return sum(1 for loan, fen in mine.items() if 2 * fen > per_loan[loan])


@rule
class MerchantConcentration:
    """One merchant took most of one lender's disbursements, though others were approved."""

    name = "merchant_concentration"
    title_zh = "放款集中于单一商户"
    title_en = "One merchant takes most of a lender's loans"
    explanation = __doc__ or ""

    def __init__(
        self, max_share: Fraction = Fraction(1, 2), alpha: Fraction = Fraction(1, 20),
        min_alternatives: int = 2, reachable: int = 3,
    ) -> None:  # fmt: skip
        self.max_share = max_share
        self.alpha = alpha
        self.min_alternatives = min_alternatives
        self.reachable = reachable

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """At most one finding per lender: its top merchant."""
        books: dict[bytes, LenderBook] = defaultdict(LenderBook)
        for d in disbursements(ctx, ctx.loans):
            book = books[d.loan.lender]
            book.loans.add(d.loan.loan_id)
            book.total += d.transfer.amount_fen
            book.by_merchant[d.transfer.recipient].append(d)
        approvals = _approvals(ctx)
        found: list[Finding] = []
        for lender, book in sorted(books.items()):
            if not book.total:
                continue
            top = max(sorted(book.by_merchant), key=lambda m: _fen(book.by_merchant[m]))
            share = Fraction(_fen(book.by_merchant[top]), book.total)
            others = {m for c in approvals.categories[top] for m in approvals.approved_in[c]}
            others.discard(top)
            if share <= self.max_share or len(others) < self.min_alternatives:
                continue
            # Farmers reach few shops whatever the registry approves: more choices than
            # `reachable` would make any lead look significant.
            choices = min(len(others) + 1, self.reachable)
            chance = choices * binomial_tail(_favouring(book, top), len(book.loans),
                                             Fraction(1, choices))  # fmt: skip
            if chance >= self.alpha:
                continue  # so few loans that one merchant's lead may be chance
            found.append(self._finding(ctx, lender, top, share, others, books))
        return found

    def _finding(
        self, ctx: ScanContext, lender: bytes, merchant: bytes, share: Fraction,
        others: set[bytes], books: dict[bytes, LenderBook],
    ) -> Finding:  # fmt: skip
        """The finding, with the merchant's share elsewhere for comparison."""
        book = books[lender]
        paid = book.by_merchant[merchant]
        elsewhere_total = sum(b.total for le, b in books.items() if le != lender)
        elsewhere_fen = sum(_fen(b.by_merchant.get(merchant, [])) for le, b in books.items()
                            if le != lender)  # fmt: skip
        elsewhere = Fraction(elsewhere_fen, elsewhere_total) if elsewhere_total else None
        severe = elsewhere is not None and elsewhere * 2 < share
        pct = decimal_str(share * 100, 2)
        at_others = f"{decimal_str(elsewhere * 100, 2)}%" if elsewhere is not None else "n/a"
        name, lname = ctx.directory.label(merchant).name, ctx.directory.label(lender).name
        loan_ids = sorted({d.loan.loan_id for d in paid})
        figures = {
            "share": decimal_str(share),
            "loans": str(len(book.loans)),
            "loans_paying_merchant": str(len(loan_ids)),
            "merchants_used": str(len(book.by_merchant)),
            "approved_alternatives": str(len(others)),
        }
        if elsewhere is not None:
            figures["share_at_other_lenders"] = decimal_str(elsewhere)
        return Finding(
            rule=self.name,
            key=f"{self.name}:{hexid(lender)}:{hexid(merchant)}",
            subject=f"wallet:{hexid(lender)}",
            severity="high" if severe else "medium",
            explanation_zh=(
                f"{lname} {hexid(lender)} 的 {len(book.loans)} 笔贷款共放款 "
                f"¥{format_fen(book.total)}，其中 {pct}% 付给了同一{name} {hexid(merchant)}"
                f"（另有 {len(others)} 家同类商户获批；其他贷款机构付给它的比例：{at_others}）。"
            ),
            explanation_en=(
                f"Of the ¥{format_fen(book.total)} disbursed over {len(book.loans)} loans of "
                f"{lname} {hexid(lender)}, {pct}% went to one merchant {hexid(merchant)} "
                f"({len(others)} other merchants were approved for its categories; its share at "
                f"other lenders: {at_others})."
            ),
            evidence=Evidence(
                transfers=tuple(ctx.hop(d.transfer) for d in paid[-MAX_EVIDENCE:]),
                farmers=tuple(sorted({hexid(d.loan.farmer) for d in paid})),
                loans=tuple(loan_ids),
                wallets=(hexid(lender), hexid(merchant)),
                amounts_fen={"lender_disbursed": book.total, "merchant_received": _fen(paid)},
                figures=figures,
            ),
            observed_at=max(d.transfer.at for d in paid),
        )


@rule
class NewMerchantSurge:
    """A newly approved merchant's first weeks bring far more loan money than usual."""

    name = "new_merchant_surge"
    title_zh = "新商户放款激增"
    title_en = "New merchant's surge of loan money"
    explanation = __doc__ or ""

    def __init__(
        self, within_days: int = 30, factor: int = 3, min_loans: int = 3, min_established: int = 3,
        alpha: Fraction = Fraction(1, 20),
    ) -> None:  # fmt: skip
        self.within = within_days * DAY
        self.factor = factor
        self.min_loans = min_loans
        self.min_established = min_established
        self.alpha = alpha

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """One finding per merchant whose first window stands out."""
        inflow: dict[bytes, list[Disbursement]] = defaultdict(list)
        for d in disbursements(ctx, ctx.loans):
            inflow[d.transfer.recipient].append(d)
        first = _approvals(ctx).first
        found: list[Finding] = []
        for merchant, approved_at in sorted(first.items()):
            start, end = approved_at, approved_at + self.within
            mine = [d for d in inflow[merchant] if start <= d.transfer.at <= end]
            fen, count = _fen(mine), _loan_count(mine)
            if count < self.min_loans:
                continue
            window = [
                [d for d in inflow[m] if start <= d.transfer.at <= end]
                for m, at in first.items()
                if m != merchant and at <= approved_at - self.within
            ]
            baseline = [w for w in window if w]
            if len(baseline) < self.min_established:
                continue
            typical = Typical(median(_fen(w) for w in baseline),
                              median(_loan_count(w) for w in baseline), len(baseline))  # fmt: skip
            if fen > self.factor * typical.fen or self._many(count, typical):
                found.append(self._finding(ctx, merchant, mine, typical))
        return found

    def _many(self, count: int, typical: Typical) -> bool:
        """More loans than chance allows: above `factor` x the established median, or so many
        that a merchant drawing loans at the median's rate would reach them with probability
        under `alpha` (Poisson: loans arrive independently; 6 where the median is 2 is p=0.017)."""
        return (
            count > self.factor * typical.loans or poisson_tail(count, typical.loans) < self.alpha
        )

    def _finding(
        self, ctx: ScanContext, merchant: bytes, mine: list[Disbursement], typical: Typical
    ) -> Finding:
        """The finding: the first window's money and loans against the established medians."""
        fen, count = _fen(mine), _loan_count(mine)
        ratio = Fraction(fen) / typical.fen
        loans_ratio = Fraction(count) / typical.loans
        days = self.within // DAY
        m = hexid(merchant)
        loan_ids = sorted({d.loan.loan_id for d in mine})
        lenders = sorted({hexid(d.loan.lender) for d in mine})
        usual = f"¥{format_fen(int(typical.fen))}, {decimal_str(typical.loans, 1)}"
        return Finding(
            rule=self.name,
            key=f"{self.name}:{m}",
            subject=f"wallet:{m}",
            severity="high" if max(ratio, loans_ratio) > 2 * self.factor else "medium",
            explanation_zh=(
                f"商户 {m} 获批后 {days} 天内收到 {count} 笔贷款的放款 ¥{format_fen(fen)}，"
                f"金额是同期 {typical.merchants} 家老商户中位数的 {decimal_str(ratio, 2)} 倍，"
                f"笔数是中位数的 {decimal_str(loans_ratio, 2)} 倍（中位数 {usual} 笔）。"
            ),
            explanation_en=(
                f"Merchant {m} received ¥{format_fen(fen)} from {count} loan(s) in its first "
                f"{days} days after approval: {decimal_str(ratio, 2)} times the median money and "
                f"{decimal_str(loans_ratio, 2)} times the median number of loans of "
                f"{typical.merchants} established merchants over the same days ({usual} loans)."
            ),
            evidence=Evidence(
                transfers=tuple(ctx.hop(d.transfer) for d in mine[-MAX_EVIDENCE:]),
                farmers=tuple(sorted({hexid(d.loan.farmer) for d in mine})),
                loans=tuple(loan_ids),
                wallets=(m, *lenders),
                amounts_fen={"first_window_inflow": fen, "established_median": int(typical.fen)},
                figures={
                    "ratio_to_median": decimal_str(ratio),
                    "loans_ratio_to_median": decimal_str(loans_ratio),
                    "established_median_fen": decimal_str(typical.fen, 1),
                    "established_median_loans": decimal_str(typical.loans, 1),
                    "loans_poisson_p": decimal_str(poisson_tail(count, typical.loans), 6),
                    "established_merchants": str(typical.merchants),
                    "window_days": str(days),
                },
            ),
            observed_at=max(d.transfer.at for d in mine),
        )


@dataclass(frozen=True)
class Typical:
    """The established merchants' medians over the same days: money and number of loans."""

    fen: Fraction
    loans: Fraction
    merchants: int


def _loan_count(paid: Sequence[Disbursement]) -> int:
    """How many loans these disbursements came from."""
    return len({d.loan.loan_id for d in paid})


def _fen(paid: Sequence[Disbursement]) -> int:
    """The fen paid by these disbursements."""
    return sum(d.transfer.amount_fen for d in paid)

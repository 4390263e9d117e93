"""Lending patterns: stacked loans and applications (`loan_stacking`), quick re-borrowing
(`rapid_reborrow`).

`loan_stacking` reports (a) a loan issued while another loan of the same borrower was still
open (issued, not closed, and not merely waiting for a status refresh: past its draw deadline
with nothing owed and nothing reserved), high when the loans come from different lenders or
farmer ids; loans never funded are left out (they carried no money). A borrower is a farmer id,
or several ids whose loans paid into one wallet: the LoanFactory allows one open loan per farmer
id, so two ids on one wallet is how one person holds two loans at once; and (b) credit
decisions for one farmer by at least `min_lenders` different lenders within `window_days`
(the service's `credit_decision` table; every outcome counts, a refusal is an application too),
grouped into one finding per episode.

`rapid_reborrow` reports a loan issued within `within_days` of the farmer's previous loan being
repaid, whose principal is at least `min_principal_ratio` of that loan's and of which at least
`min_drawn_share` was paid to merchants within `draw_days` of issue: a loan repaid with the next
one (evergreening), the debt never really going away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

from sqlalchemy import select

from lending.credit.models import CreditDecisionRow
from lending.credit.policy import Outcome
from lending.pricing.units import format_fen
from risk.figures import days_str, decimal_str
from risk.ledger import LoanRecord, by_farmer, by_person
from risk.rules import DAY, Evidence, Finding, ScanContext, hexid, rule


@dataclass(frozen=True)
class Decision:
    """A credit decision as the stacking rule reads it."""

    decision_id: str
    farmer: str
    lender: str
    at: int
    outcome: str


@rule
class LoanStacking:
    """Overlapping loans of one farmer; applications at several lenders in a short window."""

    name = "loan_stacking"
    title_zh = "多头借贷"
    title_en = "Loan stacking"
    explanation = __doc__ or ""

    def __init__(self, window_days: int = 30, min_lenders: int = 2) -> None:
        self.window = window_days * DAY
        self.min_lenders = min_lenders

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """Overlap findings (chain) and application findings (service, when there is one)."""
        found = self._overlaps(ctx)
        if ctx.service is not None:
            found += self._applications(ctx)
        return found

    # ------------------------------------------------------------------------ overlapping loans

    def _overlaps(self, ctx: ScanContext) -> list[Finding]:
        """One finding per loan issued while the same person (farmer id, or ids sharing a
        borrowing wallet) had another loan open."""
        found: list[Finding] = []
        for loans in by_person(ctx.loans):
            funded = [r for r in loans if r.ever_funded()]
            for i, new in enumerate(funded):
                earlier = [r for r in funded[:i] if r.open_at(new.issued_at)]
                if earlier:
                    found.append(self._overlap(earlier, new))
        return found

    def _overlap(self, earlier: list[LoanRecord], new: LoanRecord) -> Finding:
        """The finding for `new`, issued while `earlier` were open."""
        lenders = {r.lender for r in earlier} | {new.lender}
        other = any(r.lender != new.lender for r in earlier)
        owed = sum(r.owed_by(new.issued_at) for r in earlier)
        exposure = sum(r.principal_fen for r in earlier) + new.principal_fen
        ids = ", ".join(f"#{r.loan_id}" for r in earlier)
        farmers = sorted({hexid(r.farmer) for r in (*earlier, new)})
        wallets = {r.borrower for r in (*earlier, new) if any(r.borrower)}
        where_zh = f"来自 {len(lenders)} 家放贷机构" if other else "来自同一放贷机构"
        where_en = f"from {len(lenders)} lenders" if other else "from the same lender"
        who_zh = f"（{len(farmers)} 个农户编号共用一个收款钱包）" if len(farmers) > 1 else ""
        who_en = (
            f" ({len(farmers)} farmer ids borrowing into one wallet)" if len(farmers) > 1 else ""
        )
        return Finding(
            rule=self.name,
            key=f"{self.name}:overlap:{new.loan_id}",
            subject=f"farmer:{hexid(new.farmer)}",
            severity="high" if other or len(farmers) > 1 else "medium",
            explanation_zh=(
                f"农户在贷款 {ids} 尚未结清时又获得贷款 #{new.loan_id}"
                f"（¥{format_fen(new.principal_fen)}），{where_zh}{who_zh}；"
                f"同时在贷本金合计 ¥{format_fen(exposure)}，放款时旧贷欠款 ¥{format_fen(owed)}。"
            ),
            explanation_en=(
                f"Loan #{new.loan_id} (¥{format_fen(new.principal_fen)}) was issued while loan(s) "
                f"{ids} of the same borrower were still open, {where_en}{who_en}; principal open "
                f"at once ¥{format_fen(exposure)}, ¥{format_fen(owed)} owed on the earlier "
                f"loan(s) then."
            ),
            evidence=Evidence(
                farmers=tuple(farmers),
                loans=(*(r.loan_id for r in earlier), new.loan_id),
                wallets=tuple(sorted(hexid(x) for x in lenders | wallets)),
                amounts_fen={
                    "new_principal": new.principal_fen,
                    "open_principal": exposure - new.principal_fen,
                    "owed_at_issue": owed,
                    "total_principal": exposure,
                },
                figures={
                    "open_loans": str(len(earlier)),
                    "lenders": str(len(lenders)),
                    "farmer_ids": str(len(farmers)),
                },
            ),
            observed_at=new.issued_at,
        )

    # ---------------------------------------------------------------- applications at lenders

    def _applications(self, ctx: ScanContext) -> list[Finding]:
        """One finding per episode of decisions by several lenders within the window."""
        assert ctx.service is not None
        found: list[Finding] = []
        for decisions in _decisions(ctx).values():
            for episode in self._episodes(decisions):
                found.append(self._application(episode))
        return found

    def _episodes(self, decisions: list[Decision]) -> list[list[Decision]]:
        """Runs of decisions that each close a window holding `min_lenders` lenders; a run
        keeps growing while the next such decision is within the window of the last one (the
        episode's first decision names it, so later decisions never change its key)."""
        episodes: list[list[Decision]] = []
        for i, d in enumerate(decisions):
            window = [e for e in decisions[: i + 1] if e.at > d.at - self.window]
            if len({e.lender for e in window}) < self.min_lenders:
                continue
            last = episodes[-1][-1] if episodes else None
            if last is not None and d.at - last.at < self.window:
                episodes[-1].extend(e for e in window if e not in episodes[-1])
                episodes[-1].sort(key=lambda e: (e.at, e.decision_id))
            else:
                episodes.append(window)
        return episodes

    def _application(self, episode: list[Decision]) -> Finding:
        """The finding for one episode."""
        first, last = episode[0], episode[-1]
        lenders = sorted({d.lender for d in episode})
        approved = sum(1 for d in episode if d.outcome == Outcome.APPROVE)
        span = last.at - first.at
        return Finding(
            rule=self.name,
            key=f"{self.name}:applications:{first.decision_id}",
            subject=f"farmer:{first.farmer}",
            severity="high" if len(lenders) > self.min_lenders else "medium",
            explanation_zh=(
                f"农户在 {days_str(span)} 天内向 {len(lenders)} 家放贷机构申请贷款，"
                f"共 {len(episode)} 次授信决定（{approved} 次批准）。"
            ),
            explanation_en=(
                f"The farmer applied to {len(lenders)} lenders within {days_str(span)} days: "
                f"{len(episode)} credit decisions ({approved} approved)."
            ),
            evidence=Evidence(
                farmers=(first.farmer,),
                wallets=tuple(lenders),
                figures={
                    "lenders": str(len(lenders)),
                    "decisions": str(len(episode)),
                    "approved": str(approved),
                    "span_days": days_str(span),
                    "window_days": days_str(self.window),
                },
            ),
            observed_at=last.at,
        )


def _decisions(ctx: ScanContext) -> dict[str, list[Decision]]:
    """Every credit decision by farmer, oldest first (ids and addresses lower-case)."""
    assert ctx.service is not None
    rows = ctx.service.execute(
        select(
            CreditDecisionRow.decision_id, CreditDecisionRow.farmer_id, CreditDecisionRow.lender,
            CreditDecisionRow.decided_at, CreditDecisionRow.outcome,
        )
    )  # fmt: skip
    grouped: dict[str, list[Decision]] = {}
    for decision_id, farmer, lender, decided_at, outcome in rows:
        d = Decision(decision_id, farmer.lower(), lender.lower(), _unix(decided_at), outcome)
        grouped.setdefault(d.farmer, []).append(d)
    for decisions in grouped.values():
        decisions.sort(key=lambda d: (d.at, d.decision_id))
    return grouped


def _unix(at: datetime) -> int:
    """A stored datetime as unix seconds (naive means UTC, as SQLite returns it)."""
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


# ------------------------------------------------------------------------------ re-borrowing


@rule
class RapidReborrow:
    """A new loan right after the last was repaid, as large, and drawn at once."""

    name = "rapid_reborrow"
    title_zh = "还旧借新"
    title_en = "Rapid re-borrowing"
    explanation = __doc__ or ""

    def __init__(
        self, within_days: int = 14, min_principal_ratio: Fraction = Fraction(9, 10),
        min_drawn_share: Fraction = Fraction(9, 10), draw_days: int = 5,
    ) -> None:  # fmt: skip
        self.within = within_days * DAY
        self.min_principal_ratio = min_principal_ratio
        self.min_drawn_share = min_drawn_share
        self.draw = draw_days * DAY

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """One finding per loan that matches all three conditions."""
        found: list[Finding] = []
        for farmer, loans in by_farmer(ctx.loans).items():
            for new in loans:
                prev = _previous_repaid(loans, new)
                if prev is not None and self._matches(prev[0], prev[1], new):
                    found.append(self._finding(farmer, prev[0], prev[1], new))
        return found

    def _matches(self, prev: LoanRecord, repaid_at: int, new: LoanRecord) -> bool:
        """Soon after, at least as large (relatively) and drawn almost at once."""
        soon = new.issued_at - repaid_at <= self.within
        large = Fraction(new.principal_fen, prev.principal_fen) >= self.min_principal_ratio
        drawn = Fraction(new.drawn_by(new.issued_at + self.draw), new.principal_fen)
        return soon and large and drawn >= self.min_drawn_share

    def _finding(self, farmer: bytes, prev: LoanRecord, repaid_at: int, new: LoanRecord) -> Finding:
        """The finding for `new`, issued soon after `prev` was repaid."""
        gap = new.issued_at - repaid_at
        drawn = new.drawn_by(new.issued_at + self.draw)
        ratio = Fraction(new.principal_fen, prev.principal_fen)
        share = Fraction(drawn, new.principal_fen)
        last_draw = max((at for at, _ in new.disbursed if at <= new.issued_at + self.draw))
        old, fresh = format_fen(prev.principal_fen), format_fen(new.principal_fen)
        took = days_str(last_draw - new.issued_at)
        return Finding(
            rule=self.name,
            key=f"{self.name}:{new.loan_id}",
            subject=f"farmer:{hexid(farmer)}",
            severity="high" if ratio > 1 else "medium",
            explanation_zh=(
                f"贷款 #{prev.loan_id}（¥{old}）还清后 {days_str(gap)} 天，农户又获得贷款 "
                f"#{new.loan_id}（¥{fresh}，为前笔的 {pct(ratio)}%），并在放款后 {took} 天内"
                f"支用 ¥{format_fen(drawn)}（{pct(share)}%）：疑似借新还旧。"
            ),
            explanation_en=(
                f"{days_str(gap)} days after loan #{prev.loan_id} (¥{old}) was repaid, loan "
                f"#{new.loan_id} (¥{fresh}, {pct(ratio)}% of it) was issued and "
                f"¥{format_fen(drawn)} ({pct(share)}%) of it drawn within {took} days: the debt "
                "may be rolled over."
            ),
            evidence=Evidence(
                farmers=(hexid(farmer),),
                loans=(prev.loan_id, new.loan_id),
                wallets=tuple(sorted({hexid(prev.lender), hexid(new.lender)})),
                amounts_fen={
                    "previous_principal": prev.principal_fen,
                    "new_principal": new.principal_fen,
                    "drawn": drawn,
                },
                figures={
                    "days_after_repaid": days_str(gap),
                    "principal_ratio": decimal_str(ratio),
                    "drawn_share": decimal_str(share),
                    "days_to_draw": days_str(last_draw - new.issued_at),
                },
            ),
            observed_at=last_draw,
        )


def pct(value: Fraction) -> str:
    """A ratio in percent, one decimal."""
    return decimal_str(value * 100, 1)


def _previous_repaid(loans: list[LoanRecord], new: LoanRecord) -> tuple[LoanRecord, int] | None:
    """The farmer's loan repaid most recently before `new` was issued, and when."""
    repaid = [
        (r, at)
        for r in loans
        if r.loan_id != new.loan_id
        and (at := r.repaid_at()) is not None
        and r.issued_at <= new.issued_at
        and at <= new.issued_at
    ]
    return max(repaid, key=lambda p: (p[1], p[0].loan_id), default=None)

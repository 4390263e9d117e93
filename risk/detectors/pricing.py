"""Pricing above the cap (`apr_above_cap`): a loan whose annualized rate exceeds the rate cap in
force on its contract date (lending.pricing.caps: the lower of the hard cap and a multiple of the
1-year LPR fixing in force then).

The rate judged: for a loan issued through the service, the disclosure the farmer was shown
(`loan_offer`, matched by escrow, else loan id): the figure the cap policy's basis names (by
default the highest of the Reg Z APR, the PBoC simple and compound annualized rates, or the
nominal contract rate if higher), on the disclosure's start date. For a loan issued without the
service, the Reg Z APR of its on-chain terms: the principal advanced on the issue date (UTC), the
total due paid once on the due date. That is a lower bound of the true APR (an instalment loan
repays earlier, which only raises it), so it never reports a lawful loan, but it misses an
instalment loan that is above the cap only through its schedule.

The LPR table is `ctx.extra["lpr"]` when the caller gives one, else the one the lending CLI
loads (the user's table, else the shipped one); the cap policy `ctx.extra["cap_policy"]`, else
the default. A loan dated after the table's validity (or before its first fixing) cannot be
judged: it is skipped and counted in `ctx.extra["skipped"]["apr_above_cap"]`, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import ValidationError
from sqlalchemy import select

from lending.errors import LendingError, LprTableError
from lending.loans.models import LoanOfferRow
from lending.pricing.apr import APR_PLACES
from lending.pricing.caps import DEFAULT_POLICY, CapBasis, CapCheck, CapPolicy, evaluate_rate_cap
from lending.pricing.disclosure import Disclosure
from lending.pricing.lpr import LprTable, load_lpr_table
from lending.pricing.regz_dates import actuarial_apr_dated
from lending.pricing.units import format_fen
from risk.ledger import LoanRecord
from risk.rules import Evidence, Finding, ScanContext, hexid, rule


@dataclass(frozen=True)
class Priced:
    """The annualized rate a loan is judged by, and where it comes from."""

    apr_pct: Decimal
    """The Reg Z APR (disclosed, or computed from the chain)."""
    rate_pct: Decimal
    """The figure checked against the cap."""
    what: str
    contract_date: date
    source: str
    """'disclosure' or 'chain'."""


@rule
class AprAboveCap:
    """A loan priced above the rate cap in force on its date."""

    name = "apr_above_cap"
    title_zh = "利率超上限"
    title_en = "Rate above the cap"
    explanation = __doc__ or ""

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """One finding per loan above the cap; loans that cannot be judged are counted."""
        table = _table(ctx)
        policy = ctx.extra.get("cap_policy", DEFAULT_POLICY)
        if not isinstance(policy, CapPolicy):
            raise TypeError("extra['cap_policy'] must be a lending.pricing.CapPolicy")
        offers = _offers(ctx)
        skipped = {"stale_lpr": 0, "unpriced": 0}
        found: list[Finding] = []
        for loan in sorted(ctx.loans.values(), key=lambda r: r.loan_id):
            priced = _priced(loan, offers, policy)
            if priced is None:
                skipped["unpriced"] += 1
                continue
            try:
                check = evaluate_rate_cap(
                    priced.rate_pct, priced.contract_date, policy, table, priced.what
                )
            except LprTableError:
                skipped["stale_lpr"] += 1
                continue
            if not check.within_cap:
                found.append(self._finding(loan, priced, check))
        counts = ctx.extra.setdefault("skipped", {})
        if isinstance(counts, dict):
            counts[self.name] = skipped
        return found

    def _finding(self, loan: LoanRecord, priced: Priced, check: CapCheck) -> Finding:
        """The finding: the rate, the cap, the cap's rule and the date."""
        day = priced.contract_date.isoformat()
        shown = "披露的" if priced.source == "disclosure" else "按链上条款计算的"
        how = "disclosed" if priced.source == "disclosure" else "computed from the on-chain terms"
        return Finding(
            rule=self.name,
            key=f"{self.name}:{loan.loan_id}",
            subject=f"loan:{loan.loan_id}",
            severity="high",
            explanation_zh=(
                f"贷款 #{loan.loan_id}（¥{format_fen(loan.principal_fen)}）{shown}年化利率 "
                f"{_pct(check.rate_pct)}% 高于 {day} 适用的利率上限 {_pct(check.cap_pct)}%"
                f"（规则 {check.rule}）。"
            ),
            explanation_en=(
                f"Loan #{loan.loan_id} (¥{format_fen(loan.principal_fen)}): the annualized rate "
                f"{how}, {_pct(check.rate_pct)}% ({check.what}), is above the cap in force on "
                f"{day}, {_pct(check.cap_pct)}% (rule {check.rule})."
            ),
            evidence=Evidence(
                farmers=(hexid(loan.farmer),),
                loans=(loan.loan_id,),
                wallets=(hexid(loan.lender),),
                amounts_fen={
                    "principal": loan.principal_fen,
                    **({"total_due": loan.total_due_fen} if loan.total_due_fen else {}),
                },
                figures={
                    "apr_pct": _pct(priced.apr_pct),
                    "rate_checked_pct": _pct(check.rate_pct),
                    "cap_pct": _pct(check.cap_pct),
                    "excess_pct": _pct(check.rate_pct - check.cap_pct),
                    "cap_rule": check.rule,
                    "contract_date": day,
                    "source": priced.source,
                },
            ),
            observed_at=loan.issued_at,
        )


def _table(ctx: ScanContext) -> LprTable:
    """The LPR table the caller gave, else the one the lending CLI loads."""
    given = ctx.extra.get("lpr")
    if given is None:
        return load_lpr_table()
    if not isinstance(given, LprTable):
        raise TypeError("extra['lpr'] must be a lending.pricing.LprTable")
    return given


def _offers(ctx: ScanContext) -> dict[str, Disclosure | None]:
    """Issued offers' disclosures by escrow (lower-case hex) and by 'loan:<id>' (None when the
    stored disclosure cannot be read)."""
    if ctx.service is None:
        return {}
    rows = ctx.service.execute(
        select(LoanOfferRow.escrow, LoanOfferRow.loan_id, LoanOfferRow.disclosure_json).where(
            LoanOfferRow.loan_id.is_not(None)  # type: ignore[union-attr]
        )
    )
    found: dict[str, Disclosure | None] = {}
    for escrow, loan_id, text in rows:
        try:
            disclosure: Disclosure | None = Disclosure.model_validate_json(text)
        except ValidationError:
            disclosure = None
        if escrow:
            found[escrow.lower()] = disclosure
        found.setdefault(f"loan:{loan_id}", disclosure)
    return found


def _priced(
    loan: LoanRecord, offers: dict[str, Disclosure | None], policy: CapPolicy
) -> Priced | None:
    """The rate to judge: the disclosure's when the service issued the loan, else the chain's."""
    key = hexid(loan.escrow) if loan.escrow else ""
    if key in offers or f"loan:{loan.loan_id}" in offers:
        disclosure = offers.get(key, offers.get(f"loan:{loan.loan_id}"))
        return None if disclosure is None else _disclosed(disclosure, policy)
    return _from_chain(loan)


def _disclosed(d: Disclosure, policy: CapPolicy) -> Priced:
    """The figure of the disclosure the policy's basis names (the contract rate if higher)."""
    figures = {
        CapBasis.REGZ_APR: (d.apr_regz_pct, "Reg Z APR"),
        CapBasis.PBOC_SIMPLE: (d.pboc_annualized_simple_pct, "PBoC simple annualized rate"),
        CapBasis.PBOC_COMPOUND: (d.pboc_annualized_compound_pct, "PBoC compound annualized rate"),
    }
    if policy.basis is CapBasis.STRICTEST:
        rate, what = max(figures.values(), key=lambda f: f[0])
    else:
        rate, what = figures[policy.basis]
    if d.annual_rate_pct > rate:
        rate, what = d.annual_rate_pct, "contract rate"
    return Priced(d.apr_regz_pct, rate, f"disclosed {what}", d.start, "disclosure")


def _from_chain(loan: LoanRecord) -> Priced | None:
    """Reg Z APR of a single advance on the issue date and one payment of the total due on the
    due date (UTC dates); None without terms or when the due date is not after the issue."""
    if loan.total_due_fen is None or loan.due_date is None:
        return None
    start, due = _utc_date(loan.issued_at), _utc_date(loan.due_date)
    if due <= start or loan.total_due_fen < loan.principal_fen:
        return None
    try:
        apr = actuarial_apr_dated((loan.principal_fen, start), [(loan.total_due_fen, due)])
    except LendingError:
        return None
    return Priced(apr, apr, "Reg Z APR of the on-chain terms", start, "chain")


def _utc_date(t: int) -> date:
    """The UTC calendar date of a chain time (as lending.loans.disbursement.end_of_day)."""
    return datetime.fromtimestamp(t, UTC).date()


def _pct(value: Decimal) -> str:
    """A percentage to the APR's places, without trailing zeros beyond two decimals."""
    exact = value.quantize(APR_PLACES).normalize()
    text = format(exact, "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"

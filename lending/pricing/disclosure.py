"""The disclosure every loan offer carries: APR, annualized rates, totals, caps and schedule."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from lending.errors import RateCapExceededError
from lending.pricing.apr import pboc_annualized_rate
from lending.pricing.caps import (
    DEFAULT_POLICY,
    CapBasis,
    CapCheck,
    CapPolicy,
    check_penalty_rate_cap,
    evaluate_rate_cap,
)
from lending.pricing.lpr import ASSUMPTION_TAG, LprTable
from lending.pricing.schedule import (
    KIND_LABELS,
    Installment,
    ScheduleKind,
    ScheduleTerms,
    build_schedule,
)
from lending.pricing.units import quantize_pct

SCHEMA = "tealedger.disclosure/1"


class Disclosure(BaseModel):
    """Loan disclosure; JSON has Decimals as strings, fen as ints, dates as ISO strings."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = SCHEMA
    kind: ScheduleKind
    kind_label: str
    start: date
    maturity: date
    term_months: int
    principal_fen: int
    annual_rate_pct: Decimal
    upfront_fee_fen: int
    periodic_fee_fen: int
    amount_financed_fen: int
    total_interest_fen: int
    total_fees_fen: int
    finance_charge_fen: int
    total_repayment_fen: int
    apr_regz_pct: Decimal
    """US Reg Z Appendix J actuarial APR: unit-period rate x unit-periods per year."""
    regz_unit_period: str
    regz_periods_per_year: str
    pboc_annualized_compound_pct: Decimal
    """PBoC 2021 No.3, IRR method, compound: (1 + monthly IRR) ** 12 - 1."""
    pboc_annualized_simple_pct: Decimal
    """PBoC 2021 No.3, simple: monthly IRR x 12."""
    pboc_monthly_irr_pct: Decimal
    cap_basis: CapBasis
    rate_cap: CapCheck
    penalty_rate_bps: int
    penalty_cap: CapCheck | None
    warnings: tuple[str, ...]
    installments: tuple[Installment, ...]

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of the disclosure."""
        return self.model_dump_json(indent=indent)


def disclose(
    terms: ScheduleTerms,
    policy: CapPolicy = DEFAULT_POLICY,
    table: LprTable | None = None,
    *,
    enforce_caps: bool = True,
) -> Disclosure:
    """Schedule, price and cap-check an offer; raise RateCapExceededError above the cap.

    Checked against the cap: the policy's basis figure, or the nominal contract rate if higher.
    """
    schedule = build_schedule(terms)
    regz = schedule.regz_cash_flows()
    apr = regz.apr()
    monthly = schedule.monthly_cash_flows()
    pboc = pboc_annualized_rate(list(monthly.advances), list(monthly.payments), 12)
    basis = _basis_rate(policy.basis, apr, pboc.simple_pct, pboc.compound_pct)
    checked, what = _checked_rate(terms.annual_rate_pct, basis, policy)
    rate_cap = evaluate_rate_cap(checked, terms.start, policy, table, what=what)
    if enforce_caps and not rate_cap.within_cap:
        raise RateCapExceededError(
            rate_cap.rate_pct, rate_cap.cap_pct, rate_cap.rule, terms.start, rate_cap.what
        )
    penalty_cap = _penalty_cap(terms, checked, policy, table, enforce_caps)
    return Disclosure(
        kind=terms.kind,
        kind_label=KIND_LABELS[terms.kind],
        start=terms.start,
        maturity=schedule.maturity,
        term_months=terms.term_months,
        principal_fen=terms.principal_fen,
        annual_rate_pct=terms.annual_rate_pct,
        upfront_fee_fen=terms.upfront_fee_fen,
        periodic_fee_fen=terms.periodic_fee_fen,
        amount_financed_fen=schedule.amount_financed_fen,
        total_interest_fen=schedule.total_interest_fen,
        total_fees_fen=schedule.total_fees_fen,
        finance_charge_fen=schedule.finance_charge_fen,
        total_repayment_fen=schedule.total_repayment_fen,
        apr_regz_pct=quantize_pct(apr),
        regz_unit_period=str(regz.unit_period),
        regz_periods_per_year=str(regz.periods_per_year),
        pboc_annualized_compound_pct=quantize_pct(pboc.compound_pct),
        pboc_annualized_simple_pct=quantize_pct(pboc.simple_pct),
        pboc_monthly_irr_pct=quantize_pct(pboc.periodic_irr * 100, 6),
        cap_basis=policy.basis,
        rate_cap=rate_cap,
        penalty_rate_bps=terms.penalty_rate_bps,
        penalty_cap=penalty_cap,
        warnings=_warnings(rate_cap, schedule.installments),
        installments=schedule.installments,
    )


def _basis_rate(basis: CapBasis, apr: Decimal, simple: Decimal, compound: Decimal) -> Decimal:
    """The annualized figure the cap applies to."""
    if basis is CapBasis.REGZ_APR:
        return apr
    if basis is CapBasis.PBOC_SIMPLE:
        return simple
    if basis is CapBasis.PBOC_COMPOUND:
        return compound
    return max(apr, simple, compound)


def _checked_rate(nominal: Decimal, basis: Decimal, policy: CapPolicy) -> tuple[Decimal, str]:
    """(rate checked against the cap, its name): the basis figure or the contract rate.

    The nominal contract rate itself may never exceed the cap, whatever the basis: a basis
    only makes the check stricter. (A 12-month bullet loan at 12.30% has a PBoC simple rate of
    11.65%, which alone would pass a 12.00% cap.)
    """
    if nominal > basis:
        return nominal, f"contract rate (above the {_basis_label(policy)})"
    return basis, _basis_label(policy)


def _basis_label(policy: CapPolicy) -> str:
    """Name of the checked figure, for messages."""
    return {
        CapBasis.STRICTEST: "highest annualized rate (Reg Z APR / PBoC simple / PBoC compound)",
        CapBasis.REGZ_APR: "Reg Z APR",
        CapBasis.PBOC_SIMPLE: "PBoC simple annualized rate",
        CapBasis.PBOC_COMPOUND: "PBoC compound annualized rate",
    }[policy.basis]


def _penalty_cap(
    terms: ScheduleTerms,
    rate_pct: Decimal,
    policy: CapPolicy,
    table: LprTable | None,
    enforce: bool,
) -> CapCheck | None:
    """Combined-rate check for late charges, when the offer has any."""
    if not terms.penalty_rate_bps:
        return None
    if enforce:
        return check_penalty_rate_cap(rate_pct, terms.penalty_rate_bps, terms.start, policy, table)
    combined = rate_pct + Decimal(terms.penalty_rate_bps).scaleb(-2)
    return evaluate_rate_cap(
        combined, terms.start, policy, table, what="combined rate (contract + penalty)"
    )


def _warnings(rate_cap: CapCheck, installments: tuple[Installment, ...]) -> tuple[str, ...]:
    """Things a loan officer must see before relying on the figures."""
    out = []
    if rate_cap.lpr is not None and ASSUMPTION_TAG in rate_cap.lpr.table_version:
        out.append(
            f"the LPR cap assumes no fixing after {rate_cap.lpr.fixing.date.isoformat()} "
            f"(table {rate_cap.lpr.table_version}): a simulation assumption, not published data"
        )
    if not rate_cap.within_cap:
        out.append(f"{rate_cap.what} {rate_cap.rate_pct}% exceeds the cap ({rate_cap.rule})")
    if any(x.principal_fen < 0 for x in installments):
        out.append("interest accrued in the grace period exceeds an installment: it is capitalized")
    return tuple(out)

"""Dated repayment schedules in integer fen.

Interest accrues by the actuarial method of Reg Z Appendix J on the schedule's own unit-period:
simple interest for a fraction of a unit-period, compounded at whole unit-periods, so the Reg Z
APR of a fee-free schedule equals its contract rate up to fen rounding. For monthly schedules that
is the familiar balance x annual rate / 12 each month. Each installment's interest is rounded
half-up to the fen from the exact balance; the last installment repays whatever principal is left,
so principal repaid always equals the principal lent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction

from lending.errors import InvalidLoanTermsError, RateOutOfRangeError
from lending.pricing.regz_dates import LocatedCashFlows, UnitPeriod, locate_cash_flows, shift_months
from lending.pricing.units import Rate, check_fen, rate_fraction, rate_percent, round_half_up

TEA_FLUSH_MONTHS: tuple[int, ...] = (4, 5, 6, 7, 9, 10)
"""Tea flush months when farmers have cash: spring Apr/May, summer Jun/Jul, autumn Sep/Oct."""

MAX_TERM_MONTHS = 600
MAX_ANNUAL_RATE_BPS = 100_000
"""1,000 % a year: far above any lawful cap (24 %), so an over-cap offer can still be shown,
but low enough that every annualized figure of the schedule is computable."""
MAX_PENALTY_RATE_BPS = 1_000_000


class ScheduleKind(StrEnum):
    """Repayment patterns offered to farmers."""

    EQUAL_INSTALLMENT = "equal_installment"
    """等额本息: level total payment every month."""
    EQUAL_PRINCIPAL = "equal_principal"
    """等额本金: level principal every month, interest on the falling balance."""
    INTEREST_ONLY = "interest_only"
    """先息后本: interest every month, all principal (balloon) with the last payment."""
    BULLET = "bullet"
    """到期一次还本付息: one payment of principal and interest at maturity."""
    SEASONAL = "seasonal"
    """Level payments only in the tea flush months, after an optional grace period."""


KIND_LABELS: dict[ScheduleKind, str] = {
    ScheduleKind.EQUAL_INSTALLMENT: "equal installment (等额本息)",
    ScheduleKind.EQUAL_PRINCIPAL: "equal principal (等额本金)",
    ScheduleKind.INTEREST_ONLY: "interest-only + balloon (先息后本)",
    ScheduleKind.BULLET: "bullet (到期一次还本付息)",
    ScheduleKind.SEASONAL: "harvest-aligned seasonal (tea flush months)",
}


@dataclass(frozen=True)
class ScheduleTerms:
    """What the lender offers: amounts in fen, annual rate as int bps or Decimal percent."""

    principal_fen: int
    annual_rate: Rate
    term_months: int
    kind: ScheduleKind
    start: date
    upfront_fee_fen: int = 0
    """Deducted at disbursement: the borrower receives principal - upfront fee."""
    periodic_fee_fen: int = 0
    """Charged with every installment."""
    grace_months: int = 0
    """No installment falls due in the first `grace_months` months; interest still accrues."""
    flush_months: tuple[int, ...] = TEA_FLUSH_MONTHS
    """Months (1-12) in which seasonal installments fall due."""
    penalty_rate_bps: int = 0
    """Extra annual rate on overdue amounts (罚息), capped together with the contract rate."""

    def __post_init__(self) -> None:
        """Validate every field; messages say what to change."""
        check_fen(self.principal_fen, "principal_fen", allow_zero=False)
        check_fen(self.upfront_fee_fen, "upfront_fee_fen")
        check_fen(self.periodic_fee_fen, "periodic_fee_fen")
        _check_rate(self.annual_rate)
        _check_int(self.penalty_rate_bps, "penalty_rate_bps", 0, MAX_PENALTY_RATE_BPS)
        _check_int(self.term_months, "term_months", 1, MAX_TERM_MONTHS)
        _check_int(self.grace_months, "grace_months", 0, self.term_months - 1)
        if self.upfront_fee_fen >= self.principal_fen:
            raise InvalidLoanTermsError(
                f"upfront fee {self.upfront_fee_fen} fen is not less than the principal "
                f"{self.principal_fen} fen; the borrower would receive nothing"
            )
        if isinstance(self.start, datetime) or not isinstance(self.start, date):
            raise InvalidLoanTermsError(f"start {self.start!r} must be a datetime.date")
        try:
            object.__setattr__(self, "kind", ScheduleKind(self.kind))
        except ValueError:
            kinds = ", ".join(k.value for k in ScheduleKind)
            raise InvalidLoanTermsError(
                f"unknown schedule kind {self.kind!r}; use one of {kinds}"
            ) from None
        if self.kind is ScheduleKind.BULLET and self.grace_months:
            raise InvalidLoanTermsError(
                "a bullet loan has one payment at maturity; grace_months does not apply: "
                "set it to 0"
            )
        object.__setattr__(self, "flush_months", _flush_months(self.flush_months))

    @property
    def annual_rate_fraction(self) -> Fraction:
        """Exact annual rate as a fraction of one."""
        return rate_fraction(self.annual_rate)

    @property
    def annual_rate_pct(self) -> Decimal:
        """Annual contract rate in percent."""
        return rate_percent(self.annual_rate)

    @property
    def amount_financed_fen(self) -> int:
        """What the borrower actually receives (Reg Z amount financed)."""
        return self.principal_fen - self.upfront_fee_fen


@dataclass(frozen=True)
class Installment:
    """One dated installment; balance_fen is the principal still owed after it."""

    number: int
    due: date
    principal_fen: int
    interest_fen: int
    fee_fen: int
    total_fen: int
    balance_fen: int


@dataclass(frozen=True)
class Schedule:
    """A dated repayment schedule and the Reg Z unit-period its interest accrues on."""

    terms: ScheduleTerms
    unit_period: UnitPeriod
    installments: tuple[Installment, ...] = field(repr=False)

    @property
    def start(self) -> date:
        """Disbursement date (start of the term)."""
        return self.terms.start

    @property
    def maturity(self) -> date:
        """Due date of the last installment."""
        return self.installments[-1].due

    @property
    def total_principal_fen(self) -> int:
        """Sum of principal repaid (always equals the principal lent)."""
        return sum(x.principal_fen for x in self.installments)

    @property
    def total_interest_fen(self) -> int:
        """Sum of interest."""
        return sum(x.interest_fen for x in self.installments)

    @property
    def total_periodic_fees_fen(self) -> int:
        """Sum of fees charged with installments."""
        return sum(x.fee_fen for x in self.installments)

    @property
    def total_fees_fen(self) -> int:
        """Upfront plus periodic fees."""
        return self.terms.upfront_fee_fen + self.total_periodic_fees_fen

    @property
    def total_repayment_fen(self) -> int:
        """Everything the borrower pays in installments."""
        return sum(x.total_fen for x in self.installments)

    @property
    def amount_financed_fen(self) -> int:
        """Principal less upfront fees: what the borrower actually receives."""
        return self.terms.amount_financed_fen

    @property
    def finance_charge_fen(self) -> int:
        """Interest plus every fee: total repayment less the amount financed."""
        return self.total_interest_fen + self.total_fees_fen

    def regz_cash_flows(self) -> LocatedCashFlows:
        """Amount financed at the start and installment totals, located by Appendix J."""
        return locate_cash_flows(
            [(self.amount_financed_fen, self.start)],
            [(x.total_fen, x.due) for x in self.installments],
            term_start=self.start,
        )

    def monthly_cash_flows(self) -> LocatedCashFlows:
        """The same flows located in months (fractions in days / 30), for the PBoC figures."""
        return locate_cash_flows(
            [(self.amount_financed_fen, self.start)],
            [(x.total_fen, x.due) for x in self.installments],
            term_start=self.start,
            unit_period=UnitPeriod.month(),
        )


def build_schedule(terms: ScheduleTerms) -> Schedule:
    """Build the dated schedule for `terms`."""
    dues = due_dates(terms)
    grid = locate_cash_flows(
        [(terms.principal_fen, terms.start)], [(1, d) for d in dues], term_start=terms.start
    )
    unit_rate = terms.annual_rate_fraction / grid.periods_per_year
    growth = _growth_factors([(t, f) for _, t, f in grid.payments], unit_rate)
    level = _level_payment(terms.principal_fen, growth)
    balance = terms.principal_fen
    rows = []
    for number, (due, g) in enumerate(zip(dues, growth, strict=True), start=1):
        interest = round_half_up(balance * (g - 1))
        if number == len(dues):
            principal = balance  # last installment trues up: principal repaid is exact
        else:
            principal = min(_target_principal(terms, level, interest, len(dues)), balance)
        balance -= principal
        fee = terms.periodic_fee_fen
        rows.append(
            Installment(number, due, principal, interest, fee, principal + interest + fee, balance)
        )
    return Schedule(terms, grid.unit_period, tuple(rows))


def due_dates(terms: ScheduleTerms) -> list[date]:
    """Installment due dates: monthly anniversaries of the start after the grace period."""
    if terms.kind is ScheduleKind.BULLET:
        return [shift_months(terms.start, terms.term_months)]
    months = range(terms.grace_months + 1, terms.term_months + 1)
    dues = [shift_months(terms.start, k) for k in months]
    if terms.kind is ScheduleKind.SEASONAL:
        dues = [d for d in dues if d.month in terms.flush_months]
        if not dues:
            names = ", ".join(str(m) for m in terms.flush_months)
            raise InvalidLoanTermsError(
                f"no flush month ({names}) falls in months {terms.grace_months + 1}.."
                f"{terms.term_months} after {terms.start.isoformat()}; lengthen term_months or "
                "shorten grace_months"
            )
    return dues


def _target_principal(terms: ScheduleTerms, level: int, interest: int, count: int) -> int:
    """Principal an installment aims to repay before the last one."""
    if terms.kind in (ScheduleKind.EQUAL_INSTALLMENT, ScheduleKind.SEASONAL):
        # Negative when a long grace period's accrued interest exceeds the level payment:
        # the shortfall stays owed (capitalized) rather than silently disappearing.
        return level - interest
    if terms.kind is ScheduleKind.EQUAL_PRINCIPAL:
        return round_half_up(Fraction(terms.principal_fen, count))
    return 0  # interest-only: the balloon comes with the last installment


def _growth_factors(located: list[tuple[int, Fraction]], unit_rate: Fraction) -> list[Fraction]:
    """Exact balance growth between installments: ratio of consecutive Appendix J factors."""
    factors = []
    prev_t, prev_f = 0, Fraction(0)
    for t, f in located:
        compound = (1 + unit_rate) ** (t - prev_t)
        factors.append(compound * (1 + f * unit_rate) / (1 + prev_f * unit_rate))
        prev_t, prev_f = t, f
    return factors


def _level_payment(principal_fen: int, growth: list[Fraction]) -> int:
    """Level payment that amortizes the principal over the installments, rounded to the fen."""
    with localcontext() as ctx:
        ctx.prec = 50  # the annuity sum is rounded once, to the fen, at the end
        accumulated = Decimal(1)
        discount_sum = Decimal(0)
        for g in growth:
            accumulated *= Decimal(g.numerator) / Decimal(g.denominator)
            discount_sum += 1 / accumulated
        payment = Decimal(principal_fen) / discount_sum
        return int(payment.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _check_rate(rate: Rate) -> None:
    """An annual rate within [0, MAX_ANNUAL_RATE_BPS], with the range in the message."""
    if rate_fraction(rate, "annual_rate") > Fraction(MAX_ANNUAL_RATE_BPS, 10_000):
        given = f"{rate} bps" if isinstance(rate, int) else f"{rate}%"
        raise RateOutOfRangeError(
            f"annual rate {given} is out of range: the accepted range is 0 to "
            f"{MAX_ANNUAL_RATE_BPS:,} bps (0 to {MAX_ANNUAL_RATE_BPS // 100:,}% a year)"
        )


def _check_int(value: object, what: str, low: int, high: int) -> None:
    """An int (not bool) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLoanTermsError(f"{what} {value!r} must be an int")
    if not low <= value <= high:
        raise InvalidLoanTermsError(f"{what} is {value}; it must be between {low} and {high}")


def _flush_months(months: object) -> tuple[int, ...]:
    """Validate flush months: a non-empty collection of distinct ints 1-12, sorted."""
    if isinstance(months, str | bytes) or not isinstance(months, tuple | list | set | frozenset):
        raise InvalidLoanTermsError(f"flush_months {months!r} must be a collection of months 1-12")
    if not months or any(
        isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 12 for m in months
    ):
        raise InvalidLoanTermsError(
            f"flush_months {months!r} must be a non-empty set of month numbers 1-12 "
            "(default: 4, 5, 6, 7, 9, 10)"
        )
    out = tuple(sorted(months))
    if len(set(out)) != len(out):
        raise InvalidLoanTermsError(f"flush_months {months!r} repeats a month")
    return out

"""APR from located cash flows: US Reg Z Appendix J actuarial APR and the PBoC 2021 No.3 rate.

A cash flow is `(amount, t, f)`: `amount` in any fixed unit (fen or yuan, Decimal or int), located
`t` whole unit-periods plus a fraction `f` (0 <= f <= 1) of a unit-period after the start of the
term. `periods_per_year` is the number of unit-periods in a year (12 for months, 365/255 for a
255-day single-payment loan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from fractions import Fraction

from lending.errors import InvalidCashFlowError, RateOutOfRangeError
from lending.pricing.rootfind import PRECISION, Discounting, Flow, solve_unit_rate

Amount = Decimal | int
Fractional = Fraction | Decimal | int
CashFlow = tuple[Amount, int, Fractional]
PeriodsPerYear = int | Fraction | Decimal

_ZERO = Decimal(0)
_EXACT_TYPES = (int, Fraction, Decimal)
APR_PLACES = Decimal("1e-10")
"""Reported APRs carry 10 decimals of a percentage point: far inside the 0.0001 we promise."""


@dataclass(frozen=True)
class PbocRate:
    """Annualized rate per PBoC announcement [2021] No.3, from the periodic IRR."""

    periodic_irr: Decimal
    """IRR per period (a fraction, e.g. 0.0106698 for 1.067% a month)."""
    periods_per_year: Fraction
    simple_pct: Decimal
    """Simple (nominal) annualization: periodic IRR x periods per year, in percent."""
    compound_pct: Decimal
    """Compound annualization: (1 + periodic IRR) ** periods per year - 1, in percent."""


def actuarial_apr(
    advance: Amount | Sequence[CashFlow],
    payments: Sequence[CashFlow],
    periods_per_year: PeriodsPerYear,
) -> Decimal:
    """Reg Z Appendix J (b)(8) APR in percent: unit-period rate i times unit-periods per year."""
    advances = _advances(advance)
    ppy = _periods_per_year(periods_per_year)
    flows = _flows(advances, payments)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        i = solve_unit_rate(flows, Discounting.REGZ)
        apr = i * ppy.numerator * 100 / ppy.denominator
        return _quantize(apr, "Reg Z APR")


def pboc_annualized_rate(
    net_advance: Amount | Sequence[CashFlow],
    payments: Sequence[CashFlow],
    periods_per_year: PeriodsPerYear = 12,
) -> PbocRate:
    """PBoC 2021 No.3 annualized rate: all payments over the principal actually received."""
    # net_advance is principal less upfront fees; payments carry principal, interest and every
    # fee. The periodic IRR discounts with (1 + r) ** (t + f), as the announcement's IRR does.
    advances = _advances(net_advance)
    ppy = _periods_per_year(periods_per_year)
    flows = _flows(advances, payments)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        r = solve_unit_rate(flows, Discounting.COMPOUND)
        ppy_dec = Decimal(ppy.numerator) / Decimal(ppy.denominator)
        simple = r * ppy_dec * 100
        compound = ((1 + r) ** ppy_dec - 1) * 100
        return PbocRate(
            periodic_irr=+r,
            periods_per_year=ppy,
            simple_pct=_quantize(simple, "PBoC simple annualized rate"),
            compound_pct=_quantize(compound, "PBoC compound annualized rate"),
        )


def _quantize(pct: Decimal, what: str) -> Decimal:
    """A rate in percent to APR_PLACES; one too large to carry them is refused by name."""
    try:
        return pct.quantize(APR_PLACES, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        # More than PRECISION digits: only terms far beyond any lawful loan get here.
        raise RateOutOfRangeError(
            f"the {what} of these cash flows is about {pct:.3E}%, too large to compute "
            f"to {PRECISION} digits; lower the rate or the fees"
        ) from None


def _advances(advance: Amount | Sequence[CashFlow]) -> Sequence[CashFlow]:
    """A single amount means one advance at the start of the term."""
    if isinstance(advance, Decimal | int) and not isinstance(advance, bool):
        return [(advance, 0, 0)]
    if isinstance(advance, str | bytes) or not isinstance(advance, Sequence):
        raise InvalidCashFlowError(
            f"advance {advance!r} must be an amount (Decimal or int) or a sequence of "
            "(amount, t, f) advances"
        )
    return advance


def _periods_per_year(value: PeriodsPerYear) -> Fraction:
    """Validate unit-periods per year as an exact positive fraction."""
    if isinstance(value, bool) or not isinstance(value, int | Fraction | Decimal):
        raise InvalidCashFlowError(
            f"periods_per_year {value!r} must be an int, Fraction or Decimal (e.g. 12, "
            "Fraction(365, 255)), never a float"
        )
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidCashFlowError(f"periods_per_year {value} is not finite")
    ppy = Fraction(value)
    if ppy <= 0:
        raise InvalidCashFlowError(
            f"periods_per_year is {value}; it must be > 0 (12 for monthly unit-periods)"
        )
    return ppy


def _flows(advances: Sequence[CashFlow], payments: Sequence[CashFlow]) -> list[Flow]:
    """Validate both sides and turn them into signed solver flows."""
    if len(advances) == 0:
        raise InvalidCashFlowError("no advances given; pass the amount financed")
    if len(payments) == 0:
        raise InvalidCashFlowError("no payments given; an APR needs at least one payment")
    flows = [_flow(cf, "advance", k, -1) for k, cf in enumerate(advances)]
    pay = [_flow(cf, "payment", k, 1) for k, cf in enumerate(payments)]
    if not any(fl.amount > 0 for fl in pay):
        raise InvalidCashFlowError("every payment is zero; nothing repays the advance")
    return flows + pay


def _flow(cf: CashFlow, side: str, k: int, sign: int) -> Flow:
    """Validate one (amount, t, f) triple; the common exact types take a fast path."""
    if not isinstance(cf, tuple | list) or len(cf) != 3:
        raise InvalidCashFlowError(f"{side} #{k} {cf!r} must be an (amount, t, f) triple")
    amount, t, f = cf
    if type(amount) is Decimal and amount.is_finite() and amount >= 0:
        value = amount
    else:
        value = _amount(amount, f"{side} #{k}")
    if side == "advance" and value == 0:
        raise InvalidCashFlowError(f"advance #{k} is zero; drop it or give its amount")
    if type(t) is not int or t < 0:
        raise InvalidCashFlowError(
            f"{side} #{k} has t={t!r}; t is the whole number of unit-periods, an int >= 0"
        )
    if not f and type(f) in _EXACT_TYPES:
        return Flow(value if sign > 0 else -value, t, _ZERO)  # the common case, kept cheap
    frac = _fraction(f, f"{side} #{k}")
    with localcontext() as ctx:
        ctx.prec = PRECISION
        f_dec = Decimal(frac.numerator) / Decimal(frac.denominator)
    return Flow(value if sign > 0 else -value, t, f_dec)


def _amount(amount: object, what: str) -> Decimal:
    """A finite, non-negative Decimal from an int or Decimal amount."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise InvalidCashFlowError(
            f"{what} amount {amount!r} must be a Decimal or int, got {type(amount).__name__}"
            " (floats are not accepted for money)"
        )
    value = Decimal(amount)
    if not value.is_finite() or value < 0:
        raise InvalidCashFlowError(f"{what} amount is {amount}; amounts must be finite and >= 0")
    return value


def _fraction(f: object, what: str) -> Fraction:
    """The fraction of a unit-period, exact and within [0, 1]."""
    if isinstance(f, bool) or not isinstance(f, Fraction | Decimal | int):
        raise InvalidCashFlowError(
            f"{what} has f={f!r}; f must be a Fraction or Decimal in [0, 1], never a float"
        )
    if isinstance(f, Decimal) and not f.is_finite():
        raise InvalidCashFlowError(f"{what} has f={f}, which is not finite")
    frac = Fraction(f)
    if not 0 <= frac <= 1:
        raise InvalidCashFlowError(
            f"{what} has f={f}; the fraction of a unit-period must be in [0, 1] "
            "(move whole periods into t)"
        )
    return frac

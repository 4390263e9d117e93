"""Reg Z Appendix J date rules: unit-period, and (t, f) of each dated advance and payment.

Implements (b)(3) time intervals and month measuring, (b)(4) the unit-period (the most frequent
common period, ties to the smaller; no common period: the average rounded to the nearest
standard interval; single advance single payment: the term, at most a year) and (b)(5) the
number of unit-periods between two dates (months back from the later date, remaining days / 30;
semimonths and multi-month periods in 30-day months; days and weeks by day count; years with a
remainder in months / 12 or days / 365).
"""

from __future__ import annotations

import calendar
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from lending.errors import InvalidCashFlowError
from lending.pricing.apr import Amount, CashFlow, actuarial_apr

UnitKind = Literal["day", "week", "semimonth", "month"]
DatedFlow = tuple[Amount, date]

_DAYS_PER_YEAR = 365
_WEEKS_PER_YEAR = 52
_MONTH_DAYS = 30  # Appendix J counts fractions of a month, and multi-month spans, in 30-day months


@dataclass(frozen=True, order=True)
class UnitPeriod:
    """A standard interval of time used as the unit-period (or a single-payment term in days)."""

    kind: UnitKind
    count: int = 1

    @classmethod
    def month(cls, count: int = 1) -> UnitPeriod:
        """`count` months; 12 months is the one-year unit-period."""
        return cls("month", count)

    @property
    def periods_per_year(self) -> Fraction:
        """Unit-periods per year per (b)(5)(ii)-(vii)."""
        if self.kind == "day":
            return Fraction(_DAYS_PER_YEAR, self.count)
        if self.kind == "week":
            return Fraction(_WEEKS_PER_YEAR, self.count)
        if self.kind == "semimonth":
            return Fraction(24)
        return Fraction(12, self.count)

    @property
    def approx_days(self) -> Fraction:
        """Nominal length in days, used only to order intervals and round averages."""
        return Fraction(_DAYS_PER_YEAR) / self.periods_per_year

    def __str__(self) -> str:
        """Human label: '1 month', '2 weeks', 'semimonth', '255 days', '1 year'."""
        if self.kind == "month" and self.count == 12:
            return "1 year"
        if self.kind == "semimonth":
            return "semimonth"
        plural = "s" if self.count != 1 else ""
        return f"{self.count} {self.kind}{plural}"


@dataclass(frozen=True)
class LocatedCashFlows:
    """Dated flows located in unit-periods, ready for `actuarial_apr`."""

    term_start: date
    unit_period: UnitPeriod
    advances: tuple[CashFlow, ...]
    payments: tuple[CashFlow, ...]

    @property
    def periods_per_year(self) -> Fraction:
        """Unit-periods per year of the chosen unit-period."""
        return self.unit_period.periods_per_year

    def apr(self) -> Decimal:
        """Reg Z actuarial APR in percent."""
        return actuarial_apr(list(self.advances), list(self.payments), self.periods_per_year)


def locate_cash_flows(
    advances: Sequence[DatedFlow],
    payments: Sequence[DatedFlow],
    *,
    term_start: date | None = None,
    unit_period: UnitPeriod | None = None,
) -> LocatedCashFlows:
    """Locate dated advances and payments in unit-periods by the Appendix J rules."""
    # The term starts at term_start (consummation, or when finance charges start to be earned),
    # by default the first advance; unit_period overrides the (b)(4) choice (PBoC uses months).
    adv_dates = _dates(advances, "advance")
    pay_dates = _dates(payments, "payment")
    start = _term_start(term_start, adv_dates, pay_dates)
    unit = unit_period or choose_unit_period(start, adv_dates, pay_dates)
    adv_anchor = _series_max_day(adv_dates)
    pay_anchor = _series_max_day(pay_dates)
    located_adv = tuple(
        (amount, *locate(start, d, unit, adv_anchor))
        for (amount, _), d in zip(advances, adv_dates, strict=True)
    )
    located_pay = tuple(
        (amount, *locate(start, d, unit, pay_anchor))
        for (amount, _), d in zip(payments, pay_dates, strict=True)
    )
    return LocatedCashFlows(start, unit, located_adv, located_pay)


def actuarial_apr_dated(
    advances: Sequence[DatedFlow] | DatedFlow,
    payments: Sequence[DatedFlow],
    *,
    term_start: date | None = None,
) -> Decimal:
    """Reg Z Appendix J APR in percent from dated advances and payments."""
    if isinstance(advances, tuple) and len(advances) == 2 and isinstance(advances[1], date):
        advances = [advances]
    return locate_cash_flows(advances, payments, term_start=term_start).apr()


def choose_unit_period(
    start: date, advance_dates: Sequence[date], payment_dates: Sequence[date]
) -> UnitPeriod:
    """The (b)(4) unit-period for a transaction's advances and payments."""
    if len(advance_dates) == 1 and len(payment_dates) == 1:
        return _single_payment_unit(start, payment_dates[0])
    periods = _periods(start, advance_dates) + _periods(start, payment_dates)
    if not periods:
        raise InvalidCashFlowError(
            "every advance and payment falls on the start date; payments must come later"
        )
    counts: Counter[UnitPeriod] = Counter()
    for d1, d2, anchor in periods:
        counts.update(_standard_intervals(d1, d2, anchor))
    common = [(n, u) for u, n in counts.items() if n >= 2]
    if common:
        # Most frequent wins; on equal frequency the smaller interval, per (b)(4)(i)(A).
        return min(common, key=lambda nu: (-nu[0], nu[1].approx_days))[1]
    average = Fraction(sum((d2 - d1).days for d1, d2, _ in periods), len(periods))
    return _nearest_standard_interval(average)


def locate(start: date, when: date, unit: UnitPeriod, series_max_day: int) -> tuple[int, Fraction]:
    """(t, f): whole unit-periods and fraction from `start` to `when`, per (b)(5)."""
    days = (when - start).days
    if unit.kind in ("day", "week"):
        span = unit.count * (7 if unit.kind == "week" else 1)
        return days // span, Fraction(days % span, span)
    months, reached = months_back(when, start, _anchor(when, series_max_day))
    rest = (reached - start).days
    if unit.kind == "semimonth":
        return _split(_MONTH_DAYS * months + rest, 15)
    if unit.count == 1:
        # Remaining days / 30; a 30-day remainder is exactly one more month of discounting.
        return (months + 1, Fraction(0)) if rest >= _MONTH_DAYS else (months, Fraction(rest, 30))
    if unit.count < 12:
        return _split(_MONTH_DAYS * months + rest, _MONTH_DAYS * unit.count)
    years = months // 12
    if rest == 0:
        return years, Fraction(months - 12 * years, 12)
    year_mark = shift_months(when, -12 * years, _anchor(when, series_max_day))
    return years, min(Fraction((year_mark - start).days, _DAYS_PER_YEAR), Fraction(1))


def shift_months(d: date, months: int, anchor: int | None = None) -> date:
    """Move `months` calendar months to day `anchor` (default d.day), clipped to month end."""
    if months == 0:
        return d
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    day = min(anchor or d.day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day)


def months_back(later: date, earlier: date, anchor: int) -> tuple[int, date]:
    """Full months measured back from `later` without passing `earlier`, and the date reached."""
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    while months > 0 and shift_months(later, -months, anchor) < earlier:
        months -= 1
    months = max(months, 0)
    return months, shift_months(later, -months, anchor)


def _split(days: int, span: int) -> tuple[int, Fraction]:
    """Whole spans and the remaining fraction of a day count."""
    return days // span, Fraction(days % span, span)


def _anchor(d: date, series_max_day: int) -> int:
    """Day of month that month-measuring uses for `d` ((b)(3)(iv) last-day and 29th/30th rules)."""
    if d.day == calendar.monthrange(d.year, d.month)[1] and series_max_day > d.day:
        return series_max_day  # a clipped 29th/30th/31st: measure as that day, clipped again
    return d.day


def _series_max_day(dates: Sequence[date]) -> int:
    """Largest day-of-month in a series; month-end dates in the series measure from it."""
    return max(d.day for d in dates)


def _dates(flows: Sequence[DatedFlow], side: str) -> list[date]:
    """Validate (amount, date) pairs and return their dates."""
    if isinstance(flows, str | bytes) or not isinstance(flows, Sequence) or len(flows) == 0:
        raise InvalidCashFlowError(f"no {side}s given; pass a sequence of (amount, date) pairs")
    out = []
    for k, item in enumerate(flows):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InvalidCashFlowError(f"{side} #{k} {item!r} must be an (amount, date) pair")
        d = item[1]
        if isinstance(d, datetime) or not isinstance(d, date):
            raise InvalidCashFlowError(
                f"{side} #{k} has date {d!r}; pass a datetime.date (not a datetime or string)"
            )
        out.append(d)
    return out


def _term_start(term_start: date | None, adv: Sequence[date], pay: Sequence[date]) -> date:
    """Validate the start of the term against every flow date."""
    start = term_start if term_start is not None else min(adv)
    if isinstance(start, datetime) or not isinstance(start, date):
        raise InvalidCashFlowError(f"term_start {start!r} must be a datetime.date")
    first = min(min(adv), min(pay))
    if first < start:
        raise InvalidCashFlowError(
            f"a cash flow on {first.isoformat()} precedes the start of the term "
            f"{start.isoformat()}; move term_start to the consummation date or earlier"
        )
    return start


def _periods(start: date, dates: Sequence[date]) -> list[tuple[date, date, int]]:
    """(b)(3)(i) periods of one series, from the start of the term; zero-length ones dropped."""
    anchor = _series_max_day(dates)
    points = [start, *sorted(dates)]
    return [(a, b, anchor) for a, b in itertools.pairwise(points) if b > a]


def _standard_intervals(d1: date, d2: date, series_max_day: int) -> list[UnitPeriod]:
    """Every standard interval (b)(3)(iii) that the period d1 -> d2 is exactly equal to."""
    days = (d2 - d1).days
    found = []
    if days == 1:
        found.append(UnitPeriod("day"))
    if days % 7 == 0 and days // 7 <= _WEEKS_PER_YEAR:
        found.append(UnitPeriod("week", days // 7))
    if _is_semimonth(d1, d2):
        found.append(UnitPeriod("semimonth"))
    months, reached = months_back(d2, d1, _anchor(d2, series_max_day))
    if reached == d1 and 1 <= months <= 12:
        found.append(UnitPeriod.month(months))
    return found


def _is_semimonth(d1: date, d2: date) -> bool:
    """Half a month: 13-16 days from the first half of a month to the second, or across its end."""
    if not 13 <= (d2 - d1).days <= 16:
        return False
    if (d1.year, d1.month) == (d2.year, d2.month):
        return d1.day <= 16
    return d1.day >= 13 and d2.day <= 16


def _single_payment_unit(start: date, payment: date) -> UnitPeriod:
    """(b)(4)(ii): the term, at most a year; whole months, else days ((b)(5)(vi), (vii))."""
    months, reached = months_back(payment, start, _anchor(payment, max(start.day, payment.day)))
    days = (payment - start).days
    if days <= 0:
        raise InvalidCashFlowError(
            f"the single payment on {payment.isoformat()} is not after the advance on "
            f"{start.isoformat()}; a payment must come after the advance"
        )
    if months < 12 and not (reached == start and months >= 1):
        return UnitPeriod("day", days)
    return UnitPeriod.month(min(months, 12))


def _nearest_standard_interval(days: Fraction) -> UnitPeriod:
    """(b)(4)(i)(B): the standard interval nearest an average period, ties to the smaller."""
    candidates = [
        UnitPeriod("day"),
        UnitPeriod("semimonth"),
        *(UnitPeriod("week", k) for k in range(1, _WEEKS_PER_YEAR + 1)),
        *(UnitPeriod.month(k) for k in range(1, 13)),
    ]
    return min(candidates, key=lambda u: (abs(u.approx_days - days), u.approx_days))

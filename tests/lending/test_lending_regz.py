"""Reg Z Appendix J: published (c) examples, unit-period rules and (t, f) location."""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest

from lending.errors import InvalidCashFlowError
from lending.pricing.apr import actuarial_apr
from lending.pricing.regz_dates import (
    UnitPeriod,
    actuarial_apr_dated,
    choose_unit_period,
    locate,
    locate_cash_flows,
    shift_months,
)

D = Decimal


def monthly(first: date, n: int, step: int = 1) -> list[date]:
    return [shift_months(first, step * k) for k in range(n)]


def weekly(first: date, n: int, step: int = 1) -> list[date]:
    return [first + timedelta(days=7 * step * k) for k in range(n)]


def semimonthly_1_16(first: date, n: int) -> list[date]:
    out, d = [], first
    for _ in range(n):
        out.append(d)
        d = d.replace(day=16) if d.day == 1 else shift_months(d.replace(day=1), 1)
    return out


def two_places(x: Decimal) -> Decimal:
    """Appendix J states its answers to 2 decimals."""
    return x.quantize(D("0.01"), rounding=ROUND_HALF_UP)


# Appendix J to Part 1026, (c) Examples for the actuarial method (12 CFR 1026, App. J). Each entry:
# advance, advance date, payments, published APR, published unit-period.
APPENDIX_J_EXAMPLES = {
    # (c)(1)(i) monthly payments, regular first period: $5,000, 24 x $230 from 2-10-78.
    "c1i": (5000, date(1978, 1, 10), [(D(230), d) for d in monthly(date(1978, 2, 10), 24)],
            "9.69", UnitPeriod.month()),
    # (c)(1)(ii) monthly payments, long first period: $6,000, 36 x $200 from 4-1-78.
    "c1ii": (6000, date(1978, 2, 10), [(D(200), d) for d in monthly(date(1978, 4, 1), 36)],
             "11.82", UnitPeriod.month()),
    # (c)(1)(iii) semimonthly payments, short first period: $5,000, 24 x $219.17 on 1st/16th.
    "c1iii": (5000, date(1978, 2, 23),
              [(D("219.17"), d) for d in semimonthly_1_16(date(1978, 3, 1), 24)],
              "10.34", UnitPeriod("semimonth")),
    # (c)(1)(iv) quarterly payments, long first period: $10,000, 40 x $385 from 10-1-78.
    "c1iv": (10000, date(1978, 5, 23), [(D(385), d) for d in monthly(date(1978, 10, 1), 40, 3)],
             "8.97", UnitPeriod.month(3)),
    # (c)(1)(v) weekly payments, long first period: $500, 30 x $17.60 from 4-21-78.
    "c1v": (500, date(1978, 3, 20), [(D("17.60"), d) for d in weekly(date(1978, 4, 21), 30)],
            "14.96", UnitPeriod("week")),
    # (c)(2)(i) monthly, irregular first payment $250 then 23 x $230.
    "c2i": (5000, date(1978, 1, 10),
            [(D(250), date(1978, 2, 10))] + [(D(230), d) for d in monthly(date(1978, 3, 10), 23)],
            "10.08", UnitPeriod.month()),
    # (c)(2)(ii) every 4 weeks, long first period, irregular first payment $39.50, 11 x $38.31.
    "c2ii": (400, date(1978, 3, 18),
             [(D("39.50"), date(1978, 4, 20))]
             + [(D("38.31"), d) for d in weekly(date(1978, 5, 18), 11, 4)],
             "28.50", UnitPeriod("week", 4)),
    # (c)(3)(i) monthly, irregular final payment: 23 x $230 then $280.
    "c3i": (5000, date(1978, 1, 10),
            [(D(230), d) for d in monthly(date(1978, 2, 10), 23)]
            + [(D(280), shift_months(date(1978, 2, 10), 23))],
            "10.50", UnitPeriod.month()),
    # (c)(3)(ii) every 2 weeks, short first period, irregular final payment: 19 x $9.50 then $30.
    "c3ii": (200, date(1978, 4, 3),
             [(D("9.50"), d) for d in weekly(date(1978, 4, 11), 19, 2)]
             + [(D(30), date(1978, 4, 11) + timedelta(days=14 * 19))],
             "12.22", UnitPeriod("week", 2)),
    # (c)(4)(i) monthly, irregular first ($250) and final ($280) payments, 22 x $230 between.
    "c4i": (5000, date(1978, 1, 10),
            [(D(250), date(1978, 2, 10))]
            + [(D(230), d) for d in monthly(date(1978, 3, 10), 22)]
            + [(D(280), shift_months(date(1978, 3, 10), 22))],
            "10.90", UnitPeriod.month()),
    # (c)(4)(ii) every 2 months, short first period: $449.36, 18 x $465, then $200.
    "c4ii": (8000, date(1978, 1, 10),
             [(D("449.36"), date(1978, 3, 1))]
             + [(D(465), d) for d in monthly(date(1978, 5, 1), 18, 2)]
             + [(D(200), shift_months(date(1978, 5, 1), 36))],
             "7.30", UnitPeriod.month(2)),
    # (c)(5)(i) single advance, single payment, term 255 days: $1,000 -> $1,080.
    "c5i": (1000, date(1978, 1, 3), [(D(1080), date(1978, 9, 15))], "11.45",
            UnitPeriod("day", 255)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(APPENDIX_J_EXAMPLES))
def test_appendix_j_published_examples(name):
    advance, when, payments, published, unit = APPENDIX_J_EXAMPLES[name]
    located = locate_cash_flows([(D(advance), when)], payments)
    assert located.unit_period == unit
    assert two_places(located.apr()) == D(published)


def test_c1ii_long_first_period_location():
    # 2-10-78 to 4-1-78: one full month back from 4-1 (to 3-1) plus 19 days -> t=1, f=19/30.
    _, when, payments, _, _ = APPENDIX_J_EXAMPLES["c1ii"]
    located = locate_cash_flows([(D(6000), when)], payments)
    assert located.payments[0][1:] == (1, Fraction(19, 30))
    assert located.payments[35][1:] == (36, Fraction(19, 30))


def test_c1iv_quarterly_location_uses_30_day_months():
    # 5-23-78 to 10-1-78: 4 months back to 6-1 plus 9 days = 129 days of 90 -> t=1, f=39/90.
    assert locate(date(1978, 5, 23), date(1978, 10, 1), UnitPeriod.month(3), 1) == (
        1,
        Fraction(39, 90),
    )


def test_raw_equation_matches_published_c1i_and_c5i():
    # The (t, f) front end directly: 24 monthly payments, and 365/255 unit-periods a year.
    assert two_places(actuarial_apr(D(5000), [(D(230), k, 0) for k in range(1, 25)], 12)) == D(
        "9.69"
    )
    apr = actuarial_apr(D(1000), [(D(1080), 1, 0)], Fraction(365, 255))
    assert abs(apr - D("8") * 365 / 255) < D("1e-8")


def test_c1ii_raw_equation_with_odd_days():
    payments = [(D(200), k, Fraction(19, 30)) for k in range(1, 37)]
    assert two_places(actuarial_apr(D(6000), payments, 12)) == D("11.82")


def test_month_end_series_has_no_odd_days():
    start = date(2025, 1, 31)
    dues = [shift_months(start, k) for k in range(1, 13)]
    assert dues[0] == date(2025, 2, 28) and dues[1] == date(2025, 3, 31)
    located = locate_cash_flows([(D(1000), start)], [(D(90), d) for d in dues])
    assert located.unit_period == UnitPeriod.month()
    assert [p[1:] for p in located.payments] == [(k, Fraction(0)) for k in range(1, 13)]


def test_30th_series_uses_last_day_of_february():
    start = date(2025, 1, 30)
    dues = [shift_months(start, k) for k in range(1, 4)]
    assert dues == [date(2025, 2, 28), date(2025, 3, 30), date(2025, 4, 30)]
    located = locate_cash_flows([(D(1000), start)], [(D(400), d) for d in dues])
    assert [p[1:] for p in located.payments] == [(k, Fraction(0)) for k in range(1, 4)]


def test_unit_period_most_frequent_and_ties_to_smaller():
    start = date(2025, 1, 1)
    # Two 1-month and two 2-month periods: equal frequency, the smaller (1 month) wins.
    dues = [date(2025, 2, 1), date(2025, 3, 1), date(2025, 5, 1), date(2025, 7, 1)]
    assert choose_unit_period(start, [start], dues) == UnitPeriod.month()


def test_unit_period_without_common_period_is_rounded_average():
    # Periods of 31 and 59 days: average 45 days, nearest standard interval is 6 weeks.
    start = date(2025, 1, 1)
    assert choose_unit_period(start, [start], [date(2025, 2, 1), date(2025, 4, 1)]) == UnitPeriod(
        "week", 6
    )


def test_single_payment_whole_months_and_over_a_year():
    start = date(2025, 1, 15)
    six = choose_unit_period(start, [start], [date(2025, 7, 15)])
    assert six == UnitPeriod.month(6) and six.periods_per_year == 2
    over = choose_unit_period(start, [start], [date(2026, 7, 15)])
    assert over == UnitPeriod.month(12) and str(over) == "1 year"
    # 18 whole months: one year plus 6/12.
    assert locate(start, date(2026, 7, 15), over, 15) == (1, Fraction(1, 2))
    # Not whole months: the remainder in days over 365.
    assert locate(start, date(2026, 3, 1), over, 1) == (1, Fraction(45, 365))


def test_single_payment_over_a_year_apr():
    # 10% a year compounded annually for 18 months, fraction at simple interest: APR is 10%.
    amount = D(1000) * (1 + D("0.05")) * D("1.1")
    apr = actuarial_apr_dated((D(1000), date(2025, 1, 15)), [(amount, date(2026, 7, 15))])
    assert abs(apr - 10) < D("1e-8")


def test_biweekly_beats_semimonth_for_14_day_periods():
    start = date(2025, 3, 1)
    dues = weekly(date(2025, 3, 15), 10, 2)
    assert choose_unit_period(start, [start], dues) == UnitPeriod("week", 2)


def test_multiple_advances_recover_the_rate():
    # Construction-style loan: 1% a month, advances at months 0 and 2, level payments after.
    i = D("0.01")
    payment = D(1000) + D(1000) / (1 + i) ** 2
    payment = payment / sum(1 / (1 + i) ** k for k in range(3, 15))
    start = date(2025, 1, 10)
    advances = [(D(1000), start), (D(1000), shift_months(start, 2))]
    payments = [(payment, shift_months(start, k)) for k in range(3, 15)]
    apr = actuarial_apr_dated(advances, payments)
    assert abs(apr - 12) < D("1e-8")


def test_dated_bad_input():
    start = date(2025, 1, 1)
    with pytest.raises(InvalidCashFlowError, match="precedes the start"):
        locate_cash_flows([(D(100), start)], [(D(110), date(2024, 12, 1))])
    with pytest.raises(InvalidCashFlowError, match=r"datetime\.date"):
        locate_cash_flows([(D(100), "2025-01-01")], [(D(110), date(2025, 2, 1))])
    with pytest.raises(InvalidCashFlowError, match="no payments"):
        locate_cash_flows([(D(100), start)], [])
    with pytest.raises(InvalidCashFlowError, match="not after the advance"):
        locate_cash_flows([(D(100), start)], [(D(110), start)])

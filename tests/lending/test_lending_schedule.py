"""Schedules: known figures, conservation, APR = contract rate within fen rounding, fees."""

import itertools
from dataclasses import replace
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lending.errors import InvalidAmountError, InvalidLoanTermsError, InvalidRateError
from lending.pricing.regz_dates import UnitPeriod
from lending.pricing.schedule import (
    TEA_FLUSH_MONTHS,
    Schedule,
    ScheduleKind,
    ScheduleTerms,
    build_schedule,
)

D = Decimal
START = date(2025, 3, 15)


def terms(kind=ScheduleKind.EQUAL_INSTALLMENT, **kw) -> ScheduleTerms:
    base = {
        "principal_fen": 10_000_000,
        "annual_rate": 1000,
        "term_months": 12,
        "kind": kind,
        "start": START,
    }
    return ScheduleTerms(**{**base, **kw})


def test_equal_installment_textbook_payment():
    # 100,000 yuan, 10% a year, 12 months: the standard 等额本息 payment is 8,791.59 yuan.
    s = build_schedule(terms())
    assert {x.total_fen for x in s.installments[:-1]} == {879_159}
    first = s.installments[0]
    assert (first.interest_fen, first.principal_fen) == (83_333, 795_826)
    assert s.installments[-1].balance_fen == 0
    assert s.unit_period == UnitPeriod.month()
    assert [x.due for x in s.installments[:2]] == [date(2025, 4, 15), date(2025, 5, 15)]


def test_equal_principal_textbook_figures():
    # 等额本金: 8,333.33 principal a month; first interest 833.33, falling by 69.44 a month.
    s = build_schedule(terms(ScheduleKind.EQUAL_PRINCIPAL))
    assert [x.principal_fen for x in s.installments[:-1]] == [833_333] * 11
    assert s.installments[-1].principal_fen == 10_000_000 - 11 * 833_333
    assert s.installments[0].interest_fen == 83_333
    assert s.installments[1].interest_fen == 76_389  # 9,166,667 x 10% / 12 = 76,388.9


def test_interest_only_then_balloon():
    s = build_schedule(terms(ScheduleKind.INTEREST_ONLY))
    assert all(x.principal_fen == 0 and x.interest_fen == 83_333 for x in s.installments[:-1])
    last = s.installments[-1]
    assert last.principal_fen == 10_000_000 and last.interest_fen == 83_333


@pytest.mark.parametrize(("months", "interest"), [(6, 500_000), (12, 1_000_000), (1, 83_333)])
def test_bullet_simple_interest_up_to_a_year(months, interest):
    # Appendix J makes the term the unit-period, so simple interest gives an APR of exactly r
    # (up to the 1/3 fen rounded away in the 1-month case).
    s = build_schedule(terms(ScheduleKind.BULLET, term_months=months))
    assert len(s.installments) == 1
    assert s.installments[0].interest_fen == interest
    assert s.unit_period == UnitPeriod.month(months)
    assert abs(s.regz_cash_flows().apr() - 10) < D("0.0001")


def test_bullet_over_a_year_compounds_annually():
    s = build_schedule(terms(ScheduleKind.BULLET, term_months=18))
    # 1.1 x 1.05 - 1 = 15.5%: a year compounded, then half a year simple (Appendix J year unit).
    assert s.installments[0].interest_fen == 1_550_000
    assert s.unit_period == UnitPeriod.month(12)


def test_seasonal_pays_only_in_flush_months_after_grace():
    s = build_schedule(
        terms(ScheduleKind.SEASONAL, term_months=24, start=date(2025, 1, 10), grace_months=5)
    )
    dues = [x.due for x in s.installments]
    assert all(d.month in TEA_FLUSH_MONTHS for d in dues)
    assert dues[0] == date(2025, 7, 10)  # months 1-5 are grace; June is month 5
    assert dues[-1] == date(2026, 10, 10)
    totals = {x.total_fen for x in s.installments[:-1]}
    assert len(totals) == 1  # level payments
    # The first installment carries six months of interest (grace + first month), compounded
    # monthly as the actuarial method does: 10,000,000 x ((1 + 10%/12)^6 - 1) = 510,533.2 fen.
    assert s.installments[0].interest_fen == 510_533
    # September after July: two months of interest on the balance.
    balance = s.installments[0].balance_fen
    assert s.installments[1].interest_fen == round(balance * ((1 + Fraction(1, 120)) ** 2 - 1))


def test_seasonal_custom_months_and_no_due_month():
    s = build_schedule(terms(ScheduleKind.SEASONAL, flush_months=(5, 10), term_months=12))
    assert [x.due.month for x in s.installments] == [5, 10]
    with pytest.raises(InvalidLoanTermsError, match="no flush month"):
        build_schedule(terms(ScheduleKind.SEASONAL, flush_months=(1,), term_months=6))


def test_fees_are_reported_separately():
    s = build_schedule(terms(upfront_fee_fen=100_000, periodic_fee_fen=500))
    assert all(x.fee_fen == 500 for x in s.installments)
    assert s.total_fees_fen == 100_000 + 12 * 500
    assert s.amount_financed_fen == 9_900_000
    assert s.finance_charge_fen == s.total_repayment_fen - s.amount_financed_fen


def test_long_grace_capitalizes_interest_instead_of_losing_it():
    s = build_schedule(terms(term_months=120, grace_months=60, annual_rate=3600))
    assert s.installments[0].principal_fen < 0
    assert s.total_principal_fen == 10_000_000
    assert s.installments[-1].balance_fen == 0


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"principal_fen": -1}, InvalidAmountError, "must be > 0"),
        ({"principal_fen": 0}, InvalidAmountError, "must be > 0"),
        ({"principal_fen": 100.0}, InvalidAmountError, "int number of fen"),
        ({"upfront_fee_fen": -5}, InvalidAmountError, ">= 0"),
        ({"upfront_fee_fen": 10_000_000}, InvalidLoanTermsError, "receive nothing"),
        ({"annual_rate": -1}, InvalidRateError, "negative"),
        ({"annual_rate": 0.1}, InvalidRateError, "never a float"),
        ({"term_months": 0}, InvalidLoanTermsError, "between 1 and"),
        ({"grace_months": 12}, InvalidLoanTermsError, "between 0 and 11"),
        ({"kind": "balloon"}, InvalidLoanTermsError, "unknown schedule kind"),
        ({"kind": "bullet", "grace_months": 2}, InvalidLoanTermsError, "does not apply"),
        ({"flush_months": (0, 4)}, InvalidLoanTermsError, "1-12"),
        ({"flush_months": ()}, InvalidLoanTermsError, "non-empty"),
        ({"start": "2025-01-01"}, InvalidLoanTermsError, "datetime.date"),
    ],
)
def test_bad_terms(overrides, error, message):
    with pytest.raises(error, match=message):
        terms(**overrides)


def test_decimal_rate_is_percent():
    by_pct = build_schedule(terms(annual_rate=D("10")))
    assert by_pct.installments == build_schedule(terms(annual_rate=1000)).installments


# --- properties -------------------------------------------------------------------------------

KINDS = st.sampled_from(list(ScheduleKind))
STARTS = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def loan_terms(draw, fees: bool = True) -> ScheduleTerms:
    kind = draw(KINDS)
    term = draw(st.integers(1, 36))
    grace = 0 if kind is ScheduleKind.BULLET else draw(st.integers(0, min(term - 1, 6)))
    principal = draw(st.integers(100_000, 100_000_000))
    return ScheduleTerms(
        principal_fen=principal,
        annual_rate=draw(st.integers(0, 3600)),
        term_months=term,
        kind=kind,
        start=draw(STARTS),
        upfront_fee_fen=draw(st.integers(0, principal // 10)) if fees else 0,
        periodic_fee_fen=draw(st.integers(0, 5000)) if fees else 0,
        grace_months=grace,
    )


def built(t: ScheduleTerms) -> Schedule:
    try:
        return build_schedule(t)
    except InvalidLoanTermsError:
        assume(False)  # seasonal terms with no flush month in range
        raise


@settings(max_examples=150, deadline=None)
@given(loan_terms())
def test_totals_conserve_exactly(t):
    s = built(t)
    rows = s.installments
    assert s.total_principal_fen == t.principal_fen
    assert rows[-1].balance_fen == 0
    assert all(x.total_fen == x.principal_fen + x.interest_fen + x.fee_fen for x in rows)
    assert s.total_repayment_fen == t.principal_fen + s.total_interest_fen + sum(
        x.fee_fen for x in rows
    )
    balance = t.principal_fen
    for x in rows:
        balance -= x.principal_fen
        assert x.balance_fen == balance
    assert [x.number for x in rows] == list(range(1, len(rows) + 1))
    assert all(a.due < b.due for a, b in itertools.pairwise(rows))


def rounding_tolerance_pct(located, unit_rate: Fraction, n: int) -> Decimal:
    """Bound on |APR - r| caused by rounding each installment's interest to the fen.

    Rounding interest_j by e_j (|e_j| <= 1/2 fen) leaves the exact balance recursion off by e_j,
    so at the contract rate i: F(i) = sum(P_j / a_j(i)) - A = sum(e_j / a_j(i)), |F(i)| <= n/2.
    F is decreasing with |F'(x)| = sum(P_j (f_j/(1 + f_j x) + t_j/(1 + x)) / a_j(x)), itself
    decreasing in x; the APR root i* is within a hair of i, so x_hi = 2i + 0.001 bounds it and
    |i* - i| <= (n/2) / |F'(x_hi)|. In APR points: x ppy x 100, plus the 1e-10 reporting step.
    """
    with localcontext() as ctx:
        ctx.prec = 40
        x = 2 * D(unit_rate.numerator) / D(unit_rate.denominator) + D("0.001")
        slope = D(0)
        for amount, t, f in located.payments:
            fd = D(f.numerator) / D(f.denominator)
            a = (1 + fd * x) * (1 + x) ** t
            slope += D(amount) * (fd / (1 + fd * x) + t / (1 + x)) / a
        ppy = located.periods_per_year
        return D(n) / 2 / slope * ppy.numerator / ppy.denominator * 100 + D("1e-9")


@settings(max_examples=150, deadline=None)
@given(loan_terms(fees=False))
def test_apr_of_fee_free_schedule_is_its_rate(t):
    s = built(t)
    located = s.regz_cash_flows()
    unit_rate = t.annual_rate_fraction / located.periods_per_year
    # The rounding identity itself, exactly: |sum(P_j / a_j) - A| <= n/2 fen at the contract rate.
    pv = Fraction(0)
    for amount, t_j, f_j in located.payments:
        pv += Fraction(amount) / ((1 + f_j * unit_rate) * (1 + unit_rate) ** t_j)
    assert abs(pv - t.principal_fen) <= Fraction(len(s.installments), 2)
    apr = located.apr()
    tolerance = rounding_tolerance_pct(located, unit_rate, len(s.installments))
    assert abs(apr - t.annual_rate_pct) <= tolerance
    # And the tolerance is small in practice: principal >= 1,000 yuan keeps it well under 0.05.
    assert tolerance < D("0.05")


@settings(max_examples=80, deadline=None)
@given(
    t=loan_terms(fees=False),
    upfront=st.tuples(st.integers(0, 50_000), st.integers(0, 50_000)),
    periodic=st.tuples(st.integers(0, 3_000), st.integers(0, 3_000)),
)
def test_more_fees_never_lower_the_apr(t, upfront, periodic):
    low = replace(t, upfront_fee_fen=min(upfront), periodic_fee_fen=min(periodic))
    high = replace(t, upfront_fee_fen=max(upfront), periodic_fee_fen=max(periodic))
    apr_low = built(low).regz_cash_flows().apr()
    apr_high = built(high).regz_cash_flows().apr()
    assert apr_low <= apr_high
    if high != low:
        assert apr_low < apr_high

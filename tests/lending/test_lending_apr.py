"""APR solver: PBoC 2021 No.3 example, robustness of the root finding, bad input."""

from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending.errors import InvalidCashFlowError, LendingError
from lending.pricing.apr import actuarial_apr, pboc_annualized_rate

D = Decimal


def two_places(x: Decimal) -> Decimal:
    return x.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def npv(i: Decimal, advances, payments, compound: bool = False) -> Decimal:
    """Independent evaluation of the (b)(8) equation, payments minus advances, at rate i."""

    def pv(amount, t, f):
        f = D(f.numerator) / D(f.denominator) if isinstance(f, Fraction) else D(f)
        d = (1 + i) ** (t + f) if compound else (1 + f * i) * (1 + i) ** t
        return D(amount) / d

    with localcontext() as ctx:
        ctx.prec = 50
        return sum(pv(*p) for p in payments) - sum(pv(*a) for a in advances)


# PBoC announcement [2021] No.3 example: 100,000 yuan for a year, a 1,000 yuan fee taken upfront
# (so 99,000 is actually available), 12 monthly payments of 8,833.3 yuan. The monthly IRR is
# 1.0670%: 12 x IRR = 12.80% (simple annualization) and (1 + IRR)^12 - 1 = 13.58% (compound).
PBOC_PAYMENTS = [(D("8833.3"), k, 0) for k in range(1, 13)]


def test_pboc_example_simple_and_compound():
    rate = pboc_annualized_rate(D(99000), PBOC_PAYMENTS, 12)
    assert two_places(rate.simple_pct) == D("12.80")
    assert two_places(rate.compound_pct) == D("13.58")
    assert abs(rate.periodic_irr - D("0.0106698")) < D("1e-7")
    assert rate.periods_per_year == 12


def test_pboc_example_is_on_net_principal_not_face_value():
    # Against the face 100,000 the same payments look much cheaper: the fee matters.
    face = pboc_annualized_rate(D(100000), PBOC_PAYMENTS, 12)
    assert two_places(face.simple_pct) == D("10.90")


def test_regz_apr_equals_pboc_simple_for_monthly_whole_periods():
    apr = actuarial_apr(D(99000), PBOC_PAYMENTS, 12)
    rate = pboc_annualized_rate(D(99000), PBOC_PAYMENTS, 12)
    assert apr == rate.simple_pct


def test_compound_and_regz_differ_only_with_fractions():
    payments = [(D(200), k, Fraction(19, 30)) for k in range(1, 37)]
    regz = actuarial_apr(D(6000), payments, 12)
    pboc = pboc_annualized_rate(D(6000), payments, 12)
    assert regz != pboc.simple_pct
    assert abs(regz - pboc.simple_pct) < D("0.01")


def test_zero_rate_and_integer_amounts():
    assert actuarial_apr(1200, [(100, k, 0) for k in range(1, 13)], 12) == 0


@pytest.mark.parametrize(
    ("advance", "payments", "ppy"),
    [
        (D(100), [(D(150), 1, 0)], 26),  # payday-style: 50% in two weeks, APR 1300%
        (D(100), [(D("100.0001"), 12, 0)], 12),  # barely positive
        (D(1), [(D(10) ** 6, 1, 0)], 12),  # absurd but solvable
        (D(1000), [(D(1), k, 0) for k in range(1, 360)] + [(D(1000), 360, 0)], 12),
    ],
)
def test_extreme_rates_are_bracketed_and_verified(advance, payments, ppy):
    apr = actuarial_apr(advance, payments, ppy)
    i = apr / ppy / 100
    assert apr > 0
    scale = advance * D("1e-6")
    assert abs(npv(i, [(advance, 0, 0)], payments)) <= scale


def test_payday_value():
    assert actuarial_apr(D(100), [(D(150), 1, 0)], 26) == D(1300)


def test_interleaved_flows_return_smallest_root():
    # Advance, payment, second advance, final payment: the solver scans for the first root.
    advances = [(D(1000), 0, 0), (D(1000), 2, 0)]
    payments = [(D(600), 1, 0), (D(1500), 3, 0)]
    apr = actuarial_apr(advances, payments, 12)
    i = apr / 1200
    assert abs(npv(i, advances, payments)) < D("1e-6")
    grid = [i * k / 200 for k in range(1, 200)]
    assert all(npv(x, advances, payments) > 0 for x in grid)


@settings(max_examples=100, deadline=None)
@given(
    advance=st.integers(1, 10**9),
    n=st.integers(1, 60),
    markup=st.decimals(min_value=D("0.0001"), max_value=D(5), places=4),
    f=st.fractions(min_value=0, max_value=1, max_denominator=30),
    gap=st.integers(1, 3),
)
def test_root_is_certified_for_random_level_loans(advance, n, markup, f, gap):
    """Any conventional loan with positive interest: a positive root where F changes sign."""
    total = D(advance) * (1 + markup)
    payments = [(total / n, 1 + gap * k, f) for k in range(n)]
    apr = actuarial_apr(D(advance), payments, 12)
    assert apr > 0
    i = apr / 1200
    adv = [(D(advance), 0, 0)]
    # Reported to 1e-10 points, so step a little wider than that to see the sign change.
    eps = max(i * D("1e-6"), D("1e-12"))
    assert npv(i - eps, adv, payments) > 0 > npv(i + eps, adv, payments)


@pytest.mark.parametrize(
    ("advance", "payments", "ppy", "message"),
    [
        (D(-100), [(D(110), 1, 0)], 12, "amounts must be finite and >= 0"),
        (D(100), [(D(-110), 1, 0)], 12, "amounts must be finite and >= 0"),
        (D(100), [], 12, "no payments"),
        ([], [(D(110), 1, 0)], 12, "no advances"),
        (D(100), [(D(50), 1, 0), (D(40), 2, 0)], 12, "never repay"),
        (D(100), [(D(110), 1, 0)], 0, "must be > 0"),
        (D(100), [(D(110), 1, 0)], -12, "must be > 0"),
        (D(100), [(D(110), 1, 0)], 12.0, "never a float"),
        (100.0, [(D(110), 1, 0)], 12, "must be an amount"),
        (D(100), [(110.0, 1, 0)], 12, "floats are not accepted"),
        (D(100), [(D(110), -1, 0)], 12, "int >= 0"),
        (D(100), [(D(110), 1, Fraction(3, 2))], 12, r"\[0, 1\]"),
        (D(100), [(D(110), 1, 0.5)], 12, "never a float"),
        (D(100), [(D(0), 1, 0)], 12, "every payment is zero"),
        (D(100), [(D(110), 0, 0)], 12, "no finite rate"),
        (D("NaN"), [(D(110), 1, 0)], 12, "finite"),
        (D(100), [(D(110), 1)], 12, "triple"),
    ],
)
def test_bad_input_raises_named_errors(advance, payments, ppy, message):
    with pytest.raises(InvalidCashFlowError, match=message):
        actuarial_apr(advance, payments, ppy)


def test_errors_share_one_root():
    with pytest.raises(LendingError):
        pboc_annualized_rate(D(100), [], 12)


@settings(max_examples=100, deadline=None)
@given(
    rate_bps=st.integers(1, 10_000),
    n=st.integers(1, 120),
    ppy=st.sampled_from([12, 24, 26, 52, 4]),
    f=st.fractions(min_value=0, max_value=Fraction(29, 30), max_denominator=30),
)
def test_exact_annuity_apr_is_its_rate(rate_bps, n, ppy, f):
    """Unrounded level payments at nominal rate r give APR r (no fen rounding involved)."""
    with localcontext() as ctx:
        ctx.prec = 50
        i = D(rate_bps) / 10_000 / ppy
        # Odd first period: the advance grows by (1 + f*i) before the regular annuity starts.
        payment = D(10**6) * (1 + f.numerator * i / f.denominator) * i / (1 - (1 + i) ** -n)
    apr = actuarial_apr(D(10**6), [(payment, k, f) for k in range(1, n + 1)], ppy)
    assert abs(apr - D(rate_bps) / 100) <= D("1e-8")

"""Disclosure: figures, identities, JSON shape and cap enforcement."""

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from lending.errors import (
    InvalidLoanTermsError,
    PenaltyRateCapExceededError,
    RateCapExceededError,
)
from lending.pricing.caps import CapBasis, CapPolicy
from lending.pricing.disclosure import disclose
from lending.pricing.schedule import ScheduleKind, ScheduleTerms

D = Decimal


def offer(**kw) -> ScheduleTerms:
    base = {
        "principal_fen": 10_000_000,
        "annual_rate": 1000,
        "term_months": 12,
        "kind": ScheduleKind.EQUAL_INSTALLMENT,
        "start": date(2025, 1, 15),
    }
    return ScheduleTerms(**{**base, **kw})


def test_monthly_offer_figures():
    d = disclose(offer())
    # 10% nominal, monthly: Reg Z APR and PBoC simple are 10%, compound (1 + 10%/12)^12 - 1.
    assert abs(d.apr_regz_pct - 10) < D("0.001")
    assert abs(d.pboc_annualized_simple_pct - 10) < D("0.001")
    assert abs(d.pboc_annualized_compound_pct - D("10.4713")) < D("0.001")
    assert d.regz_unit_period == "1 month" and d.regz_periods_per_year == "12"
    assert d.rate_cap.rule == "4x_lpr_2024-12-20" and d.rate_cap.within_cap
    assert d.warnings == ()


def test_upfront_fee_raises_every_annualized_figure():
    plain = disclose(offer(annual_rate=800))
    fee = disclose(offer(annual_rate=800, upfront_fee_fen=100_000))
    assert fee.amount_financed_fen == 9_900_000
    assert fee.apr_regz_pct > plain.apr_regz_pct
    assert fee.pboc_annualized_simple_pct > plain.pboc_annualized_simple_pct
    assert fee.pboc_annualized_compound_pct > plain.pboc_annualized_compound_pct


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(list(ScheduleKind)),
    rate=st.integers(0, 1100),
    term=st.integers(1, 24),
    upfront=st.integers(0, 20_000),
    periodic=st.integers(0, 2_000),
)
def test_disclosed_totals_are_sums(kind, rate, term, upfront, periodic):
    try:
        terms = offer(
            kind=kind,
            annual_rate=rate,
            term_months=term,
            upfront_fee_fen=upfront,
            periodic_fee_fen=periodic,
        )
        d = disclose(terms, CapPolicy(use_lpr_cap=False))
    except InvalidLoanTermsError:
        assume(False)
        raise
    rows = d.installments
    assert sum(x.principal_fen for x in rows) == d.principal_fen
    assert d.total_interest_fen == sum(x.interest_fen for x in rows)
    assert d.total_fees_fen == upfront + sum(x.fee_fen for x in rows)
    assert d.total_repayment_fen == sum(x.total_fen for x in rows)
    assert d.finance_charge_fen == d.total_interest_fen + d.total_fees_fen
    assert d.finance_charge_fen == d.total_repayment_fen - d.amount_financed_fen
    assert d.maturity == rows[-1].due


def test_json_has_decimal_strings_and_integer_fen():
    d = disclose(
        offer(annual_rate=800, upfront_fee_fen=50_000, periodic_fee_fen=100, penalty_rate_bps=100)
    )
    data = json.loads(d.to_json())
    for key in (
        "apr_regz_pct",
        "pboc_annualized_compound_pct",
        "pboc_annualized_simple_pct",
        "annual_rate_pct",
    ):
        assert isinstance(data[key], str)
        D(data[key])  # parses back exactly
    for key in (
        "principal_fen",
        "amount_financed_fen",
        "total_interest_fen",
        "total_fees_fen",
        "total_repayment_fen",
        "finance_charge_fen",
    ):
        assert type(data[key]) is int
    row = data["installments"][0]
    assert all(
        type(row[k]) is int
        for k in ("principal_fen", "interest_fen", "fee_fen", "total_fen", "balance_fen")
    )
    assert row["due"] == "2025-02-15"
    assert data["rate_cap"]["rule"] == "4x_lpr_2024-12-20"
    assert data["rate_cap"]["cap_pct"] == "12.40"
    assert data["penalty_cap"]["what"].startswith("combined rate")
    assert data["schema_version"] == "tealedger.disclosure/1"


def test_disclosure_is_frozen():
    d = disclose(offer())
    with pytest.raises(ValidationError):
        d.apr_regz_pct = D(1)


def test_offer_above_cap_is_refused_unless_asked():
    with pytest.raises(RateCapExceededError) as err:
        disclose(offer(annual_rate=1200))  # 12% nominal is 12.68% compound > 12.40%
    assert err.value.rule == "4x_lpr_2024-12-20"
    shown = disclose(offer(annual_rate=1200), enforce_caps=False)
    assert not shown.rate_cap.within_cap
    assert any("exceeds the cap" in w for w in shown.warnings)


def test_cap_basis_is_configurable():
    # 12% nominal monthly: within 12.40% on the Reg Z APR, above it compounded.
    d = disclose(offer(annual_rate=1200), CapPolicy(basis=CapBasis.REGZ_APR))
    assert d.rate_cap.within_cap and d.cap_basis is CapBasis.REGZ_APR


def test_penalty_on_top_of_contract_rate_is_refused():
    with pytest.raises(PenaltyRateCapExceededError):
        disclose(offer(annual_rate=800, penalty_rate_bps=500))


BULLET_2025 = {"kind": ScheduleKind.BULLET, "start": date(2025, 6, 1)}  # cap 12.00%: 4 x 3.00%


@pytest.mark.parametrize("basis", list(CapBasis))
def test_the_contract_rate_never_exceeds_the_cap_whatever_the_basis(basis):
    # Issue 17: a 12.30% bullet loan has a PBoC simple rate of 11.65% and passed a 12.00% cap.
    policy = CapPolicy(basis=basis)
    for rate in (1201, 1230):
        with pytest.raises(RateCapExceededError, match=r"exceeds the binding cap 12\.00%") as err:
            disclose(offer(annual_rate=rate, **BULLET_2025), policy)
        assert err.value.rate_pct >= D(rate).scaleb(-2)
        shown = disclose(offer(annual_rate=rate, **BULLET_2025), policy, enforce_caps=False)
        assert not shown.rate_cap.within_cap and shown.rate_cap.rate_pct >= D(rate).scaleb(-2)


@pytest.mark.parametrize("basis", [CapBasis.PBOC_SIMPLE, CapBasis.PBOC_COMPOUND])
def test_at_the_cap_the_contract_rate_passes_and_the_basis_only_adds_strictness(basis):
    at_cap = disclose(offer(annual_rate=1200, **BULLET_2025), CapPolicy(basis=basis))
    assert at_cap.rate_cap.within_cap and at_cap.rate_cap.cap_pct == D("12.00")
    assert at_cap.rate_cap.rate_pct == max(
        D("12.00"), getattr(at_cap, f"{basis.value.replace('pboc', 'pboc_annualized')}_pct")
    )


def test_the_simple_basis_below_the_contract_rate_is_reported_as_the_contract_rate():
    d = disclose(offer(annual_rate=1230, **BULLET_2025), CapPolicy(basis=CapBasis.PBOC_SIMPLE),
                 enforce_caps=False)  # fmt: skip
    assert d.pboc_annualized_simple_pct < D("12.00") < d.annual_rate_pct
    assert d.rate_cap.rate_pct == D("12.30")
    assert d.rate_cap.what.startswith("contract rate")

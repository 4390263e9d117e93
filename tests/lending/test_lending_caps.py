"""LPR table and rate caps: lookup, binding rule, penalty rates, never above the cap."""

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending.errors import (
    InvalidRateError,
    LprDateOutOfRangeError,
    LprTableError,
    PenaltyRateCapExceededError,
    RateCapExceededError,
)
from lending.pricing.caps import CapPolicy, binding_cap, check_penalty_rate_cap, check_rate_cap
from lending.pricing.lpr import load_lpr_table, lpr_on, parse_lpr_table, shipped_lpr_table

D = Decimal
TABLE = shipped_lpr_table()


def test_shipped_table_metadata_and_shape():
    assert TABLE.version
    assert "National Interbank Funding Center" in TABLE.source
    assert TABLE.first_date == date(2019, 8, 20)
    assert TABLE.fixings[0].rate_bps == 425
    assert len(TABLE.fixings) >= 70
    dates = [fx.date for fx in TABLE.fixings]
    assert dates == sorted(set(dates))


@pytest.mark.parametrize(
    ("on", "fixing_date", "bps"),
    [
        (date(2019, 8, 20), date(2019, 8, 20), 425),  # first fixing, on its own date
        (date(2019, 9, 19), date(2019, 8, 20), 425),  # the day before the next fixing
        (date(2019, 9, 20), date(2019, 9, 20), 420),
        (date(2020, 4, 20), date(2020, 4, 20), 385),
        (date(2021, 12, 20), date(2021, 12, 20), 380),
        (date(2022, 1, 19), date(2021, 12, 20), 380),
        (date(2022, 8, 22), date(2022, 8, 22), 365),
        (date(2023, 6, 20), date(2023, 6, 20), 355),
        (date(2023, 8, 21), date(2023, 8, 21), 345),
        (date(2024, 7, 22), date(2024, 7, 22), 335),
        (date(2024, 10, 21), date(2024, 10, 21), 310),
        (date(2025, 5, 20), date(2025, 5, 20), 300),
    ],
)
def test_lookup_picks_last_fixing_on_or_before(on, fixing_date, bps):
    quote = lpr_on(on, TABLE)
    assert (quote.fixing.date, quote.fixing.rate_bps) == (fixing_date, bps)
    assert quote.table_version == TABLE.version and not quote.stale


def test_lookup_refuses_dates_before_the_table():
    with pytest.raises(LprDateOutOfRangeError, match="before the first LPR fixing"):
        lpr_on(date(2019, 8, 19))


def test_lookup_after_coverage_is_flagged_stale():
    quote = lpr_on(date(2099, 1, 1), TABLE)
    assert quote.stale and quote.fixing == TABLE.fixings[-1]


def test_custom_table_file(tmp_path):
    path = tmp_path / "lpr.json"
    path.write_text(
        json.dumps(
            {
                "version": "test-1",
                "source": "test",
                "covers_through": "2030-01-01",
                "fixings": [
                    {"date": "2020-01-01", "rate_bps": 500},
                    {"date": "2021-01-01", "rate_bps": 700},
                ],
            }
        )
    )
    table = load_lpr_table(path)
    assert lpr_on(date(2020, 6, 1), table).fixing.rate_bps == 500
    check = check_rate_cap(2000, date(2020, 6, 1), table=table)
    assert (check.rule, check.cap_pct) == ("4x_lpr_2020-01-01", D("20.00"))
    # 4 x 7% = 28% > 24%: the hard cap binds.
    assert check_rate_cap(2000, date(2021, 6, 1), table=table).rule == "hard_cap_24pct"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"version": "x", "source": "s", "covers_through": "2020-01-01", "fixings": []},
        {
            "version": "x",
            "source": "s",
            "covers_through": "2020-12-01",
            "fixings": [
                {"date": "2020-02-01", "rate_bps": 1},
                {"date": "2020-01-01", "rate_bps": 1},
            ],
        },
        {
            "version": "x",
            "source": "s",
            "covers_through": "2020-12-01",
            "fixings": [{"date": "2020-02-01", "rate_bps": -5}],
        },
    ],
)
def test_malformed_tables(data):
    with pytest.raises(LprTableError):
        parse_lpr_table(data)


def test_binding_rule_names():
    # 2025-01-15: LPR 3.10% -> 4x = 12.40% < 24%.
    ok = check_rate_cap(1200, date(2025, 1, 15))
    assert ok.rule == "4x_lpr_2024-12-20"
    assert ok.cap_pct == D("12.40") and ok.within_cap and ok.headroom_pct == D("0.40")
    assert ok.lpr is not None and ok.lpr.fixing.rate_bps == 310
    # A hard cap below 4x LPR binds instead, and its name follows its value.
    low = check_rate_cap(1000, date(2025, 1, 15), CapPolicy(hard_cap_bps=1050))
    assert (low.rule, low.cap_pct) == ("hard_cap_10.5pct", D("10.50"))
    only_hard = check_rate_cap(2000, date(2025, 1, 15), CapPolicy(use_lpr_cap=False))
    assert (only_hard.rule, only_hard.lpr) == ("hard_cap_24pct", None)


def test_rate_equal_to_cap_passes_and_above_raises_with_values():
    assert check_rate_cap(1240, date(2025, 1, 15)).within_cap
    with pytest.raises(RateCapExceededError) as err:
        check_rate_cap(D("12.4001"), date(2025, 1, 15))
    exc = err.value
    assert (exc.rate_pct, exc.cap_pct, exc.rule) == (D("12.4001"), D("12.40"), "4x_lpr_2024-12-20")
    assert "lower the interest rate or fees" in str(exc)


def test_penalty_rate_is_capped_on_the_combined_rate():
    ok = check_penalty_rate_cap(800, 400, date(2025, 1, 15))
    assert ok.rate_pct == D("12.00") and ok.within_cap
    with pytest.raises(PenaltyRateCapExceededError, match="combined rate") as err:
        check_penalty_rate_cap(1000, 400, date(2025, 1, 15))
    assert isinstance(err.value, RateCapExceededError)
    assert err.value.rate_pct == D("14.00")


def test_bad_policy_and_rates():
    with pytest.raises(InvalidRateError):
        CapPolicy(hard_cap_bps=0)
    with pytest.raises(InvalidRateError, match="unknown cap basis"):
        CapPolicy(basis="average")
    with pytest.raises(InvalidRateError, match="never a float"):
        check_rate_cap(12.0, date(2025, 1, 15))
    with pytest.raises(InvalidRateError, match="negative"):
        check_rate_cap(-1, date(2025, 1, 15))


RATES = st.one_of(
    st.integers(0, 6000),
    st.decimals(min_value=0, max_value=60, places=6, allow_nan=False, allow_infinity=False),
)
DATES = st.dates(min_value=date(2019, 8, 20), max_value=date(2027, 12, 31))
POLICIES = st.builds(
    CapPolicy,
    hard_cap_bps=st.integers(100, 4000),
    lpr_multiple=st.integers(1, 8),
    use_lpr_cap=st.booleans(),
)


def as_pct(rate):
    return D(rate) / 100 if isinstance(rate, int) else rate


@settings(max_examples=200, deadline=None)
@given(rate=RATES, on=DATES, policy=POLICIES)
def test_no_rate_above_the_binding_cap_gets_through(rate, on, policy):
    hard = D(policy.hard_cap_bps) / 100
    lpr_cap = D(lpr_on(on).fixing.rate_bps) * policy.lpr_multiple / 100
    binding = min(hard, lpr_cap) if policy.use_lpr_cap else hard
    _, cap, _, _ = binding_cap(on, policy)
    assert cap == binding
    try:
        result = check_rate_cap(rate, on, policy)
    except RateCapExceededError as exc:
        assert as_pct(rate) > binding
        assert exc.cap_pct == binding
    else:
        assert as_pct(rate) <= binding == result.cap_pct
        expected_lpr = policy.use_lpr_cap and lpr_cap < hard
        assert result.rule.startswith(
            f"{policy.lpr_multiple}x_lpr_" if expected_lpr else "hard_cap_"
        )


@settings(max_examples=100, deadline=None)
@given(rate=RATES, penalty=RATES, on=DATES)
def test_no_combined_rate_above_the_cap_gets_through(rate, penalty, on):
    binding = min(D(24), D(lpr_on(on).fixing.rate_bps) * 4 / 100)
    combined = as_pct(rate) + as_pct(penalty)
    try:
        check_penalty_rate_cap(rate, penalty, on)
    except PenaltyRateCapExceededError:
        assert combined > binding
    else:
        assert combined <= binding

"""Farmer profiles from indexed events, checked against what the scenario sent."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy import func, select

from indexer.db import make_engine
from indexer.models import Sale
from indexer.profiles import (
    FarmerNotFoundError,
    FarmerProfile,
    farmer_ids,
    farmer_weights,
    has_consent,
    load_profile,
)
from indexer.runner import index_once
from indexer.seasons import season_of
from tests._fixtures import workload
from tests.indexer._support import IndexedChain

pytestmark = pytest.mark.node


@pytest.fixture
def profiles(region_chain: IndexedChain, db_url: str) -> dict[bytes, FarmerProfile]:
    index_once(region_chain.client, db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        return {f: load_profile(conn, f) for f in farmer_ids(conn)}


def _expected(region_chain: IndexedChain) -> dict[bytes, dict[str, list[tuple[int, int]]]]:
    """(grams, grade) per farmer and season, from the records the scenario sent."""
    out: dict[bytes, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for records in workload.harvest_records(region_chain.region.farmers, 4, 1).values():
        for farmer, _plot, grams, grade, picked, _h in records:
            out[farmer][season_of(picked)].append((grams, grade))
    return out


def test_production_figures_match_what_was_recorded(region_chain: IndexedChain, profiles) -> None:
    expected = _expected(region_chain)
    assert set(profiles) == {f.farmer for f in region_chain.region.farmers}
    for farmer, profile in profiles.items():
        seasons = {s.season: s for s in profile.seasons}
        assert set(seasons) == set(expected[farmer])
        for season, picks in expected[farmer].items():
            figures = seasons[season]
            grams = [g for g, _ in picks]
            assert figures.harvests == len(picks)
            assert figures.fresh_leaf_grams == sum(grams)
            assert sum(g.grams for g in figures.grade_mix) == sum(grams)
            assert figures.consistency_cv == _cv(grams)
        assert profile.total.fresh_leaf_grams == sum(
            g for p in expected[farmer].values() for g, _ in p
        )
        assert profile.total_area_mu == sum(p.area_mu for p in profile.plots)


def _cv(values: list[int]) -> Decimal | None:
    """Population CV with exact rationals, rounded like the profile."""
    if len(values) < 2:
        return None
    n, mean = len(values), Fraction(sum(values), len(values))
    var = sum((Fraction(v) - mean) ** 2 for v in values) / n
    sd = Decimal(var.numerator).sqrt() / Decimal(var.denominator).sqrt() if var else Decimal(0)
    return (sd / Decimal(mean.numerator) * Decimal(mean.denominator)).quantize(Decimal("0.0001"))


def test_sale_income_adds_up_to_first_sales(
    region_chain: IndexedChain, db_url: str, profiles
) -> None:
    with make_engine(db_url).connect() as conn:
        paid = conn.execute(
            select(func.sum(Sale.price_fen)).where(Sale.attributed.is_(True))
        ).scalar()
    income = sum(p.total.sale_income_fen for p in profiles.values())
    assert income == paid > 0
    sellers = [p for p in profiles.values() if p.total.sale_income_fen]
    for p in sellers:
        assert (
            p.total.price_fen_per_kg is not None
            and p.total.cooperative_price_fen_per_kg is not None
        )
        assert p.total.price_vs_cooperative is not None and p.total.price_vs_cooperative > 0
    assert any(p.total.made_tea_grams > 0 and p.total.made_tea_ratio for p in profiles.values())


def test_quality_failures_and_recalls_reach_the_farmers_in_the_lot(profiles) -> None:
    assert sum(p.total.recalls for p in profiles.values()) >= 1
    assert sum(p.total.quality_failures for p in profiles.values()) >= 1


def test_profile_states_the_block_it_is_valid_at(region_chain: IndexedChain, profiles) -> None:
    block = region_chain.client.w3.eth.get_block("latest")
    for profile in profiles.values():
        assert profile.valid_at.block_number == block["number"]
        assert profile.valid_at.block_hash == block["hash"].to_0x_hex()
        assert profile.valid_at.chain_id == region_chain.client.w3.eth.chain_id
        assert profile.first_activity <= profile.last_activity


def test_credit_history_from_loan_events(region_chain: IndexedChain, profiles) -> None:
    good, bad = [f for f in region_chain.region.farmers if f.wallet is not None][:2]
    paid = profiles[good.farmer].credit
    assert (paid.available, paid.loans, paid.open_loans, paid.defaults) == (True, 1, 0, 0)
    assert (paid.principal_fen, paid.disbursed_fen, paid.repaid_fen) == (100_000, 60_000, 64_800)
    assert (paid.outstanding_fen, paid.on_time_repayments, paid.late_repayments) == (0, 1, 0)
    assert paid.max_days_past_due == 0
    late = profiles[bad.farmer].credit
    assert (late.loans, late.open_loans, late.defaults) == (1, 1, 1)
    assert (late.disbursed_fen, late.repaid_fen) == (50_000, 15_000)
    assert late.outstanding_fen == 50_000 * 108_000 // 100_000 - 15_000  # drawn x 1.08 - repaid
    assert (late.on_time_repayments, late.late_repayments) == (1, 1)
    assert late.max_days_past_due == late.current_days_past_due == 2
    others = [p for f, p in profiles.items() if f not in (good.farmer, bad.farmer)]
    assert all(p.credit.available and p.credit.loans == 0 for p in others)


def test_status_consent_and_unknown_farmer(
    region_chain: IndexedChain, db_url: str, profiles
) -> None:
    coop_farmers = [f for f in region_chain.region.farmers if f.cooperative == workload.COOPERATIVE]
    assert all(profiles[f.farmer].active for f in region_chain.region.farmers)  # re-activated
    lender = bytes.fromhex(region_chain.client.accounts[0].address[2:])
    with_wallet = [f for f in region_chain.region.farmers if f.wallet is not None]
    with make_engine(db_url).connect() as conn:
        now = region_chain.client.w3.eth.get_block("latest")["timestamp"]
        granted = [has_consent(conn, f.farmer, lender, now) for f in with_wallet]
        assert granted == [True] * (len(with_wallet) - 1) + [False]  # the last one revoked
        assert not has_consent(conn, with_wallet[0].farmer, lender, now + 31 * 86400)
        with pytest.raises(FarmerNotFoundError):
            load_profile(conn, b"\x01" * 32)
    assert coop_farmers and all(
        profiles[f.farmer].has_wallet == (f.wallet is not None) for f in coop_farmers
    )


def test_profile_serialises_money_and_ratios_exactly(profiles) -> None:
    profile = next(iter(profiles.values()))
    doc = profile.model_dump(mode="json")
    assert isinstance(doc["total"]["fresh_leaf_grams"], int)
    assert isinstance(doc["total"]["fresh_leaf_kg"], str)  # Decimal as text, never a float
    assert FarmerProfile.model_validate_json(profile.model_dump_json()) == profile


def test_farmer_weights_of_a_made_tea_lot(
    region_chain: IndexedChain, db_url: str, profiles
) -> None:
    """What SaleSettlement.commitShares needs: grams per farmer through lineage."""
    blend = region_chain.region.made_lots[0]  # blended from two made-tea lots
    with make_engine(db_url).connect() as conn:
        weights = farmer_weights(conn, blend)
        assert farmer_weights(conn, b"\x09" * 32) == []
        harvest = region_chain.region.harvest_lots[0]
        assert len(farmer_weights(conn, harvest)) == 1
    assert len(weights) >= 2 and all(g > 0 for _, g in weights)
    assert [f for f, _ in weights] == sorted(f for f, _ in weights)

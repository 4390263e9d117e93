"""The season generator: reproducible, plausible, and free of impossible records."""

from datetime import UTC, datetime

import pytest

from simulation.season import FLUSHES, generate


def test_same_seed_same_season():
    a, b = generate(40, seed=7), generate(40, seed=7)
    assert a.harvests == b.harvests and a.farmers == b.farmers and a.batches == b.batches
    assert generate(40, seed=8).harvests != a.harvests


def test_plausible_yields_and_ratios():
    season = generate(200, seed=1)
    for i, farmer in enumerate(season.farmers):
        grams = sum(h.grams for h in season.harvests if h.farmer == i)
        kg_per_mu = grams / 1000 / (farmer.area_centi_mu / 100)
        assert 100 < kg_per_mu < 800, (farmer, kg_per_mu)
    made = sum(sum(b.outputs_grams) for b in season.batches)
    assert 0.21 < made / season.fresh_leaf_grams() < 0.26


def test_every_harvest_processed_once_and_in_its_flush():
    season = generate(60, seed=3)
    used = [i for b in season.batches for i in b.harvests]
    assert sorted(used) == list(range(len(season.harvests)))
    for h in season.harvests:
        (m1, d1), (m2, d2), _ = FLUSHES[h.flush]
        day = h.picked_at.date()
        assert (m1, d1) <= (day.month, day.day) <= (m2, d2)
        assert h.picked_at < datetime.now(UTC)


def test_identity_numbers_are_unique_and_synthetic():
    season = generate(500, seed=5)
    ids = [f.national_id for f in season.farmers]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("4228") and len(i) == 18 for i in ids)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one farmer"):
        generate(0)


def test_demo_uses_the_latest_finished_season():
    from tealedger.demo.season import latest_full_season

    assert latest_full_season(datetime(2026, 11, 28, tzinfo=UTC)) == 2026
    assert latest_full_season(datetime(2026, 10, 25, tzinfo=UTC)) == 2025
    assert latest_full_season(datetime(2027, 3, 1, tzinfo=UTC)) == 2026


def test_the_factory_makes_many_farmers_leaf_together_in_line_sized_runs():
    from simulation.season import LINE_RUN_DELIVERIES, LINE_RUN_GRAMS

    season = generate(300, seed=2026, year=2025)
    for run in season.batches:
        picked = [season.harvests[i] for i in run.harvests]
        assert {(h.picked_at.date(), h.grade) for h in picked} == {(run.day, run.grade)}
        assert len(picked) <= LINE_RUN_DELIVERIES
        assert sum(h.grams for h in picked) <= LINE_RUN_GRAMS or len(picked) == 1
        assert len(run.outputs_grams) == 1  # a run is packed as one lot
    cooperatives = [
        {season.farmers[season.harvests[i].farmer].cooperative for i in run.harvests}
        for run in season.batches
    ]
    assert sum(1 for c in cooperatives if len(c) > 1) > len(season.batches) // 2
    # A farmer's deliveries are its lots; made-tea lots are few and shared by many farmers.
    assert 15 < len(season.harvests) / len(season.farmers) < 35
    assert len(season.batches) < len(season.harvests) / 5


def test_made_lots_follow_the_tonnage_not_the_farmers():
    small, large = generate(300, seed=4, year=2025), generate(3000, seed=4, year=2025)
    assert len(large.harvests) > 9 * len(small.harvests)
    assert len(large.batches) < 7 * len(small.batches)  # runs fill up before they multiply

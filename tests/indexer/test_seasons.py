"""Seasons by calendar in China time, and exact pro-rata splitting."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.projections import Projector
from indexer.seasons import CHINA, allocate, season_of, season_sort_key


@pytest.mark.parametrize(
    ("moment", "season"),
    [
        ("2026-03-01T00:00", "2026-spring"),
        ("2026-05-31T23:59", "2026-spring"),
        ("2026-06-01T00:00", "2026-summer"),
        ("2026-09-01T00:00", "2026-autumn"),
        ("2026-11-30T23:59", "2026-autumn"),
        ("2026-12-01T00:00", "2026-winter"),
        ("2027-02-28T12:00", "2026-winter"),
    ],
)
def test_season_boundaries_in_china_time(moment: str, season: str) -> None:
    ts = int(datetime.fromisoformat(moment).replace(tzinfo=CHINA).timestamp())
    assert season_of(ts) == season


def test_utc_evening_is_already_the_next_day_in_china() -> None:
    # 2026-02-28 20:00 UTC is 2026-03-01 04:00 in China: spring has begun there.
    assert (
        season_of(int(datetime.fromisoformat("2026-02-28T20:00+00:00").timestamp()))
        == "2026-spring"
    )


def test_seasons_sort_chronologically() -> None:
    names = ["2026-winter", "2025-autumn", "2026-spring", "2025-winter", "2026-summer"]
    assert sorted(names, key=season_sort_key) == [
        "2025-autumn", "2025-winter", "2026-spring", "2026-summer", "2026-winter"
    ]  # fmt: skip


@given(
    total=st.integers(0, 10**12),
    weights=st.lists(st.integers(0, 10**9), min_size=1, max_size=40),
)
def test_allocate_is_exact_and_pro_rata(total: int, weights: list[int]) -> None:
    parts = allocate(total, list(enumerate(weights)))
    assert [k for k, _ in parts] == list(range(len(weights)))
    if sum(weights) == 0:
        assert all(v == 0 for _, v in parts)
        return
    assert sum(v for _, v in parts) == total
    for (_, v), w in zip(parts, weights, strict=True):
        exact = total * w / sum(weights)
        assert abs(v - exact) < 1 + 1e-9 * exact


def test_allocate_breaks_ties_by_order() -> None:
    assert allocate(1, [("a", 1), ("b", 1)]) == [("a", 1), ("b", 0)]
    assert allocate(10, [("a", 1), ("b", 1), ("c", 1)]) == [("a", 4), ("b", 3), ("c", 3)]


@given(st.lists(st.integers(0, 2**37), min_size=1, max_size=50))  # up to the year 6325
def test_projector_season_cache_equals_season_of(timestamps: list[int]) -> None:
    projector = Projector()
    around_midnight = [t - t % 86_400 - 8 * 3600 + d for t in timestamps for d in (-1, 0, 1)]
    for ts in [*timestamps, *(t for t in around_midnight if t >= 0)]:
        assert projector.season(ts) == season_of(ts)


@pytest.mark.parametrize(
    ("utc", "season"),
    [
        ("2026-05-31T20:00+00:00", "2026-summer"),  # June 1st, 04:00 in China
        ("2027-01-15T12:00+00:00", "2026-winter"),  # the winter that began in December 2026
    ],
)
def test_the_issue_16_boundaries(utc: str, season: str) -> None:
    assert season_of(int(datetime.fromisoformat(utc).timestamp())) == season

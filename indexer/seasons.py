"""Tea seasons (flushes) by calendar in China time, and exact pro-rata splitting."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TypeVar

# China has one time zone and no daylight saving time: a fixed offset needs no tz database.
CHINA = timezone(timedelta(hours=8), "CST")
K = TypeVar("K", bound=Hashable)
_FLUSH = {3: "spring", 4: "spring", 5: "spring", 6: "summer", 7: "summer", 8: "summer",
          9: "autumn", 10: "autumn", 11: "autumn"}  # fmt: skip


def season_of(timestamp: int) -> str:
    """'2026-spring' (Mar-May), '-summer' (Jun-Aug), '-autumn' (Sep-Nov) in China time.

    December and the next January-February are the off-season, named after the year it starts
    in: 2026-12-05 and 2027-02-10 are both '2026-winter'.
    """
    day = datetime.fromtimestamp(timestamp, CHINA)
    flush = _FLUSH.get(day.month)
    if flush is not None:
        return f"{day.year}-{flush}"
    return f"{day.year if day.month == 12 else day.year - 1}-winter"


def season_sort_key(season: str) -> tuple[int, int]:
    """Chronological order of season names."""
    year, _, name = season.partition("-")
    return int(year), ("spring", "summer", "autumn", "winter").index(name)


def allocate(total: int, weights: Sequence[tuple[K, int]]) -> list[tuple[K, int]]:
    """Split the integer `total` pro rata to `weights`, exactly (largest remainder).

    The parts sum to `total`; leftover units go to the largest fractional remainders, ties to
    the earlier item, so the result depends only on the inputs and their order.
    """
    weight_sum = sum(w for _, w in weights)
    if weight_sum <= 0 or total == 0:
        return [(k, 0) for k, _ in weights]
    parts = []
    for i, (key, weight) in enumerate(weights):
        share, remainder = divmod(total * weight, weight_sum)
        parts.append([key, share, remainder, i])
    leftover = total - sum(p[1] for p in parts)
    for part in sorted(parts, key=lambda p: (-p[2], p[3]))[:leftover]:
        part[1] += 1
    return [(p[0], p[1]) for p in parts]

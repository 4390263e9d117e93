"""Gas snapshot: TeaTrace's figures (bench/bench_gas.py, deterministic on the in-process EVM)
must stay within 2% of the reviewed numbers below, so a regression shows in review.

After an intended change: run `.venv/bin/python -m bench.bench_gas`, update SNAPSHOT and the table
in docs/gas.md in the same commit.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.bench_gas import run

MARGIN = 0.02
SNAPSHOT = {
    "register farmer (with wallet), single tx": 98_732,
    "register farmer (with wallet), batch of 200": 48_236,
    "register plot, single tx": 78_963,
    "register plot, batch of 200": 53_339,
    "harvest record, single tx": 58_179,
    "harvest record, batch of 100": 31_965,
    "harvest re-submitted (skipped), batch of 100": 6_942,
    "harvest delivered to the factory, batch of 100": 35_534,
    "process: merge 10 lots into 1, per input lot": 14_405,
    "process: split 1 lot into 3, single tx": 117_193,
    "ship, single tx": 37_444,
    "ship, batch of 100": 8_751,
    "receive, single tx": 33_882,
    "receive, batch of 100": 8_055,
    "sell, single tx": 58_057,
    "sell, batch of 100": 31_645,
    "attest quality, single tx": 30_314,
    "attest quality, batch of 100": 6_889,
    "recall, single tx": 32_145,
    "recall, batch of 100": 8_203,
    "one lot: harvest, ship, receive, sell (batched)": 80_416,
    "one lot: harvest delivered to the factory, sell (batched)": 67_180,
}
SLOT = 22_100  # one new storage slot, cold access included
HARVEST_LOG = 2_899  # LOG4 with 4 data words
HARVEST_CALLDATA = 2_100  # 6 ABI words per record, ~100 non-zero bytes
PLOT_CHECK = 2_100  # the cold (farmer, plot) slot that proves membership


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, Any]]:
    """One benchmark run for the module."""
    return {r["benchmark"]: r for r in run()}


def test_gas_matches_the_snapshot(rows):
    drift = {
        name: (expected, rows[name]["value"])
        for name, expected in SNAPSHOT.items()
        if abs(rows[name]["value"] - expected) > expected * MARGIN
    }
    assert not drift, f"gas moved more than {MARGIN:.0%} (expected, measured): {drift}"
    assert set(rows) == set(SNAPSHOT), "benchmark rows changed: update SNAPSHOT"


def test_batched_harvest_approaches_one_slot_plus_one_log(rows):
    per_record = rows["harvest record, batch of 100"]["value"]
    floor = SLOT + HARVEST_LOG
    assert per_record < floor + HARVEST_CALLDATA + PLOT_CHECK + 3_000  # <3k of code overhead
    assert rows["harvest record, single tx"]["value"] > 1.5 * per_record  # batching pays


def test_a_delivery_costs_less_than_a_harvest_shipped_and_received(rows):
    delivered = rows["harvest delivered to the factory, batch of 100"]["value"]
    moved = sum(
        rows[f"{step}, batch of 100"]["value"] for step in ("harvest record", "ship", "receive")
    )
    assert delivered < rows["harvest record, batch of 100"]["value"] + 4_000  # two more logs
    assert moved - delivered > 12_000  # the lot's slot written once, two transactions fewer


def test_naive_string_storage_costs_several_times_more(rows):
    assert rows["harvest record, batch of 100"]["ratio"] > 8
    assert rows["one lot: harvest, ship, receive, sell (batched)"]["ratio"] > 10

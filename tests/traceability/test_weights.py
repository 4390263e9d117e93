"""traceability.weights: a lot's farmer weights through splits and merges, in whole grams.

The same graphs on chain: tests/contracts/test_sale_settlement.py (committed and settled).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from eth_utils import keccak

from traceability.errors import LotNotFoundError
from traceability.weights import LeafFlow, LeafLot, MassStep


def test_contributions_flow_through_splits_and_merges():
    a, b, c = keccak(text="a"), keccak(text="b"), keccak(text="c")
    h = [keccak(text=f"h{i}") for i in range(4)]
    flow = LeafFlow(
        [LeafLot(h[0], a, 6_000), LeafLot(h[1], b, 3_000), LeafLot(h[2], a, 1_000),
         LeafLot(h[3], c, 2_000)],
        [
            MassStep(b"p1", (h[0], h[1], h[2]), ((b"m1", 1_500), (b"m2", 500))),
            MassStep(b"p2", (b"m1", h[3]), ((b"blend", 800),)),
        ],
    )  # fmt: skip
    assert flow.contributions(b"m2") == {a: Fraction(1_750), b: Fraction(750)}
    weights = flow.weights(b"blend")
    assert weights == {a: 5_250, b: 2_250, c: 2_000}
    assert list(weights) == sorted(weights)  # by farmer id, SaleSettlement's order
    with pytest.raises(LotNotFoundError):
        flow.contributions(b"unknown")


def test_fractional_contributions_are_apportioned_to_whole_grams():
    a, b, c = (keccak(text=x) for x in "abc")
    flow = LeafFlow(
        [LeafLot(b"h1", a, 1), LeafLot(b"h2", b, 1), LeafLot(b"h3", c, 1)],
        [MassStep(b"p", (b"h1", b"h2", b"h3"), ((b"x", 1), (b"y", 2)))],
    )
    weights = flow.weights(b"y")  # each farmer contributed 2/3 g: 2 g to share out
    assert sum(weights.values()) == 2 and len(weights) == 2
    assert list(weights) == sorted([a, b, c])[:2]  # ties: lower id first

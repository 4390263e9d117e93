"""A lot's farmer weights: the fresh-leaf grams each farmer contributed to it.

A processing step consumes whole input lots and its leaf flows into the outputs in proportion
to output mass, so a farmer's contribution to a lot is an exact fraction of grams. Whole-gram
weights apportion the rounded total by largest remainder, ties to the lower farmer id (exact
grams when no lot was ever split). The harvests and steps come from TeaTrace's events
(`traceability.lineage.LineageReader.leaf_flow`) or from records held in memory (the demo).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from traceability.errors import LotNotFoundError, TraceabilityError


@dataclass(frozen=True)
class LeafLot:
    """A fresh-leaf lot: one farmer's picking."""

    lot: bytes
    farmer: bytes
    grams: int


@dataclass(frozen=True)
class MassStep:
    """A processing step: whole input lots consumed, output lots produced as (lot, grams)."""

    process_id: bytes
    inputs: tuple[bytes, ...]
    outputs: tuple[tuple[bytes, int], ...]


class LeafFlow:
    """Harvests and processing steps, enough to attribute any lot's leaf to its farmers."""

    def __init__(self, harvests: Iterable[LeafLot], steps: Iterable[MassStep]) -> None:
        self._harvests = {h.lot: h for h in harvests}
        self._producer: dict[bytes, MassStep] = {}
        for step in steps:
            for lot, _ in step.outputs:
                self._producer[lot] = step
        self._memo: dict[bytes, dict[bytes, Fraction]] = {}

    def contributions(self, lot: bytes) -> dict[bytes, Fraction]:
        """Fresh-leaf grams each farmer contributed to `lot`, as exact fractions."""
        if lot in self._memo:
            return self._memo[lot]
        if lot in self._harvests:
            h = self._harvests[lot]
            result = {h.farmer: Fraction(h.grams)}
        elif lot in self._producer:
            result = self._through(lot, self._producer[lot])
        else:
            raise LotNotFoundError(f"lot 0x{lot.hex()} has no harvest or processing record")
        self._memo[lot] = result
        return result

    def _through(self, lot: bytes, step: MassStep) -> dict[bytes, Fraction]:
        """The step's inputs' contributions, scaled by this output's share of output mass."""
        out_total = sum(g for _, g in step.outputs)
        fraction = Fraction(dict(step.outputs)[lot], out_total)
        result: dict[bytes, Fraction] = {}
        for source in step.inputs:
            for farmer, grams in self.contributions(source).items():
                result[farmer] = result.get(farmer, Fraction(0)) + grams * fraction
        return result

    def weights(self, lot: bytes) -> dict[bytes, int]:
        """Whole grams per farmer in `lot` (farmers left with none omitted), by farmer id."""
        return dict(sorted(apportion(self.contributions(lot)).items()))


def apportion(quotas: Mapping[bytes, Fraction]) -> dict[bytes, int]:
    """Integer grams adding up to the rounded total, by largest remainder (ties: lower id)."""
    total = sum(quotas.values(), Fraction(0))
    target = int(total + Fraction(1, 2))
    if target <= 0:
        raise TraceabilityError("the lot has no fresh-leaf contribution to share")
    floors = {k: int(q * target / total) for k, q in quotas.items()}
    order = sorted(quotas, key=lambda k: (-(quotas[k] * target / total - floors[k]), k))
    for key in order[: target - sum(floors.values())]:
        floors[key] += 1
    return {k: v for k, v in floors.items() if v > 0}

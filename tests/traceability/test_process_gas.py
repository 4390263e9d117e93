"""The gas limit the service gives `process` (it skips eth_estimateGas) covers every shape."""

from __future__ import annotations

import pytest

from tests.traceability._system import System
from traceability.service import process_gas

SHAPES = [(1, 1), (1, 3), (1, 10), (3, 2), (10, 1), (30, 1), (60, 4)]


@pytest.mark.parametrize(("inputs", "outputs"), SHAPES)
def test_process_gas_covers_the_step_without_waste(system: System, inputs: int, outputs: int):
    """Enough for the step (cold storage, a new lot per output), at most twice what it uses."""
    lots = system.harvest([4_000] * inputs)
    made = [int(4_000 * inputs * 0.2) // outputs] * outputs
    system.move(lots, system.coop, system.processor)
    system.process(lots, made)
    used = system.last_receipt["gasUsed"]
    assert used <= process_gas(inputs, outputs) <= 2 * used

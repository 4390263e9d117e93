"""The gas limits the service gives batch calls (it skips eth_estimateGas) cover them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_utils import keccak
from web3 import Web3

from tests.traceability._system import System
from traceability.service import BATCH_GAS, batch_gas

GAS = 15_000_000  # measure with room, then compare with the service's bound
BUYER = Web3.to_checksum_address("0x" + "b7" * 20)


def _used(system: System, sender: Any, call: Any) -> int:
    """Gas one mined call used."""
    return sender.transact(call, gas=GAS)["gasUsed"]


def _pair(measure: Callable[[int, int], int]) -> tuple[int, int]:
    """Gas for a batch of 1 then of 100 (items numbered from the offset given)."""
    return measure(1, 0), measure(100, 1)


def _measured(system: System) -> dict[str, tuple[int, int]]:
    """Every batch function's gas at 1 and 100 items, in supply-chain order."""
    tt, coop, proc, insp = system.tt, system.coop, system.processor, system.inspector
    lots = system.harvest([5_000] * 101)
    sets = {1: lots[:1], 100: lots[1:]}
    farmers = {n: [keccak(text=f"gas-farmer-{n}-{i}") for i in range(n)] for n in (1, 100)}
    fn = tt.functions
    ops: dict[str, Callable[[int, int], int]] = {
        "registerFarmers": lambda n, _: _used(
            system, coop, fn.registerFarmers([(f, BUYER) for f in farmers[n]])
        ),
        "registerPlots": lambda n, _: _used(
            system,
            coop,
            fn.registerPlots(
                [(keccak(f), f, 300, 2, keccak(text=f"loc{i}")) for i, f in enumerate(farmers[n])]
            ),
        ),
        "shipBatch": lambda n, _: _used(system, coop, fn.shipBatch(sets[n], proc.address)),
        "receiveBatch": lambda n, _: _used(system, proc, fn.receiveBatch(sets[n])),
        "attestQualityBatch": lambda n, _: _used(
            system, insp, fn.attestQualityBatch([(lot, 2, True, keccak(lot)) for lot in sets[n]])
        ),
        "sellBatch": lambda n, _: _used(system, proc, fn.sellBatch(sets[n], BUYER, [900] * n)),
        "recallBatch": lambda n, _: _used(system, insp, fn.recallBatch(sets[n], keccak(b"r"))),
    }
    return {name: _pair(measure) for name, measure in ops.items()}


def test_every_batch_bound_covers_1_and_100_items_without_waste(system: System):
    """Enough for 1 and for 100 items; for 100 items at most 1.6 times what is used."""
    measured = _measured(system)
    assert set(measured) == set(BATCH_GAS)
    for name, (one, hundred) in measured.items():
        small, large = batch_gas(name, 1), batch_gas(name, 100)
        assert small is not None and large is not None
        assert one <= small, (name, one)
        assert hundred <= large <= hundred * 16 // 10, (name, hundred)


def test_a_bound_past_the_cap_falls_back_to_estimating():
    """A batch whose bound could pass a block's gas limit is estimated by the node instead."""
    assert batch_gas("registerPlots", 1_000) is None

"""Shared test helpers: TeaTrace + ConsentRegistry deployed with one organisation per role."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_utils import keccak
from web3.contract import Contract

from chain.client import ChainClient
from chain.errors import ContractRevertError, revert_class
from chain.sender import Sender
from traceability.contracts import (
    COOPERATIVE_ROLE,
    DEFAULT_MAX_YIELD_BPS,
    deploy_traceability,
)
from traceability.ids import lot_id

ZERO = "0x" + "00" * 20
# Helpers pass explicit gas: py-evm's estimate_gas re-runs a transaction ~13 times (binary
# search). A revert then surfaces when the receipt is awaited, decoded all the same.
TX_GAS = 1_000_000


def harvest_gas(records: int) -> int:
    """A safe gas limit for recordHarvests of `records` records."""
    return 100_000 + 40_000 * records


_SEQ = itertools.count()


def unique_hash(tag: str = "h") -> bytes:
    """A data hash never used before in this process."""
    return keccak(text=f"{tag}-{next(_SEQ)}-{time.time_ns()}")


@dataclass
class System:
    """TeaTrace on a chain, with a sender per organisation and some farmers and plots."""

    client: ChainClient
    tt: Contract
    consent: Contract
    admin: Sender
    coop: Sender
    processor: Sender
    distributor: Sender
    inspector: Sender
    outsider: Sender  # holds no role
    coop2: Sender  # a second cooperative
    farmers: list[bytes] = field(default_factory=list)
    plots: list[bytes] = field(default_factory=list)
    last_receipt: Any = None

    def harvest_tuple(self, i: int = 0, grams: int = 10_000, grade: int = 2, **kw: object) -> tuple:
        """An ABI HarvestRecord for farmer/plot i (picked an hour ago, new data hash)."""
        return (
            kw.get("farmer", self.farmers[i]),
            kw.get("plot", self.plots[i]),
            grams,
            grade,
            kw.get("picked_at", int(time.time()) - 3600),
            kw.get("data_hash", unique_hash()),
        )

    def harvest(self, grams: list[int] | int = 10_000, sender: Sender | None = None) -> list[bytes]:
        """Record harvest lots (one per mass) for farmers 0.. and return their ids."""
        sender = sender or self.coop
        masses = grams if isinstance(grams, list) else [grams]
        records = [self.harvest_tuple(i % len(self.farmers), g) for i, g in enumerate(masses)]
        sender.transact(self.tt.functions.recordHarvests(records), gas=harvest_gas(len(records)))
        return [lot_id(sender.address, r[5]) for r in records]

    def process(
        self, inputs: list[bytes], outputs: list[int], sender: Sender | None = None
    ) -> list[bytes]:
        """Process inputs into outputs of the given masses; return output lot ids."""
        sender = sender or self.processor
        outs = [(g, unique_hash("out")) for g in outputs]
        self.last_receipt = sender.transact(self.tt.functions.process(inputs, outs), gas=TX_GAS)
        return [lot_id(sender.address, h) for _, h in outs]

    def move(self, lots: list[bytes], src: Sender, dst: Sender) -> None:
        """Ship lots from src to dst and receive them."""
        src.transact(self.tt.functions.shipBatch(lots, dst.address), gas=TX_GAS)
        dst.transact(self.tt.functions.receiveBatch(lots), gas=TX_GAS)

    def lot(self, lot: bytes) -> tuple:
        """(holder, grams, state, kind, recalled)."""
        return tuple(self.tt.functions.lot(lot).call())


def build_system(client: ChainClient, farmers: int = 4) -> System:
    """Deploy and set up roles, farmers and plots (wallets: dev accounts 6..)."""
    deploy_traceability(client, DEFAULT_MAX_YIELD_BPS)
    tt = client.contract("TeaTrace")
    system = System(
        client=client,
        tt=tt,
        consent=client.contract("ConsentRegistry"),
        admin=client.sender(0),
        coop=client.sender(1),
        processor=client.sender(2),
        distributor=client.sender(3),
        inspector=client.sender(4),
        outsider=client.sender(5),
        coop2=client.sender(9),
    )
    system.admin.transact(tt.functions.grantRole(COOPERATIVE_ROLE, system.coop2.address))
    system.farmers = [keccak(text=f"farmer-{i}") for i in range(farmers)]
    system.plots = [keccak(text=f"plot-{i}") for i in range(farmers)]
    wallets = [client.accounts[6 + i % 3].address for i in range(farmers)]
    system.coop.transact(
        tt.functions.registerFarmers(list(zip(system.farmers, wallets, strict=True)))
    )
    plots = [
        (p, f, 250 + i, 3, keccak(text=f"loc-{i}"))
        for i, (p, f) in enumerate(zip(system.plots, system.farmers, strict=True))
    ]
    system.coop.transact(tt.functions.registerPlots(plots))
    return system


def isolated(system: System) -> Iterator[System]:
    """Yield `system`, then roll the chain back to where it was (in-process EVM only)."""
    w3 = system.client.w3
    snapshot = w3.testing.snapshot()
    try:
        yield system
    finally:
        w3.testing.revert(snapshot)
        for index in range(len(system.client.accounts)):
            system.client.sender(index).reset_nonce()  # local nonces ran ahead of the chain


@contextmanager
def reverts(name: str, **expected: object) -> Iterator[pytest.ExceptionInfo[ContractRevertError]]:
    """Expect the named custom error, with the given argument values."""
    with pytest.raises(revert_class(name)) as info:
        yield info
    for key, value in expected.items():
        assert info.value.args_by_name[key] == value, (key, info.value.args_by_name)

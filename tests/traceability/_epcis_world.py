"""A small indexed world for the EPCIS tests: every trace event on a real EVM (anvil),
indexed into a real SQLite database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from chain.nodes import ProcessNode
from indexer.db import make_engine
from indexer.runner import index_once
from tests._fixtures import client_for
from tests.traceability._system import TX_GAS, System, build_system

LEAF_GRAMS = [40_123, 35_007]  # odd grams: kg with three decimals
LONE_GRAMS = 12_345
MADE_GRAMS = [9_001, 8_000]
BLEND_GRAMS = 8_500
PRICE_FEN = 1_234_567


@dataclass
class EpcisWorld:
    """The chain, its index and the lots each test looks at."""

    system: System
    database_url: str
    engine: Engine
    leaves: list[bytes]  # harvested, shipped to the processor, received, processed
    lone: bytes  # only harvested
    made: list[bytes]  # made tea from both leaves; made[1] failed inspection and is recalled
    blend: bytes  # from made[0]: shipped to the distributor, received, sold, attested


def build_world(node: ProcessNode, data_dir: Path, database_url: str | None = None) -> EpcisWorld:
    """On a node (the indexer reads logs over JSON-RPC): play harvest, shipping, receiving,
    processing, blending, sale, quality and recall, then index the chain (into
    `database_url`, by default a new SQLite file)."""
    client = client_for(node, data_dir / "chain")
    client.settings.data_dir.mkdir(parents=True, exist_ok=True)
    system = build_system(client)
    tt = system.tt
    leaves = system.harvest(LEAF_GRAMS)
    lone = system.harvest([LONE_GRAMS])[0]
    system.move(leaves, system.coop, system.processor)
    made = system.process(leaves, MADE_GRAMS)
    blend = system.process([made[0]], [BLEND_GRAMS])[0]
    system.move([blend], system.processor, system.distributor)
    system.distributor.transact(
        tt.functions.sell(blend, system.outsider.address, PRICE_FEN), gas=TX_GAS
    )
    inspector = system.inspector
    inspector.transact(tt.functions.attestQuality((blend, 2, True, b"\x11" * 32)), gas=TX_GAS)
    inspector.transact(tt.functions.attestQuality((made[1], 4, False, b"\x12" * 32)), gas=TX_GAS)
    inspector.transact(tt.functions.recall(made[1], b"\x22" * 32), gas=TX_GAS)
    url = database_url or f"sqlite:///{data_dir / 'index.db'}"
    index_once(system.client, url)
    return EpcisWorld(system, url, make_engine(url), leaves, lone, made, blend)

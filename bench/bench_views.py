"""Reading many on-chain records: JSON-RPC batches (chain.views) against a web3 call each.

Run: `.venv/bin/python -m bench views`. A throw-away anvil on a free port gets TeaTrace and
FARMERS registered farmers; every farmer's record is then read twice, once through web3's
contract functions one call at a time (what the portfolio and the demo did) and once through
`chain.views.read_many`, whose calls are encoded once from the ABI and sent in JSON-RPC batches.
Both read the same records, which the run checks before it reports.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from eth_utils import keccak

from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, PROJECT_ROOT, ChainSettings
from chain.nodes import AnvilNode, free_port
from chain.views import read_many, view
from traceability.contracts import TEA_TRACE, deploy_traceability

FARMERS = 2_000
REGISTER_BATCH = 200
COOP = 1  # the development cooperative account


def _register(client: ChainClient, farmers: list[bytes]) -> None:
    """Register the farmers (no wallets) as the development cooperative."""
    tea, coop = client.contract(TEA_TRACE), client.sender(COOP)
    zero = "0x" + "00" * 20
    calls = [
        tea.functions.registerFarmers([(f, zero) for f in farmers[i : i + REGISTER_BATCH]])
        for i in range(0, len(farmers), REGISTER_BATCH)
    ]
    coop.wait(coop.send_many(calls, gas=10_000_000))


def _timed(read: Any) -> tuple[float, list[Any]]:
    """Seconds a read of every record took, and what it read."""
    started = time.perf_counter()
    records = read()
    return time.perf_counter() - started, records


def run() -> list[dict[str, Any]]:
    """One row: farmer records read a second, batched against one web3 call each."""
    farmers = [keccak(text=f"bench-views-{i}") for i in range(FARMERS)]
    with tempfile.TemporaryDirectory() as tmp:
        node = AnvilNode(Path(tmp), PROJECT_ROOT, free_port(), DEV_MNEMONIC, accounts=10)
        node.start()
        try:
            settings = ChainSettings(
                backend="anvil", port=node.port, data_dir=Path(tmp), mnemonic=DEV_MNEMONIC
            )
            client = ChainClient(settings, node)
            deploy_traceability(client)
            _register(client, farmers)
            tea = client.contract(TEA_TRACE)
            record = view(tea.abi, "farmer")
            one_by_one, plain = _timed(lambda: [tuple(tea.functions.farmer(f).call())
                                                for f in farmers])  # fmt: skip
            batched, read = _timed(lambda: [r[0] for r in read_many(
                client.w3, [(tea.address, record, (f,)) for f in farmers])])  # fmt: skip
        finally:
            node.stop()
    if plain != read:
        raise AssertionError("the batched reads differ from web3's")
    return [
        {
            "benchmark": f"view reads on anvil, {FARMERS:,} farmer records, JSON-RPC batches "
            "(chain.views) vs a web3 call each",
            "value": round(FARMERS / batched),
            "unit": "reads/s",
            "baseline": round(FARMERS / one_by_one),
            "ratio": f"{one_by_one / batched:.1f}x",
        }
    ]


if __name__ == "__main__":
    for row in run():
        print(row)

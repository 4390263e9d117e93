"""Reading many on-chain records: JSON-RPC batches (chain.views) against a web3 call each.

Run: `.venv/bin/python -m bench views`. A throw-away anvil on a free port gets TeaTrace and
FARMERS registered farmers (tests/_fixtures/workload.py, as the indexer's benchmark builds its
chain); every farmer's record is then read twice, once through web3's
contract functions one call at a time (what the portfolio and the demo did) and once through
`chain.views.read_many`, whose calls are encoded once from the ABI and sent in JSON-RPC batches.
Both read the same records, which the run checks before it reports.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, ChainSettings
from chain.views import read_many, view
from tests._fixtures import workload

FARMERS = 2_000


def _timed(read: Any) -> tuple[float, list[Any]]:
    """Seconds a read of every record took, and what it read."""
    started = time.perf_counter()
    records = read()
    return time.perf_counter() - started, records


def run() -> list[dict[str, Any]]:
    """One row: farmer records read a second, batched against one web3 call each."""
    with tempfile.TemporaryDirectory(prefix="bench-views-") as tmp:
        node = workload.start_anvil(Path(tmp))
        try:
            settings = ChainSettings(
                backend="anvil", port=node.port, data_dir=Path(tmp), mnemonic=DEV_MNEMONIC
            )
            system = workload.deploy_tea(ChainClient(settings, node))
            farmers = [f.farmer for f in workload.register_farmers(system, FARMERS)]
            tea, w3 = system.trace, system.client.w3
            record = view(tea.abi, "farmer")
            one_by_one, plain = _timed(lambda: [tuple(tea.functions.farmer(f).call())
                                                for f in farmers])  # fmt: skip
            batched, read = _timed(lambda: [r[0] for r in read_many(
                w3, [(tea.address, record, (f,)) for f in farmers])])  # fmt: skip
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

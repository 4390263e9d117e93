"""Reading many on-chain records: JSON-RPC batches (chain.views) against a web3 call each.

Run: `.venv/bin/python -m bench views`. A throw-away anvil on a free port gets TeaTrace and
FARMERS registered farmers (tests/_fixtures/workload.py, as the indexer's benchmark builds its
chain); every farmer's record is then read twice, once through web3's
contract functions one call at a time (what the portfolio and the demo did) and once through
`chain.views.read_many`, whose calls are encoded once from the ABI and sent in JSON-RPC batches.
Both read the same records, which the run checks before it reports. A second row checks a
state-changing call per farmer by eth_call, as the service checks each item of a batch before
sending it (`deactivateFarmer` from the farmer's cooperative, and from an account without the
role, which the contract refuses): `ChainClient.check_call` one at a time against
`ChainClient.check_calls` in JSON-RPC batches; both must give every call the same verdict.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, ChainSettings
from chain.errors import ContractRevertError
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
            checks = _checks(system.client, tea, farmers, system.address(1), system.address(9))
        finally:
            node.stop()
    if plain != read:
        raise AssertionError("the batched reads differ from web3's")
    return [
        *_read_row(one_by_one, batched),
        checks,
    ]


def _checks(
    client: ChainClient, tea: Any, farmers: list[bytes], coop: str, outsider: str
) -> dict[str, Any]:
    """The checks row: each farmer's deactivation checked from its cooperative and from an
    outsider, one by one and batched."""
    calls = [tea.functions.deactivateFarmer(f) for f in farmers]
    senders = [coop if i % 2 == 0 else outsider for i in range(len(calls))]
    pairs = list(zip(calls, senders, strict=True))
    one_by_one, plain = _timed(lambda: _names([client.refusal(fn, by) for fn, by in pairs]))
    batched, got = _timed(lambda: _names(client.check_calls(calls, senders)))
    if plain != got or None not in got or all(v is None for v in got):
        raise AssertionError("the batched checks differ from check_call's")
    return {
        "benchmark": f"eth_call checks on anvil, {len(calls):,} calls (half refused), JSON-RPC "
        "batches (ChainClient.check_calls) vs check_call each",
        "value": round(len(calls) / batched),
        "unit": "checks/s",
        "baseline": round(len(calls) / one_by_one),
        "ratio": f"{one_by_one / batched:.1f}x",
    }


def _names(errors: list[ContractRevertError | None]) -> list[str | None]:
    """Each refusing error's name, or None."""
    return [None if e is None else e.name for e in errors]


def _read_row(one_by_one: float, batched: float) -> list[dict[str, Any]]:
    """The view reads row."""
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

"""What one block costs anvil as the chain's storage grows.

anvil recomputes the state root over every account's whole storage when it mines a block, so
a block's cost grows with the storage slots the chain holds, not with its history (docs/demo.md,
"Re-running and scaling"). On a fresh anvil (30 M-gas blocks, no state file) a contract of 30
bytes whose only job is to fill slots writes BENCH_BLOCKS_SLOTS of them (default 200,000) in
transactions of 600; empty blocks are mined (`evm_mine`) before and after, BLOCKS each time.
The ratio is the cost of a block on the filled chain against the fresh one. What that means
for a demo's season is the demo's own table (docs/demo.md), since only the number of blocks
changes with the block gas limit.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from chain.nodes import rpc_call
from tests._fixtures import workload

BLOCKS = 20
FILL = 600  # slots a transaction writes: ~13.3 M gas, below the gas target, so the base fee stays
FILL_GAS = 14_000_000
RECEIPT_WAIT_S = 120
# fill(start, n) over raw calldata (no selector): for i in [start, start+n): sstore(i, 1)
RUNTIME = "602035600035809101905b81811015601c5760018155600101600a565b00"
INIT = "601e80600b6000396000f3"  # copy the 30-byte runtime and return it


def _word(value: int) -> str:
    """A 32-byte calldata word."""
    return f"{value:064x}"


def _block_ms(url: str) -> float:
    """Mean time anvil takes to mine an empty block, ms."""
    started = time.perf_counter()
    for _ in range(BLOCKS):
        rpc_call(url, "evm_mine", [], timeout=120.0)
    return (time.perf_counter() - started) / BLOCKS * 1000


def _send(url: str, tx: dict[str, str]) -> str:
    """eth_sendTransaction from an unlocked dev account, awaited: the contract it created, if
    any; raises if it failed or was not mined within RECEIPT_WAIT_S."""
    tx_hash = rpc_call(url, "eth_sendTransaction", [tx], timeout=120.0)
    deadline = time.monotonic() + RECEIPT_WAIT_S
    receipt = None
    while receipt is None:  # anvil answers before it has mined the transaction
        if time.monotonic() > deadline:
            raise AssertionError(f"transaction {tx_hash} not mined in {RECEIPT_WAIT_S} s")
        receipt = rpc_call(url, "eth_getTransactionReceipt", [tx_hash], timeout=120.0)
    if int(receipt["status"], 16) != 1:
        raise AssertionError(f"transaction failed: {receipt}")
    return str(receipt.get("contractAddress") or "")


def _fill(url: str, sender: str, slots: int) -> str:
    """Deploy the filler and write `slots` storage slots with it; its address."""
    address = _send(url, {"from": sender, "data": "0x" + INIT + RUNTIME})
    for start in range(0, slots, FILL):
        data = "0x" + _word(start) + _word(min(FILL, slots - start))
        _send(url, {"from": sender, "to": address, "data": data, "gas": hex(FILL_GAS)})
    return address


def run() -> list[dict[str, Any]]:
    """One row: an empty block's cost on a chain holding many slots against a fresh chain."""
    slots = int(os.environ.get("BENCH_BLOCKS_SLOTS", 200_000))
    with tempfile.TemporaryDirectory(prefix="bench-blocks-") as tmp:
        node = workload.start_anvil(Path(tmp))
        try:
            url = node.url
            sender = rpc_call(url, "eth_accounts", [])[0]
            fresh = _block_ms(url)
            address = _fill(url, sender, slots)
            last = rpc_call(url, "eth_getStorageAt", [address, hex(slots - 1), "latest"])
            if int(last, 16) != 1:
                raise AssertionError("the filler did not write its last slot")
            filled = _block_ms(url)
        finally:
            node.stop()
    return [
        {
            "benchmark": f"anvil: an empty block on a chain holding {slots:,} storage slots "
            f"(one contract), against a fresh chain; {filled * 1000 / slots:.2f} µs a slot",
            "value": round(filled, 1),
            "unit": "ms/block",
            "baseline": round(fresh, 1),
            "ratio": round(filled / fresh, 1),
        }
    ]

"""What anvil's memory is made of, on a saved chain: its history, and its block states.

    python scripts/anvil_memory.py <data dir>/nodes/anvil/state.json --states 128 64 8

For each number of block states kept (`--prune-history N`; the project's nodes keep
chain.nodes.PRUNED_STATES), starts anvil on a copy of the saved chain, reads its resident memory
once the chain is loaded, mines `--blocks` empty blocks and reads it again, with the time a
block took; prints a Markdown table. The saved chain is never changed (anvil gets a copy, and
is stopped without saving).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from chain.config import PROJECT_ROOT
from chain.nodes import free_port

ANVIL = PROJECT_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
PAGE_SIZE = 4096
LOAD_TIMEOUT_S = 600


def _rpc(url: str, method: str, params: list) -> object:
    """One JSON-RPC call's result."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        return json.loads(reply.read())["result"]


def _rss_gib(pid: int) -> float:
    """Resident memory of one process, GiB."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE / 2**30


def _wait_until_up(url: str) -> None:
    """Poll until anvil answers (loading a big chain takes a while)."""
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            _rpc(url, "eth_blockNumber", [])
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"anvil did not answer within {LOAD_TIMEOUT_S} s")


def measure(state: Path, states: int, blocks: int) -> tuple[float, float, float]:
    """(GiB loaded, GiB after the blocks, ms a block) keeping `states` block states."""
    with tempfile.TemporaryDirectory(prefix="anvil-memory-") as tmp:
        copy = Path(tmp) / "state.json"
        shutil.copy(state, copy)
        port = free_port()
        cmd = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--load-state",
               str(copy), "--prune-history", str(states), "--silent"]  # fmt: skip
        node = subprocess.Popen(cmd)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url)
            loaded = _rss_gib(node.pid)
            started = time.monotonic()
            for _ in range(blocks):
                _rpc(url, "evm_mine", [])
            per_block = (time.monotonic() - started) / blocks * 1000
            return loaded, _rss_gib(node.pid), per_block
        finally:
            node.terminate()
            node.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    """Measure each number of states in turn and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", type=Path, help="a saved anvil chain (state.json)")
    parser.add_argument("--states", type=int, nargs="+", default=[128, 64, 8])
    parser.add_argument("--blocks", type=int, default=160)
    args = parser.parse_args(argv)
    print("| block states kept | loaded | after the blocks | a block |")
    print("| ---: | ---: | ---: | ---: |")
    for states in args.states:
        loaded, after, per_block = measure(args.state, states, args.blocks)
        print(f"| {states} | {loaded:.2f} GiB | {after:.2f} GiB | {per_block:.0f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

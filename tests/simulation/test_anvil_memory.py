"""scripts/anvil_memory.py: anvil on a copy of a saved chain, its memory before and after
mining, and the saved chain left as it was."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from chain.config import PROJECT_ROOT
from chain.nodes import free_port
from tests._fixtures import needs_node

pytestmark = needs_node()


def _script() -> ModuleType:
    """The script as a module (scripts/ is not a package)."""
    path = PROJECT_ROOT / "scripts" / "anvil_memory.py"
    spec = importlib.util.spec_from_file_location("anvil_memory", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _saved_chain(script: ModuleType, path: Path) -> None:
    """A small chain saved by anvil itself on exit (five blocks)."""
    port = free_port()
    cmd = [str(script.ANVIL), "--host", "127.0.0.1", "--port", str(port), "--dump-state",
           str(path), "--silent"]  # fmt: skip
    node = subprocess.Popen(cmd)
    try:
        script._wait_until_up(f"http://127.0.0.1:{port}")
        for _ in range(5):
            script._rpc(f"http://127.0.0.1:{port}", "evm_mine", [])
    finally:
        node.terminate()
        node.wait(timeout=60)
    for _ in range(100):  # anvil writes the file as it exits
        if path.exists():
            return
        time.sleep(0.05)


def test_memory_is_read_before_and_after_the_blocks_and_the_chain_is_kept(tmp_path: Path) -> None:
    script = _script()
    state = tmp_path / "state.json"
    _saved_chain(script, state)
    before = state.read_bytes()
    loaded, after, per_block = script.measure(state, states=8, blocks=3)
    assert 0 < loaded <= after + 0.5 and per_block > 0
    assert state.read_bytes() == before

"""scripts/demo_stages.py: each step's time runs from the end of the step before, the status
file is read as the demo writes it, and the process trees' memory is summed and kept apart."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path
from types import ModuleType

from chain.config import PROJECT_ROOT


def _script() -> ModuleType:
    """The script as a module (scripts/ is not a package)."""
    path = PROJECT_ROOT / "scripts" / "demo_stages.py"
    spec = importlib.util.spec_from_file_location("demo_stages", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _status(*steps: tuple[str, int, int]) -> dict:
    return {"steps": [{"name": n, "done": d, "total": t} for n, d, t in steps]}


def test_steps_are_timed_from_the_end_of_the_one_before(tmp_path: Path) -> None:
    stages = _script()
    watch = stages.Watch(started=100.0)
    watch.see_status(_status(("harvest records", 10, 6912)), 105.0)
    watch.see_status(_status(("harvest records", 6912, 6912)), 130.0)
    watch.see_status(_status(("harvest records", 6912, 6912), ("processing runs", 0, 930)), 190.0)
    watch.see_status(_status(("harvest records", 6912, 6912), ("processing runs", 930, 930)), 250.0)
    watch.first_page = 104.0
    gib = 2**30
    watch.see_memory({"demo": 2 * gib, "service": gib // 2, "node": gib // 2})
    watch.see_memory({"demo": gib, "service": gib // 2, "node": gib})  # the node's own peak
    watch.ended = 265.0
    (tmp_path / "tealedger.db").write_bytes(b"\0" * 2**20)
    table = stages.report(Namespace(farmers=300, backend="anvil"), watch, 0, tmp_path)
    assert "| deploy, service start | | 0:05 |" in table
    assert "| harvest records | 6,912 | 0:25 |" in table
    assert "| processing runs | 930 | 2:00 |" in table  # from 130, when the harvests ended
    assert "| after the last step (index, risk scan) | | 0:15 |" in table
    assert "| **whole run** | | **2:45** |" in table
    assert "first page: 0:04" in table and "1 MiB" in table
    assert "3.00 GiB (demo 2.00, service 0.50, node 1.00)" in table


def test_an_unfinished_step_and_long_runs_read_plainly() -> None:
    stages = _script()
    assert stages._clock(None) == "(not complete)"
    assert stages._clock(3725.4) == "1:02:05"
    assert stages._status(Path("/nonexistent/demo-status.json")) == {}


def test_the_memory_of_a_process_tree_counts_its_children() -> None:
    stages = _script()
    hold = "import time; b = b'x' * (64 << 20); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", hold])
    try:
        for _ in range(100):  # until the child holds its 64 MiB
            if stages.tree_rss(child.pid) > 60 << 20:
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert stages.tree_rss(os.getpid()) >= stages.tree_rss(child.pid) > 60 << 20
        # The child is another root (as the node and the service the demo starts): not twice.
        apart = stages.trees_rss({"parent": os.getpid(), "child": child.pid})
        assert apart["child"] > 60 << 20 and apart["parent"] < stages.tree_rss(os.getpid())
        whole = stages.tree_rss(os.getpid())  # read apart from the rest: the sizes move a little
        assert abs(whole - apart["parent"] - apart["child"]) < 16 << 20
    finally:
        child.kill()
        child.wait()

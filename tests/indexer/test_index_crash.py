"""kill -9 at random moments, restart: the database ends exactly as after a clean run."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from chain.config import PROJECT_ROOT
from indexer.db import make_engine
from indexer.runner import index_once
from tests._fixtures import workload
from tests.indexer._support import IndexedChain, dump, start_chain

pytestmark = [pytest.mark.node, pytest.mark.slow]
KILLS = 3


@pytest.fixture(scope="module")
def busy_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexedChain]:
    """The scenario plus ~60 blocks of harvest batches: enough for a kill to land mid-way."""
    chain = start_chain(tmp_path_factory.mktemp("busy"))
    system = workload.deploy_tea(chain.client)
    farmers = workload.register_farmers(system, 60, seed=9)
    workload.send_harvests(system, workload.harvest_records(farmers, 40, seed=9), batch=40)
    yield chain
    chain.node.stop()


def _command(url: str) -> list[str]:
    """The indexer as its own process, one block per batch (many commits to land in)."""
    return [
        sys.executable,
        "-m",
        "indexer",
        "index",
        "--database-url",
        url,
        "--max-range",
        "1",
        "--batch-events",
        "1",
        "--quiet",
    ]


def _env(chain: IndexedChain) -> dict[str, str]:
    """Point the subprocess at the test chain and its deployment registry."""
    return {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "TEALEDGER_BACKEND": "anvil",
        "TEALEDGER_PORT": str(chain.node.port),
        "TEALEDGER_DATA_DIR": str(chain.data_dir),
    }


def _checkpoint(url: str) -> int:
    """Committed checkpoint (-1 before the first commit)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(text("SELECT block_number FROM indexer_checkpoint")).scalar() or -1
            )
    except Exception:
        return -1
    finally:
        engine.dispose()  # polled every few ms: close each engine's connection, not leave it


def _wait_for_checkpoint(proc: subprocess.Popen[bytes], url: str, block: int) -> int:
    """The committed checkpoint once it reaches `block` (or the run ended, or 30 s passed)."""
    deadline = time.monotonic() + 30
    while (found := _checkpoint(url)) < block and proc.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.005)
    return found


def test_kill_9_at_random_points_then_restart(
    busy_chain: IndexedChain, db_url: str, tmp_path: Path
) -> None:
    chain = busy_chain
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    index_once(chain.client, clean)
    head = chain.client.w3.eth.block_number
    rng = random.Random(os.environ.get("CRASH_SEED", "4"))
    landed = []
    for _ in range(KILLS):
        proc = subprocess.Popen(_command(db_url), env=_env(chain), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        # Wait for this run's first commit, then for a random number of blocks more (at most
        # half of what is left, so the run is still going), then kill inside a transaction.
        first = _wait_for_checkpoint(proc, db_url, _checkpoint(db_url) + 1)
        _wait_for_checkpoint(proc, db_url, first + rng.randint(0, max(0, (head - first) // 2)))
        time.sleep(rng.uniform(0.0, 0.02))
        with contextlib.suppress(ProcessLookupError):  # a run that ended first: a kill too late
            os.killpg(proc.pid, signal.SIGKILL)  # the indexer and its reader process
        assert proc.wait() in (0, -signal.SIGKILL), proc.stderr.read() if proc.stderr else ""
        landed.append(_checkpoint(db_url))
    assert any(0 < cp < head for cp in landed), f"no kill landed mid-way: {landed} of {head}"
    finish = subprocess.run(
        _command(db_url), env=_env(chain), capture_output=True, text=True, timeout=120
    )
    assert finish.returncode == 0, finish.stderr
    assert dump(db_url) == dump(clean)

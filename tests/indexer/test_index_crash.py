"""kill -9 at random moments, restart: the database ends exactly as after a clean run."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from chain.config import PROJECT_ROOT
from indexer.db import make_engine
from indexer.errors import IndexerLockedError
from indexer.lock import IndexerLock
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


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie has exited: it holds no descriptor any more)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _session(sid: int) -> list[int]:
    """Pids of the live processes of session `sid` (the indexer run with start_new_session)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
                if fields[0] != "Z" and int(fields[3]) == sid:
                    found.append(int(entry))
    return found


def _lock_is_free(url: str) -> bool:
    """True if an indexer starting now would get the database's lock."""
    engine = make_engine(url)
    try:
        with IndexerLock(engine):
            return True
    except IndexerLockedError:
        return False
    finally:
        engine.dispose()


def _eventually(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `condition`; a timeout is a failure (generous: only a hang reaches it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {timeout:.0f} s")
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_killed_indexer_leaves_no_reader_holding_the_lock(
    busy_chain: IndexedChain, db_url: str
) -> None:
    """The reader process blocked on a batch nobody takes: kill -9 its indexer."""
    driver = subprocess.Popen(
        [sys.executable, "-m", "tests.indexer._hold_reader", db_url], env=_env(busy_chain),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    reader = 0
    try:
        assert driver.stdout is not None and driver.stderr is not None
        line = driver.stdout.readline()
        assert line.strip().isdigit(), driver.stderr.read()
        reader = int(line)
        assert _alive(reader)
        driver.kill()
        driver.wait()
        _eventually(lambda: _lock_is_free(db_url), "the lock is still held")
        _eventually(lambda: not _alive(reader), "the reader process still runs")
    finally:
        driver.kill()
        driver.wait()
        if reader and _alive(reader):
            os.kill(reader, signal.SIGKILL)  # the reader this test started, left behind


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_kill_9_with_a_reader_process_then_restart_at_once(
    busy_chain: IndexedChain, db_url: str, tmp_path: Path
) -> None:
    chain = busy_chain
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    index_once(chain.client, clean)
    command = [*_command(db_url), "--reader", "process"]
    proc = subprocess.Popen(command, env=_env(chain), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        first = _wait_for_checkpoint(proc, db_url, 0)
        _wait_for_checkpoint(proc, db_url, first + 5)  # mid-backfill: the reader is running
        readers = [pid for pid in _session(proc.pid) if pid != proc.pid]
        assert proc.poll() is None and readers, "the backfill ended before the kill"
        os.kill(proc.pid, signal.SIGKILL)  # the indexer alone, as the OOM killer would
        assert proc.wait() == -signal.SIGKILL
        _eventually(lambda: not _session(proc.pid), "the reader process still runs")
        finish = subprocess.run(command, env=_env(chain), capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        assert finish.returncode == 0, finish.stderr
        assert dump(db_url) == dump(clean)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

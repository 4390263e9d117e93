"""`tealedger index`: catch up, rebuild, refuse a second indexer, follow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import typer
from typer.testing import CliRunner

from chain.config import PROJECT_ROOT
from indexer.cli import register
from indexer.db import make_engine
from indexer.lock import IndexerLock
from tests.indexer._support import IndexedChain, counts, dump

pytestmark = pytest.mark.node


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    register(root)

    @root.callback()
    def _root() -> None:
        """root"""

    return root


@pytest.fixture
def chain_env(region_chain: IndexedChain, monkeypatch: pytest.MonkeyPatch) -> IndexedChain:
    monkeypatch.setenv("TEALEDGER_BACKEND", "anvil")
    monkeypatch.setenv("TEALEDGER_PORT", str(region_chain.node.port))
    monkeypatch.setenv("TEALEDGER_DATA_DIR", str(region_chain.data_dir))
    return region_chain


def test_index_then_rebuild(app: typer.Typer, chain_env: IndexedChain, sqlite_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["index", "--database-url", sqlite_url, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "indexed up to block" in result.output
    indexed = dump(sqlite_url)
    assert counts(sqlite_url)["harvest"] == len(chain_env.region.harvest_lots)
    result = runner.invoke(app, ["index", "--rebuild", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "rebuilt derived tables from" in result.output
    assert dump(sqlite_url) == indexed


def test_default_database_is_in_the_data_dir(
    app: typer.Typer, chain_env: IndexedChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["index", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (chain_env.data_dir / "tealedger.db").exists()


def test_second_indexer_gets_a_clear_message(
    app: typer.Typer, chain_env: IndexedChain, db_url: str
) -> None:
    with IndexerLock(make_engine(db_url)):
        result = CliRunner().invoke(app, ["index", "--database-url", db_url, "--quiet"])
    assert result.exit_code == 1
    assert "only one indexer may run per database" in result.output


def test_follow_keeps_running_until_interrupted(chain_env: IndexedChain, sqlite_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "indexer", "index", "--follow",
         "--poll", "0.1", "--database-url", sqlite_url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if os.path.exists(sqlite_url[len("sqlite:///") :]) and counts(sqlite_url).get(
                "harvest"
            ):
                break
            time.sleep(0.1)
        assert proc.poll() is None  # still following
    finally:
        proc.send_signal(signal.SIGINT)
        stderr = _stopped(proc)
    assert counts(sqlite_url)["harvest"] == len(chain_env.region.harvest_lots)
    assert "at head" in stderr or "indexing" in stderr


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal sends it. A suite run as a background job of a
    non-interactive shell inherits SIGINT ignored (as such shells start their jobs), and a
    Python started with it ignored never raises KeyboardInterrupt: the follower then ran on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stopped(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """The follower's stderr once it has stopped. One that outlives `timeout` after SIGINT is
    made to dump every thread's stack (faulthandler on SIGABRT), so the failure says where it
    hung, and is never left running."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            stderr = proc.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            stderr = proc.communicate()[1]
        pytest.fail(f"the follower ignored SIGINT for {timeout:.0f} s; its stderr:\n{stderr}")

"""Reorgs on anvil: rolled back exactly to the common ancestor, or refused when too deep."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from chain.nodes import rpc_call
from indexer.db import make_engine
from indexer.engine import Indexer, IndexerConfig
from indexer.errors import DeepReorgError
from indexer.runner import chain_source
from tests._fixtures import workload
from tests._fixtures.pg import PgDatabases
from tests.indexer._support import IndexedChain, dump

pytestmark = pytest.mark.node


def _indexer(chain: IndexedChain, url: str, window: int = 64) -> Indexer:
    """A prepared indexer with small batches (so reorgs land inside and across batches)."""
    indexer = Indexer(make_engine(url), chain_source(chain.client, 4), IndexerConfig(window=window))
    indexer.prepare()
    return indexer


def _mine(chain: IndexedChain, blocks: int, seed: int) -> None:
    """`blocks` new blocks, each with one harvest transaction of a few records."""
    system = workload.deploy_tea(chain.client)
    farmers = [f for f in chain.region.farmers if f.cooperative == workload.COOPERATIVE][:3]
    sender = chain.client.sender(workload.COOPERATIVE)
    sender.reset_nonce()
    for b in range(blocks):
        records = workload.harvest_records(farmers, 1, seed=seed * 1000 + b, tag=f"r{seed}.{b}")
        workload.send_harvests(system, records, batch=10)


def assert_same_state(live: str, fresh: str) -> None:
    """Same events, derived rows, window of block hashes and checkpoint as indexing the new
    chain from scratch (a rollback refills the window below the ancestor from the node)."""
    assert dump(live) == dump(fresh)


def _rpc(chain: IndexedChain, method: str, *params: object) -> object:
    return rpc_call(chain.node.url, method, list(params))


def _reset_senders(chain: IndexedChain) -> None:
    for i in range(len(chain.client.accounts)):
        chain.client.sender(i).reset_nonce()


@pytest.mark.parametrize(("depth", "replacement"), [(1, 2), (3, 3), (10, 6)])
def test_reorg_rolls_back_to_the_common_ancestor(
    fresh_chain: IndexedChain, tmp_path: Path, depth: int, replacement: int
) -> None:
    chain = fresh_chain
    snapshot = _rpc(chain, "evm_snapshot")
    _mine(chain, depth, seed=1)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    indexer = _indexer(chain, url)
    indexer.sync()
    assert _rpc(chain, "evm_revert", snapshot) is True
    _reset_senders(chain)
    _mine(chain, replacement, seed=2)  # another fork, maybe shorter than the old one
    progress = indexer.sync()
    assert progress.reorgs == 1 and progress.rolled_back_blocks >= depth
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    _indexer(chain, fresh).sync()
    assert_same_state(url, fresh)


def test_anvil_reorg_with_emptied_blocks(fresh_chain: IndexedChain, tmp_path: Path) -> None:
    chain = fresh_chain
    _mine(chain, 4, seed=3)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    indexer = _indexer(chain, url)
    indexer.sync()
    _rpc(chain, "anvil_reorg", 3, [])  # the last 3 blocks are replaced by empty ones
    _reset_senders(chain)
    progress = indexer.sync()
    assert progress.reorgs == 1
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    _indexer(chain, fresh).sync()
    assert_same_state(url, fresh)


def test_a_shorter_chain_keeps_a_full_window_for_the_next_reorg(
    fresh_chain: IndexedChain, tmp_path: Path, db_url: str, pg_databases: PgDatabases | None
) -> None:
    chain = fresh_chain
    _mine(chain, 80, seed=10)
    url = db_url
    indexer = _indexer(chain, url)
    indexer.sync()
    _rpc(chain, "anvil_rollback", 50)  # the chain gets 50 blocks shorter
    _reset_senders(chain)
    _mine(chain, 3, seed=11)  # and grows again on another fork
    assert indexer.sync().rolled_back_blocks == 50
    with make_engine(url).connect() as conn:  # what a fresh index keeps: the tip and 64 below
        assert conn.exec_driver_sql("SELECT count(*) FROM indexer_block").scalar() == 65
    _rpc(chain, "anvil_reorg", 20, [])  # 20 blocks back: below the 15 hashes left unrefilled
    assert indexer.sync().reorgs == 2
    sqlite = url.startswith("sqlite") or pg_databases is None
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}" if sqlite else pg_databases.new()
    _indexer(chain, fresh).sync()
    assert_same_state(url, fresh)
    assert _indexer(chain, url).sync().reorgs == 0  # a restart finds nothing to undo


def test_reorg_deeper_than_the_window_stops_and_touches_nothing(
    fresh_chain: IndexedChain, tmp_path: Path
) -> None:
    chain = fresh_chain
    snapshot = _rpc(chain, "evm_snapshot")
    _mine(chain, 8, seed=4)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    indexer = _indexer(chain, url, window=4)
    indexer.sync()
    before = dump(url)
    _rpc(chain, "evm_revert", snapshot)
    _reset_senders(chain)
    _mine(chain, 9, seed=5)
    with pytest.raises(DeepReorgError, match="left untouched") as refused:
        indexer.sync()
    # The message counts the hashes really kept: the checkpoint's and the 4 below it.
    assert "none of the 5 block hashes kept" in str(refused.value) and refused.value.kept == 5
    assert dump(url) == before
    again = _indexer(chain, url, window=4)  # a restart refuses just the same
    with pytest.raises(DeepReorgError):
        again.sync()
    assert dump(url) == before


def test_follow_mode_tracks_new_blocks_and_reorgs(
    fresh_chain: IndexedChain, tmp_path: Path
) -> None:
    chain = fresh_chain
    url = f"sqlite:///{tmp_path / 'live.db'}"
    indexer = Indexer(
        make_engine(url), chain_source(chain.client, 4), IndexerConfig(poll_interval=0.05)
    )
    indexer.prepare()
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            indexer.follow(stop)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        snapshot = _rpc(chain, "evm_snapshot")
        _mine(chain, 3, seed=6)
        _wait_for(
            lambda: (
                indexer.progress is not None
                and indexer.progress.checkpoint == chain.client.w3.eth.block_number
            )
        )
        _rpc(chain, "evm_revert", snapshot)
        _reset_senders(chain)
        _mine(chain, 4, seed=7)
        _wait_for(lambda: indexer.progress is not None and indexer.progress.reorgs >= 1
                  and indexer.progress.checkpoint == chain.client.w3.eth.block_number)  # fmt: skip
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    _indexer(chain, fresh).sync()
    assert_same_state(url, fresh)


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_reorg_forgets_a_loan_escrow_announced_on_the_lost_fork(
    fresh_chain: IndexedChain, tmp_path: Path
) -> None:
    chain = fresh_chain
    snapshot = _rpc(chain, "evm_snapshot")
    lending = workload.deploy_lending(workload.deploy_tea(chain.client))
    third = [f for f in chain.region.farmers if f.wallet is not None][2]
    escrow = workload.issue_loan(lending, third)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    indexer = _indexer(chain, url)
    indexer.sync()
    assert bytes.fromhex(escrow.address[2:]) in indexer.source.addresses
    _rpc(chain, "evm_revert", snapshot)
    _reset_senders(chain)
    _mine(chain, 5, seed=8)
    assert indexer.sync().reorgs == 1
    assert bytes.fromhex(escrow.address[2:]) not in indexer.source.addresses
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    _indexer(chain, fresh).sync()
    assert_same_state(url, fresh)

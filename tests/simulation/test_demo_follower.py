"""The demo indexes behind a running service: it waits for the service's follower, never
indexes beside it."""

import time

import pytest

from api.core.follower import Follower
from indexer.db import make_engine
from indexer.lock import IndexerLock
from tealedger.demo.service import FollowerLagError, index_chain
from tests._fixtures import client_for, needs_node
from tests.traceability._system import build_system


@pytest.fixture
def recorded(anvil_node, tmp_path):
    """A system with a harvest on chain, and the URL of an empty database beside it."""
    system = build_system(client_for(anvil_node, tmp_path))
    system.harvest([30_000])
    return system, f"sqlite:///{tmp_path / 'tealedger.db'}"


@needs_node()
@pytest.mark.node
def test_index_chain_waits_for_the_follower_that_holds_the_lock(recorded):
    system, url = recorded
    follower = Follower(url, system.client.settings)
    follower.start()
    try:
        deadline = time.monotonic() + 60
        while follower.status().state != "following" and time.monotonic() < deadline:
            time.sleep(0.05)  # the follower holds the lock from here on
        system.harvest([20_000, 10_000])  # blocks the follower has yet to read
        head = system.client.w3.eth.block_number
        progress = index_chain(system.client, url, timeout=60)
        assert progress.checkpoint >= head and progress.events == 0  # the follower indexed
        assert follower.status().state == "following"
    finally:
        assert follower.stop()


@needs_node()
@pytest.mark.node
def test_a_follower_that_does_not_move_is_a_clear_error(recorded):
    system, url = recorded
    engine = make_engine(url, writer=True)
    try:
        with IndexerLock(engine), pytest.raises(FollowerLagError, match=r"service\.log"):
            index_chain(system.client, url, timeout=0.5)
    finally:
        engine.dispose()

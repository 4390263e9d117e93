"""indexer/archive.py: readers of old events ask the index, and the node only for newer blocks.

A reader with the archive must answer exactly what the node answers (every filter kind, on
SQLite and PostgreSQL, with the index behind the head); on an anvil that keeps only its latest
blocks' logs it still finds the old ones, where the node alone finds none; and an index that
falls behind such a node stops with HistoryPrunedError instead of indexing blocks as empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select, update
from web3.contract import Contract

from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, MIN_HISTORY_BLOCKS, PROJECT_ROOT
from chain.events import Event, EventReader
from chain.nodes import free_port
from indexer.archive import IndexArchive
from indexer.db import make_engine, migrate
from indexer.engine import IndexerConfig
from indexer.errors import HistoryPrunedError
from indexer.models import Checkpoint, RawEvent
from indexer.runner import index_once
from tests._fixtures import client_for
from tests._fixtures.workload import EphemeralAnvil
from tests.indexer._support import IndexedChain, needs_node

MINT_GAS = 120_000


def _key(events: list[Event]) -> list[tuple[int, int, str, str]]:
    """What identifies each event and its content, comparable across readers."""
    return [(e.block_number, e.log_index, e.address, repr(sorted(e.args.items()))) for e in events]


def test_a_reader_with_the_archive_answers_what_the_node_answers(
    region_chain: IndexedChain, db_url: str
) -> None:
    client = region_chain.client
    trace = client.contract("TeaTrace")
    # the index stops amid the processing runs: what comes after is only on the node
    produced = EventReader(client.w3, trace.address, trace.abi).events("LotProduced")
    split = produced[len(produced) // 2].block_number
    lag = client.w3.eth.block_number - split
    index_once(client, db_url, config=IndexerConfig(confirmations=lag))
    engine = make_engine(db_url)
    with engine.connect() as conn:
        head = conn.execute(select(Checkpoint.block_number)).scalar_one()
    assert head == split
    archived = ChainClient(client.settings, client.node)
    archived.use_archive(IndexArchive(engine))
    lots = region_chain.region.harvest_lots[::7] + region_chain.region.made_lots[:3]
    queries: list[tuple[str, str | None, list[bytes]]] = [
        ("HarvestRecorded", None, []),
        ("HarvestRecorded", "lot", lots),
        ("LotShipped", "lot", lots),
        ("LotProduced", None, []),
        ("LotSold", None, []),
        ("FarmerRegistered", None, []),
    ]
    below = above = 0
    for name, arg, values in queries:
        plain = EventReader(client.w3, trace.address, trace.abi).events(name, arg, values)
        read = archived.event_reader(trace.address, trace.abi).events(name, arg, values)
        assert _key(read) == _key(plain), name
        below += sum(e.block_number <= head for e in read)
        above += sum(e.block_number > head for e in read)
    assert below and above, "both the archive and the node answered part of the queries"
    later = archived.event_reader(trace.address, trace.abi, from_block=head - 2)
    assert _key(later.events("HarvestRecorded")) == _key(
        EventReader(client.w3, trace.address, trace.abi, head - 2).events("HarvestRecorded")
    )
    engine.dispose()


def test_the_archive_answers_only_for_its_own_chain_and_contracts(
    region_chain: IndexedChain, sqlite_url: str
) -> None:
    client = region_chain.client
    trace = client.contract("TeaTrace")
    stranger = "0x" + "ab" * 20
    engine = make_engine(sqlite_url)
    archive = IndexArchive(engine)
    index_once(client, sqlite_url)
    held = archive.read([trace.address], [], 0)
    assert held is not None
    assert held.head_hash == bytes(client.w3.eth.get_block(held.head)["hash"])
    assert archive.read([trace.address, stranger], [], 0) is None  # a contract not followed

    # the archive is what answers: rows taken out of it are missing from the reader's answer
    on_node = _key(EventReader(client.w3, trace.address, trace.abi).events("HarvestRecorded"))
    with engine.begin() as conn:
        conn.execute(delete(RawEvent).where(RawEvent.event == "HarvestRecorded"))
    client.use_archive(archive)
    try:
        assert client.event_reader(trace.address, trace.abi).events("HarvestRecorded") == []
        # an index of another chain or fork (the checkpoint's hash is not the node's block's
        # hash there): the node answers for every block
        with engine.begin() as conn:
            conn.execute(update(Checkpoint).values(block_hash=b"\x01" * 32))
        reader = client.event_reader(trace.address, trace.abi)
        assert _key(reader.events("HarvestRecorded")) == on_node
    finally:
        client.use_archive(None)
    engine.dispose()


@pytest.mark.parametrize("snapshots", [True, False], ids=["indexer-engine", "service-engine"])
def test_the_archive_reads_one_snapshot(db_url: str, snapshots: bool) -> None:
    """A commit beside a read is not seen half-way through it, whichever engine the archive is
    given (the service's begins its SQLite transactions at their first write)."""
    writer = make_engine(db_url)
    migrate(writer)
    engine = make_engine(db_url, snapshots=snapshots)
    count = select(func.count()).select_from(RawEvent)
    row = {c.name: 0 for c in RawEvent.__table__.columns}  # type: ignore[attr-defined]
    row |= {"block_hash": b"\x01" * 32, "tx_hash": b"\x02" * 32, "address": b"\x03" * 20}
    row |= {"data": b"", "topic0": None, "topic1": None, "topic2": None, "topic3": None}
    with IndexArchive(engine)._snapshot() as conn:
        before = conn.execute(count).scalar_one()
        with writer.begin() as other:
            other.execute(insert(RawEvent).values(**row))
        assert conn.execute(count).scalar_one() == before
    with engine.connect() as conn:
        assert conn.execute(count).scalar_one() == before + 1
    engine.dispose()
    writer.dispose()


@pytest.fixture
def pruned_anvil(tmp_path: Path) -> Iterator[ChainClient]:
    """An anvil that keeps the transactions and logs of its latest MIN_HISTORY_BLOCKS blocks."""
    needs_node()
    node = EphemeralAnvil(tmp_path / "node", PROJECT_ROOT, free_port(), DEV_MNEMONIC)
    node.history_blocks = MIN_HISTORY_BLOCKS
    node.start()
    try:
        yield client_for(node, tmp_path / "data")
    finally:
        node.stop()


def _minted_token(client: ChainClient) -> tuple[Contract, list[str]]:
    """A registered payment token (so the index follows it) with a mint to three holders."""
    admin = client.accounts[0].address
    client.deploy("PaymentToken", ("Test", "TST", admin), "ArchiveToken")
    deployment = client.registry.get("ArchiveToken")
    assert deployment is not None
    token = client.contract("PaymentToken", deployment.address)
    holders = [client.accounts[i].address for i in (3, 4, 5)]
    for n, holder in enumerate(holders):
        client.sender(0).transact(token.functions.mint(holder, 100 + n), gas=MINT_GAS)
    return token, holders


def _mine(client: ChainClient, blocks: int) -> None:
    """Mine empty blocks (they push older ones out of a pruned anvil's history)."""
    client.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


def test_old_events_of_a_pruned_node_are_read_from_the_index(
    pruned_anvil: ChainClient, sqlite_url: str
) -> None:
    client = pruned_anvil
    client.settings.data_dir.mkdir(parents=True, exist_ok=True)
    token, holders = _minted_token(client)
    index_once(client, sqlite_url)
    _mine(client, MIN_HISTORY_BLOCKS + 4)
    client.sender(3).transact(token.functions.transfer(holders[1], 7), gas=MINT_GAS)

    plain = EventReader(client.w3, token.address, token.abi).events("Transfer")
    assert [e.args["value"] for e in plain] == [7]  # the node has only the transfer left
    engine = make_engine(sqlite_url)
    client.use_archive(IndexArchive(engine))
    transfers = client.event_reader(token.address, token.abi).events("Transfer")
    assert [e.args["value"] for e in transfers] == [100, 101, 102, 7]
    to_second = client.event_reader(token.address, token.abi).events("Transfer", "to", [holders[1]])
    assert [e.args["value"] for e in to_second] == [101, 7]
    engine.dispose()


def test_an_index_behind_a_pruned_node_stops_instead_of_skipping(
    pruned_anvil: ChainClient, sqlite_url: str
) -> None:
    client = pruned_anvil
    client.settings.data_dir.mkdir(parents=True, exist_ok=True)
    _minted_token(client)
    _mine(client, MIN_HISTORY_BLOCKS + 4)
    with pytest.raises(HistoryPrunedError, match="no longer holds"):
        index_once(client, sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(select(RawEvent.log_index)).first() is None
    engine.dispose()

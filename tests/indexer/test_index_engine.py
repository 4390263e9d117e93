"""Indexing the standard scenario: completeness, batch independence, rebuild, guard, lock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text

from chain.rpc import JsonRpc
from indexer.db import make_engine
from indexer.engine import Indexer, IndexerConfig
from indexer.errors import ChainMismatchError, IndexerLockedError
from indexer.lock import IndexerLock
from indexer.models import Harvest, RawEvent, Sale, SaleShare
from indexer.rebuild import rebuild
from indexer.runner import chain_source, index_once, project_abis
from tests.indexer._support import IndexedChain, counts, dump

pytestmark = pytest.mark.node


def _index(chain: IndexedChain, url: str, **config: object) -> Indexer:
    """Index the chain into `url` and return the indexer."""
    max_span = int(config.pop("max_span", 10_000))  # type: ignore[call-overload]
    indexer = Indexer(
        make_engine(url), chain_source(chain.client, max_span), IndexerConfig(**config)
    )  # type: ignore[arg-type]
    indexer.prepare()
    indexer.sync()
    return indexer


def test_indexes_every_log_of_every_contract(region_chain: IndexedChain, db_url: str) -> None:
    indexer = _index(region_chain, db_url)
    node_logs = region_chain.client.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"})
    ours = {c.address for c in indexer.source.contracts}
    expected = {
        (bytes(lg["blockHash"]), lg["logIndex"])
        for lg in node_logs
        if bytes.fromhex(lg["address"][2:]) in ours
    }
    with indexer.engine.connect() as conn:
        stored = {
            (bytes(h), i) for h, i in conn.execute(select(RawEvent.block_hash, RawEvent.log_index))
        }
        harvests = conn.execute(select(func.count()).select_from(Harvest)).scalar()
        unknown = conn.execute(text("SELECT count(*) FROM raw_event WHERE event IS NULL")).scalar()
    assert stored == expected
    assert harvests == len(region_chain.region.harvest_lots)
    assert unknown == 0
    progress = indexer.progress
    assert progress is not None and progress.checkpoint == region_chain.client.w3.eth.block_number


def test_second_run_changes_nothing(region_chain: IndexedChain, db_url: str) -> None:
    _index(region_chain, db_url)
    before = dump(db_url)
    again = _index(region_chain, db_url)
    assert again.progress is not None and again.progress.events == 0
    assert dump(db_url) == before


def test_result_does_not_depend_on_batch_sizes_or_reader(
    region_chain: IndexedChain, sqlite_url: str, tmp_path
) -> None:
    _index(region_chain, sqlite_url)
    tiny = f"sqlite:///{tmp_path / 'tiny.db'}"
    _index(region_chain, tiny, max_span=1, reader="inline")
    threaded = f"sqlite:///{tmp_path / 'thread.db'}"
    _index(region_chain, threaded, max_span=3, reader="thread")
    forked = f"sqlite:///{tmp_path / 'process.db'}"
    _index(region_chain, forked, max_span=2, reader="process")
    assert dump(forked) == dump(sqlite_url)
    assert dump(tiny) == dump(sqlite_url)
    assert dump(threaded) == dump(sqlite_url)


def test_rebuild_equals_incremental(region_chain: IndexedChain, db_url: str) -> None:
    indexer = _index(region_chain, db_url, max_span=2)
    before = dump(db_url)
    with indexer.engine.begin() as conn:  # damage a derived table: rebuild must not care
        conn.execute(text("DELETE FROM sale_share"))
        conn.execute(text("DELETE FROM harvest WHERE grade = 1"))
    stats = rebuild(indexer.engine, project_abis(region_chain.client.artifacts))
    assert stats.events == counts(db_url)["raw_event"]
    assert dump(db_url) == before


def test_lineage_conserves_grams_and_money(region_chain: IndexedChain, db_url: str) -> None:
    """Sum of farmer shares = sale price; a harvest's grams are all in the live made-tea lots."""
    indexer = _index(region_chain, db_url)
    with indexer.engine.connect() as conn:
        sales = conn.execute(
            select(Sale.block_number, Sale.log_index, Sale.price_fen, Sale.attributed)
        ).all()
        assert sales
        for block, index, price, attributed in sales:
            shares = conn.execute(
                select(func.coalesce(func.sum(SaleShare.income_fen), 0)).where(
                    SaleShare.block_number == block, SaleShare.log_index == index
                )
            ).scalar()
            assert shares == (price if attributed else 0)
        spread = conn.execute(
            text(
                "SELECT h.lot, h.grams, SUM(s.grams) FROM harvest h "
                "JOIN lot_consumed c ON c.lot = h.lot "
                "JOIN lot_source s ON s.harvest_lot = h.lot "
                "WHERE s.lot NOT IN (SELECT lot FROM lot_consumed) GROUP BY h.lot, h.grams"
            )
        ).all()
        consumed = conn.execute(
            text("SELECT count(*) FROM lot_consumed c JOIN harvest h ON h.lot = c.lot")
        ).scalar()
    assert len(spread) == consumed > 0
    assert all(grams == total for _, grams, total in spread)


class _DroppingProvider:
    """A node whose eth_getLogs answers `[]` once, when `drop(calls so far, has logs)` says so
    (the fetcher's read-ahead thread goes through it too)."""

    EMPTY = b'{"jsonrpc":"2.0","id":1,"result":[]}'

    def __init__(self, rpc: JsonRpc, drop: Callable[[int, bool], bool]) -> None:
        self._rpc = rpc
        self._drop = drop
        self.calls = 0
        self.dropped = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rpc, name)

    def call_raw(self, method: str, params: list[Any]) -> bytes:
        body = self._rpc.call_raw(method, params)
        if method != "eth_getLogs":
            return body
        self.calls += 1
        if not self.dropped and self._drop(self.calls, b'"result":[{' in body):
            self.dropped += 1
            return self.EMPTY
        return body


def test_missing_log_guard_refetches_a_dropped_block(
    region_chain: IndexedChain, sqlite_url: str, tmp_path
) -> None:
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    _index(region_chain, clean)
    source = chain_source(region_chain.client, 5)
    flaky = _DroppingProvider(source.fetcher.rpc, lambda calls, has_logs: has_logs)
    source.fetcher.rpc = flaky  # type: ignore[assignment]
    indexer = Indexer(make_engine(sqlite_url), source, IndexerConfig(reader="inline"))
    indexer.prepare()
    progress = indexer.sync()
    assert flaky.dropped == 1 and progress.recovered_blocks >= 1
    assert dump(sqlite_url) == dump(clean)


def test_without_the_guard_a_dropped_block_is_lost(
    region_chain: IndexedChain, sqlite_url: str, tmp_path
) -> None:
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    _index(region_chain, clean)
    source = chain_source(region_chain.client, 5, bloom_check=False)
    flaky = _DroppingProvider(source.fetcher.rpc, lambda calls, has_logs: calls == 2 and has_logs)
    source.fetcher.rpc = flaky  # type: ignore[assignment]
    indexer = Indexer(make_engine(sqlite_url), source, IndexerConfig(reader="inline"))
    indexer.prepare()
    indexer.sync()
    assert flaky.dropped == 1
    assert (
        counts(sqlite_url)["raw_event"] < counts(clean)["raw_event"]
    )  # the guard is what saves it


def test_second_indexer_is_refused(region_chain: IndexedChain, db_url: str) -> None:
    engine = make_engine(db_url)
    refused = pytest.raises(IndexerLockedError, match="only one indexer may run per database")
    with IndexerLock(engine), refused:
        IndexerLock(make_engine(db_url)).acquire()
    with IndexerLock(make_engine(db_url)):  # released: a new one may start
        pass


def test_database_of_another_chain_is_refused(region_chain: IndexedChain, sqlite_url: str) -> None:
    index_once(region_chain.client, sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE indexer_checkpoint SET chain_id = 1"))
    with pytest.raises(ChainMismatchError, match="another --database-url"):
        index_once(region_chain.client, sqlite_url)


def test_contracts_deployed_later_get_their_history(
    region_chain: IndexedChain, db_url: str, tmp_path
) -> None:
    """Index the traceability contracts only, then the whole registry: the loan contracts (and
    the escrow clones their factory announced) are backfilled and everything re-derived."""
    everything = chain_source(region_chain.client)
    tea = [c for c in everything.contracts if c.contract in ("TeaTrace", "ConsentRegistry")]
    first = Indexer(
        make_engine(db_url), chain_source(region_chain.client, contracts=tea), IndexerConfig()
    )
    first.prepare()
    first.sync()
    assert counts(db_url)["loan"] == 0
    later = Indexer(make_engine(db_url), chain_source(region_chain.client), IndexerConfig())
    later.prepare()
    later.sync()
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    _index(region_chain, clean)
    assert counts(db_url)["loan"] == 2
    assert dump(db_url) == dump(clean)


def test_settlement_shares_are_projected() -> None:
    """FarmerShareSettled (SaleSettlement) rows, from a hand-made decoded log."""
    from chain.abi import DecodedLog
    from chain.logs import RawLog
    from indexer.db import migrate
    from indexer.projections import Projector

    engine = make_engine("sqlite://")
    migrate(engine)
    log = RawLog(
        7, b"\x01" * 32, 3, 0, b"\x02" * 32, b"\x03" * 20, (b"\x04" * 32,), b"", 1_700_000_000
    )
    args = {"saleId": 9, "farmerId": b"\x05" * 32, "escrow": b"\x06" * 20, "share": 1000,
            "repaid": 600, "paidOut": 400, "held": 0}  # fmt: skip
    with engine.begin() as conn:
        Projector().apply(conn, [DecodedLog(log, "FarmerShareSettled", args)])
        rows = conn.execute(
            text("SELECT sale_id, share_fen, repaid_fen, paid_out_fen FROM farmer_settlement")
        ).all()
    assert rows == [(9, 1000, 600, 400)]


def test_values_beyond_64_bits_become_anomalies_not_crashes() -> None:
    from chain.abi import DecodedLog
    from chain.logs import RawLog
    from indexer.db import migrate
    from indexer.projections import Projector

    engine = make_engine("sqlite://")
    migrate(engine)
    log = RawLog(
        7, b"\x01" * 32, 3, 0, b"\x02" * 32, b"\x03" * 20, (b"\x04" * 32,), b"", 1_700_000_000
    )
    args = {"lot": b"\x05" * 32, "seller": b"\x06" * 20, "buyer": b"\x07" * 20, "priceFen": 2**70}
    with engine.begin() as conn:
        Projector().apply(conn, [DecodedLog(log, "LotSold", args)])
        anomalies = conn.execute(text("SELECT event, reason FROM anomaly")).all()
        sales = conn.execute(text("SELECT count(*) FROM sale")).scalar()
    assert sales == 0 and anomalies[0][0] == "LotSold" and "64-bit" in anomalies[0][1]

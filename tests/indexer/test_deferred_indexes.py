"""A first backfill builds its secondary indexes once at the end (indexer/deferred.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect

from indexer import deferred
from indexer.db import make_engine
from indexer.engine import Indexer, IndexerConfig
from indexer.rebuild import rebuild
from indexer.runner import chain_source, project_abis
from tests.indexer._support import INDEXES, IndexedChain, dump

pytestmark = pytest.mark.node

ALL = deferred.DERIVED_INDEXES


def _present(engine: Engine) -> set[str]:
    """Names of the deferred indexes the database has now."""
    inspector = inspect(engine)
    names = {str(i["name"]) for t in inspector.get_table_names() for i in inspector.get_indexes(t)}
    return names & set(ALL)


def _indexer(chain: IndexedChain, url: str, **config: object) -> Indexer:
    """An indexer on `url` reading two blocks at a time (so a backfill has many batches)."""
    indexer = Indexer(
        make_engine(url),
        chain_source(chain.client, 2),
        IndexerConfig(**config),  # type: ignore[arg-type]
    )
    indexer.prepare()
    return indexer


def test_a_first_backfill_writes_without_them_and_builds_them_at_the_end(
    region_chain: IndexedChain, db_url: str
) -> None:
    seen: list[set[str]] = []
    indexer = _indexer(region_chain, db_url, batch_events=1)  # a transaction per read
    indexer.on_progress = lambda p: seen.append(_present(indexer.engine)) if p.batches else None
    indexer.sync()
    *during, after = seen
    assert len(during) > 3 and all(s == set() for s in during)  # written without them
    assert after == set(ALL) == _present(indexer.engine)  # reported once they are built


def test_the_database_equals_one_that_kept_them_all_along(
    region_chain: IndexedChain, sqlite_url: str, tmp_path
) -> None:
    deferring = _indexer(region_chain, sqlite_url)
    deferring.sync()
    plain = _indexer(region_chain, f"sqlite:///{tmp_path / 'plain.db'}", defer_indexes=False)
    plain.sync()
    assert dump(plain.engine) == dump(deferring.engine)


def test_later_syncs_keep_them(region_chain: IndexedChain, sqlite_url: str) -> None:
    _indexer(region_chain, sqlite_url).sync()
    seen: list[set[str]] = []
    again = _indexer(region_chain, sqlite_url)
    again.on_progress = lambda p: seen.append(_present(again.engine))
    again.sync()  # raw events are stored: not a first backfill, nothing is dropped
    assert seen and all(s == set(ALL) for s in seen)


def test_a_run_killed_before_building_them_is_mended_by_the_next(
    region_chain: IndexedChain, db_url: str
) -> None:
    indexer = _indexer(region_chain, db_url)
    indexer.sync()
    expected = dump(indexer.engine)
    with indexer.engine.begin() as conn:  # as a first backfill killed before its end leaves it
        deferred.drop(conn, ALL)
    assert _present(indexer.engine) == set()
    _indexer(region_chain, db_url).sync()  # nothing new to read: it only builds them
    assert dump(indexer.engine) == expected


def test_rebuild_builds_the_derived_ones_in_its_transaction(
    region_chain: IndexedChain, db_url: str
) -> None:
    indexer = _indexer(region_chain, db_url)
    indexer.sync()
    expected = dump(indexer.engine)
    rebuild(indexer.engine, project_abis(region_chain.client.artifacts))
    assert dump(indexer.engine) == expected
    assert expected[INDEXES]  # the dump compares the indexes too


def test_every_deferred_name_is_a_model_index() -> None:
    assert len(deferred.indexes(ALL)) == len(ALL)
    with pytest.raises(KeyError, match="ix_nothing"):
        deferred.indexes(("ix_nothing",))

"""Fixtures of the indexer tests: databases (SQLite and PostgreSQL) and indexed chains."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._fixtures.pg import PgDatabases
from tests.indexer._support import IndexedChain, start_chain


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PgDatabases | None) -> str:
    """A fresh empty database URL, once per database kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.db'}"
    if pg_databases is None:
        pytest.skip("no PostgreSQL server answers (set CI=1 to make this a failure)")
    return pg_databases.new()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file URL."""
    return f"sqlite:///{tmp_path / 'index.db'}"


@pytest.fixture(scope="module")
def region_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexedChain]:
    """The standard scenario on one anvil, shared (read-only) by a test module."""
    chain = start_chain(tmp_path_factory.mktemp("region"))
    yield chain
    chain.node.stop()


@pytest.fixture
def fresh_chain(tmp_path: Path) -> Iterator[IndexedChain]:
    """The standard scenario on an anvil of this test's own (for reorgs and snapshots)."""
    chain = start_chain(tmp_path / "chain")
    yield chain
    chain.node.stop()

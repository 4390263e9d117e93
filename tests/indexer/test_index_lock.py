"""The single-writer lock on PostgreSQL: databases of one server are kept apart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from indexer.db import make_engine
from indexer.errors import IndexerLockedError
from indexer.lock import ADVISORY_KEY, IndexerLock
from tests._fixtures.pg import PgDatabases


@pytest.fixture
def two_databases(pg_databases: PgDatabases | None) -> tuple[str, str]:
    """Two fresh databases on the local PostgreSQL server."""
    if pg_databases is None:
        pytest.skip("no PostgreSQL server answers (set CI=1 to make this a failure)")
    return pg_databases.new(), pg_databases.new()


@pytest.fixture
def holders() -> Iterator[list[Connection]]:
    """Sessions holding the indexer's advisory lock; closed (the lock with them) at the end."""
    held: list[Connection] = []
    yield held
    for conn in held:
        conn.close()


def _hold(url: str, held: list[Connection]) -> int:
    """Take the indexer's advisory lock on `url` in a session of our own; its backend pid."""
    conn = make_engine(url).connect()
    held.append(conn)
    assert conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    conn.commit()
    assert isinstance(pid, int)
    return pid


def _refusal(url: str) -> str:
    """The message of the indexer refused on `url`."""
    with pytest.raises(IndexerLockedError) as refused:
        IndexerLock(make_engine(url)).acquire()
    return str(refused.value)


def test_the_lock_of_another_database_is_neither_taken_nor_named(
    two_databases: tuple[str, str], holders: list[Connection]
) -> None:
    a, b = two_databases
    holder_a = _hold(a, holders)
    with IndexerLock(make_engine(b)):  # the same key on another database: no refusal
        pass
    holder_b = _hold(b, holders)
    on_a, on_b = _refusal(a), _refusal(b)
    assert f"backend pid {holder_a})" in on_a and f"pid {holder_b})" not in on_a
    assert f"backend pid {holder_b})" in on_b and f"pid {holder_a})" not in on_b

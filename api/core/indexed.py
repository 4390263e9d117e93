"""Reads of the indexer's tables: one snapshot per read, 503 while nothing is indexed.

The indexer writes into the app's database (`settings.database_url`); its tables have their
own metadata and names and sit beside the service's. Every read says which block it reflects
(`indexed_block`): a write the chain accepted appears once the indexer has caught up with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, ProgrammingError

from api.core.errors import Unavailable
from indexer.db import make_engine
from indexer.models import Checkpoint


@cache
def indexer_engine(database_url: str) -> Engine:
    """A read engine on the indexer's database (one per URL and process)."""
    return make_engine(database_url)


@contextmanager
def index_ready() -> Iterator[None]:
    """503 instead of a database error while the indexer has not created its tables yet."""
    try:
        yield
    except (OperationalError, ProgrammingError) as exc:
        raise Unavailable(
            "the indexed database is not ready (run the indexer against this database); "
            f"nothing was read ({type(exc).__name__})"
        ) from exc


@contextmanager
def indexed_read(database_url: str) -> Iterator[Connection]:
    """One read transaction of the indexer's tables (503 while they are missing)."""
    with index_ready(), indexer_engine(database_url).connect() as conn:
        yield conn


def indexed_block(conn: Connection) -> int:
    """The last block the indexer has written (0 before its first batch)."""
    return int(conn.execute(select(Checkpoint.block_number)).scalar() or 0)

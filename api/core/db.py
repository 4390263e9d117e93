"""The service's database: the project's engine factory (indexer/db.py) and its migrations."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from indexer.db import make_engine, migrate


def service_engine(url: str) -> Engine:
    """An engine for request sessions: transactions begin at their first write (see make_engine)."""
    return make_engine(url, snapshots=False)


def open_database(url: str) -> Engine:
    """A service engine on a database migrated to the newest schema (every table, one history)."""
    engine = service_engine(url)
    migrate(engine)
    return engine

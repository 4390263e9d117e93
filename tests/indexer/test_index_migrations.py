"""Alembic migrations: applied on start, idempotent, and in step with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from indexer.db import VERSION_TABLE, make_engine, migrate, schema_revision
from indexer.migrations.env_filter import ours
from indexer.models import DERIVED_TABLES, metadata


def test_migrations_create_the_schema_once(db_url: str) -> None:
    engine = make_engine(db_url)
    assert schema_revision(engine) is None
    migrate(engine)
    migrate(engine)  # a second start changes nothing
    assert schema_revision(engine) == "0001"
    tables = set(inspect(engine).get_table_names())
    assert {t.__tablename__ for t in DERIVED_TABLES} <= tables
    assert {"raw_event", "indexer_checkpoint", "indexer_block", VERSION_TABLE} <= tables


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        opts = {"compare_type": True, "version_table": VERSION_TABLE, "include_object": ours}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, metadata)
    assert diff == [], "models changed without a migration: add one under indexer/migrations"


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"

"""Alembic migrations: one history for the indexer's, the service's and the credit store's
tables; applied on start, idempotent, in step with the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, select

from api.core.models import Organisation, Role
from indexer.db import (
    MIGRATIONS,
    SQLITE_PAGE_SIZE,
    VERSION_TABLE,
    BulkWriter,
    make_engine,
    migrate,
    schema_revision,
    statement_sizes,
)
from indexer.models import DERIVED_TABLES, RawEvent
from migrations.env_filter import ours
from migrations.targets import schema_metadata

HEAD = "0016"
ARCHIVE_INDEXES = {"ix_raw_event_topic0", "ix_raw_event_topic1"}  # 0016: indexer/archive.py
# The service's tables an old `create_all` made (registry_harvest_lot, since replaced by 0005,
# is then made by 0002).
SERVICE_TABLES = {"api_organisation", "api_key", "registry_farmer", "registry_plot"}
CREDIT_TABLES = {"credit_decision", "profile_access_log"}


def _diff(engine: Engine) -> list[object]:
    """What autogenerate would still add or change for the models (empty: in step)."""
    with engine.connect() as conn:
        opts = {"compare_type": True, "version_table": VERSION_TABLE, "include_object": ours}
        context = MigrationContext.configure(conn, opts=opts)
        return compare_metadata(context, schema_metadata())


def _move_to(
    engine: Engine, revision: str, step: Callable[[Config, str], None] = command.upgrade
) -> None:
    """Bring the schema to `revision`: up from where it is (an older release's database), or
    down with `step=command.downgrade`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        step(config, revision)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_migrations_create_the_schema_once(db_url: str) -> None:
    engine = make_engine(db_url)
    assert schema_revision(engine) is None
    migrate(engine)
    migrate(engine)  # a second start changes nothing
    assert schema_revision(engine) == HEAD
    tables = _tables(engine)
    assert {t.__tablename__ for t in DERIVED_TABLES} <= tables
    assert {"raw_event", "indexer_checkpoint", "indexer_block", VERSION_TABLE} <= tables
    assert tables >= SERVICE_TABLES | CREDIT_TABLES
    every_model = {name for md in schema_metadata() for name in md.tables}
    assert every_model <= tables, "every model's table comes from a migration"


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    assert _diff(engine) == [], (
        "models changed without a migration: add one under indexer/migrations"
    )


def test_a_database_at_0001_upgrades_with_its_indexed_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    _move_to(engine, "0001")
    assert not (SERVICE_TABLES | CREDIT_TABLES) & _tables(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO indexer_checkpoint (id, chain_id, genesis_hash, start_block, "
                "block_number, block_hash) VALUES (1, 31337, :g, 5, 40, :h)"
            ),
            {"g": b"\x01" * 32, "h": b"\x02" * 32},
        )
    migrate(engine)
    assert schema_revision(engine) == HEAD and _diff(engine) == []
    with engine.connect() as conn:
        row = conn.execute(text("SELECT chain_id, block_number FROM indexer_checkpoint")).one()
    assert tuple(row) == (31337, 40)


def test_tables_made_by_create_all_before_the_migrations_are_adopted(db_url: str) -> None:
    # Before 0002/0003 the service and the credit store made their tables with create_all,
    # beside an indexer at 0001: such a database upgrades and keeps its rows.
    from lending.credit.store import create_tables

    engine = make_engine(db_url)
    _move_to(engine, "0001")
    service = [SQLModel.metadata.tables[t] for t in sorted(SERVICE_TABLES)]
    SQLModel.metadata.create_all(engine, tables=service)
    create_tables(engine)
    with Session(engine) as session:
        session.add(Organisation(name="platform", role=Role.ADMIN, chain_address="0x" + "1" * 40))
        session.commit()
    migrate(engine)
    assert schema_revision(engine) == HEAD and _diff(engine) == []
    with Session(engine) as session:
        (org,) = session.exec(select(Organisation)).all()
    assert org.name == "platform" and org.role is Role.ADMIN


RAW_COLUMNS = (
    "block_hash, log_index, block_number, block_timestamp, tx_hash, tx_index, address, "
    "topic0, topic1, topic2, topic3, data, event"
)


def _raw_event(engine: Engine, number: int, block_hash: bytes, index: int) -> None:
    """Insert one raw event with plain SQL (as any revision's schema takes it)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO raw_event ({RAW_COLUMNS}) VALUES (:h, :i, :n, 1700000000, :tx, 0, "
                ":a, :t0, NULL, NULL, NULL, :d, 'HarvestRecorded')"
            ),
            {"h": block_hash, "i": index, "n": number, "tx": b"\x07" * 32, "a": b"\x05" * 20,
             "t0": b"\x09" * 32, "d": bytes(range(64))},
        )  # fmt: skip


def _raw_key(engine: Engine) -> tuple[list[str], set[str]]:
    """raw_event's primary key columns in order, and its index names."""
    inspector = inspect(engine)
    key = inspector.get_pk_constraint("raw_event")["constrained_columns"]
    return list(key), {str(i["name"]) for i in inspector.get_indexes("raw_event")}


def test_raw_events_are_keyed_by_block_number_first(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    assert _raw_key(engine) == (["block_number", "block_hash", "log_index"], ARCHIVE_INDEXES)
    _raw_event(engine, 7, b"\x01" * 32, 0)
    _raw_event(engine, 7, b"\x01" * 32, 1)
    _raw_event(engine, 7, b"\x02" * 32, 0)  # the same position in another fork's block 7
    with pytest.raises(DBAPIError), engine.begin() as conn:  # (block_hash, log_index) again
        conn.execute(text(f"INSERT INTO raw_event SELECT {RAW_COLUMNS} FROM raw_event LIMIT 1"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM raw_event")).scalar() == 3


def test_a_database_at_0003_rekeys_its_raw_events_and_can_go_back(db_url: str) -> None:
    engine = make_engine(db_url)
    _move_to(engine, "0003")
    assert _raw_key(engine) == (["block_hash", "log_index"], {"ix_raw_event_block"})
    stored = [(n, bytes([n]) * 32, i) for n in (3, 1, 2) for i in range(3)]
    for number, block_hash, index in stored:
        _raw_event(engine, number, block_hash, index)
    rows = f"SELECT {RAW_COLUMNS} FROM raw_event ORDER BY block_number, log_index"
    with engine.connect() as conn:
        before = conn.execute(text(rows)).all()
    migrate(engine)
    assert schema_revision(engine) == HEAD and _diff(engine) == []
    assert _raw_key(engine) == (["block_number", "block_hash", "log_index"], ARCHIVE_INDEXES)
    with engine.connect() as conn:
        assert conn.execute(text(rows)).all() == before
    _move_to(engine, "0003", step=command.downgrade)
    assert _raw_key(engine) == (["block_hash", "log_index"], {"ix_raw_event_block"})
    with engine.connect() as conn:
        assert conn.execute(text(rows)).all() == before


def _harvest_row(engine: Engine, lot: int, cooperative: bytes, number: int) -> None:
    """An indexed harvest and the raw event it came from, with plain SQL."""
    _raw_event(engine, number, bytes([number]) * 32, 0)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO harvest (lot, farmer, plot, cooperative, grams, grade, picked_at, "
                "season, data_hash, block_number, log_index, block_timestamp) VALUES (:lot, :f, "
                ":p, :c, 5000, 2, 1700000000, '2023-autumn', :d, :n, 0, 1700000100)"
            ),
            {"lot": bytes([lot]) * 32, "f": b"\x0f" * 32, "p": b"\x0e" * 32, "c": cooperative,
             "d": b"\x0d" * 32, "n": number},
        )  # fmt: skip


def test_0005_keeps_receipt_numbers_and_rebuilds_the_lot_copy_on_the_way_back(db_url: str) -> None:
    engine = make_engine(db_url)
    _move_to(engine, "0004")
    coop = bytes.fromhex("ab" * 20)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_organisation (id, name, role, chain_address, active, created_at) "
                "VALUES (1, 'coop', 'COOPERATIVE', :a, :t, CURRENT_TIMESTAMP)"
            ),
            {"a": "0x" + "AB" * 20, "t": True},
        )
        for lot, ref in ((1, "R-1"), (2, "")):
            conn.execute(
                text(
                    "INSERT INTO registry_harvest_lot (lot, cooperative_id, farmer_id, plot_id, "
                    "grams, grade, picked_at, record_ref, tx_hash, created_at) VALUES (:lot, 1, "
                    "'0x', '0x', 5000, 2, 1700000000, :ref, NULL, CURRENT_TIMESTAMP)"
                ),
                {"lot": "0x" + f"{lot:02x}" * 32, "ref": ref},
            )
    for lot in (1, 2):
        _harvest_row(engine, lot, coop, 10 + lot)
    migrate(engine)
    assert schema_revision(engine) == HEAD and _diff(engine) == []
    assert "registry_harvest_lot" not in _tables(engine)
    with engine.connect() as conn:
        refs = conn.execute(text("SELECT lot, record_ref FROM registry_harvest_ref")).all()
    assert [tuple(r) for r in refs] == [("0x" + "01" * 32, "R-1")]  # empty ones are not kept
    _move_to(engine, "0004", step=command.downgrade)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT lot, cooperative_id, grams, record_ref, tx_hash FROM registry_harvest_lot "
                 "ORDER BY lot")
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        ("0x" + "01" * 32, 1, 5000, "R-1", "0x" + "07" * 32),
        ("0x" + "02" * 32, 1, 5000, "", "0x" + "07" * 32),
    ]


def test_a_new_sqlite_file_gets_big_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    fresh = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with fresh.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == SQLITE_PAGE_SIZE
    old = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old)) as raw:
        raw.execute("PRAGMA page_size=4096")
        raw.execute("CREATE TABLE t (x)")
    migrate(make_engine(f"sqlite:///{old}"))
    with make_engine(f"sqlite:///{old}").connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096


def _decision_row(engine: Engine) -> None:
    """Insert one decision row with plain SQL (the store's own insert is tested elsewhere)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO credit_decision (decision_id, farmer_id, lender, decided_at, "
                "contract_date, profile_block_number, profile_block_hash, model_version, "
                "policy_hash, score, band, outcome, limit_fen, reason_codes, record_json, "
                "content_hash) VALUES ('d1', '0xf', '0xl', :at, :day, 1, '0xh', 'v2', 'p', "
                "600, 'B', 'approve', 100, '', '{}', 'c1')"
            ),
            {"at": datetime.now(UTC), "day": date.today()},
        )


def test_credit_tables_are_insert_only_after_migrating(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    _decision_row(engine)
    for statement in (
        "UPDATE credit_decision SET score = 900",
        "DELETE FROM credit_decision",
    ):
        with pytest.raises(DBAPIError, match="insert-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT score FROM credit_decision")).scalar() == 600


def test_migration_triggers_are_the_credit_stores(db_url: str) -> None:
    # 0003 froze lending.credit.store.trigger_ddl: a stand-alone store gets the same triggers.
    from lending.credit.store import create_tables

    migrated, standalone = make_engine(db_url), make_engine(db_url)
    migrate(migrated)
    before = _triggers(migrated)
    create_tables(standalone)  # idempotent DDL: changes nothing when they are the same
    assert _triggers(standalone) == before and len(before) >= 4


def _triggers(engine: Engine) -> list[tuple[str, str]]:
    """(table, trigger name) of every trigger."""
    if engine.dialect.name == "sqlite":
        sql = "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' ORDER BY 2"
    else:
        sql = (
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal ORDER BY 2"
        )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql)).all()]


def test_concurrent_starts_migrate_once(db_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            migrate(make_engine(db_url))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert schema_revision(make_engine(db_url)) == HEAD


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    for engine in (make_engine(sqlite_url), make_engine(sqlite_url, snapshots=False)):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_service_engine_writes_after_the_indexer_committed(sqlite_url: str) -> None:
    # A request reads, waits for the chain, then writes; the indexer commits meanwhile. A
    # snapshot-mode transaction could not write then (SQLITE_BUSY_SNAPSHOT); the service's can.
    migrate(make_engine(sqlite_url))
    service, indexer = make_engine(sqlite_url, snapshots=False), make_engine(sqlite_url)
    with Session(service) as session:
        assert session.exec(select(Organisation)).all() == []
        with indexer.begin() as conn:
            conn.execute(text("INSERT INTO anomaly VALUES (1, 0, 'E', 'r')"))
        session.add(Organisation(name="coop", role=Role.COOPERATIVE, chain_address="0x" + "2" * 40))
        session.commit()
    with Session(service) as session:
        assert len(session.exec(select(Organisation)).all()) == 1


def test_statement_sizes_cover_the_rows_with_few_distinct_sizes() -> None:
    assert statement_sizes(0, 2520) == []
    assert statement_sizes(2520 * 3 + 1000, 2520) == [2520] * 3 + [512, 256, 128, 64, 32, 8]
    sizes = {size for count in range(1, 20_000) for size in statement_sizes(count, 2520)}
    assert len(sizes) <= 13 and max(sizes) == 2520


def _raw_rows(count: int) -> list[tuple[object, ...]]:
    """raw_event rows in column order, one per log index."""
    return [
        (bytes([n]) * 32, n, n // 4, 1_700_000_000 + n, bytes([n]) * 32, 0, b"\x01" * 20,
         bytes([7]) * 32, None, None, None, b"", "E")
        for n in range(count)
    ]  # fmt: skip


def test_bulk_writer_keeps_to_a_lower_sqlite_variable_limit(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    migrate(engine)
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 40)  # as a build may set it
        BulkWriter(conn).insert(RawEvent, _raw_rows(200))  # 3 rows of 13 values a statement
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM raw_event")).scalar() == 200


def test_bulk_writer_splits_rows_over_statements(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 13 columns and room for 5 rows per statement: 23 rows take 4 full statements and a short one.
    monkeypatch.setattr("indexer.db.SQLITE_MAX_VARIABLES", 5 * 13 + 7)
    engine = make_engine(db_url)
    migrate(engine)
    rows = _raw_rows(23)
    with engine.begin() as conn:
        writer = BulkWriter(conn)
        writer.insert(RawEvent, rows[:20])
        writer.extend(RawEvent, rows[20:])
        writer.flush()
        assert writer.written == 23
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT * FROM raw_event ORDER BY log_index")).all()
    assert [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in stored] == rows


def test_0012_products_go_back_and_come_again(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    assert {"product", "product_lot"} <= _tables(engine)
    _move_to(engine, "0011", command.downgrade)
    assert not {"product", "product_lot"} & _tables(engine)
    _move_to(engine, "head")
    assert {"product", "product_lot"} <= _tables(engine) and _diff(engine) == []

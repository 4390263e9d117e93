"""Database engines of the project: SQLite (WAL) by default, PostgreSQL via DATABASE_URL.

The indexer, the HTTP service and the CLIs share one database and one schema history: the
Alembic migrations in migrations/ (indexer tables, the service's organisations, keys and
registry, the credit store), applied on start by whichever of them starts first.
Bulk writes bypass the ORM: rows are tuples in column order, sent as multi-row INSERTs to
SQLite and with psycopg's executemany to PostgreSQL.
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

from chain.config import ChainSettings
from indexer.errors import DatabaseConfigError
from indexer.models import IndexerTable

# The one schema history is the top-level `migrations/` package (it may import every model);
# the indexer only applies its scripts, it imports none of it.
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "indexer_alembic_version"
DB_FILE = "tealedger.db"
WRITER_CACHE_KIB = 256 * 1024
# Bound values per SQLite statement: the default SQLITE_MAX_VARIABLE_NUMBER since 3.32.
SQLITE_MAX_VARIABLES = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
# pg_advisory_xact_lock key serialising migrations: "tealedger.migrate" hashed.
MIGRATION_LOCK = zlib.crc32(b"tealedger.migrate")
# Pages of a new SQLite file. Hash-keyed indexes (harvest lots) are written all over on every
# commit; bigger pages hold the same rows in fewer pages and WAL frames, in a shallower tree.
# Measured figures are in docs/indexer.md ("Figures behind the code"): they change with the
# machine and the code, so they are kept where they are dated, not here.
SQLITE_PAGE_SIZE = 16_384

# The stdlib driver binds int, float, str and bytearray directly; for every other value,
# bytes included, it searches the adapter registry and then __adapt__ and __conform__ before
# binding the value as it is, with the GIL held, and an indexed event binds a dozen hashes.
# Registering the identity adapter ends that search at its first lookup (cost measured:
# docs/indexer.md).
sqlite3.register_adapter(bytes, bytes)


def default_database_url(settings: ChainSettings | None = None) -> str:
    """$DATABASE_URL, else an SQLite file in the chain data directory."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    data_dir = (settings or ChainSettings()).data_dir
    return f"sqlite:///{data_dir / DB_FILE}"


def normalize_url(url: str) -> str:
    """Pick the installed drivers: psycopg 3 for PostgreSQL, the stdlib sqlite3 for SQLite."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseConfigError(f"not a database URL: {url!r} ({exc})") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise DatabaseConfigError(
            f"unsupported database {backend!r}: use sqlite:///path or postgresql://user@host/db"
        )
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    """True for SQLite engines."""
    return engine.dialect.name == "sqlite"


def sqlite_path(engine: Engine) -> Path | None:
    """The database file of an SQLite engine (None for in-memory or other databases)."""
    if not is_sqlite(engine):
        return None
    database = engine.url.database
    return Path(database).resolve() if database and database != ":memory:" else None


def make_engine(url: str, writer: bool = False, snapshots: bool = True) -> Engine:
    """The project's one engine factory (indexer, HTTP service, CLIs): SQLite files get WAL,
    NORMAL sync, a busy timeout and foreign keys; PostgreSQL a pre-ping pool.

    With `snapshots` an SQLite transaction starts with an explicit BEGIN, so every read in it
    sees one snapshot. The HTTP service passes False: a request reads, waits for the chain,
    then writes, and SQLite cannot turn a read snapshot older than the indexer's last commit
    into a write (SQLITE_BUSY_SNAPSHOT, not retried by the busy timeout); without it a
    transaction starts at its first write, as the sqlite3 driver does by default.

    A `writer` engine leaves WAL checkpoints to a WalCheckpointer thread, so the fsync of a
    checkpoint never stalls a commit.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_connect if snapshots else _sqlite_pragmas)
        if writer:
            event.listen(engine, "connect", _writer_pragmas)
        if snapshots:
            event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _writer_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """The writer's commits never checkpoint; its page cache holds the hot index pages."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
    # Harvest lots and raw events are keyed by hashes: their index pages are hit at random,
    # and a backfill slows down markedly once they no longer fit (docs/indexer.md).
    dbapi_connection.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")


class WalCheckpointer:
    """Runs passive WAL checkpoints of an SQLite file in a background thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        """Start a checkpoint unless one is running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """PASSIVE: copies what it can, never waits for readers or the writer."""
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def finish(self) -> None:
        """Wait for a running checkpoint."""
        if self._thread is not None:
            self._thread.join()


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    """Per connection: autocommit driver mode (SQLAlchemy emits BEGIN itself), pragmas."""
    dbapi_connection.isolation_level = None
    _sqlite_pragmas(dbapi_connection, record)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Page size, WAL, busy timeout, page cache, foreign keys (the service's tables have some)."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # only a new, empty file takes it
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives any process crash (kill -9); only an OS crash or power loss
    # can lose the last commits, never consistency.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Start a real transaction, so that reads in it see one snapshot."""
    conn.exec_driver_sql("BEGIN")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent, one process at a time).

    The indexer, every service replica and the CLIs call this on start, so concurrent starts
    are serialised: a file lock beside an SQLite file, a transaction advisory lock on
    PostgreSQL. SQLite migrates on its own snapshot-mode connection, so the DDL of a revision
    is one transaction whatever mode the caller's engine runs in.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    path = sqlite_path(engine)
    if path is None:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        return
    own = make_engine(engine.url.render_as_string(hide_password=False))
    fd = os.open(path.with_name(path.name + ".migrate.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with own.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        os.close(fd)
        own.dispose()


def schema_revision(engine: Engine) -> str | None:
    """The applied Alembic revision, if any."""
    with engine.connect() as conn:
        try:
            row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
        except Exception:
            return None
    return row[0] if row else None


def _variable_limit(conn: Connection) -> int:
    """Bound values an SQLite statement may hold: a build may set a lower limit than 32,766."""
    raw = conn.connection.dbapi_connection
    getlimit = getattr(raw, "getlimit", None)  # Python 3.11+
    if getlimit is None:
        return SQLITE_MAX_VARIABLES
    return min(SQLITE_MAX_VARIABLES, getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))


def statement_sizes(count: int, per: int) -> list[int]:
    """Rows per statement for `count` rows: full statements of `per`, then the rest in powers
    of two. The driver caches each prepared statement, megabytes at the full size; one size
    per batch remainder would fill its cache of 128 with hundreds of MB over a backfill
    (figures: docs/indexer.md)."""
    sizes = [per] * (count // per)
    rest = count % per
    while rest:
        size = 1 << (rest.bit_length() - 1)
        sizes.append(size)
        rest -= size
    return sizes


@functools.lru_cache(maxsize=64)
def _insert_sql(name: str, columns: tuple[str, ...], rows: int, marker: str) -> str:
    """INSERT INTO name (columns) VALUES (...), ... with `rows` rows of placeholders."""
    one = "(" + ", ".join([marker] * len(columns)) + ")"
    return f"INSERT INTO {name} ({', '.join(columns)}) VALUES {', '.join([one] * rows)}"


class BulkWriter:
    """Buffers rows per table and writes them, in the caller's transaction, on flush.

    SQLite gets multi-row INSERT statements of up to SQLITE_MAX_VARIABLES values: one call
    inserts thousands of rows with the GIL released, where executemany hands the GIL back
    and forth for every row (a thread decoding the next batch then starves the writer for a
    switch interval per row). PostgreSQL gets psycopg's executemany, which pipelines.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._sqlite = conn.dialect.name == "sqlite"
        self._variables = _variable_limit(conn) if self._sqlite else 0
        self._marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self._columns: dict[str, list[str]] = {}
        self._rows: dict[str, list[Sequence[Any]]] = {}
        self.written = 0

    def columns(self, table: type[IndexerTable]) -> list[str]:
        """Column names of a table in insert order."""
        name = table.__tablename__  # type: ignore[attr-defined]
        found = self._columns.get(name)
        if found is None:
            found = self._columns[name] = [c.name for c in table.__table__.columns]  # type: ignore[attr-defined]
        return found

    def _statement(self, name: str, rows: int) -> str:
        """INSERT of `rows` rows in the driver's own parameter style."""
        return _insert_sql(name, tuple(self._columns[name]), rows, self._marker)

    def add(self, table: type[IndexerTable], row: Sequence[Any]) -> None:
        """Queue one row (a tuple in column order)."""
        name = table.__tablename__  # type: ignore[attr-defined]
        rows = self._rows.get(name)
        if rows is None:
            self.columns(table)
            rows = self._rows[name] = []
        rows.append(row)

    def extend(self, table: type[IndexerTable], rows: Iterable[Sequence[Any]]) -> None:
        """Queue many rows."""
        for row in rows:
            self.add(table, row)

    def insert(self, table: type[IndexerTable], rows: Sequence[Sequence[Any]]) -> None:
        """Write rows now, bypassing the queue."""
        self.columns(table)
        self._write(table.__tablename__, rows)  # type: ignore[attr-defined]

    def flush(self) -> None:
        """Write every queued row (inside the caller's transaction)."""
        for name, rows in self._rows.items():
            if rows:
                self._write(name, rows)
                rows.clear()

    def _write(self, name: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows of one table."""
        if not rows:
            return
        if not self._sqlite:
            self.conn.exec_driver_sql(self._statement(name, 1), rows)  # type: ignore[arg-type]
        else:
            per = max(1, self._variables // len(self._columns[name]))
            done = 0
            for size in statement_sizes(len(rows), per):
                values = tuple(itertools.chain.from_iterable(rows[done : done + size]))
                self.conn.exec_driver_sql(self._statement(name, size), values)
                done += size
        self.written += len(rows)

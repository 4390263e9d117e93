"""One indexer per database: an exclusive file lock beside an SQLite file, a PostgreSQL
session advisory lock otherwise. Both vanish with the process, so a kill -9 never leaves a
stale lock behind, and a forked child lets go of them at once (`os.register_at_fork`): an flock
lasts while any copy of its descriptor is open, an advisory lock while its session's socket
is, so a child outliving the indexer would otherwise keep the next one out."""

from __future__ import annotations

import fcntl
import os
import weakref
import zlib
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from indexer.db import sqlite_path
from indexer.errors import IndexerLockedError

# A fixed 64-bit key for pg_try_advisory_lock: "tealedger.indexer" hashed.
ADVISORY_KEY = zlib.crc32(b"tealedger.indexer") << 16
# The backend holding it. Advisory locks are per database, and every database of the server
# holds its indexer's under the same key: look only at this one's, or the message names an
# indexer writing some other database.
HOLDER = text(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((classid::bigint << 32) | objid::bigint) = :k"
)


def let_go(fd: int) -> None:
    """Point `fd` at /dev/null: this process no longer holds what it shared, and the number
    stays taken, so objects still owning it never write into a descriptor opened later."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(devnull, fd, inheritable=False)
    finally:
        os.close(devnull)


class IndexerLock:
    """Context manager holding the database's single-writer lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._fd: int | None = None
        self._conn: Connection | None = None
        self._owner = os.getpid()

    def acquire(self) -> IndexerLock:
        """Take the lock or raise IndexerLockedError naming the holder."""
        path = sqlite_path(self.engine)
        if path is not None:
            self._file_lock(path.with_name(path.name + ".indexer.lock"))
        elif self.engine.dialect.name == "postgresql":
            self._advisory_lock()
        self._owner = os.getpid()
        _HELD.add(self)
        return self

    def _file_lock(self, lock_path: Path) -> None:
        """flock on `<db>.indexer.lock`; the file holds the holder's pid for the message."""
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)  # never exec'd along
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            database = lock_path.with_name(lock_path.name.removesuffix(".indexer.lock"))
            raise IndexerLockedError(
                f"another indexer (pid {holder}) is already writing {database}: only one "
                "indexer may run per database. Stop it first, or point this one at another "
                "database with --database-url."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def _advisory_lock(self) -> None:
        """pg_try_advisory_lock on a connection kept open for the life of the lock."""
        conn = self.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
        conn.commit()
        if not got:
            holder = conn.execute(HOLDER, {"k": ADVISORY_KEY}).scalar()
            conn.close()
            where = self.engine.url.render_as_string(hide_password=True)
            raise IndexerLockedError(
                f"another indexer (PostgreSQL backend pid {holder or 'unknown'}) is already "
                f"writing {where}: only one indexer may run per database. Stop it first, or "
                "point this one at another database with --database-url."
            )
        self._conn = conn

    def release(self) -> None:
        """Give the lock up (a forked copy of this object holds nothing to give up)."""
        _HELD.discard(self)
        if os.getpid() != self._owner:
            return
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            self._conn.commit()
            self._conn.close()
            self._conn = None

    def _let_go_in_child(self) -> None:
        """In a forked child: drop this process's copies of the lock's descriptors."""
        fds = [self._fd] if self._fd is not None else []
        if self._conn is not None and not self._conn.closed:
            fileno = getattr(self._conn.connection.dbapi_connection, "fileno", None)
            if fileno is not None:
                fds.append(fileno())
        for fd in fds:
            let_go(fd)

    def __enter__(self) -> IndexerLock:
        """Acquire."""
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release."""
        self.release()


_HELD: weakref.WeakSet[IndexerLock] = weakref.WeakSet()


def _let_go_in_child() -> None:
    """After a fork, in the child: let go of every lock the parent holds."""
    for lock in list(_HELD):
        lock._let_go_in_child()


os.register_at_fork(after_in_child=_let_go_in_child)

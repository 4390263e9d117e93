"""The index's raw_event as a `chain.events.LogArchive`: old logs read from the database.

Every log of every followed contract is kept in raw_event up to the checkpoint, so a reader of
those contracts' events needs the node only for the blocks after it (and checks that the node's
block at the checkpoint has the checkpoint's hash: the same chain, no fork since). The
checkpoint and the rows are read in one snapshot (an SQLite read transaction; REPEATABLE READ on
PostgreSQL), so a rollback running beside the read cannot leave a gap below the head it reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Engine

from chain.events import Archived, Topics
from chain.logs import RawLog
from indexer.models import Checkpoint, IndexedContract, RawEvent
from indexer.source import raw_log_of_row

COLUMNS = [c for c in RawEvent.__table__.columns]  # type: ignore[attr-defined]
ADDRESS_CHUNK = 500  # addresses per IN list (SQLite allows 32,766 parameters)


def _hex(value: str) -> bytes:
    """Bytes of a 0x-hex string."""
    return bytes.fromhex(value[2:])


class IndexArchive:
    """Logs of the contracts an index follows, from its raw_event table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Addresses known to be followed. A rollback drops only clones whose creation it undoes,
        # and then the reader's check of the checkpoint's hash sends it to the node.
        self._followed: set[bytes] = set()

    def read(self, addresses: Sequence[str], topics: Topics, from_block: int) -> Archived | None:
        """The matching logs of blocks `from_block`..checkpoint, with the checkpoint's block
        and hash (the reader checks the node has that block); None before the first block is
        indexed, or for an address not followed."""
        wanted = [_hex(a) for a in addresses]
        with self._snapshot() as conn:
            checkpoint = conn.execute(
                select(Checkpoint.block_number, Checkpoint.block_hash)
            ).first()
            if checkpoint is None or checkpoint[0] < 0 or not self._covers(conn, wanted):
                return None
            head = int(checkpoint[0])
            rows: list[RawLog] = []
            for start in range(0, len(wanted), ADDRESS_CHUNK):
                chunk = wanted[start : start + ADDRESS_CHUNK]
                query = select(*COLUMNS).where(
                    RawEvent.address.in_(chunk),  # type: ignore[attr-defined]
                    RawEvent.block_number.between(from_block, head),  # type: ignore[attr-defined]
                    *_topic_conditions(topics),
                )
                rows.extend(raw_log_of_row(tuple(r)) for r in conn.execute(query))
        rows.sort(key=lambda log: (log.block_number, log.log_index))
        return Archived(rows, head, bytes(checkpoint[1]))

    def _snapshot(self) -> Any:
        """A connection whose reads all see one state of the database."""
        conn = self._engine.connect()
        if self._engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        return _Snapshot(conn)

    def _covers(self, conn: Connection, addresses: list[bytes]) -> bool:
        """Whether the index follows every address. A followed contract's raw_event is
        complete to the checkpoint: it is followed from its deployment (a clone from its
        announcement), and one adopted late is recorded with its history in one transaction."""
        missing = [a for a in addresses if a not in self._followed]
        for start in range(0, len(missing), ADDRESS_CHUNK):
            chunk = missing[start : start + ADDRESS_CHUNK]
            found = conn.execute(
                select(IndexedContract.address).where(
                    IndexedContract.address.in_(chunk)  # type: ignore[attr-defined]
                )
            )
            self._followed.update(bytes(a) for (a,) in found)
        return all(a in self._followed for a in addresses)


class _Snapshot:
    """A connection in one transaction for a `with` block, closed after it."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __enter__(self) -> Connection:
        self._conn.begin()
        if self._conn.dialect.name == "sqlite":
            raw: Any = self._conn.connection.dbapi_connection
            if not raw.in_transaction:  # an engine whose transactions begin at their first write
                self._conn.exec_driver_sql("BEGIN")
        return self._conn

    def __exit__(self, *exc: object) -> None:
        self._conn.rollback()
        self._conn.close()


def _topic_conditions(topics: Topics) -> list[Any]:
    """SQL conditions of an eth_getLogs topic filter."""
    columns = (RawEvent.topic0, RawEvent.topic1, RawEvent.topic2, RawEvent.topic3)
    conditions: list[Any] = []
    for column, wanted in zip(columns, topics, strict=False):
        if wanted is None:
            continue
        if isinstance(wanted, str):
            conditions.append(column == _hex(wanted))
        else:
            conditions.append(column.in_([_hex(v) for v in wanted]))  # type: ignore[union-attr]
    return [and_(*conditions)] if conditions else []

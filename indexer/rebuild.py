"""Recompute every derived table from the stored raw events, without the node.

The raw events hold every topic and data byte, so a schema change or a new projection needs
only this replay (one transaction: readers see the old tables until it commits), never a
re-sync from the chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from chain.abi import DecodedLog
from chain.logs import RawLog
from indexer import deferred
from indexer.contracts import load_contracts
from indexer.db import migrate
from indexer.models import RawEvent
from indexer.projections import Projector, clear_derived, recompute_aggregates
from indexer.source import make_decoder

PAGE = 20_000  # raw events read per page (pages end on block boundaries)


@dataclass(frozen=True)
class RebuildStats:
    """What a rebuild did."""

    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        """Replay speed."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _pages(conn: Connection, page: int = PAGE) -> Iterator[list[RawLog]]:
    """Raw events in chain order, in pages that never split a block."""
    cols = [c for c in RawEvent.__table__.columns]  # type: ignore[attr-defined]
    after = -1
    while True:
        stmt = (
            select(*cols)
            .where(RawEvent.block_number > after)  # type: ignore[arg-type]
            .order_by(RawEvent.block_number, RawEvent.log_index)
            .limit(page)
        )
        rows = conn.execute(stmt).all()
        if not rows:
            return
        if len(rows) == page:
            last = rows[-1].block_number
            whole = [r for r in rows if r.block_number < last]
            if not whole:  # one block holds more than a page: take it alone
                block = (
                    select(*cols).where(RawEvent.block_number == last).order_by(RawEvent.log_index)
                )  # type: ignore[arg-type]
                whole = conn.execute(block).all()
            rows = whole
        after = rows[-1].block_number
        yield [_raw_log(r) for r in rows]


def _raw_log(row: Any) -> RawLog:
    """A stored row back as a RawLog."""
    topics = tuple(t for t in (row.topic0, row.topic1, row.topic2, row.topic3) if t is not None)
    return RawLog(
        row.block_number,
        bytes(row.block_hash),
        row.log_index,
        row.tx_index,
        bytes(row.tx_hash),
        bytes(row.address),
        tuple(bytes(t) for t in topics),
        bytes(row.data),
        row.block_timestamp,
    )


def replay_raw(conn: Connection, abis: Mapping[str, list[dict[str, Any]]]) -> int:
    """Inside the caller's transaction: clear derived tables and replay every raw event."""
    decoder = make_decoder(load_contracts(conn), abis)
    clear_derived(conn)
    # Built once over the finished tables, in this same transaction (indexer/deferred.py).
    deferred.drop(conn, deferred.DERIVED_INDEXES)
    projector = Projector()
    count = 0
    for page in _pages(conn):
        events: list[DecodedLog] = [decoder.decode(lg) for lg in page]
        projector.apply(conn, events)
        count += len(events)
    recompute_aggregates(conn)
    deferred.build_missing(conn, deferred.DERIVED_INDEXES)
    return count


def rebuild(engine: Engine, abis: Mapping[str, list[dict[str, Any]]]) -> RebuildStats:
    """Recompute the derived tables from raw events in one transaction."""
    migrate(engine)
    began = time.perf_counter()
    with engine.begin() as conn:
        count = replay_raw(conn, abis)
    return RebuildStats(count, time.perf_counter() - began)

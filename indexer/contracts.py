"""The contracts the indexer follows, as recorded in its database."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from indexer.models import IndexedContract
from indexer.source import ContractInfo


def load_contracts(conn: Connection) -> list[ContractInfo]:
    """The contracts recorded in the database."""
    rows = conn.execute(
        select(
            IndexedContract.address,
            IndexedContract.name,
            IndexedContract.contract,
            IndexedContract.from_block,
            IndexedContract.parent,
        ).order_by(IndexedContract.from_block, IndexedContract.address)
    )
    return [ContractInfo(bytes(a), n, c, b, bytes(p) if p else None) for a, n, c, b, p in rows]


def record_contracts(conn: Connection, contracts: Sequence[ContractInfo]) -> None:
    """Insert contract rows (inside the caller's transaction)."""
    for c in contracts:
        conn.execute(
            insert(IndexedContract).values(
                address=c.address, name=c.name, contract=c.contract, from_block=c.from_block,
                parent=c.parent,
            )
        )  # fmt: skip

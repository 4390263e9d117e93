"""Secondary indexes that a first backfill and a rebuild build once at the end.

Keeping an index up to date row by row costs a B-tree descent per row; building it once over a
finished table is a sort. These indexes serve only the reads after a backfill (profiles, the
API) and reorg rollbacks by block number; the projector's own lookups (primary keys, sales by
lot, sale shares by cooperative and season, loans by escrow) keep theirs. While they are
missing, those reads still answer correctly, only by scanning.
"""

from __future__ import annotations

from sqlalchemy import Index, inspect
from sqlalchemy.engine import Connection

from indexer.models import IndexerTable

RAW_INDEXES = ("ix_raw_event_topic0", "ix_raw_event_topic1")
"""raw_event's own secondary indexes (the archive's reads): a first backfill builds them at its
end; a rebuild, which only reads raw_event, keeps them."""

DERIVED_INDEXES = (
    "ix_farmer_block_number",
    "ix_farmer_cooperative",
    "ix_plot_block_number",
    "ix_plot_farmer",
    "ix_harvest_block_number",
    "ix_harvest_farmer_season",
    "ix_harvest_cooperative_block",
    "ix_harvest_yield_block_number",
    "ix_harvest_yield_farmer_season",
    "ix_lot_source_block_number",
    "ix_lot_produced_block_number",
    "ix_sale_share_farmer_season",
)


def indexes(names: tuple[str, ...]) -> list[Index]:
    """The model's Index objects of these names (a name not in the models is an error)."""
    found = {
        index.name: index
        for table in IndexerTable.metadata.tables.values()
        for index in table.indexes
    }
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"no such index in the indexer models: {', '.join(missing)}")
    return [found[n] for n in names]


def drop(conn: Connection, names: tuple[str, ...]) -> None:
    """Drop these indexes where they exist (inside the caller's transaction)."""
    for index in indexes(names):
        index.drop(conn, checkfirst=True)


def build_missing(conn: Connection, names: tuple[str, ...]) -> int:
    """Create those of these indexes that do not exist; returns how many were built."""
    wanted = indexes(names)
    inspector = inspect(conn)
    tables = {i.table.name for i in wanted if i.table is not None}
    existing = {str(i["name"]) for t in tables for i in inspector.get_indexes(t)}
    missing = [i for i in wanted if i.name not in existing]
    for index in missing:
        index.create(conn)
    return len(missing)

"""raw_event: indexes by event and by first topic, for reading old events from the index

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 00:10:00.000000

Readers of a contract's events ask the index for the blocks it holds (indexer/archive.py)
instead of the node, which then need not keep its history (issue #22). Their filters are an
event at some contracts, often with one indexed argument (a lot, a sale, an order) in the first
topic. A first backfill drops these indexes until it ends, like the derived tables' (indexer
/deferred.py), so IF NOT EXISTS / IF EXISTS.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_raw_event_topic0", ("topic0", "address")),
    ("ix_raw_event_topic1", ("topic1",)),
)


def upgrade() -> None:
    """Apply this revision."""
    for name, columns in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON raw_event ({', '.join(columns)})")


def downgrade() -> None:
    """Revert this revision."""
    for name, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")

"""raw_event: key (block_number, block_hash, log_index); the block-order index goes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 08:00:00.000000

A log is still identified by (block_hash, log_index): a block hash determines its number, so
the new key admits exactly the rows the old one did. Leading with the number makes a backfill
append to the key's B-tree (block hashes are random, so the old key was written all over on
every commit), and the key now serves block-order reads and rollbacks by block number, which
ix_raw_event_block did. SQLite cannot change a primary key in place: the table is copied.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_KEY = ("block_number", "block_hash", "log_index")
OLD_KEY = ("block_hash", "log_index")


def _rekey(key: tuple[str, ...]) -> None:
    """Give raw_event this primary key, keeping every row."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE raw_event DROP CONSTRAINT raw_event_pkey, "
            f"ADD CONSTRAINT raw_event_pkey PRIMARY KEY ({', '.join(key)})"
        )
        return
    # The copy takes the live table's columns as they are, in their order.
    live = sa.Table("raw_event", sa.MetaData(), autoload_with=op.get_bind())
    columns = [sa.Column(c.name, c.type, nullable=c.nullable) for c in live.columns]
    op.create_table("raw_event_rekeyed", *columns, sa.PrimaryKeyConstraint(*key))
    names = ", ".join(c.name for c in columns)
    op.execute(f"INSERT INTO raw_event_rekeyed ({names}) SELECT {names} FROM raw_event")
    op.drop_table("raw_event")
    op.rename_table("raw_event_rekeyed", "raw_event")


def upgrade() -> None:
    """Apply this revision."""
    # A first backfill drops this index until it ends: after a crash it may be missing.
    op.execute("DROP INDEX IF EXISTS ix_raw_event_block")
    _rekey(NEW_KEY)


def downgrade() -> None:
    """Revert this revision."""
    _rekey(OLD_KEY)
    op.create_index("ix_raw_event_block", "raw_event", ["block_number", "log_index"])

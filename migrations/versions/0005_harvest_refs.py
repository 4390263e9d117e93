"""registry_harvest_lot becomes registry_harvest_ref: the indexer's `harvest` holds the lots

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 15:00:00.000000

The service kept its own copy of every harvest lot a cooperative recorded through it (farmer,
plot, grams, grade, picking time, transaction): a second index of what the indexer already
holds in `harvest`, and one that missed every lot recorded another way (the CLI, the demo).
Lot lists now read `harvest` (with an index by cooperative); the service keeps only what the
chain does not have, the cooperative's own receipt number of each picking (`record_ref`,
hashed into the lot's data hash but not readable from it).

Downgrade rebuilds registry_harvest_lot from `harvest` for the lots of known cooperatives.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _text(length: int) -> sqlmodel.AutoString:
    """A string column of the models' type."""
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _hex(column: str) -> str:
    """SQL for 0x + lower-case hex of a bytes column, in this database's dialect."""
    if op.get_bind().dialect.name == "postgresql":
        return f"'0x' || encode({column}, 'hex')"
    return f"'0x' || lower(hex({column}))"


def upgrade() -> None:
    """Keep the receipt numbers, drop the copy of the lots, index `harvest` by cooperative."""
    op.create_table(
        "registry_harvest_ref",
        sa.Column("lot", _text(66), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("record_ref", _text(128), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cooperative_id"], ["api_organisation.id"]),
        sa.PrimaryKeyConstraint("lot"),
    )
    op.create_index(
        "ix_registry_harvest_ref_cooperative_id", "registry_harvest_ref", ["cooperative_id"]
    )
    op.execute(
        "INSERT INTO registry_harvest_ref (lot, cooperative_id, record_ref, created_at) "
        "SELECT lot, cooperative_id, record_ref, created_at FROM registry_harvest_lot "
        "WHERE record_ref <> ''"
    )
    for index in ("cooperative_id", "created_at", "farmer_id"):
        op.drop_index(f"ix_registry_harvest_lot_{index}", table_name="registry_harvest_lot")
    op.drop_table("registry_harvest_lot")
    op.create_index("ix_harvest_cooperative_block", "harvest", ["cooperative", "block_number"])


def downgrade() -> None:
    """The lot copy again, filled from `harvest` (transaction hashes from raw_event)."""
    op.drop_index("ix_harvest_cooperative_block", table_name="harvest")
    op.create_table(
        "registry_harvest_lot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot", _text(66), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("farmer_id", _text(66), nullable=False),
        sa.Column("plot_id", _text(66), nullable=False),
        sa.Column("grams", sa.Integer(), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("picked_at", sa.Integer(), nullable=False),
        sa.Column("record_ref", _text(128), nullable=False),
        sa.Column("tx_hash", _text(66), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cooperative_id"], ["api_organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lot"),
    )
    for index in ("cooperative_id", "created_at", "farmer_id"):
        op.create_index(
            f"ix_registry_harvest_lot_{index}", "registry_harvest_lot", [index], unique=False
        )
    op.execute(
        "INSERT INTO registry_harvest_lot (lot, cooperative_id, farmer_id, plot_id, grams, grade, "
        "picked_at, record_ref, tx_hash, created_at) "
        f"SELECT {_hex('h.lot')}, o.id, {_hex('h.farmer')}, {_hex('h.plot')}, h.grams, h.grade, "
        f"h.picked_at, COALESCE(r.record_ref, ''), {_hex('e.tx_hash')}, "
        "COALESCE(r.created_at, CURRENT_TIMESTAMP) "
        "FROM harvest h "
        f"JOIN api_organisation o ON lower(o.chain_address) = {_hex('h.cooperative')} "
        f"LEFT JOIN registry_harvest_ref r ON r.lot = {_hex('h.lot')} "
        "LEFT JOIN raw_event e ON e.block_number = h.block_number AND e.log_index = h.log_index "
        "ORDER BY h.block_number, h.log_index"
    )
    op.drop_index("ix_registry_harvest_ref_cooperative_id", table_name="registry_harvest_ref")
    op.drop_table("registry_harvest_ref")

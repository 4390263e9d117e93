"""epcis_capture, epcis_captured_event, epcis_lot_map: EPCIS capture's jobs, the events it
recorded (by CBV 2.0 event hash) and the local lot of each captured foreign lot

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 00:30:00.000000

GitHub issue #21 part 2 (docs/traceability.md, "EPCIS capture").
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.adopt import create_table

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "epcis_capture",
        sa.Column("id", _TEXT(length=36), nullable=False),
        sa.Column("organisation", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("recorded", sa.Integer(), nullable=False),
        sa.Column("already", sa.Integer(), nullable=False),
        sa.Column("results_json", sa.Text(), nullable=False),
        sa.Column("errors_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=(("ix_epcis_capture_organisation", ["organisation"], False),),
    )
    create_table(
        "epcis_captured_event",
        sa.Column("event_hash", sa.LargeBinary(), nullable=False),
        sa.Column("organisation", sa.LargeBinary(), nullable=False),
        sa.Column("capture_id", _TEXT(length=36), nullable=False),
        sa.Column("kind", _TEXT(length=16), nullable=False),
        sa.Column("event_id", _TEXT(length=300), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_hash"),
        indexes=(
            ("ix_epcis_captured_event_capture_id", ["capture_id"], False),
            ("ix_epcis_captured_event_organisation", ["organisation"], False),
        ),
    )
    create_table(
        "epcis_lot_map",
        sa.Column("source_lot", _TEXT(length=200), nullable=False),
        sa.Column("local_lot", sa.LargeBinary(), nullable=False),
        sa.Column("organisation", sa.LargeBinary(), nullable=False),
        sa.Column("event_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("source_lot"),
        indexes=(("ix_epcis_lot_map_local_lot", ["local_lot"], False),),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("epcis_lot_map")
    op.drop_table("epcis_captured_event")
    op.drop_table("epcis_capture")

"""farmer_offer_decline: a farmer's refusal of a loan offer

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 16:10:00.000000

A farmer who declines an offer says so through the service (issue #19); the refusal is kept so
the offer shows as declined and cannot be accepted afterwards.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.adopt import create_table

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "farmer_offer_decline",
        sa.Column("offer_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("farmer_id", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("declined_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("offer_id"),
        indexes=(("ix_farmer_offer_decline_farmer_id", ["farmer_id"], False),),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("farmer_offer_decline")

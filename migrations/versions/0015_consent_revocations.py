"""consent_revocation: revocations made through the service, seen by every service process

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 00:40:00.000000

A lender's profile read checks consent in the indexed ConsentRegistry state instead of calling
the node (issue #22, goal 3). A revocation through the service must take effect at once, before
the indexer has seen it, in every `tealedger serve` on the database: the service writes it here
before relaying it, and every read looks it up (api/core/consent_gate.py).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.adopt import create_table

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "consent_revocation",
        sa.Column("farmer", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("lender", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("farmer", "lender"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("consent_revocation")

"""api_rate_bucket: rate-limit buckets shared by every service process on one database

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 00:10:00.000000

Two `tealedger serve` processes on one PostgreSQL database must charge one bucket per caller,
or a caller gets twice the limit (issue #22). SQLite keeps its buckets in memory (one process
per SQLite file); the table exists there too so both schemas stay alike.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.adopt import create_table

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "api_rate_bucket",
        sa.Column("caller", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("caller"),
        indexes=(("ix_api_rate_bucket_updated_at", ["updated_at"], False),),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_api_rate_bucket_updated_at", table_name="api_rate_bucket")
    op.drop_table("api_rate_bucket")

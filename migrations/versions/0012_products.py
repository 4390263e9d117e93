"""product, product_lot: cooperatives' GTINs and the lot codes their packages carry

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 23:50:00.000000

GS1 Digital Link on the package (issue #21): a cooperative's products with their GTIN-14, and
each packed lot's (GTIN, lot code) -> lot id, unique both ways, for the /01/{gtin}/10/{lot}
resolver.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.adopt import create_table

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gtin", _TEXT(length=14), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("name_zh", _TEXT(length=120), nullable=False),
        sa.Column("name_en", _TEXT(length=120), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("flush", _TEXT(length=16), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("retired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["cooperative_id"], ["api_organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gtin"),
        indexes=(("ix_product_cooperative_id", ["cooperative_id"], False),),
    )
    create_table(
        "product_lot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot", _TEXT(length=66), nullable=False),
        sa.Column("gtin", _TEXT(length=14), nullable=False),
        sa.Column("lot_code", _TEXT(length=20), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cooperative_id"], ["api_organisation.id"]),
        sa.ForeignKeyConstraint(["gtin"], ["product.gtin"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gtin", "lot_code"),
        sa.UniqueConstraint("lot"),
        indexes=(
            ("ix_product_lot_cooperative_id", ["cooperative_id"], False),
            ("ix_product_lot_gtin", ["gtin"], False),
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("product_lot")
    op.drop_table("product")

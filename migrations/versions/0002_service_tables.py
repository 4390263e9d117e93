"""service tables: organisations, API keys, the cooperatives' registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 21:16:53.042996
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.adopt import create_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLES = ("ADMIN", "COOPERATIVE", "PROCESSOR", "DISTRIBUTOR", "INSPECTOR", "LENDER", "MERCHANT",
         "FARMER")  # fmt: skip
TABLES = ("registry_plot", "registry_harvest_lot", "registry_farmer", "api_key",
          "api_organisation")  # fmt: skip


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    """A bounded string column type."""
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _when() -> sqlmodel.sql.sqltypes.UTCDateTime:
    """A timezone-aware timestamp column type."""
    return sqlmodel.sql.sqltypes.UTCDateTime()


def _org_fk(column: str) -> sa.ForeignKeyConstraint:
    """A reference to an organisation."""
    return sa.ForeignKeyConstraint([column], ["api_organisation.id"])


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "api_organisation",
        sa.Column("name", _text(120), nullable=False),
        sa.Column("role", sa.Enum(*ROLES, name="role"), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_address", _text(42), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=(("ix_api_organisation_chain_address", ["chain_address"], False),),
    )
    create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("prefix", _text(16), nullable=False),
        sa.Column("key_hash", _text(64), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("revoked_at", _when(), nullable=True),
        _org_fk("organisation_id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
        indexes=(
            ("ix_api_key_organisation_id", ["organisation_id"], False),
            ("ix_api_key_prefix", ["prefix"], False),
        ),
    )
    create_table(
        "registry_farmer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("farmer_id", _text(66), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("name", _text(120), nullable=True),
        sa.Column("national_id", _text(18), nullable=True),
        sa.Column("wallet_org_id", sa.Integer(), nullable=True),
        sa.Column("wallet", _text(42), nullable=True),
        sa.Column("registered_tx", _text(66), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("erased_at", _when(), nullable=True),
        _org_fk("cooperative_id"),
        _org_fk("wallet_org_id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("farmer_id"),
        sa.UniqueConstraint("wallet_org_id"),
        indexes=(("ix_registry_farmer_cooperative_id", ["cooperative_id"], False),),
    )
    create_table(
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
        sa.Column("created_at", _when(), nullable=False),
        _org_fk("cooperative_id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lot"),
        indexes=(
            ("ix_registry_harvest_lot_cooperative_id", ["cooperative_id"], False),
            ("ix_registry_harvest_lot_created_at", ["created_at"], False),
            ("ix_registry_harvest_lot_farmer_id", ["farmer_id"], False),
        ),
    )
    create_table(
        "registry_plot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plot_id", _text(66), nullable=False),
        sa.Column("farmer_id", _text(66), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("label", _text(60), nullable=True),
        sa.Column("area_centi_mu", sa.Integer(), nullable=False),
        sa.Column("variety", sa.Integer(), nullable=False),
        sa.Column("registered_tx", _text(66), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        _org_fk("cooperative_id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plot_id"),
        indexes=(
            ("ix_registry_plot_cooperative_id", ["cooperative_id"], False),
            ("ix_registry_plot_farmer_id", ["farmer_id"], False),
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    for table in TABLES:
        op.drop_table(table)  # its indexes go with it
    sa.Enum(name="role").drop(op.get_bind(), checkfirst=True)

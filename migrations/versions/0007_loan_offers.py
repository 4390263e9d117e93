"""loan_offer: the terms a farmer was shown, the farmer's signed acceptance, the loan issued

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 16:00:00.000000

A loan binds a farmer only by the farmer's own EIP-712 signature (issue #17): the lender makes
an offer from a credit decision, the farmer signs its terms, the lender issues the loan with
that signature. One row per decision (a unique index: one decision gives one loan).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.adopt import create_table

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    """A bounded string column type."""
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "loan_offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", _text(32), nullable=False),
        sa.Column("decision_id", _text(32), nullable=False),
        sa.Column("lender", _text(42), nullable=False),
        sa.Column("farmer_id", _text(66), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("terms_json", sa.Text(), nullable=False),
        sa.Column("disclosure_json", sa.Text(), nullable=False),
        sa.Column("acceptance_nonce", sa.BigInteger(), nullable=True),
        sa.Column("acceptance_deadline", sa.BigInteger(), nullable=True),
        sa.Column("acceptance_signature", _text(132), nullable=True),
        sa.Column("accepted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("escrow", _text(42), nullable=True),
        sa.Column("loan_id", sa.BigInteger(), nullable=True),
        sa.Column("transaction", _text(66), nullable=True),
        sa.Column("issued_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        indexes=(
            ("ix_loan_offer_decision_id", ["decision_id"], True),
            ("ix_loan_offer_farmer_id", ["farmer_id"], False),
            ("ix_loan_offer_lender", ["lender"], False),
            ("ix_loan_offer_offer_id", ["offer_id"], True),
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("loan_offer")

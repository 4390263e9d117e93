"""risk_alert, risk_alert_change: the risk monitor's alerts and their review trail

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 21:20:00.000000

A finding of a rule is kept once per key as an alert; a regulator moves it open -> reviewed ->
confirmed or dismissed, and every change keeps who, when and why (issue #20).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.adopt import create_table

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "risk_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", _TEXT(length=64), nullable=False),
        sa.Column("key", _TEXT(length=200), nullable=False),
        sa.Column("subject", _TEXT(length=100), nullable=False),
        sa.Column("severity", _TEXT(length=16), nullable=False),
        sa.Column("status", _TEXT(length=16), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("evidence_json", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        indexes=(
            ("ix_risk_alert_rule", ["rule"], False),
            ("ix_risk_alert_status", ["status"], False),
            ("ix_risk_alert_subject", ["subject"], False),
        ),
    )
    create_table(
        "risk_alert_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("from_status", _TEXT(length=16), nullable=False),
        sa.Column("to_status", _TEXT(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", _TEXT(length=200), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["risk_alert.id"]),
        sa.PrimaryKeyConstraint("id"),
        indexes=(("ix_risk_alert_change_alert_id", ["alert_id"], False),),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("risk_alert_change")
    op.drop_table("risk_alert")

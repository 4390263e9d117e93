"""credit tables: decisions and the profile access log, insert-only by trigger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 21:30:00.000000

The triggers are those of lending.credit.store.trigger_ddl, frozen here as of this revision
(tests/indexer/test_index_migrations.py checks that both refuse an UPDATE and a DELETE).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.adopt import create_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("credit_decision", "profile_access_log")


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    """A bounded string column type."""
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _triggers(dialect: str) -> list[str]:
    """DDL making both tables insert-only (idempotent: an adopted table may have them)."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op_} BEFORE {op_.upper()} ON {t} "
            f"BEGIN SELECT RAISE(ABORT, '{t} is insert-only'); END"
            for t in TABLES
            for op_ in ("update", "delete")
        ]
    ddl = [
        "CREATE OR REPLACE FUNCTION tealedger_insert_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '% is insert-only', TG_TABLE_NAME; "
        "END $$"
    ]
    for t in TABLES:
        ddl += [
            f"DROP TRIGGER IF EXISTS {t}_insert_only ON {t}",
            f"CREATE TRIGGER {t}_insert_only BEFORE UPDATE OR DELETE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION tealedger_insert_only()",
            f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}",
            f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
            "FOR EACH STATEMENT EXECUTE FUNCTION tealedger_insert_only()",
        ]
    return ddl


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "credit_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", _text(32), nullable=False),
        sa.Column("farmer_id", _text(66), nullable=False),
        sa.Column("lender", _text(42), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("contract_date", sa.Date(), nullable=False),
        sa.Column("profile_block_number", sa.BigInteger(), nullable=False),
        sa.Column("profile_block_hash", _text(66), nullable=False),
        sa.Column("model_version", _text(64), nullable=False),
        sa.Column("policy_hash", _text(64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("band", _text(16), nullable=False),
        sa.Column("outcome", _text(16), nullable=False),
        sa.Column("limit_fen", sa.BigInteger(), nullable=False),
        sa.Column("offered_rate_bps", sa.Integer(), nullable=True),
        sa.Column("cap_rule", _text(64), nullable=True),
        sa.Column("cap_action", _text(32), nullable=True),
        sa.Column("reason_codes", _text(256), nullable=False),
        sa.Column("record_json", sa.Text(), nullable=False),
        sa.Column("content_hash", _text(64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("content_hash"),
        indexes=(
            ("ix_credit_decision_decision_id", ["decision_id"], True),
            ("ix_credit_decision_farmer_id", ["farmer_id"], False),
            ("ix_credit_decision_lender", ["lender"], False),
            ("ix_credit_decision_model_version", ["model_version"], False),
        ),
    )
    create_table(
        "profile_access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("farmer_id", _text(66), nullable=False),
        sa.Column("lender", _text(42), nullable=False),
        sa.Column("purpose", _text(64), nullable=False),
        sa.Column("outcome", _text(32), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decision_id", _text(32), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", _text(66), nullable=True),
        sa.Column("content_hash", _text(64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=(
            ("ix_profile_access_log_decision_id", ["decision_id"], False),
            ("ix_profile_access_log_farmer_id", ["farmer_id"], False),
            ("ix_profile_access_log_lender", ["lender"], False),
        ),
    )
    for statement in _triggers(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    """Revert this revision (the triggers go with their tables)."""
    for table in TABLES:
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS tealedger_insert_only()")

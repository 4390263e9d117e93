"""api_page_login: a browser's login is a server-side session that logout revokes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 15:00:00.000000

The login cookie used to hold the organisation's raw API key, and logging out only asked the
browser to forget it: a copied cookie kept working until the key itself was revoked. The
cookie now holds a random token; this table keeps its SHA-256, the key it was opened with,
its expiry and its revocation.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "api_page_login",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("expires_at", when(), nullable=False),
        sa.Column("revoked_at", when(), nullable=True),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_key.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_page_login_api_key_id", "api_page_login", ["api_key_id"])


def downgrade() -> None:
    """Revert this revision: page logins are forgotten (every browser logs in again)."""
    op.drop_index("ix_api_page_login_api_key_id", table_name="api_page_login")
    op.drop_table("api_page_login")

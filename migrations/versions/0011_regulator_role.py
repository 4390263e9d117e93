"""role REGULATOR: the regulator's organisations (the risk monitor's reviewers)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 21:00:00.000000

`api_organisation.role` is a database enum (0002). PostgreSQL keeps it as a named type that
must learn the new value; SQLite stores the name as text (VARCHAR(11), no constraint), so there
is nothing to change there (issue #20).
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OLD_ROLES = ("ADMIN", "COOPERATIVE", "PROCESSOR", "DISTRIBUTOR", "INSPECTOR", "LENDER",
             "MERCHANT", "FARMER")  # fmt: skip


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE role ADD VALUE IF NOT EXISTS 'REGULATOR'")


def downgrade() -> None:
    """Revert this revision (refused by the database while a regulator organisation exists)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    values = ", ".join(f"'{v}'" for v in OLD_ROLES)
    op.execute("ALTER TYPE role RENAME TO role_0011")
    op.execute(f"CREATE TYPE role AS ENUM ({values})")
    op.execute("ALTER TABLE api_organisation ALTER COLUMN role TYPE role USING role::text::role")
    op.execute("DROP TYPE role_0011")

"""token_transfer, merchant_approval: money wallet to wallet, merchants' approvals

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 21:00:00.000000

The risk monitor (issue #20) follows the payment token from wallet to wallet and asks when a
merchant became payable. Both were already kept in `raw_event` (every log of a followed
contract is); this revision projects the rows already there, so an upgraded database needs no
rebuild.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from migrations.adopt import create_table

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_I64 = (1 << 63) - 1


def upgrade() -> None:
    """Apply this revision."""
    create_table(
        "token_transfer",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=False),
        sa.Column("sender", sa.LargeBinary(), nullable=False),
        sa.Column("recipient", sa.LargeBinary(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
        indexes=(
            ("ix_token_transfer_sender", ["sender"], False),
            ("ix_token_transfer_recipient", ["recipient"], False),
            ("ix_token_transfer_tx_hash", ["tx_hash"], False),
        ),
    )
    create_table(
        "merchant_approval",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("merchant", sa.LargeBinary(), nullable=False),
        sa.Column("category", sa.LargeBinary(), nullable=False),
        sa.Column("registrar", sa.LargeBinary(), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
        indexes=(("ix_merchant_approval_merchant", ["merchant"], False),),
    )
    _project_kept_events()


def _project_kept_events() -> None:
    """Project the Transfer and merchant events already in raw_event (if it exists)."""
    conn = op.get_bind()
    if not sa.inspect(conn).has_table("raw_event"):
        return
    raw = sa.table(
        "raw_event", *(sa.column(c) for c in (
            "block_number", "log_index", "address", "topic1", "topic2", "topic3", "data",
            "tx_hash", "block_timestamp", "event",
        ))
    )  # fmt: skip
    rows = conn.execute(
        sa.select(raw).where(raw.c.event.in_(("Transfer", "MerchantApproved", "MerchantRevoked")))
    ).mappings()
    found: dict[str, list[dict[str, Any]]] = {"token_transfer": [], "merchant_approval": [],
                                              "anomaly": []}  # fmt: skip
    for row in rows:
        table, projected = _transfer(row) if row["event"] == "Transfer" else _approval(row)
        found[table].append(projected)
    for table, projected in found.items():
        if projected:
            conn.execute(sa.table(table, *map(sa.column, projected[0])).insert(), projected)


def _word(value: Any) -> int:
    """A 32-byte word as an integer."""
    return int.from_bytes(bytes(value), "big")


def _transfer(row: Any) -> tuple[str, dict[str, Any]]:
    """Transfer(from, to, value) as a token_transfer row, or an anomaly past 64 bits (as the
    projection does)."""
    amount = _word(row["data"])
    if amount > _I64:
        reason = f"value {amount} does not fit a 64-bit column"
        return "anomaly", {"block_number": row["block_number"], "log_index": row["log_index"],
                           "event": "Transfer", "reason": reason}  # fmt: skip
    return "token_transfer", {
        "block_number": row["block_number"], "log_index": row["log_index"],
        "token": bytes(row["address"]), "sender": bytes(row["topic1"])[12:],
        "recipient": bytes(row["topic2"])[12:], "amount_fen": amount,
        "tx_hash": bytes(row["tx_hash"]), "block_timestamp": row["block_timestamp"],
    }  # fmt: skip


def _approval(row: Any) -> tuple[str, dict[str, Any]]:
    """MerchantApproved / MerchantRevoked as a merchant_approval row (a never-expiring approval,
    uint256 max, is kept as the largest 64-bit time, as the projection does)."""
    approved = row["event"] == "MerchantApproved"
    expires = min(_word(row["data"]), _I64) if approved else 0
    return "merchant_approval", {
        "block_number": row["block_number"], "log_index": row["log_index"],
        "merchant": bytes(row["topic1"])[12:], "category": bytes(row["topic2"]),
        "registrar": bytes(row["topic3"])[12:], "approved": approved, "expires_at": expires,
        "block_timestamp": row["block_timestamp"],
    }  # fmt: skip


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("merchant_approval")
    op.drop_table("token_transfer")

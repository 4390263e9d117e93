"""The credit store's tables: credit decisions and the profile access log (SQLModel).

Both are insert-only: the ORM refuses flushes that would update or delete a row (the guard
below), and lending.credit.store adds database triggers that abort any UPDATE or DELETE.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Text, event
from sqlalchemy.orm import Mapper
from sqlmodel import Field, SQLModel

from lending.errors import ImmutableRecordError

DECISION_ID_LENGTH = 32
"""A decision id's characters (a UUID4's hex)."""


class CreditDecisionRow(SQLModel, table=True):
    """One credit decision, as stored: query columns, the full record JSON and its hash."""

    __tablename__ = "credit_decision"

    id: int | None = Field(default=None, primary_key=True)
    decision_id: str = Field(index=True, unique=True, max_length=DECISION_ID_LENGTH)
    farmer_id: str = Field(index=True, max_length=66)
    lender: str = Field(index=True, max_length=42)
    decided_at: datetime
    contract_date: date
    profile_block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    profile_block_hash: str = Field(max_length=66)
    model_version: str = Field(index=True, max_length=64)
    policy_hash: str = Field(max_length=64)
    score: int
    band: str = Field(max_length=16)
    outcome: str = Field(max_length=16)
    limit_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    offered_rate_bps: int | None = None
    cap_rule: str | None = Field(default=None, max_length=64)
    cap_action: str | None = Field(default=None, max_length=32)
    reason_codes: str = Field(max_length=256)
    """Comma-separated reason codes, most points lost first."""
    record_json: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(unique=True, max_length=64)
    """sha256 of record_json."""


class ProfileAccessRow(SQLModel, table=True):
    """One attempt by a lender to read a farmer's profile (read or refused)."""

    __tablename__ = "profile_access_log"

    id: int | None = Field(default=None, primary_key=True)
    farmer_id: str = Field(index=True, max_length=66)
    lender: str = Field(index=True, max_length=42)
    purpose: str = Field(max_length=64)
    outcome: str = Field(max_length=32)
    at: datetime
    decision_id: str | None = Field(default=None, index=True, max_length=32)
    block_number: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    block_hash: str | None = Field(default=None, max_length=66)
    content_hash: str = Field(max_length=64)


@event.listens_for(CreditDecisionRow, "before_update")
@event.listens_for(CreditDecisionRow, "before_delete")
@event.listens_for(ProfileAccessRow, "before_update")
@event.listens_for(ProfileAccessRow, "before_delete")
def _refuse_change(_mapper: Mapper, _connection: object, target: SQLModel) -> None:
    """ORM guard: insert-only rows are never updated or deleted."""
    raise ImmutableRecordError(
        f"{type(target).__tablename__} is insert-only; record a new decision instead"
    )

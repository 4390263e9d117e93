"""The loan offers a lender made and the farmers accepted (table loan_offer, migration 0007).

One row per credit decision (a unique index: one decision gives one loan). The row keeps the
terms and the disclosure the farmer was shown, the farmer's signed acceptance once given, and
the escrow once the loan is issued.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel


class LoanOfferRow(SQLModel, table=True):
    """A loan offer: terms shown, acceptance signed, loan issued (each later step nullable)."""

    __tablename__ = "loan_offer"

    id: int | None = Field(default=None, primary_key=True)
    offer_id: str = Field(index=True, unique=True, max_length=32)
    decision_id: str = Field(index=True, unique=True, max_length=32)
    lender: str = Field(index=True, max_length=42)
    farmer_id: str = Field(index=True, max_length=66)
    created_at: datetime
    terms_json: str = Field(sa_column=Column(Text, nullable=False))
    disclosure_json: str = Field(sa_column=Column(Text, nullable=False))
    acceptance_nonce: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    acceptance_deadline: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    acceptance_signature: str | None = Field(default=None, max_length=132)
    accepted_at: datetime | None = None
    escrow: str | None = Field(default=None, max_length=42)
    loan_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    transaction: str | None = Field(default=None, max_length=66)
    issued_at: datetime | None = None

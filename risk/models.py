"""The risk monitor's tables: alerts and every change of an alert's status (migration 0010)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel


class RiskAlert(SQLModel, table=True):
    """A finding of a rule, kept once per key; its status is the regulator's verdict."""

    __tablename__ = "risk_alert"

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(index=True, max_length=64)
    key: str = Field(unique=True, max_length=200)
    subject: str = Field(index=True, max_length=100)
    severity: str = Field(max_length=16)
    status: str = Field(index=True, max_length=16)
    explanation_zh: str = Field(sa_column=Column(Text, nullable=False))
    explanation_en: str = Field(sa_column=Column(Text, nullable=False))
    evidence_json: str = Field(sa_column=Column(Text, nullable=False))
    observed_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Chain time of the latest fact the finding rests on."""
    first_seen: datetime
    last_seen: datetime


class RiskAlertChange(SQLModel, table=True):
    """One status change of an alert: who, when, from what to what, and why (insert-only)."""

    __tablename__ = "risk_alert_change"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="risk_alert.id", index=True)
    from_status: str = Field(max_length=16)
    to_status: str = Field(max_length=16)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    by: str = Field(max_length=200)
    at: datetime

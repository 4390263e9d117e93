"""Organisations and their API keys (stored hashed, shown once, revocable)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel


class Role(StrEnum):
    """What an organisation may do; maps onto on-chain roles where one exists."""

    ADMIN = "admin"
    COOPERATIVE = "cooperative"
    PROCESSOR = "processor"
    DISTRIBUTOR = "distributor"
    INSPECTOR = "inspector"
    LENDER = "lender"
    MERCHANT = "merchant"
    FARMER = "farmer"

    @property
    def label_zh(self) -> str:
        """The role's name in Chinese."""
        return ROLE_NAMES_ZH[self]


ROLE_NAMES_ZH = {
    Role.ADMIN: "平台管理",
    Role.COOPERATIVE: "合作社",
    Role.PROCESSOR: "加工厂",
    Role.DISTRIBUTOR: "经销商",
    Role.INSPECTOR: "质检机构",
    Role.LENDER: "贷款机构",
    Role.MERCHANT: "商户",
    Role.FARMER: "茶农",
}


# The largest key SQLite (and PostgreSQL's bigint) can store: a bigger id is a 422, never an
# overflow inside the database driver.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, PydField(ge=1, le=MAX_ROW_ID, description="a row id (1 or more)")]
"""A row id in a request body (an organisation, a key)."""
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a row id (1 or more)")]
"""A row id in a path."""


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(UTC)


class OrganisationBase(SQLModel):
    """Fields a client may set when creating an organisation."""

    name: str = Field(min_length=1, max_length=120)
    role: Role


class Organisation(OrganisationBase, table=True):
    """An organisation; its chain address's key is held by the service in a keystore."""

    __tablename__ = "api_organisation"

    id: int | None = Field(default=None, primary_key=True)
    chain_address: str = Field(index=True, max_length=42)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class OrganisationCreate(OrganisationBase):
    """Request body: server sets id, address, status and the key."""


class OrganisationPublic(OrganisationBase):
    """What the API shows of an organisation."""

    id: int
    chain_address: str
    active: bool
    created_at: datetime


class ApiKey(SQLModel, table=True):
    """An API key: only its SHA-256 is stored; `prefix` identifies it in listings."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="api_organisation.id", index=True)
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ApiKeyPublic(BaseModel):
    """A key as listed (never the secret)."""

    id: int
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """A new key: the secret is in this response and nowhere else, ever."""

    key: str = PydField(description="Shown once; store it now.")


class OrganisationCreated(BaseModel):
    """Response to creating an organisation: the organisation and its first key."""

    organisation: OrganisationPublic
    api_key: ApiKeyCreated

"""Cooperative registry tables: farmers' personal data (off chain), plots, harvest lots.

Only pseudonyms go on chain. A farmer's name and national id live here, in `registry_farmer`,
and are erased on request (the pseudonym row stays, so the chain history keeps its meaning).
Rows are written only after the chain accepted the transaction they describe.

Model family per entity (full-stack-fastapi-template): `*Create` is what a client may send,
the table model is what is stored (owner, ids, transaction hashes: set by the server only),
`*Public` is what the API shows.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, WithJsonSchema
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from api.core.models import RowId, utcnow
from traceability.models import UINT16_MAX, UINT32_MAX, Bytes32

Id32 = Annotated[
    Bytes32,
    WithJsonSchema(
        {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$", "example": "0x" + "ab" * 32}
    ),
]
"""A 32-byte id (farmer, plot, lot) as 0x + 64 hex digits in JSON."""

# ISO 7064 MOD 11-2 weights and check characters of the PRC resident identity number.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalize_national_id(value: str) -> str:
    """NFKC, no spaces, upper case (the form the pseudonym is computed from)."""
    return unicodedata.normalize("NFKC", value).replace(" ", "").strip().upper()


def _national_id(value: object) -> str:
    """An 18-character PRC resident id with a valid check character.

    The pseudonym is derived from this number: a typo would silently create a second farmer,
    so the check character is verified.
    """
    if not isinstance(value, str):
        raise ValueError("the national id is a string of 18 characters")
    text = normalize_national_id(value)
    if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        raise ValueError("a resident id has 17 digits and a check digit or X (18 characters)")
    total = sum(int(d) * w for d, w in zip(text[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != text[17]:
        raise ValueError("the resident id's check character is wrong: check for a typo")
    return text


def mask_national_id(value: str | None) -> str | None:
    """`4228**********001X`: enough to tell members apart, not enough to misuse."""
    if not value:
        return None
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


NationalId = Annotated[str, BeforeValidator(_national_id)]


def _not_blank(value: str) -> str:
    """Strip and refuse empty text."""
    text = value.strip()
    if not text:
        raise ValueError("must not be blank")
    return text


Text = Annotated[str, AfterValidator(_not_blank)]

# ------------------------------------------------------------------------------------ farmers


class FarmerCreate(BaseModel):
    """Registering a member: personal data stays in this database; the chain gets a pseudonym.

    Anything else in the body (farmer id, owner, status) is ignored: the server sets it.
    """

    national_id: NationalId = PydField(description="18-character resident id (never on chain)")
    name: Text = PydField(max_length=120, description="the farmer's name (never on chain)")
    farmer_org_id: RowId | None = PydField(
        default=None,
        description="a farmer organisation whose chain address becomes the farmer's wallet "
        "(for consents and proceeds)",
    )


class Farmer(SQLModel, table=True):
    """A member farmer: pseudonym, owning cooperative, personal fields (nullable: erasable)."""

    __tablename__ = "registry_farmer"

    id: int | None = Field(default=None, primary_key=True)
    farmer_id: str = Field(max_length=66, unique=True, description="0x pseudonym on chain")
    cooperative_id: int = Field(foreign_key="api_organisation.id", index=True)
    name: str | None = Field(default=None, max_length=120)
    national_id: str | None = Field(default=None, max_length=18)
    wallet_org_id: int | None = Field(default=None, foreign_key="api_organisation.id", unique=True)
    wallet: str | None = Field(default=None, max_length=42)
    registered_tx: str | None = Field(default=None, max_length=66)
    created_at: datetime = Field(default_factory=utcnow)
    erased_at: datetime | None = None


class FarmerPublic(BaseModel):
    """A member as its cooperative sees it (national id masked)."""

    farmer_id: str
    name: str | None
    national_id_masked: str | None
    farmer_org_id: int | None
    wallet: str | None
    personal_data_erased: bool
    registered_tx: str | None
    created_at: datetime
    active: bool | None = PydField(default=None, description="on chain (detail views only)")

    @classmethod
    def of(cls, row: Farmer) -> FarmerPublic:
        """From the stored row."""
        return cls(
            farmer_id=row.farmer_id,
            name=row.name,
            national_id_masked=mask_national_id(row.national_id),
            farmer_org_id=row.wallet_org_id,
            wallet=row.wallet,
            personal_data_erased=row.erased_at is not None,
            registered_tx=row.registered_tx,
            created_at=row.created_at,
        )


class FarmerRegistered(FarmerPublic):
    """Response to a registration: the record and its transaction (None if already on chain)."""

    transaction: str | None


# ------------------------------------------------------------------------------------ plots


class PlotCreate(BaseModel):
    """A plot of one of the cooperative's farmers; its id is derived from the land reference."""

    farmer_id: Id32 = PydField(description="the farmer's 0x pseudonym")
    land_reference: Text = PydField(
        max_length=128, description="e.g. the land-contract number (hashed, never stored)"
    )
    area_centi_mu: int = PydField(gt=0, le=UINT32_MAX, description="area in 0.01 mu")
    variety: int = PydField(default=0, ge=0, le=UINT16_MAX, description="tea variety code")
    location: str | None = PydField(
        default=None, max_length=500, description="location description (hashed, never stored)"
    )
    label: str | None = PydField(
        default=None, max_length=60, description="the cooperative's short name for the plot"
    )


class Plot(SQLModel, table=True):
    """A registered plot (the label is erased with its farmer's personal data)."""

    __tablename__ = "registry_plot"

    id: int | None = Field(default=None, primary_key=True)
    plot_id: str = Field(max_length=66, unique=True)
    farmer_id: str = Field(max_length=66, index=True)
    cooperative_id: int = Field(foreign_key="api_organisation.id", index=True)
    label: str | None = Field(default=None, max_length=60)
    area_centi_mu: int
    variety: int = 0
    registered_tx: str | None = Field(default=None, max_length=66)
    created_at: datetime = Field(default_factory=utcnow)


class PlotPublic(BaseModel):
    """A plot as the API shows it."""

    plot_id: str
    farmer_id: str
    label: str | None
    area_centi_mu: int
    variety: int
    registered_tx: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Plot) -> PlotPublic:
        """From the stored row."""
        return cls.model_validate(row, from_attributes=True)


class PlotRegistered(PlotPublic):
    """Response to a plot registration."""

    transaction: str | None


# ------------------------------------------------------------------------------------ harvests


class HarvestLot(SQLModel, table=True):
    """A fresh-leaf lot this cooperative recorded (a local index of its own chain writes)."""

    __tablename__ = "registry_harvest_lot"

    id: int | None = Field(default=None, primary_key=True)
    lot: str = Field(max_length=66, unique=True)
    cooperative_id: int = Field(foreign_key="api_organisation.id", index=True)
    farmer_id: str = Field(max_length=66, index=True)
    plot_id: str = Field(max_length=66)
    grams: int
    grade: int
    picked_at: int
    record_ref: str = Field(default="", max_length=128)
    tx_hash: str | None = Field(default=None, max_length=66)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class HarvestLotPublic(BaseModel):
    """A harvest lot with its current state on chain."""

    lot: str
    farmer_id: str
    plot_id: str
    grams: int
    grade: int
    picked_at: int
    record_ref: str
    tx_hash: str | None
    created_at: datetime
    state: str | None = None
    holder: str | None = None
    recalled: bool | None = None
    trace_url: str

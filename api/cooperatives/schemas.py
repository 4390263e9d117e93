"""What cooperatives send and see of members, plots and harvest lots.

Model family per entity (full-stack-fastapi-template): `*Create` is what a client may send,
the table model (api/core/models.py) is what is stored (owner, ids, transaction hashes: set by
the server only), `*Public` is what the API shows.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, model_validator
from pydantic import Field as PydField

from api.core.models import Farmer, Plot
from api.core.types import Address, Id32, Int, NationalId, RowId, Text, mask_national_id
from traceability.models import UINT16_MAX, UINT32_MAX

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
    wallet: Address | None = PydField(
        default=None,
        description="or: a wallet address the farmer keeps the key of (a wallet app); "
        "not together with farmer_org_id",
    )

    @model_validator(mode="after")
    def _one_wallet(self) -> FarmerCreate:
        """One wallet: the farmer organisation's or the farmer's own."""
        if self.farmer_org_id is not None and self.wallet is not None:
            raise ValueError("give farmer_org_id or wallet, not both")
        return self


class FarmerPublic(BaseModel):
    """A member as its cooperative sees it (national id masked)."""

    farmer_id: str
    member_number: int = PydField(
        description="the cooperative's number for the member (order files)"
    )
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
        assert row.id is not None
        return cls(
            farmer_id=row.farmer_id,
            member_number=row.id,
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


class PlotFields(BaseModel):
    """A plot's data; its id is derived from the land reference."""

    land_reference: Text = PydField(
        max_length=128, description="e.g. the land-contract number (hashed, never stored)"
    )
    area_centi_mu: Int = PydField(gt=0, le=UINT32_MAX, description="area in 0.01 mu")
    variety: Int = PydField(default=0, ge=0, le=UINT16_MAX, description="tea variety code")
    location: Text | None = PydField(
        default=None, max_length=500, description="location description (hashed, never stored)"
    )
    label: Text | None = PydField(
        default=None, max_length=60, description="the cooperative's short name for the plot"
    )


class PlotCreate(PlotFields):
    """A plot of one of the cooperative's farmers; its id is derived from the land reference."""

    farmer_id: Id32 = PydField(description="the farmer's 0x pseudonym")


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


class HarvestLotPublic(BaseModel):
    """A harvest lot as indexed, with its current state on chain."""

    lot: str
    farmer_id: str
    plot_id: str
    grams: int
    grade: int
    picked_at: int
    record_ref: str = PydField(description="your receipt number (empty if not recorded here)")
    tx_hash: str | None
    block_number: int
    created_at: datetime = PydField(description="when the chain recorded it (block time)")
    state: str | None = None
    holder: str | None = None
    recalled: bool | None = None
    trace_url: str

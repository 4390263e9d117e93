"""What granting a lender consent takes and gives back, for farmers and their cooperatives."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic import Field as PydField

from api.core.types import Int, RowId

MAX_CONSENT_DAYS = 720  # the registry allows 730 days from the block time: keep a margin


class ConsentIn(BaseModel):
    """Let a lender read your profile for a number of days."""

    lender_org_id: RowId
    days: Int = PydField(default=365, ge=1, le=MAX_CONSENT_DAYS)


class ConsentChanged(BaseModel):
    """A consent granted (expires_at in unix seconds) or revoked (expires_at 0)."""

    farmer_id: str
    lender_org_id: int
    lender_address: str
    expires_at: int
    transaction: str

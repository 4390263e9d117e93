"""Merchants: loan payments received, and delivery confirmations of two-sided loans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.core.deps import ChainDep, SettingsDep, require_role
from api.core.models import Organisation, Role
from api.core.pagination import Page, PageDep
from api.merchants import service
from api.merchants.service import Confirmed, PaymentGroup

router = APIRouter(prefix="/merchants", tags=["merchants"])

MerchantOrg = Annotated[Organisation, Depends(require_role(Role.MERCHANT))]


@router.get("/payments", response_model=Page[PaymentGroup])
def payments(chain: ChainDep, page: PageDep, org: MerchantOrg) -> Page[PaymentGroup]:
    """Loan payments to your chain address, by loan and category, with invoice hashes."""
    return service.payments(chain, org, page)


@router.post("/payments/{escrow}/{order_id}/confirm", response_model=Confirmed)
def confirm_delivery(
    escrow: str,
    order_id: Annotated[int, Path(ge=1, le=2**256 - 1, description="the escrow's order")],
    settings: SettingsDep,
    chain: ChainDep,
    org: MerchantOrg,
) -> Confirmed:
    """Confirm delivery of an order reserved for you: the escrow releases the payment."""
    return service.confirm(chain, settings, org, escrow, order_id)

"""Merchants: orders waiting for them (take, confirm delivery, decline), payments received,
their approvals per category."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.core.deps import ChainDep, SessionDep, SettingsDep, require_role
from api.core.models import Organisation, Role
from api.core.pagination import Page, PageDep
from api.core.types import Text
from api.merchants import service
from api.merchants.service import (
    ApprovalView,
    Confirmed,
    InvoiceMatch,
    MerchantOrder,
    OrderAction,
    OrderView,
    PaymentGroup,
    ReceivedPayment,
)

router = APIRouter(prefix="/merchants", tags=["merchants"])

MerchantOrg = Annotated[Organisation, Depends(require_role(Role.MERCHANT))]
OrderId = Annotated[int, Path(ge=1, le=2**256 - 1, description="the escrow's order")]


@router.get("/payments", response_model=Page[PaymentGroup])
def payments(chain: ChainDep, page: PageDep, org: MerchantOrg) -> Page[PaymentGroup]:
    """Loan payments to your chain address, by loan and category, with invoice hashes."""
    return service.payments(chain, org, page)


@router.post("/payments/{escrow}/{order_id}/confirm", response_model=Confirmed)
def confirm_delivery(
    escrow: str, order_id: OrderId, settings: SettingsDep, chain: ChainDep, org: MerchantOrg
) -> Confirmed:
    """Confirm delivery of an order reserved for you: the escrow releases the payment."""
    return service.confirm(chain, settings, org, escrow, order_id)


@router.get("/orders", response_model=Page[MerchantOrder])
def orders(
    chain: ChainDep,
    session: SessionDep,
    page: PageDep,
    org: MerchantOrg,
    status: Annotated[OrderView, Query(description="open: waiting for you")] = OrderView.OPEN,
) -> Page[MerchantOrder]:
    """Payment orders reserved for you, newest first, with farmer, cooperative and date."""
    return service.orders(chain, session, org, status, page)


@router.post("/orders/{escrow}/{order_id}/accept", response_model=OrderAction)
def accept_order(
    escrow: str, order_id: OrderId, settings: SettingsDep, chain: ChainDep, org: MerchantOrg
) -> OrderAction:
    """Take an order before delivering (merchant-confirmed loans)."""
    return service.accept(chain, settings, org, escrow, order_id)


@router.post("/orders/{escrow}/{order_id}/confirm", response_model=OrderAction)
def confirm_order(
    escrow: str, order_id: OrderId, settings: SettingsDep, chain: ChainDep, org: MerchantOrg
) -> OrderAction:
    """Confirm delivery: the escrow pays you."""
    return service.confirm_order(chain, settings, org, escrow, order_id)


@router.post("/orders/{escrow}/{order_id}/decline", response_model=OrderAction)
def decline_order(
    escrow: str, order_id: OrderId, settings: SettingsDep, chain: ChainDep, org: MerchantOrg
) -> OrderAction:
    """Decline an order: its amount goes back to the loan's budget."""
    return service.decline(chain, settings, org, escrow, order_id)


@router.get("/received", response_model=Page[ReceivedPayment])
def received(
    chain: ChainDep, session: SessionDep, page: PageDep, org: MerchantOrg
) -> Page[ReceivedPayment]:
    """Every payment a loan made to you, newest first, with farmer, cooperative and date."""
    return service.received(chain, session, org, page)


@router.get("/approvals", response_model=list[ApprovalView])
def approvals(chain: ChainDep, org: MerchantOrg) -> list[ApprovalView]:
    """Your approval in every registered category, and when each expires."""
    return service.approvals(chain, org)


@router.get("/invoices", response_model=InvoiceMatch)
def find_invoice(
    chain: ChainDep,
    session: SessionDep,
    org: MerchantOrg,
    number: Annotated[Text, Query(min_length=1, max_length=64, description="your invoice number")],
) -> InvoiceMatch:
    """The orders and payments of one of your invoice numbers (matched by its hash on chain)."""
    return service.find_invoice(chain, session, org, number)

"""A loan's full history for its lender: the one loan read model (lending.loans.history) as JSON.

Codes and integers as the read model gives them (fen, unix times; ids and hashes as 0x hex);
merchants also by organisation name, the farmer by registry name where the service has one.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine

from api.core.models import Organisation
from api.lenders.portfolio import PortfolioLoan, farmer_names, loan_row, org_names, own_state
from chain.client import ChainClient
from lending.loans.disbursement import LoanDesk
from lending.loans.history import LoanHistory, loan_history, offer_for_escrow
from lending.loans.merchants import MerchantDesk


class BudgetLineOut(BaseModel):
    """One category's budget: budgeted, spent, reserved and left (fen)."""

    category: str
    category_name: str | None
    budget_fen: int
    spent_fen: int
    reserved_fen: int
    left_fen: int


class OrderLineOut(BaseModel):
    """One payment order and what became of it (block times, unix)."""

    order_id: int
    merchant: str
    merchant_name: str | None = None
    category: str
    category_name: str | None
    invoice_hash: str
    amount_fen: int
    status: str
    created_at: int
    accepted_at: int | None
    confirmed_at: int | None
    cancelled_at: int | None
    tx_hash: str


class RepaymentLineOut(BaseModel):
    """One repayment forwarded to you."""

    payer: str
    amount_fen: int
    outstanding_after_fen: int
    block_number: int
    paid_at: int
    via_settlement: bool
    tx_hash: str


class ScheduleLineOut(BaseModel):
    """One installment of the accepted schedule (for the whole principal)."""

    number: int
    due: str
    principal_fen: int
    interest_fen: int
    fee_fen: int
    total_fen: int
    balance_fen: int


class NextDueOut(BaseModel):
    """The next installment still unpaid, pro rata on what was drawn."""

    number: int
    due: str
    amount_fen: int


class LoanHistoryOut(BaseModel):
    """One of your loans in full: the portfolio row, terms, budgets, orders, repayments and
    the accepted schedule."""

    loan: PortfolioLoan
    apr_bps: int
    disclosure_hash: str
    acceptance_digest: str
    grace_days: int
    default_days: int
    issued_at: int
    chain_time: int
    budgets: list[BudgetLineOut]
    orders: list[OrderLineOut]
    repayments: list[RepaymentLineOut]
    schedule: list[ScheduleLineOut]
    schedule_verified: bool
    next_due: NextDueOut | None
    offer_id: str | None


def plain(value: Any) -> Any:
    """A read-model value as JSON-ready data: bytes as 0x hex, enums by lower-case name."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Enum):
        return value.name.lower()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def read_history(engine: Engine, chain: ChainClient, org: Organisation, escrow: str) -> LoanHistory:
    """The read model of one of your loans (404 unknown escrow, 403 another lender's)."""
    desk, state = own_state(chain, org, escrow)
    return loan_history(
        desk,
        state.escrow,
        offer=offer_for_escrow(engine, state.escrow),
        category_names=categories(desk),
    )


def categories(desk: LoanDesk) -> dict[bytes, str]:
    """Category names of the factory's merchant registry."""
    return MerchantDesk(desk.client, desk.registry_address).category_names()


def history_out(engine: Engine, h: LoanHistory) -> LoanHistoryOut:
    """The API view of a loan's history: the read model's own fields as they are, the loan as
    its portfolio row and merchants also by organisation name."""
    fid = "0x" + h.state.farmer_id.hex()
    merchants = org_names(engine, {o.merchant for o in h.orders})
    orders = [
        OrderLineOut(**plain(o), merchant_name=merchants.get(o.merchant.lower())) for o in h.orders
    ]
    loan = loan_row(h.state, h.chain_time, farmer_names(engine, [fid]))
    # The read model's fields the view does not list (state, days_past_due, ...) are ignored.
    return LoanHistoryOut.model_validate(plain(h) | {"loan": loan, "orders": orders})

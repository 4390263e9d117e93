"""Merchants: loan payments received, and delivery confirmations of two-sided loans.

Payments come from the LoanDisbursed events of the LoanFactory's own escrows to the merchant's
chain address (lending/merchants.py), grouped by loan and category with their invoice hashes.
A confirmation names an escrow and an order: an escrow the factory never issued or an order
that does not exist is 404, an order to another merchant 403, an order that is not waiting for
the merchant (paid at once, already released or cancelled) 409.
"""

from __future__ import annotations

from pydantic import BaseModel
from web3 import Web3

from api.core.chain import LOAN_FACTORY, factory_escrow, org_sender
from api.core.errors import Conflict, Forbidden, NotFound
from api.core.ids import same_address
from api.core.models import Organisation
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from chain.client import ChainClient
from lending.loans.disbursement import ConfirmationMode, OrderStatus
from lending.loans.merchants import MerchantDesk, payments_received, summarize
from traceability import contracts


class PaymentGroup(BaseModel):
    """What one loan paid you in one category."""

    loan_id: int
    escrow: str
    category: str
    category_name: str | None
    total_fen: int
    payments: int
    invoice_hashes: list[str]
    transactions: list[str]


class Confirmed(BaseModel):
    """A reserved order released to you."""

    escrow: str
    order_id: int
    amount_fen: int
    category: str
    invoice_hash: str
    transaction: str


def payments(chain: ChainClient, org: Organisation, page: PageParams) -> Page[PaymentGroup]:
    """Your payments by loan and category (loan order), paginated over the groups."""
    start = contracts.deployment_block(chain, LOAN_FACTORY)
    names = MerchantDesk(chain, from_block=start).category_names()
    received = payments_received(chain, org.chain_address, from_block=start, category_names=names)
    groups = summarize(received)
    txs: dict[tuple[int, bytes], list[str]] = {}
    for p in received:
        txs.setdefault((p.loan_id, p.category), []).append(p.tx_hash)
    window = groups[page.offset : page.offset + page.limit]
    items = [
        PaymentGroup(
            loan_id=g.loan_id,
            escrow=g.escrow,
            category="0x" + g.category.hex(),
            category_name=g.category_name,
            total_fen=g.total_fen,
            payments=len(g.invoice_hashes),
            invoice_hashes=["0x" + h.hex() for h in g.invoice_hashes],
            transactions=txs[(g.loan_id, g.category)],
        )
        for g in window
    ]
    return Page(items=items, total=len(groups), limit=page.limit, offset=page.offset)


def confirm(
    chain: ChainClient, settings: ApiSettings, org: Organisation, escrow: str, order_id: int
) -> Confirmed:
    """Confirm delivery of a reserved order to you: the escrow pays you."""
    desk, contract, _ = factory_escrow(chain, escrow)
    if not 1 <= order_id <= desk.order_count(contract.address):
        raise NotFound(f"escrow {contract.address} has no order {order_id}")
    mode = desk.state(contract.address).mode
    order = desk.order(contract.address, order_id)
    if mode is not ConfirmationMode.MERCHANT_CONFIRMS:
        raise Conflict(
            f"loan {contract.address} is {mode.name.lower()}: its orders are not confirmed by "
            "the merchant"
        )
    if not same_address(order.merchant, org.chain_address):
        raise Forbidden(f"order {order_id} pays another merchant, not you")
    if order.status is not OrderStatus.PENDING:
        raise Conflict(f"order {order_id} is {order.status.name.lower()}, not pending")
    sender = org_sender(chain, settings, org)
    receipt = desk.confirm_payment(contract.address, order_id, sender)
    return Confirmed(
        escrow=Web3.to_checksum_address(contract.address),
        order_id=order_id,
        amount_fen=order.amount_fen,
        category="0x" + order.category.hex(),
        invoice_hash="0x" + order.invoice_hash.hex(),
        transaction=receipt["transactionHash"].to_0x_hex(),
    )

"""Merchants: loan payments received, and delivery confirmations of two-sided loans.

Payments come from the LoanDisbursed events of the LoanFactory's own escrows to the merchant's
chain address (lending/merchants.py), grouped by loan and category with their invoice hashes.
A confirmation names an escrow and an order: an escrow the factory never issued or an order
that does not exist is 404, an order to another merchant 403, an order that is not waiting for
the merchant (paid at once, already released or cancelled) 409.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, select
from web3 import Web3
from web3.types import TxReceipt

from api.core.chain import LOAN_FACTORY, factory_escrow, loan_desk, org_sender
from api.core.errors import Conflict, Forbidden, NotFound
from api.core.ids import same_address
from api.core.models import Organisation
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from chain.client import ChainClient
from chain.events import Event
from lending.loans.contracts import LOAN_ESCROW
from lending.loans.disbursement import (
    ConfirmationMode,
    LoanDesk,
    LoanState,
    OrderStatus,
    PaymentOrder,
)
from lending.loans.invoices import invoice_hash
from lending.loans.merchants import MerchantDesk, escrows_of, payments_received, summarize
from traceability import contracts

# An invoice is one order per loan; a number reused on many loans lists at most this many.
MAX_MATCHES = 200


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
    if order.status not in (OrderStatus.PENDING, OrderStatus.ACCEPTED):
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


# --- orders waiting for the merchant, payments received itemised, approvals (issue #19) ---


class OrderView(StrEnum):
    """Which of your orders to list: open = waiting for you (pending or accepted)."""

    OPEN = "open"
    PENDING = "pending"
    ACCEPTED = "accepted"
    RELEASED = "released"
    CANCELLED = "cancelled"
    ALL = "all"


class MerchantOrder(BaseModel):
    """One payment order to you, with who ordered it and when."""

    loan_id: int
    escrow: str
    order_id: int
    status: str = Field(description="pending, accepted, released or cancelled")
    mode: str = Field(description="who confirms the loan's orders: merchant_confirms, ...")
    category: str
    category_name: str | None
    amount_fen: int
    invoice_hash: str
    invoice_number: str | None = Field(
        default=None, description="your invoice number, when you looked it up (/invoices)"
    )
    farmer: str = Field(description="the farmer's pseudonym (privacy: no name)")
    cooperative: str | None = Field(description="the ordering cooperative's name, if any")
    ordered_at: int = Field(description="unix seconds of the order's block")
    transaction: str


class ReceivedPayment(BaseModel):
    """One payment a loan made to you."""

    loan_id: int
    escrow: str
    order_id: int
    category: str
    category_name: str | None
    amount_fen: int
    invoice_hash: str
    invoice_number: str | None = Field(
        default=None, description="your invoice number, when you looked it up (/invoices)"
    )
    farmer: str
    cooperative: str | None
    paid_at: int = Field(description="unix seconds of the payment's block")
    transaction: str


class ApprovalView(BaseModel):
    """Your approval in one registered category."""

    category: str
    category_name: str
    approved: bool = Field(description="approved at the latest block")
    approved_at: int | None
    expires_at: int | None
    revoked: bool


class OrderAction(BaseModel):
    """What happened to one of your orders."""

    escrow: str
    order_id: int
    status: str
    amount_fen: int
    transaction: str


def _orders_ok(status: OrderStatus, view: OrderView) -> bool:
    """Does an order in `status` belong to the listed `view`?"""
    if view is OrderView.ALL:
        return True
    if view is OrderView.OPEN:
        return status in (OrderStatus.PENDING, OrderStatus.ACCEPTED)
    return status.name.lower() == view.value


class _Reader:
    """Block times, loan states and organisation names, each read once per request."""

    def __init__(self, chain: ChainClient, session: Session, desk: LoanDesk) -> None:
        self.chain, self.session, self.desk = chain, session, desk
        self._times: dict[int, int] = {}
        self._states: dict[str, LoanState] = {}
        self._names: dict[str, str | None] = {}

    def time(self, block: int) -> int:
        """Unix seconds of a block."""
        if block not in self._times:
            self._times[block] = int(self.chain.w3.eth.get_block(block)["timestamp"])
        return self._times[block]

    def state(self, escrow: str) -> LoanState:
        """The escrow's terms and status."""
        if escrow not in self._states:
            self._states[escrow] = self.desk.state(escrow)
        return self._states[escrow]

    def org_name(self, address: str | None) -> str | None:
        """The name of the organisation at a chain address (None: not one of ours)."""
        if address is None:
            return None
        key = address.lower()
        if key not in self._names:
            query = select(Organisation).where(func.lower(Organisation.chain_address) == key)
            org = self.session.exec(query).first()
            self._names[key] = org.name if org else None
        return self._names[key]


def _escrow_events(chain: ChainClient, start: int, event: str, merchant: str) -> list[Event]:
    """`event`s naming `merchant` from the factory's own escrows."""
    escrows = escrows_of(chain, LOAN_FACTORY, start)
    if not escrows:
        return []
    abi = chain.contract(LOAN_ESCROW, escrows[0]).abi
    reader = chain.event_reader(escrows, abi, start)
    return reader.events(event, "merchant", [Web3.to_checksum_address(merchant)])


def orders(
    chain: ChainClient,
    session: Session,
    org: Organisation,
    view: OrderView,
    page: PageParams,
    invoice: bytes | None = None,
) -> Page[MerchantOrder]:
    """Your reserved orders (not the ones paid at once), newest first, filtered by `view` (and
    by invoice hash when `invoice` is given)."""
    start = contracts.deployment_block(chain, LOAN_FACTORY)
    names = MerchantDesk(chain, from_block=start).category_names()
    reader = _Reader(chain, session, loan_desk(chain))
    found: list[tuple[Event, PaymentOrder]] = []
    for e in reversed(_escrow_events(chain, start, "PaymentOrdered", org.chain_address)):
        if invoice is not None and e.args["invoiceHash"] != invoice:
            continue
        order = reader.desk.order(e.address, int(e.args["orderId"]))
        if _orders_ok(order.status, view):
            found.append((e, order))
    window = found[page.offset : page.offset + page.limit]
    items = [_order(reader, names, e, o) for e, o in window]
    return Page(items=items, total=len(found), limit=page.limit, offset=page.offset)


def _order(
    reader: _Reader,
    names: dict[bytes, str],
    e: Event,
    o: PaymentOrder,
) -> MerchantOrder:
    """One order as the merchant sees it."""
    state = reader.state(e.address)
    return MerchantOrder(
        loan_id=state.loan_id,
        escrow=e.address,
        order_id=o.order_id,
        status=o.status.name.lower(),
        mode=state.mode.name.lower(),
        category="0x" + o.category.hex(),
        category_name=names.get(o.category),
        amount_fen=o.amount_fen,
        invoice_hash="0x" + o.invoice_hash.hex(),
        farmer="0x" + state.farmer_id.hex(),
        cooperative=reader.org_name(state.agent),
        ordered_at=reader.time(e.block_number),
        transaction="0x" + e.tx_hash.hex(),
    )


def received(
    chain: ChainClient,
    session: Session,
    org: Organisation,
    page: PageParams,
    invoice: bytes | None = None,
) -> Page[ReceivedPayment]:
    """Every payment a loan made to you, newest first, with farmer, cooperative and date (only
    those of one invoice hash when `invoice` is given)."""
    start = contracts.deployment_block(chain, LOAN_FACTORY)
    names = MerchantDesk(chain, from_block=start).category_names()
    paid = payments_received(chain, org.chain_address, from_block=start, category_names=names)
    paid = [p for p in reversed(paid) if invoice is None or p.invoice_hash == invoice]
    window = paid[page.offset : page.offset + page.limit]
    reader = _Reader(chain, session, loan_desk(chain))
    items = []
    for p in window:
        state = reader.state(p.escrow)
        items.append(
            ReceivedPayment(
                loan_id=p.loan_id,
                escrow=p.escrow,
                order_id=p.order_id,
                category="0x" + p.category.hex(),
                category_name=p.category_name,
                amount_fen=p.amount_fen,
                invoice_hash="0x" + p.invoice_hash.hex(),
                farmer="0x" + state.farmer_id.hex(),
                cooperative=reader.org_name(state.agent),
                paid_at=reader.time(p.block_number),
                transaction=p.tx_hash,
            )
        )
    return Page(items=items, total=len(paid), limit=page.limit, offset=page.offset)


def approvals(chain: ChainClient, org: Organisation) -> list[ApprovalView]:
    """Your approval in every registered category, with when it expires."""
    start = contracts.deployment_block(chain, LOAN_FACTORY)
    desk = MerchantDesk(chain, from_block=start)
    views = []
    for category, name in sorted(desk.category_names().items(), key=lambda kv: kv[1]):
        record = desk.approval(org.chain_address, category)
        ever = record.approved_at != 0
        views.append(
            ApprovalView(
                category="0x" + category.hex(),
                category_name=name,
                approved=desk.is_approved(org.chain_address, category),
                approved_at=record.approved_at if ever else None,
                expires_at=record.expires_at if ever else None,
                revoked=record.revoked,
            )
        )
    return views


def _my_order(
    chain: ChainClient, org: Organisation, escrow: str, order_id: int
) -> tuple[LoanDesk, str, LoanState, PaymentOrder]:
    """An order of a factory escrow that pays you: 404 unknown, 403 another merchant's."""
    desk, contract, _ = factory_escrow(chain, escrow)
    if not 1 <= order_id <= desk.order_count(contract.address):
        raise NotFound(f"escrow {contract.address} has no order {order_id}")
    order = desk.order(contract.address, order_id)
    if not same_address(order.merchant, org.chain_address):
        raise Forbidden(f"order {order_id} pays another merchant, not you")
    return desk, str(contract.address), desk.state(contract.address), order


def _open(order: PaymentOrder) -> None:
    """409 unless the order is still waiting (pending or accepted)."""
    if order.status not in (OrderStatus.PENDING, OrderStatus.ACCEPTED):
        raise Conflict(f"order {order.order_id} is {order.status.name.lower()}, not pending")


def accept(
    chain: ChainClient, settings: ApiSettings, org: Organisation, escrow: str, order_id: int
) -> OrderAction:
    """Take an order before delivering (merchant-confirmed loans): the farmer can no longer
    cancel it until the delivery period has passed."""
    desk, contract, _ = factory_escrow(chain, escrow)
    mode = desk.state(contract.address).mode
    if mode is not ConfirmationMode.MERCHANT_CONFIRMS:  # before ownership, as confirm does
        raise Conflict(
            f"loan {contract.address} is {mode.name.lower()}: its orders are not taken by the "
            "merchant"
        )
    desk, address, _, order = _my_order(chain, org, escrow, order_id)
    if order.status is not OrderStatus.PENDING:
        raise Conflict(f"order {order_id} is {order.status.name.lower()}, not pending")
    receipt = desk.accept_order(address, order_id, org_sender(chain, settings, org))
    return _action(address, order, "accepted", receipt)


def decline(
    chain: ChainClient, settings: ApiSettings, org: Organisation, escrow: str, order_id: int
) -> OrderAction:
    """Refuse an order (pending or accepted): its amount goes back to the loan's budget."""
    desk, address, _, order = _my_order(chain, org, escrow, order_id)
    _open(order)
    receipt = desk.cancel_payment(address, order_id, org_sender(chain, settings, org))
    return _action(address, order, "cancelled", receipt)


def confirm_order(
    chain: ChainClient, settings: ApiSettings, org: Organisation, escrow: str, order_id: int
) -> OrderAction:
    """Confirm delivery of an order (pending or accepted): the escrow pays you."""
    done = confirm(chain, settings, org, escrow, order_id)
    return OrderAction(
        escrow=done.escrow, order_id=order_id, status="released", amount_fen=done.amount_fen,
        transaction=done.transaction,
    )  # fmt: skip


def _action(address: str, order: PaymentOrder, status: str, receipt: TxReceipt) -> OrderAction:
    """The result of an action on an order."""
    return OrderAction(
        escrow=Web3.to_checksum_address(address), order_id=order.order_id, status=status,
        amount_fen=order.amount_fen, transaction=receipt["transactionHash"].to_0x_hex(),
    )  # fmt: skip


def one_order(
    chain: ChainClient, session: Session, org: Organisation, escrow: str, order_id: int
) -> MerchantOrder:
    """One of your orders (404 unknown, 403 another merchant's), as the list shows it."""
    desk, address, _, order = _my_order(chain, org, escrow, order_id)
    start = contracts.deployment_block(chain, LOAN_FACTORY)
    names = MerchantDesk(chain, from_block=start).category_names()
    reader = chain.event_reader(address, desk.escrow(address).abi, start)
    placed = reader.events("PaymentOrdered", "orderId", [order_id])
    if not placed:  # paid at once (Immediate mode): never reserved, nothing to act on
        raise Conflict(f"order {order_id} was paid at once, it waits for nobody")
    return _order(_Reader(chain, session, desk), names, placed[0], order)


class InvoiceMatch(BaseModel):
    """What an invoice number of yours was used for: its orders and the payments it brought."""

    number: str
    invoice_hash: str
    orders: list[MerchantOrder]
    payments: list[ReceivedPayment]


def find_invoice(
    chain: ChainClient, session: Session, org: Organisation, number: str
) -> InvoiceMatch:
    """Match one of your invoice numbers to the orders and payments that name it (its hash is
    lending.loans.invoices.invoice_hash of your address and the number)."""
    key = invoice_hash(org.chain_address, number)
    everything = PageParams(limit=MAX_MATCHES, offset=0)
    found = orders(chain, session, org, OrderView.ALL, everything, invoice=key)
    paid = received(chain, session, org, everything, invoice=key)
    number = number.strip()
    return InvoiceMatch(
        number=number,
        invoice_hash="0x" + key.hex(),
        orders=[o.model_copy(update={"invoice_number": number}) for o in found.items],
        payments=[p.model_copy(update={"invoice_number": number}) for p in paid.items],
    )

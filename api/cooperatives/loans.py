"""A cooperative as its members' agent: their loans, what is due, and merchant payments.

Who signs an order. The escrow lets the farmer (the loan's `farmer` wallet) or the loan's
`agent` order and cancel payments (docs/disbursement.md). The service therefore signs:
1. as the cooperative, when the loan names the cooperative as its agent (the farmer signed
   terms naming it);
2. otherwise with the farmer's own wallet, only when that wallet is a farmer organisation this
   service keeps the key of and the cooperative registered as the member's wallet
   (`registry_farmer.wallet_org_id`): the member entrusted that key to the cooperative's service;
3. otherwise nothing is sent (409): the farmer orders from a wallet the service does not hold.
The contract decides the rest (approved merchant, budget, draw window, cancellation rules), and
its refusals come back as 409 with its reason.

Idempotency: an order's invoice hash (lending.loans.invoices) is the escrow's key; an invoice
already used is answered with its existing order and nothing is sent.

Order files (`order_rows`) are checked whole before anything is sent, each row by an eth_call
of its order and against the file's earlier rows, which that call cannot see; the orders of
the rows that passed then go back to back, one fee quote a signer, and their receipts are read
in JSON-RPC batches: at 120,000 farmers some 100,000 invoices (docs/demo.md).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from web3 import Web3
from web3.contract.contract import ContractFunction

from api.core.chain import factory_escrow, loan_desk, org_account
from api.core.errors import ROOTS, Conflict, Forbidden, Invalid, NotFound, detail_of, refusal
from api.core.ids import hex32, same_address
from api.core.models import Farmer, Organisation, Role
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from api.core.types import MAX_FEN, Int, Text
from chain.client import ChainClient
from chain.clock import chain_now
from chain.errors import ContractRevertError
from chain.sender import Sender
from lending.loans.contracts import MERCHANT_CATEGORIES
from lending.loans.disbursement import (
    LoanDesk,
    LoanState,
    OrderResult,
    OrderStatus,
    category_id,
)
from lending.loans.errors import translated
from lending.loans.history import LoanHistory, OrderLine, days_past_due, loan_history
from lending.loans.invoices import invoice_hash
from lending.loans.offers import OfferStore

MAX_ORDER_ROWS = 500
# What provisioning gives an organisation on development chains (api/admin/chain_roles.py).
DEV_GAS_WEI = 10 * 10**18
DEV_GAS_FLOOR_WEI = 10**18
CSV_COLUMNS = ("member", "merchant", "category", "amount_yuan", "invoice")
_NAMES = {category_id(name): name for name in MERCHANT_CATEGORIES}

# ------------------------------------------------------------------------------------ models


class OrderPublic(BaseModel):
    """One payment order of a loan."""

    order_id: int
    merchant: str
    merchant_name: str | None
    category: str
    amount_fen: int
    status: str
    invoice_hash: str
    created_at: int = PydField(description="block time of the order (unix seconds)")
    tx_hash: str


class MemberLoan(BaseModel):
    """A member's loan and what is due on it (fen; times unix seconds)."""

    escrow: str
    loan_id: int
    farmer_id: str
    member_number: int
    member_name: str | None
    status: str
    agent_is_you: bool
    principal_fen: int
    total_due_fen: int
    paid_fen: int
    reserved_fen: int
    available_fen: int
    repaid_fen: int
    amount_due_fen: int
    outstanding_fen: int
    draw_deadline: int
    due_date: int
    days_past_due: int


class BudgetPublic(BaseModel):
    """A category's budget: spent (paid), reserved (ordered, not paid yet) and left (fen)."""

    category: str
    budget_fen: int
    spent_fen: int
    reserved_fen: int
    left_fen: int


class MemberLoanDetail(MemberLoan):
    """A member's loan with its budgets, payment orders and next instalment."""

    budgets: list[BudgetPublic]
    orders: list[OrderPublic]
    next_due_date: str | None = PydField(description="ISO date of the next instalment")
    next_due_fen: int | None


class OrderCreate(BaseModel):
    """A payment to an approved merchant from a member's loan, for one invoice."""

    merchant: Text = PydField(
        max_length=120, description="the merchant: organisation id, exact name or 0x address"
    )
    category: Text = PydField(max_length=64, description="budget category, e.g. fertilizer")
    amount_fen: Int = PydField(gt=0, le=MAX_FEN)
    invoice: Text = PydField(max_length=64, description="the merchant's invoice number")


class OrderPlaced(BaseModel):
    """An order: placed now (`created`) or found already placed for the invoice."""

    created: bool
    escrow: str
    order: OrderPublic
    paid: bool = PydField(description="the money reached the merchant (Immediate mode)")
    transaction: str | None
    signed_as: str = PydField(description="agent (the cooperative) or farmer (its wallet)")


class OrderRow(BaseModel):
    """What became of one row of an order file."""

    row: int
    outcome: str = PydField(description="ordered, duplicate (invoice already ordered) or error")
    member: str
    invoice: str
    escrow: str | None = None
    order_id: int | None = None
    amount_fen: int | None = None
    reason: str = ""


class OrderBatch(BaseModel):
    """Outcomes of an order file, row by row (rows with errors send nothing)."""

    ordered: int
    duplicates: int
    errors: int
    rows: list[OrderRow]


# ------------------------------------------------------------------------------------ reads


def _members(session: Session, coop: Organisation) -> list[Farmer]:
    """The cooperative's members, in registration order."""
    query = select(Farmer).where(Farmer.cooperative_id == coop.id).order_by(col(Farmer.id))
    return list(session.exec(query).all())


def _merchant_names(session: Session) -> dict[str, str]:
    """Merchant organisations' names by lower-case chain address."""
    rows = session.exec(select(Organisation).where(Organisation.role == Role.MERCHANT)).all()
    return {r.chain_address.lower(): r.name for r in rows}


def member_loan(coop: Organisation, member: Farmer, state: LoanState, now: int) -> MemberLoan:
    """The API view of a member's escrow."""
    assert member.id is not None
    return MemberLoan(
        escrow=state.escrow,
        loan_id=state.loan_id,
        farmer_id=member.farmer_id,
        member_number=member.id,
        member_name=member.name,
        status=state.status.name.lower(),
        agent_is_you=state.agent is not None and same_address(state.agent, coop.chain_address),
        principal_fen=state.principal_fen,
        total_due_fen=state.total_due_fen,
        paid_fen=state.paid_fen,
        reserved_fen=state.reserved_fen,
        available_fen=state.available_fen,
        repaid_fen=state.repaid_fen,
        amount_due_fen=state.amount_due_fen,
        outstanding_fen=state.outstanding_fen,
        draw_deadline=state.draw_deadline,
        due_date=state.due_date,
        days_past_due=days_past_due(state, now),
    )


def list_member_loans(
    session: Session,
    chain: ChainClient,
    coop: Organisation,
    page: PageParams,
    closed_from: Engine | None = None,
) -> Page[MemberLoan]:
    """Members' open loans (one per farmer on chain), in member order; with `closed_from` (the
    service's database) also their closed loans issued through this service (repaid, defaulted,
    cancelled), newest first per member."""
    desk = loan_desk(chain)
    now = chain_now(chain.w3)
    members = _members(session, coop)
    issued: dict[str, list[str]] = {}
    if closed_from is not None:
        for offer in OfferStore(closed_from).for_farmers([m.farmer_id for m in members]):
            if offer.escrow:
                issued.setdefault(offer.farmer_id.lower(), []).insert(0, offer.escrow)
    pairs: list[tuple[Farmer, str]] = []
    for member in members:
        escrows = list(issued.get(member.farmer_id.lower(), []))
        active = desk.active_loan_of(bytes.fromhex(member.farmer_id[2:]))
        if active is not None and not any(same_address(active, e) for e in escrows):
            escrows.insert(0, active)
        pairs += [(member, e) for e in escrows]
    states = desk.states([e for _, e in pairs])
    found = [member_loan(coop, m, s, now) for (m, _), s in zip(pairs, states, strict=True)]
    items = found[page.offset : page.offset + page.limit]
    return Page(items=items, total=len(found), limit=page.limit, offset=page.offset)


def own_loan(
    session: Session, chain: ChainClient, coop: Organisation, escrow: str
) -> tuple[LoanDesk, LoanState, Farmer]:
    """A loan of one of the cooperative's members: 404 not a loan, 403 another's member."""
    desk, _, _ = factory_escrow(chain, escrow)
    state = desk.state(Web3.to_checksum_address(escrow))
    member = session.exec(select(Farmer).where(Farmer.farmer_id == hex32(state.farmer_id))).first()
    if member is None or member.cooperative_id != coop.id:
        raise Forbidden(f"loan {state.escrow} is not a loan of one of your members")
    return desk, state, member


def _order_public(line: OrderLine, names: dict[str, str]) -> OrderPublic:
    """The API view of one order of the loan's history."""
    return OrderPublic(
        order_id=line.order_id,
        merchant=line.merchant,
        merchant_name=names.get(line.merchant.lower()),
        category=line.category_name or hex32(line.category),
        amount_fen=line.amount_fen,
        status=line.status.name.lower(),
        invoice_hash="0x" + line.invoice_hash.hex(),
        created_at=line.created_at,
        tx_hash=line.tx_hash,
    )


def _history(desk: LoanDesk, escrow: str) -> LoanHistory:
    """The loan's history (lending.loans.history), categories by name."""
    return loan_history(desk, escrow, category_names=_NAMES)


def _orders(session: Session, desk: LoanDesk, escrow: str) -> list[OrderPublic]:
    """Every payment order of the escrow, oldest first."""
    names = _merchant_names(session)
    return [_order_public(line, names) for line in _history(desk, escrow).orders]


def loan_detail(
    session: Session, chain: ChainClient, coop: Organisation, escrow: str
) -> MemberLoanDetail:
    """A member's loan with its orders."""
    desk, state, member = own_loan(session, chain, coop, escrow)
    history = _history(desk, state.escrow)
    base = member_loan(coop, member, history.state, history.chain_time)
    names = _merchant_names(session)
    due = history.next_due
    return MemberLoanDetail(
        **base.model_dump(),
        orders=[_order_public(line, names) for line in history.orders],
        budgets=[
            BudgetPublic(
                category=b.category_name or hex32(b.category),
                budget_fen=b.budget_fen,
                spent_fen=b.spent_fen,
                reserved_fen=b.reserved_fen,
                left_fen=b.left_fen,
            )
            for b in history.budgets
        ],
        next_due_date=None if due is None else due.due,
        next_due_fen=None if due is None else due.amount_fen,
    )


# ------------------------------------------------------------------------------------ signing


@dataclass(frozen=True)
class _Signer:
    """Who signs for the cooperative on this loan."""

    org: Organisation
    role: str


def _signer(session: Session, coop: Organisation, member: Farmer, state: LoanState) -> _Signer:
    """The cooperative as agent, else the member's wallet kept here, else 409 (module doc)."""
    if state.agent is not None and same_address(state.agent, coop.chain_address):
        return _Signer(coop, "agent")
    wallet_org = session.get(Organisation, member.wallet_org_id) if member.wallet_org_id else None
    if wallet_org is not None and same_address(wallet_org.chain_address, state.farmer):
        return _Signer(wallet_org, "farmer")
    raise Conflict(
        f"loan {state.escrow} does not name your cooperative as its agent and the farmer's "
        "wallet is not kept by this service: the farmer orders from their own wallet"
    )


def _sender(chain: ChainClient, settings: ApiSettings, signer: _Signer) -> Sender:
    """A sender signing as the signer. On development chains a farmer's wallet gets gas from the
    platform's account as provisioning would give it; elsewhere a wallet without gas is 409."""
    account = org_account(settings, signer.org)
    balance = chain.w3.eth.get_balance(account.address)
    if balance < DEV_GAS_FLOOR_WEI and settings.environment != "production":
        platform = chain.sender(0)
        platform.transact({"to": account.address, "value": DEV_GAS_WEI}, gas=21_000)
    elif balance == 0:
        raise Conflict(
            f"the {signer.role}'s wallet {account.address} has no gas: the platform must fund it "
            "(POST /admin/organisations/{id}/provision)"
        )
    return chain.sender_for(account)


# ------------------------------------------------------------------------------------ orders


def find_merchant(session: Session, text: str) -> str:
    """A merchant's address from its organisation id, exact name or 0x address (422 unknown)."""
    text = text.strip()
    if Web3.is_address(text):
        return Web3.to_checksum_address(text)
    query = select(Organisation).where(Organisation.role == Role.MERCHANT)
    if text.isdigit() and len(text) < 19:
        query = query.where(Organisation.id == int(text))
    else:
        query = query.where(Organisation.name == text)
    found = session.exec(query).first()
    if found is None:
        raise Invalid(f"no merchant {text!r}: give its organisation id, exact name or address")
    return Web3.to_checksum_address(found.chain_address)


def _placed(session: Session, desk: LoanDesk, result: OrderResult, category: str,
            key: bytes) -> OrderPublic:  # fmt: skip
    """The order just placed, from its receipt's event (an Immediate order is paid and never
    stored by the escrow; the loan's whole history is a log scan the answer does not need)."""
    w3 = desk.client.w3
    block = w3.eth.get_transaction_receipt(result.tx_hash)["blockNumber"]  # type: ignore[arg-type]
    status = OrderStatus.RELEASED if result.paid else OrderStatus.PENDING
    return OrderPublic(
        order_id=result.order_id,
        merchant=result.merchant,
        merchant_name=_merchant_names(session).get(result.merchant.lower()),
        category=category,
        amount_fen=result.amount_fen,
        status=status.name.lower(),
        invoice_hash="0x" + key.hex(),
        created_at=int(w3.eth.get_block(block)["timestamp"]),
        tx_hash=result.tx_hash,
    )


def _existing(session: Session, desk: LoanDesk, escrow: str, key: bytes) -> OrderPublic:
    """The order already placed for an invoice."""
    for order in reversed(_orders(session, desk, escrow)):
        if order.invoice_hash == "0x" + key.hex():
            return order
    raise NotFound(f"invoice 0x{key.hex()} is used by loan {escrow} but no order names it")


def place_order(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    escrow: str,
    body: OrderCreate,
) -> OrderPlaced:
    """Order a payment from a member's loan; an invoice already ordered returns its order."""
    desk, state, member = own_loan(session, chain, coop, escrow)
    merchant = find_merchant(session, body.merchant)
    key = invoice_hash(merchant, body.invoice)
    signer = _signer(session, coop, member, state)
    if desk.invoice_used(state.escrow, key):
        existing = _existing(session, desk, state.escrow, key)
        paid = existing.status == OrderStatus.RELEASED.name.lower()
        return OrderPlaced(created=False, escrow=state.escrow, order=existing, paid=paid,
                           transaction=None, signed_as=signer.role)  # fmt: skip
    sender = _sender(chain, settings, signer)
    result = desk.order_payment(
        state.escrow, merchant, body.category.strip(), body.amount_fen, key, sender
    )
    order = _placed(session, desk, result, body.category.strip(), key)
    return OrderPlaced(created=True, escrow=state.escrow, order=order, paid=result.paid,
                       transaction=result.tx_hash, signed_as=signer.role)  # fmt: skip


def cancel_order(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    escrow: str,
    order_id: int,
) -> OrderPublic:
    """Cancel a reserved order (the contract's rules: before the merchant accepted it, or 14
    days after it did); 404 unknown order."""
    desk, state, member = own_loan(session, chain, coop, escrow)
    if not 1 <= order_id <= desk.order_count(state.escrow):
        raise NotFound(f"loan {state.escrow} has no order {order_id}")
    signer = _signer(session, coop, member, state)
    desk.cancel_payment(state.escrow, order_id, _sender(chain, settings, signer))
    return next(o for o in _orders(session, desk, state.escrow) if o.order_id == order_id)


# ------------------------------------------------------------------------------------ files


def _member_of(session: Session, coop: Organisation, text: str) -> Farmer:
    """A member by member number (as on the members page) or 0x pseudonym."""
    text = text.strip()
    query = select(Farmer).where(Farmer.cooperative_id == coop.id)
    if text.isdigit() and len(text) < 19:
        query = query.where(Farmer.id == int(text))
    elif text.lower().startswith("0x"):
        query = query.where(Farmer.farmer_id == text.lower())
    else:
        raise Invalid(f"member {text!r}: give the member number or the 0x farmer id")
    found = session.exec(query).first()
    if found is None:
        raise Invalid(f"member {text!r} is not a member of your cooperative")
    return found


def yuan_to_fen(text: str) -> int:
    """'1,234.50' yuan as 123450 fen (at most two decimals, more than zero)."""
    try:
        value = Decimal(text.strip().replace(",", "").replace("¥", ""))
    except InvalidOperation as exc:
        raise Invalid(f"amount {text!r} is not a number of yuan") from exc
    fen = value * 100
    if not value.is_finite() or fen != fen.to_integral_value() or not 0 < fen <= MAX_FEN:
        raise Invalid(f"amount {text!r}: yuan with at most two decimals, more than zero")
    return int(fen)


def _rows(content: bytes) -> list[dict[str, str]]:
    """The CSV's rows (UTF-8, with or without BOM, or GB18030)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = content.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise Invalid("the order file is not text (UTF-8 or GB18030)") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise Invalid(f"the order file lacks columns {', '.join(missing)} "
                      f"(columns: {', '.join(CSV_COLUMNS)})")  # fmt: skip
    rows = list(reader)
    if not rows or len(rows) > MAX_ORDER_ROWS:
        raise Invalid(f"an order file has 1 to {MAX_ORDER_ROWS} rows, this one {len(rows)}")
    return rows


@dataclass
class _Ready:
    """A row that passed every check: its order waits to be sent with the file's others."""

    row: OrderRow
    escrow: str
    sender: Sender
    call: ContractFunction


@dataclass
class _Candidate:
    """A row past the checks that need neither the file's earlier rows nor its eth_call."""

    ready: _Ready
    key: bytes
    category: str


class _FileChecks:
    """An order file's rows checked against the chain (their eth_calls in one batch) and each
    against the file's earlier rows (an invoice ordered twice, budgets the file's own orders
    use up), in the file's order."""

    def __init__(
        self, session: Session, chain: ChainClient, settings: ApiSettings, coop: Organisation
    ) -> None:
        self.session, self.chain, self.settings, self.coop = session, chain, settings, coop
        self.desk = loan_desk(chain)
        self.loans: dict[int, tuple[LoanState, _Signer]] = {}
        self.senders: dict[str, Sender] = {}
        self.invoices: dict[tuple[str, bytes], int] = {}
        self.planned: dict[tuple[str, bytes], int] = {}

    def check_all(self, raws: Sequence[tuple[int, dict[str, str]]]) -> list[OrderRow | _Ready]:
        """Each numbered row ready to send, or done: a duplicate, or refused with the reason."""
        firsts = [self.check(number, raw) for number, raw in raws]
        candidates = [f for f in firsts if isinstance(f, _Candidate)]
        calls = [c.ready.call for c in candidates]
        senders = [c.ready.sender.address for c in candidates]
        errors = iter(self.chain.check_calls(calls, senders))
        return [self._then(f, next(errors)) if isinstance(f, _Candidate) else f for f in firsts]

    def check(self, number: int, raw: dict[str, str]) -> OrderRow | _Candidate:
        """The row past the checks of its own, or done: a duplicate, or refused with the
        reason."""
        member, invoice = (raw.get("member") or "").strip(), (raw.get("invoice") or "").strip()
        row = OrderRow(row=number, outcome="error", member=member, invoice=invoice)
        try:
            return self._ready(row, raw)
        except ROOTS as exc:
            row.reason = refusal(exc)
        except ValueError as exc:  # pydantic: an empty or too long field
            row.reason = _first_error(exc)
        return row

    def _loan(self, member: Farmer) -> tuple[LoanState, _Signer]:
        """The member's open loan and who signs its orders (read once a file)."""
        assert member.id is not None
        if member.id not in self.loans:
            escrow = self.desk.active_loan_of(bytes.fromhex(member.farmer_id[2:]))
            if escrow is None:
                raise Conflict(f"member {member.id} has no open loan")
            state = self.desk.state(escrow)
            self.loans[member.id] = (state, _signer(self.session, self.coop, member, state))
        return self.loans[member.id]

    def _ready(self, row: OrderRow, raw: dict[str, str]) -> OrderRow | _Candidate:
        """The checks of one row on its own, in the order a clerk would fix them."""
        state, signer = self._loan(_member_of(self.session, self.coop, row.member))
        body = OrderCreate(
            merchant=raw.get("merchant") or "",
            category=raw.get("category") or "",
            amount_fen=yuan_to_fen(raw.get("amount_yuan") or ""),
            invoice=row.invoice,
        )
        merchant, category = find_merchant(self.session, body.merchant), body.category.strip()
        key, escrow = invoice_hash(merchant, body.invoice), state.escrow
        row.escrow, row.amount_fen = escrow, body.amount_fen
        if self.desk.invoice_used(escrow, key):
            row.outcome = "duplicate"
            row.order_id = _existing(self.session, self.desk, escrow, key).order_id
            return row
        sender = self._sender(signer)
        call = self.desk.order_call(escrow, merchant, category, body.amount_fen, key)
        return _Candidate(_Ready(row, escrow, sender, call), key, category)

    def _then(self, candidate: _Candidate, error: ContractRevertError | None) -> OrderRow | _Ready:
        """The row against the file's earlier rows, then its eth_call's verdict."""
        ready, key, category = candidate.ready, candidate.key, candidate.category
        row, escrow, amount = ready.row, ready.escrow, ready.row.amount_fen or 0
        slot = (escrow, category_id(category))
        try:
            if (escrow, key) in self.invoices:
                raise Invalid(f"row {self.invoices[escrow, key]} of this file orders the same "
                              "invoice")  # fmt: skip
            if slot in self.planned:  # the eth_call checks a first order on a budget
                self._check_budget(escrow, category, amount + self.planned[slot])
            if error is not None:
                raise translated(error)
        except ROOTS as exc:
            row.reason = refusal(exc)
            return row
        self.invoices[escrow, key] = row.row
        self.planned[slot] = self.planned.get(slot, 0) + amount
        return ready

    def _sender(self, signer: _Signer) -> Sender:
        """The signer's sender, its gas checked (and in development given) once a file."""
        address = signer.org.chain_address.lower()
        if address not in self.senders:
            self.senders[address] = _sender(self.chain, self.settings, signer)
        return self.senders[address]

    def _check_budget(self, escrow: str, category: str, total_fen: int) -> None:
        """409 when this row and the file's earlier rows on the budget exceed what it has left
        (the eth_call of the row alone cannot see the earlier rows, not sent yet)."""
        budget, committed = self.desk.budget(escrow, category)
        if total_fen > budget - committed:
            raise Conflict(
                f"the file's orders on this loan's {category} budget come to {total_fen} fen, "
                f"more than the {budget - committed} fen it has left"
            )


def _send_ready(desk: LoanDesk, ready: list[_Ready]) -> None:
    """Send the checked rows, each signer's back to back, then fill in each row's outcome."""
    by_sender: dict[str, list[_Ready]] = {}
    for item in ready:
        by_sender.setdefault(item.sender.address, []).append(item)
    for items in by_sender.values():
        sender = items[0].sender
        pending = desk.send_orders([item.call for item in items], sender)
        escrows = [item.escrow for item in items]
        for item, outcome in zip(items, desk.order_outcomes(escrows, pending, sender), strict=True):
            if isinstance(outcome, OrderResult):
                item.row.outcome, item.row.order_id = "ordered", outcome.order_id
            else:
                item.row.reason = f"failed on chain: {detail_of(outcome)}"


def _first_error(exc: ValueError) -> str:
    """A pydantic error's first complaint, short."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)


def order_rows(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    raws: Sequence[tuple[int, dict[str, str]]],
) -> OrderBatch:
    """Order numbered rows (columns CSV_COLUMNS): every row checked first (a refused one sends
    nothing), then the orders sent back to back and their receipts read together."""
    checks = _FileChecks(session, chain, settings, coop)
    outcomes = checks.check_all(raws)
    _send_ready(checks.desk, [o for o in outcomes if isinstance(o, _Ready)])
    rows = [o.row if isinstance(o, _Ready) else o for o in outcomes]
    return OrderBatch(
        ordered=sum(r.outcome == "ordered" for r in rows),
        duplicates=sum(r.outcome == "duplicate" for r in rows),
        errors=sum(r.outcome == "error" for r in rows),
        rows=rows,
    )


def order_file(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    content: bytes,
) -> OrderBatch:
    """Order every valid row of a CSV (columns CSV_COLUMNS); uploading it again orders nothing."""
    numbered = list(enumerate(_rows(content), start=2))  # row 1 is the header
    return order_rows(session, chain, settings, coop, numbered)


class PreviewRow(BaseModel):
    """A row of an order file as the clerk will send it (names, not ids), or its problem."""

    row: int
    member: str
    merchant: str
    category: str
    amount_fen: int | None
    invoice: str
    problem: str = ""


def preview_rows(session: Session, coop: Organisation, content: bytes) -> list[PreviewRow]:
    """The file's rows with member and merchant names; nothing is sent."""
    names = _merchant_names(session)
    previews = []
    for number, raw in enumerate(_rows(content), start=2):
        cell = {c: (raw.get(c) or "").strip() for c in CSV_COLUMNS}
        row = PreviewRow(
            row=number,
            member=cell["member"],
            merchant=cell["merchant"],
            category=cell["category"],
            amount_fen=None,
            invoice=cell["invoice"],
        )
        try:
            member = _member_of(session, coop, cell["member"])
            row.member = member.name or f"{member.farmer_id[:10]}…"
            address = find_merchant(session, cell["merchant"])
            row.merchant = names.get(address.lower(), address)
            row.amount_fen = yuan_to_fen(cell["amount_yuan"])
            if not cell["invoice"]:
                raise Invalid("the invoice number is missing")
        except Invalid as exc:
            row.problem = exc.detail
        previews.append(row)
    return previews

"""The one read model of a loan: terms, money, budgets, orders, repayments and schedule.

`loan_history(desk, escrow)` reads everything from the escrow itself: its views (terms,
accounting, status, budgets, orders) and its events (chain/events.py), so nothing is kept twice.
The repayment schedule lives off chain, in the stored offer (lending.loans.offers); it is shown
only when the stored disclosure hashes to the disclosure hash the farmer accepted on chain.
Labels (中文 / English) belong to the API; this module gives codes and integers (fen, unix time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from chain.clock import chain_now
from chain.events import Event, EventReader
from lending.loans.contracts import SALE_SETTLEMENT
from lending.loans.disbursement import (
    LoanDesk,
    LoanState,
    LoanStatus,
    OrderStatus,
    document_hash,
)
from lending.loans.models import LoanOfferRow
from lending.loans.offers import StoredOffer, _stored

SECONDS_PER_DAY = 86_400
OPEN_STATUSES = (LoanStatus.ISSUED, LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.DEFAULTED)


@dataclass(frozen=True)
class BudgetLine:
    """One category's budget: what was budgeted, spent (paid), reserved and left (fen)."""

    category: bytes
    category_name: str | None
    budget_fen: int
    spent_fen: int
    reserved_fen: int
    left_fen: int


@dataclass(frozen=True)
class OrderLine:
    """One payment order and what became of it (times are block times, unix)."""

    order_id: int
    merchant: str
    category: bytes
    category_name: str | None
    invoice_hash: bytes
    amount_fen: int
    status: OrderStatus
    created_at: int
    accepted_at: int | None
    confirmed_at: int | None
    cancelled_at: int | None
    tx_hash: str


@dataclass(frozen=True)
class RepaymentLine:
    """One repayment forwarded to the lender."""

    payer: str
    amount_fen: int
    outstanding_after_fen: int
    block_number: int
    paid_at: int
    via_settlement: bool
    tx_hash: str


@dataclass(frozen=True)
class ScheduleLine:
    """One installment of the accepted schedule (as disclosed, for the whole principal)."""

    number: int
    due: str  # ISO date
    principal_fen: int
    interest_fen: int
    fee_fen: int
    total_fen: int
    balance_fen: int


@dataclass(frozen=True)
class NextDue:
    """The next installment still unpaid, scaled pro rata to what was drawn."""

    number: int
    due: str
    amount_fen: int


@dataclass(frozen=True)
class LoanHistory:
    """Everything about one loan, read from its escrow (and its stored offer, if given)."""

    state: LoanState
    apr_bps: int
    disclosure_hash: bytes
    acceptance_digest: bytes
    grace_days: int
    default_days: int
    issued_at: int
    chain_time: int
    days_past_due: int
    budgets: tuple[BudgetLine, ...]
    orders: tuple[OrderLine, ...]
    repayments: tuple[RepaymentLine, ...]
    returned_fen: int
    schedule: tuple[ScheduleLine, ...]
    schedule_verified: bool
    next_due: NextDue | None
    offer_id: str | None

    @property
    def escrow(self) -> str:
        """The escrow's address."""
        return self.state.escrow

    @property
    def status(self) -> LoanStatus:
        """The stored status."""
        return self.state.status

    @property
    def is_open(self) -> bool:
        """Issued, Active, Overdue or Defaulted."""
        return self.state.status in OPEN_STATUSES

    @property
    def left_to_draw_fen(self) -> int:
        """Still orderable from the escrow."""
        return self.state.available_fen


class _Times:
    """Block timestamps, each block asked once."""

    def __init__(self, desk: LoanDesk) -> None:
        self._w3 = desk.client.w3
        self._cache: dict[int, int] = {}

    def __call__(self, block_number: int) -> int:
        if block_number not in self._cache:
            self._cache[block_number] = int(self._w3.eth.get_block(block_number)["timestamp"])
        return self._cache[block_number]


def _settlement_address(desk: LoanDesk) -> str | None:
    """The deployed SaleSettlement's address, if the client knows one."""
    try:
        return str(desk.client.contract(SALE_SETTLEMENT).address)
    except Exception:  # no deployment record (a bare loan system): repayments are all direct
        return None


def _tx(event: Event) -> str:
    """The event's transaction hash as 0x-hex."""
    return "0x" + event.tx_hash.hex()


def _budgets(
    desk: LoanDesk, escrow: str, events: Sequence[Event], orders: Sequence[OrderLine],
    names: Mapping[bytes, str],
) -> tuple[BudgetLine, ...]:  # fmt: skip
    """Budget lines from LoanBudgetSet events and the escrow's budgetOf view."""
    lines = []
    for e in events:
        category = bytes(e.args["category"])
        budget, committed = desk.budget(escrow, category)
        spent = sum(
            o.amount_fen
            for o in orders
            if o.category == category and o.status == OrderStatus.RELEASED
        )
        lines.append(
            BudgetLine(
                category,
                names.get(category),
                budget,
                spent,
                committed - spent,
                budget - committed,
            )
        )
    return tuple(lines)


def _orders(
    desk: LoanDesk, escrow: str, reader: EventReader, times: _Times, names: Mapping[bytes, str]
) -> tuple[OrderLine, ...]:
    """Every order: reserved ones (PaymentOrdered) and immediate payments (LoanDisbursed only)."""
    disbursed = {int(e.args["orderId"]): e for e in reader.events("LoanDisbursed")}
    accepted = {int(e.args["orderId"]): e for e in reader.events("PaymentAccepted")}
    cancelled = {int(e.args["orderId"]): e for e in reader.events("PaymentCancelled")}
    ordered = {int(e.args["orderId"]): e for e in reader.events("PaymentOrdered")}
    lines = []
    for order_id in sorted(set(ordered) | set(disbursed)):
        first = ordered.get(order_id) or disbursed[order_id]
        paid = disbursed.get(order_id)
        if order_id in ordered:
            status = desk.order(escrow, order_id).status
        else:
            status = OrderStatus.RELEASED
        category = bytes(first.args["category"])
        when = {k: times(e.block_number) if e else None for k, e in (
            ("accepted", accepted.get(order_id)), ("confirmed", paid),
            ("cancelled", cancelled.get(order_id)),
        )}  # fmt: skip
        lines.append(
            OrderLine(
                order_id=order_id,
                merchant=str(first.args["merchant"]),
                category=category,
                category_name=names.get(category),
                invoice_hash=bytes(first.args["invoiceHash"]),
                amount_fen=int(first.args["amount"]),
                status=status,
                created_at=times(first.block_number),
                accepted_at=when["accepted"],
                confirmed_at=when["confirmed"],
                cancelled_at=when["cancelled"],
                tx_hash=_tx(first),
            )
        )
    return tuple(lines)


def _repayments(
    reader: EventReader, times: _Times, settlement: str | None
) -> tuple[RepaymentLine, ...]:
    """LoanRepaymentReceived events, oldest first."""
    via = (settlement or "").lower()
    return tuple(
        RepaymentLine(
            payer=str(e.args["payer"]),
            amount_fen=int(e.args["amount"]),
            outstanding_after_fen=int(e.args["outstanding"]),
            block_number=e.block_number,
            paid_at=times(e.block_number),
            via_settlement=bool(via) and str(e.args["payer"]).lower() == via,
            tx_hash=_tx(e),
        )
        for e in reader.events("LoanRepaymentReceived")
    )


def _schedule(offer: StoredOffer | None, disclosure_hash: bytes) -> tuple[ScheduleLine, ...]:
    """The offer's installments if its disclosure is the one accepted on chain, else none."""
    if offer is None or document_hash(offer.disclosure) != disclosure_hash:
        return ()
    return tuple(
        ScheduleLine(
            i.number,
            i.due.isoformat(),
            i.principal_fen,
            i.interest_fen,
            i.fee_fen,
            i.total_fen,
            i.balance_fen,
        )
        for i in offer.disclosure.installments
    )


def next_due(
    schedule: Sequence[ScheduleLine], total_due_fen: int, amount_due_fen: int, repaid_fen: int
) -> NextDue | None:
    """The first installment not yet covered by repayments, each installment scaled by
    amount_due / total_due (the debt is pro rata on what was drawn), in whole fen."""
    if not schedule or total_due_fen == 0 or amount_due_fen <= repaid_fen:
        return None
    cumulative = 0
    for line in schedule:
        cumulative += line.total_fen
        owed_by_then = min(cumulative * amount_due_fen // total_due_fen, amount_due_fen)
        if owed_by_then > repaid_fen:
            return NextDue(line.number, line.due, owed_by_then - repaid_fen)
    return NextDue(schedule[-1].number, schedule[-1].due, amount_due_fen - repaid_fen)


def days_past_due(state: LoanState, now: int) -> int:
    """Whole days since the due date while something is outstanding (0 otherwise)."""
    if state.outstanding_fen == 0 or now <= state.due_date or state.status not in OPEN_STATUSES:
        return 0
    return (now - state.due_date) // SECONDS_PER_DAY


def offer_for_escrow(engine: Engine, escrow: str) -> StoredOffer | None:
    """The stored offer that became the loan at `escrow`, if this service made it."""
    stmt = select(LoanOfferRow).where(col(LoanOfferRow.escrow) == escrow)
    with Session(engine) as session:
        row = session.exec(stmt).first()
        if row is None:
            lowered = select(LoanOfferRow).where(col(LoanOfferRow.escrow) == escrow.lower())
            row = session.exec(lowered).first()
        return None if row is None else _stored(row)


def loan_history(
    desk: LoanDesk,
    escrow: str,
    *,
    offer: StoredOffer | None = None,
    category_names: Mapping[bytes, str] | None = None,
    settlement: str | None = None,
    from_block: int = 0,
) -> LoanHistory:
    """The loan at `escrow`, read from its views and events (`offer`: its stored offer, for the
    schedule; `settlement`: the SaleSettlement address, default the deployed one)."""
    contract = desk.escrow(escrow)
    state = desk.state(contract.address)
    digest, disclosure_hash, apr = desk.acceptance_of(contract.address)
    raw_terms = contract.functions.terms().call()
    reader = desk.client.event_reader(contract.address, contract.abi, from_block)
    times = _Times(desk)
    names = dict(category_names or {})
    orders = _orders(desk, contract.address, reader, times, names)
    budget_events = reader.events("LoanBudgetSet")
    recorded = reader.events("LoanTermsRecorded")
    schedule = _schedule(offer, disclosure_hash)
    now = chain_now(desk.client.w3)
    returned = sum(int(e.args["amount"]) for e in reader.events("LoanUnspentReturned"))
    return LoanHistory(
        state=state,
        apr_bps=apr,
        disclosure_hash=disclosure_hash,
        acceptance_digest=digest,
        grace_days=int(raw_terms[9]),
        default_days=int(raw_terms[10]),
        issued_at=times(recorded[0].block_number) if recorded else 0,
        chain_time=now,
        days_past_due=days_past_due(state, now),
        budgets=_budgets(desk, contract.address, budget_events, orders, names),
        orders=orders,
        repayments=_repayments(
            reader, times, settlement if settlement is not None else _settlement_address(desk)
        ),
        returned_fen=returned,
        schedule=schedule,
        schedule_verified=bool(schedule),
        next_due=next_due(schedule, state.total_due_fen, state.amount_due_fen, state.repaid_fen),
        offer_id=None if offer is None else offer.offer_id,
    )

"""A lender's portfolio, its servicing actions and its disbursement report, read from the chain.

The loans are the factory's LoanIssued events that name the calling lender; each row is the
escrow's own state (nothing is copied into the database). Servicing actions are the escrow's
functions sent with the lender's key after the loan's ownership is checked; a revert is a 409
with the contract's reason (api/core/errors.py), an unreachable node 503.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from web3.contract.contract import ContractFunction

from api.core.chain import factory_escrow, loan_desk, org_sender
from api.core.errors import Forbidden
from api.core.ids import same_address
from api.core.models import Farmer, Organisation
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from chain.client import ChainClient
from chain.clock import chain_now
from lending.loans.contracts import LOAN_ESCROW
from lending.loans.disbursement import LoanDesk, LoanState, LoanStatus
from lending.loans.errors import translate_reverts
from lending.loans.gas import RETURN_UNSPENT_GAS, STATUS_GAS
from lending.loans.history import days_past_due
from lending.loans.merchants import MerchantDesk

OPEN = {LoanStatus.ISSUED, LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.DEFAULTED}


class StatusFilter(StrEnum):
    """Which loans the portfolio lists."""

    ALL = "all"
    OPEN = "open"
    ISSUED = "issued"
    ACTIVE = "active"
    OVERDUE = "overdue"
    DEFAULTED = "defaulted"
    REPAID = "repaid"
    WRITTEN_OFF = "written_off"
    CANCELLED = "cancelled"


class PortfolioLoan(BaseModel):
    """One loan of the portfolio (fen; times unix)."""

    escrow: str
    loan_id: int
    status: str
    farmer_id: str
    farmer_name: str | None
    principal_fen: int
    total_due_fen: int
    drawn_fen: int
    reserved_fen: int
    available_fen: int
    returned_fen: int
    repaid_fen: int
    amount_due_fen: int
    outstanding_fen: int
    draw_deadline: int
    due_date: int
    days_past_due: int


class Portfolio(Page[PortfolioLoan]):
    """A page of your loans, the chain time it was read at and totals over the filter."""

    chain_time: int
    principal_fen: int
    drawn_fen: int
    outstanding_fen: int


class DisbursementLine(BaseModel):
    """Loan money paid to one merchant in one category."""

    category: str
    merchant: str
    merchant_name: str | None
    payments: int
    amount_fen: int


class DisbursementReport(BaseModel):
    """Everything your loans paid out, by category and merchant, with totals."""

    lines: list[DisbursementLine]
    by_category_fen: dict[str, int]
    total_fen: int


# --------------------------------------------------------------------------- reading


def lender_escrows(desk: LoanDesk, lender: str) -> list[str]:
    """The escrows the factory issued for `lender`, in loan order."""
    reader = desk.client.event_reader(desk.factory.address, desk.factory.abi)
    issued = [e for e in reader.events("LoanIssued") if same_address(e.args["lender"], lender)]
    return [e.args["escrow"] for e in sorted(issued, key=lambda e: e.args["loanId"])]


def farmer_names(engine: Engine, farmer_ids: list[str]) -> dict[str, str]:
    """Registry names of the farmers (the lender's borrowers), where not erased."""
    if not farmer_ids:
        return {}
    with Session(engine) as session:
        rows = session.exec(select(Farmer).where(col(Farmer.farmer_id).in_(farmer_ids))).all()
    return {r.farmer_id: r.name for r in rows if r.name}


def org_names(engine: Engine, addresses: set[str]) -> dict[str, str]:
    """Organisation names by lower-case chain address."""
    wanted = {a.lower() for a in addresses}
    with Session(engine) as session:
        rows = session.exec(select(Organisation)).all()
    return {o.chain_address.lower(): o.name for o in rows if o.chain_address.lower() in wanted}


def loan_row(state: LoanState, now: int, names: dict[str, str]) -> PortfolioLoan:
    """A portfolio row from an escrow's state."""
    fid = "0x" + state.farmer_id.hex()
    return PortfolioLoan(
        escrow=state.escrow,
        loan_id=state.loan_id,
        status=state.status.name.lower(),
        farmer_id=fid,
        farmer_name=names.get(fid),
        principal_fen=state.principal_fen,
        total_due_fen=state.total_due_fen,
        drawn_fen=state.paid_fen,
        reserved_fen=state.reserved_fen,
        available_fen=state.available_fen,
        returned_fen=state.returned_fen,
        repaid_fen=state.repaid_fen,
        amount_due_fen=state.amount_due_fen,
        outstanding_fen=state.outstanding_fen,
        draw_deadline=state.draw_deadline,
        due_date=state.due_date,
        days_past_due=days_past_due(state, now),
    )


def _matches(status: LoanStatus, wanted: StatusFilter) -> bool:
    """Whether a loan in `status` passes the filter."""
    if wanted is StatusFilter.ALL:
        return True
    if wanted is StatusFilter.OPEN:
        return status in OPEN
    return status.name.lower() == wanted.value


def all_loans(
    engine: Engine, chain: ChainClient, org: Organisation, wanted: StatusFilter
) -> tuple[list[PortfolioLoan], int]:
    """Every loan of yours passing the filter, newest first, and the chain time read at."""
    now = chain_now(chain.w3)
    return rows_passing(engine, own_states(chain, org), wanted, now), now


def rows_passing(
    engine: Engine, states: list[LoanState], wanted: StatusFilter, now: int
) -> list[PortfolioLoan]:
    """Portfolio rows of the loans in `states` that pass the filter, newest first."""
    return loan_rows(engine, [s for s in states if _matches(s.status, wanted)], now)


def own_states(chain: ChainClient, org: Organisation) -> list[LoanState]:
    """The state of every loan of yours, in loan order."""
    desk = loan_desk(chain)
    return desk.states(lender_escrows(desk, org.chain_address))


def loan_rows(engine: Engine, states: list[LoanState], now: int) -> list[PortfolioLoan]:
    """Portfolio rows of `states` with their farmers' names, newest first."""
    names = farmer_names(engine, ["0x" + s.farmer_id.hex() for s in states])
    return [loan_row(s, now, names) for s in reversed(states)]


def portfolio(
    engine: Engine, chain: ChainClient, org: Organisation, wanted: StatusFilter, page: PageParams
) -> Portfolio:
    """A page of your loans with totals over every loan passing the filter."""
    rows, now = all_loans(engine, chain, org, wanted)
    return Portfolio(
        items=rows[page.offset : page.offset + page.limit],
        total=len(rows),
        limit=page.limit,
        offset=page.offset,
        chain_time=now,
        principal_fen=sum(r.principal_fen for r in rows),
        drawn_fen=sum(r.drawn_fen for r in rows),
        outstanding_fen=sum(r.outstanding_fen for r in rows),
    )


CSV_FIELDS = list(PortfolioLoan.model_fields)


def portfolio_csv(rows: list[PortfolioLoan]) -> str:
    """The loans as CSV (one header row; amounts in fen)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.model_dump().items()})
    return out.getvalue()


def disbursements(engine: Engine, chain: ChainClient, org: Organisation) -> DisbursementReport:
    """What your loans paid to merchants, by category and merchant (LoanDisbursed events)."""
    desk = loan_desk(chain)
    escrows = lender_escrows(desk, org.chain_address)
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    if escrows:
        abi = chain.contract(LOAN_ESCROW, escrows[0]).abi
        categories = MerchantDesk(chain, desk.registry_address).category_names()
        for e in chain.event_reader(escrows, abi).events("LoanDisbursed"):
            cat = categories.get(e.args["category"], "0x" + e.args["category"].hex())
            line = totals[(cat, e.args["merchant"])]
            line[0] += 1
            line[1] += int(e.args["amount"])
    names = org_names(engine, {m for _, m in totals})
    lines = [
        DisbursementLine(category=c, merchant=m, merchant_name=names.get(m.lower()),
                         payments=n, amount_fen=a)
        for (c, m), (n, a) in sorted(totals.items())
    ]  # fmt: skip
    by_category: dict[str, int] = defaultdict(int)
    for line in lines:
        by_category[line.category] += line.amount_fen
    return DisbursementReport(
        lines=lines, by_category_fen=dict(by_category), total_fen=sum(by_category.values())
    )


# --------------------------------------------------------------------------- servicing


class Action(StrEnum):
    """What a lender can do to a loan."""

    REFRESH = "refresh"
    RETURN_UNSPENT = "return-unspent"
    DEFAULT = "default"
    WRITE_OFF = "write-off"


ACTION_FUNCTIONS = {
    Action.REFRESH: "refreshStatus",
    Action.RETURN_UNSPENT: "returnUnspent",
    Action.DEFAULT: "declareDefault",
    Action.WRITE_OFF: "writeOff",
}
"""The LoanEscrow function each action sends."""


def action_call(desk: LoanDesk, action: Action, escrow: str) -> ContractFunction:
    """The escrow call that `action` sends."""
    return desk.escrow(escrow).functions[ACTION_FUNCTIONS[action]]()


def action_gas(action: Action) -> int:
    """The measured gas bound of `action`'s call."""
    return RETURN_UNSPENT_GAS if action is Action.RETURN_UNSPENT else STATUS_GAS


def own_state(chain: ChainClient, org: Organisation, escrow: str) -> tuple[LoanDesk, LoanState]:
    """An escrow of yours and its state: 404 if the factory never issued it, 403 if not yours."""
    desk, contract, _ = factory_escrow(chain, escrow)
    state = desk.state(contract.address)
    if not same_address(state.lender, org.chain_address):
        raise Forbidden("this loan was issued by another lender")
    return desk, state


def service_loan(
    chain: ChainClient, settings: ApiSettings, org: Organisation, escrow: str, action: Action
) -> LoanState:
    """Send `action` to one of your loans as you; the state after."""
    desk, state = own_state(chain, org, escrow)
    call = action_call(desk, action, state.escrow)
    with translate_reverts():  # checked by eth_call first: a refusal sends nothing
        org_sender(chain, settings, org).transact(call, gas=action_gas(action), preflight=True)
    return desk.state(state.escrow)

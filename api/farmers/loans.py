"""A farmer's loans: why the offer and its limit, an APR calculator, accept (signed with the
farmer organisation's key) or decline, the loan itself, repayment, and who read the profile.

Every loan read goes through lending.loans.history (the one loan read model); nothing here
keeps a copy of what the chain holds. Offers come from the offer store, decisions and the
profile access log from the credit store.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from web3 import Web3

from api.core.chain import factory_escrow, loan_desk, org_account, org_sender
from api.core.errors import Conflict, Forbidden, Invalid, NotFound
from api.core.ids import same_address
from api.core.models import Farmer, OfferDecline, Organisation
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from api.core.types import Int
from api.farmers.service import OfferForFarmer, _my_offer, _offer_view, my_farmer
from chain.client import ChainClient
from lending.credit.decision import DecisionRecord
from lending.credit.store import CreditStore
from lending.errors import LendingError
from lending.loans.disbursement import LoanDesk, LoanStatus, OrderStatus
from lending.loans.errors import LoanTermsError
from lending.loans.history import LoanHistory, loan_history, offer_for_escrow
from lending.loans.merchants import MerchantDesk
from lending.loans.offers import OfferStateError, OfferStore, StoredOffer
from lending.pricing.disclosure import disclose
from lending.pricing.schedule import Installment, ScheduleTerms

MAX_TERM_MONTHS = 60
MAX_FEN = 2**88 - 1
REPAY_GAS = 250_000  # approve (~50k) + repay (~100k), with a margin
BURN_GAS = 80_000


# ----------------------------------------------------------------------------- models


class ReasonOut(BaseModel):
    """One scorecard reason: which feature cost how many points."""

    code: str
    feature: str
    value: int
    points: int
    max_points: int
    points_lost: int
    text_zh: str
    text_en: str
    improve_zh: str
    improve_en: str


class NoteOut(BaseModel):
    """A policy note, in Chinese and English."""

    code: str
    text_zh: str
    text_en: str


class LimitExplained(BaseModel):
    """How the decision behind an offer came about and how its limit was computed."""

    decided_at: datetime
    score: int
    band: str
    outcome: str
    base_limit_fen: int
    limit_fen: int
    offered_rate_bps: int | None
    term_months: int
    upfront_fee_bps: int
    reasons: list[ReasonOut]
    notes: list[NoteOut]


class OfferDetail(OfferForFarmer):
    """An offer, whether you declined it, who offers it, and why (the decision behind it)."""

    lender_name: str | None
    agent_name: str | None
    declined: bool
    declined_at: datetime | None
    explanation: LimitExplained | None


class Quote(BaseModel):
    """What a loan of `amount_fen` over `term_months` would cost at the offer's rate."""

    amount_fen: int
    term_months: int
    annual_rate_bps: int
    apr_pct: str
    upfront_fee_fen: int
    amount_financed_fen: int
    finance_charge_fen: int
    total_repayment_fen: int
    maturity: date
    schedule: list[Installment]


class BudgetOut(BaseModel):
    """One category's budget and what is spent, reserved and left (fen)."""

    category: str
    category_name: str | None
    budget_fen: int
    spent_fen: int
    reserved_fen: int
    left_fen: int


class OrderOut(BaseModel):
    """One payment from the loan to a merchant."""

    order_id: int
    merchant: str
    merchant_name: str | None
    category: str
    category_name: str | None
    invoice_hash: str
    amount_fen: int
    status: str
    created_at: int
    confirmed_at: int | None
    cancelled_at: int | None
    transaction: str


class RepaymentOut(BaseModel):
    """One repayment forwarded to the lender."""

    payer: str
    amount_fen: int
    outstanding_after_fen: int
    paid_at: int
    via_settlement: bool
    transaction: str


class ScheduleOut(BaseModel):
    """One installment of the accepted schedule (for the whole principal)."""

    number: int
    due: str
    total_fen: int
    principal_fen: int
    interest_fen: int
    fee_fen: int


class NextDueOut(BaseModel):
    """The next amount due, pro rata on what was drawn."""

    number: int
    due: str
    amount_fen: int


class LoanSummary(BaseModel):
    """A loan in a list."""

    escrow: str
    loan_id: int
    status: str
    lender: str
    lender_name: str | None
    principal_fen: int
    drawn_fen: int
    repaid_fen: int
    outstanding_fen: int
    due_date: int


class LoanOut(LoanSummary):
    """Your loan: terms, budgets, payments, schedule and next due, repayments, what is left."""

    total_due_fen: int
    amount_due_fen: int
    reserved_fen: int
    available_fen: int
    returned_fen: int
    apr_bps: int
    draw_deadline: int
    days_past_due: int
    issued_at: int
    chain_time: int
    wallet_balance_fen: int
    disclosure_hash: str
    budgets: list[BudgetOut]
    orders: list[OrderOut]
    repayments: list[RepaymentOut]
    schedule: list[ScheduleOut]
    next_due: NextDueOut | None
    offer_id: str | None


class RepayIn(BaseModel):
    """Repay this many fen from your wallet."""

    amount_fen: Int = PydField(ge=1, le=MAX_FEN)


class RepayOut(BaseModel):
    """A repayment made."""

    escrow: str
    amount_fen: int
    outstanding_fen: int
    wallet_balance_fen: int


class ProfileRead(BaseModel):
    """Someone asked to read your profile: who, when, why and whether it was allowed."""

    lender: str
    lender_name: str | None
    purpose: str
    outcome: str
    at: datetime
    decision_id: str | None


# ----------------------------------------------------------------------------- offers


def fund_gas(chain: ChainClient, address: str, gas: int) -> None:
    """The platform account pays the fee of the farmer's own transaction (farmers hold no
    gas money): it sends what `gas` costs at twice the current price, less what is there."""
    w3 = chain.w3
    needed = gas * 2 * int(w3.eth.gas_price)
    have = int(w3.eth.get_balance(w3.to_checksum_address(address)))
    if have < needed:
        to = w3.to_checksum_address(address)
        chain.sender(0).transact({"to": to, "value": needed - have}, gas=21_000)


def _names(session: Session, addresses: set[str]) -> dict[str, str]:
    """Organisation names by lower-case chain address."""
    valid = [a for a in addresses if Web3.is_address(a)]
    spellings = {*valid, *(a.lower() for a in valid), *(Web3.to_checksum_address(a) for a in valid)}
    if not spellings:
        return {}
    rows = session.exec(
        select(Organisation).where(col(Organisation.chain_address).in_(spellings))
    ).all()
    return {o.chain_address.lower(): o.name for o in rows}


def _decision(engine: Engine, offer: StoredOffer) -> DecisionRecord | None:
    """The decision the offer was made from, if the credit store has it."""
    try:
        return CreditStore(engine).get_decision(offer.decision_id)
    except LendingError:
        return None


def _explained(record: DecisionRecord | None) -> LimitExplained | None:
    """The decision's score, reasons, notes and limit."""
    if record is None:
        return None
    d = record.decision
    product = d.policy.product
    return LimitExplained(
        decided_at=record.decided_at,
        score=d.score,
        band=str(d.band),
        outcome=d.outcome.value,
        base_limit_fen=d.base_limit_fen,
        limit_fen=d.limit_fen,
        offered_rate_bps=d.pricing.offered_rate_bps if d.pricing else None,
        term_months=product.term_months,
        upfront_fee_bps=product.upfront_fee_bps,
        reasons=[ReasonOut(**r.model_dump(include=set(ReasonOut.model_fields))) for r in d.reasons],
        notes=[NoteOut(code=n.code, text_zh=n.text_zh, text_en=n.text_en) for n in d.notes],
    )


def _decline_of(session: Session, offer_id: str) -> OfferDecline | None:
    """The farmer's refusal of the offer, if any."""
    return session.get(OfferDecline, offer_id)


def offer_status(session: Session, offer: StoredOffer) -> str:
    """offered, accepted, issued or declined."""
    if offer.escrow is None and _decline_of(session, offer.offer_id) is not None:
        return "declined"
    return offer.status


def offer_detail(session: Session, engine: Engine, org: Organisation, offer_id: str) -> OfferDetail:
    """An offer made to you, with the decision behind it."""
    offer = _my_offer(session, engine, org, offer_id)
    decline = _decline_of(session, offer.offer_id)
    view = _offer_view(offer).model_dump()
    view["status"] = offer_status(session, offer)
    agent = offer.terms.agent
    names = _names(session, {offer.lender, *([agent] if agent else [])})
    return OfferDetail(
        **view,
        lender_name=names.get(offer.lender.lower()),
        agent_name=names.get(agent.lower()) if agent else None,
        declined=decline is not None and offer.escrow is None,
        declined_at=decline.declined_at if decline else None,
        explanation=_explained(_decision(engine, offer)),
    )


def my_offer_details(
    session: Session, engine: Engine, org: Organisation, page: PageParams
) -> Page[OfferDetail]:
    """The offers made to you, newest first, with their status and lender's name."""
    row = my_farmer(session, org)
    offers = list(reversed(OfferStore(engine).for_farmer(row.farmer_id)))
    window = offers[page.offset : page.offset + page.limit]
    items = [offer_detail(session, engine, org, o.offer_id) for o in window]
    return Page(items=items, total=len(offers), limit=page.limit, offset=page.offset)


def quote(
    session: Session, engine: Engine, org: Organisation, offer_id: str, amount: int, months: int
) -> Quote:
    """APR, total cost and schedule of another amount or term at the offer's rate (integer fen,
    Decimal rates: lending.pricing)."""
    offer = _my_offer(session, engine, org, offer_id)
    record = _decision(engine, offer)
    if record is None or record.decision.pricing is None:
        raise NotFound("the decision behind this offer is not available to price it again")
    d = record.decision
    rate = d.pricing.offered_rate_bps if d.pricing else None
    if rate is None:
        raise Conflict("this offer has no offered rate")
    if amount > d.limit_fen:
        raise Invalid(f"the amount {amount} fen is above your limit of {d.limit_fen} fen")
    product = d.policy.product
    try:
        terms = ScheduleTerms(
            principal_fen=amount,
            annual_rate=rate,
            term_months=months,
            kind=product.kind,
            start=offer.disclosure.start,
            upfront_fee_fen=amount * product.upfront_fee_bps // 10_000,
            grace_months=min(product.grace_months, months - 1),
            penalty_rate_bps=product.penalty_rate_bps,
        )
        disclosure = disclose(terms, d.policy.cap_policy())
    except (LendingError, ValueError) as exc:
        raise Invalid(f"these terms cannot be priced: {exc}") from exc
    return Quote(
        amount_fen=amount,
        term_months=months,
        annual_rate_bps=rate,
        apr_pct=str(disclosure.apr_regz_pct),
        upfront_fee_fen=disclosure.upfront_fee_fen,
        amount_financed_fen=disclosure.amount_financed_fen,
        finance_charge_fen=disclosure.finance_charge_fen,
        total_repayment_fen=disclosure.total_repayment_fen,
        maturity=disclosure.maturity,
        schedule=list(disclosure.installments),
    )


def accept_with_my_key(
    session: Session,
    engine: Engine,
    chain: ChainClient,
    settings: ApiSettings,
    org: Organisation,
    offer_id: str,
) -> OfferDetail:
    """Sign the offer's terms (EIP-712) with your organisation's key and keep the signature for
    the lender to relay (you pay no gas)."""
    offer = _my_offer(session, engine, org, offer_id)
    if offer.escrow is not None:
        raise Conflict(f"this offer is already loan {offer.escrow}")
    if _decline_of(session, offer.offer_id) is not None:
        raise Conflict("you declined this offer: ask the lender for a new one")
    desk = loan_desk(chain)
    account = org_account(settings, org)
    if not same_address(account.address, offer.terms.farmer):
        raise Conflict(
            f"the offer names wallet {offer.terms.farmer}, not your address {account.address}: "
            "ask your cooperative to set your wallet"
        )
    acceptance = desk.sign_acceptance(offer.terms, account)
    try:
        desk.check_acceptance(offer.terms, acceptance)
        OfferStore(engine).record_acceptance(offer.offer_id, acceptance)
    except (LoanTermsError, OfferStateError) as exc:
        raise Conflict(str(exc)) from exc
    return offer_detail(session, engine, org, offer_id)


def decline(
    session: Session,
    engine: Engine,
    chain: ChainClient,
    settings: ApiSettings,
    org: Organisation,
    offer_id: str,
) -> OfferDetail:
    """Refuse the offer; a signature you already gave is voided on chain (nonce burnt)."""
    offer = _my_offer(session, engine, org, offer_id)
    if offer.escrow is not None:
        raise Conflict(f"this offer is already loan {offer.escrow}: it cannot be declined")
    if _decline_of(session, offer.offer_id) is None:
        if offer.acceptance is not None:
            desk = loan_desk(chain)
            if desk.acceptance_nonce(offer.terms.farmer_id) == offer.acceptance.nonce:
                fund_gas(chain, org.chain_address, BURN_GAS)
                desk.burn_acceptance_nonce(offer.terms.farmer_id, org_sender(chain, settings, org))
        session.add(OfferDecline(offer_id=offer.offer_id, farmer_id=offer.farmer_id.lower()))
        session.commit()
    return offer_detail(session, engine, org, offer_id)


# ----------------------------------------------------------------------------- loans


def _my_escrows(session: Session, engine: Engine, desk: LoanDesk, row: Farmer) -> list[str]:
    """Your loans: those issued from offers to you, and the factory's open loan of yours."""
    found = [o.escrow for o in OfferStore(engine).for_farmer(row.farmer_id) if o.escrow]
    active = desk.active_loan_of(bytes.fromhex(row.farmer_id[2:]))
    if active and not any(same_address(active, e) for e in found):
        found.append(active)
    return list(reversed(found))


def _summary(history: LoanHistory, names: dict[str, str]) -> dict[str, Any]:
    """The fields of a LoanSummary."""
    s = history.state
    return {
        "escrow": s.escrow,
        "loan_id": s.loan_id,
        "status": s.status.name.lower(),
        "lender": s.lender,
        "lender_name": names.get(s.lender.lower()),
        "principal_fen": s.principal_fen,
        "drawn_fen": s.paid_fen,
        "repaid_fen": s.repaid_fen,
        "outstanding_fen": s.outstanding_fen,
        "due_date": s.due_date,
    }


def my_loans(
    session: Session, engine: Engine, chain: ChainClient, org: Organisation, page: PageParams
) -> Page[LoanSummary]:
    """Your loans, newest first."""
    row = my_farmer(session, org)
    desk = loan_desk(chain)
    escrows = _my_escrows(session, engine, desk, row)
    window = escrows[page.offset : page.offset + page.limit]
    histories = [loan_history(desk, e) for e in window]
    names = _names(session, {h.state.lender for h in histories})
    items = [LoanSummary(**_summary(h, names)) for h in histories]
    return Page(items=items, total=len(escrows), limit=page.limit, offset=page.offset)


def _mine(session: Session, chain: ChainClient, org: Organisation, escrow: str) -> LoanDesk:
    """The desk, if `escrow` is a loan of the factory (404) made to you (403)."""
    row = my_farmer(session, org)
    desk, contract, _ = factory_escrow(chain, escrow)
    farmer_id = bytes(contract.functions.terms().call()[1])
    if "0x" + farmer_id.hex() != row.farmer_id.lower():
        raise Forbidden("this loan was made to another farmer")
    return desk


def _categories(desk: LoanDesk) -> dict[bytes, str]:
    """Category names of the factory's merchant registry."""
    return MerchantDesk(desk.client, desk.registry_address).category_names()


def _loan_out(session: Session, engine: Engine, desk: LoanDesk, escrow: str) -> LoanOut:
    """The full view of one loan."""
    offer = offer_for_escrow(engine, escrow)
    h = loan_history(desk, escrow, offer=offer, category_names=_categories(desk))
    s = h.state
    names = _names(session, {s.lender, *(o.merchant for o in h.orders)})
    return LoanOut(
        **_summary(h, names),
        total_due_fen=s.total_due_fen,
        amount_due_fen=s.amount_due_fen,
        reserved_fen=s.reserved_fen,
        available_fen=s.available_fen,
        returned_fen=h.returned_fen,
        apr_bps=h.apr_bps,
        draw_deadline=s.draw_deadline,
        days_past_due=h.days_past_due,
        issued_at=h.issued_at,
        chain_time=h.chain_time,
        wallet_balance_fen=desk.balance_of(s.farmer),
        disclosure_hash="0x" + h.disclosure_hash.hex(),
        budgets=[
            BudgetOut(
                category="0x" + b.category.hex(),
                category_name=b.category_name,
                budget_fen=b.budget_fen,
                spent_fen=b.spent_fen,
                reserved_fen=b.reserved_fen,
                left_fen=b.left_fen,
            )
            for b in h.budgets
        ],
        orders=[
            OrderOut(
                order_id=o.order_id,
                merchant=o.merchant,
                merchant_name=names.get(o.merchant.lower()),
                category="0x" + o.category.hex(),
                category_name=o.category_name,
                invoice_hash="0x" + o.invoice_hash.hex(),
                amount_fen=o.amount_fen,
                status=OrderStatus(o.status).name.lower(),
                created_at=o.created_at,
                confirmed_at=o.confirmed_at,
                cancelled_at=o.cancelled_at,
                transaction=o.tx_hash,
            )
            for o in h.orders
        ],
        repayments=[
            RepaymentOut(
                payer=r.payer,
                amount_fen=r.amount_fen,
                outstanding_after_fen=r.outstanding_after_fen,
                paid_at=r.paid_at,
                via_settlement=r.via_settlement,
                transaction=r.tx_hash,
            )
            for r in h.repayments
        ],
        schedule=[
            ScheduleOut(
                number=i.number,
                due=i.due,
                total_fen=i.total_fen,
                principal_fen=i.principal_fen,
                interest_fen=i.interest_fen,
                fee_fen=i.fee_fen,
            )
            for i in h.schedule
        ],
        next_due=NextDueOut(**vars(h.next_due)) if h.next_due else None,
        offer_id=h.offer_id,
    )


def my_loan(
    session: Session, engine: Engine, chain: ChainClient, org: Organisation, escrow: str
) -> LoanOut:
    """One of your loans in full."""
    desk = _mine(session, chain, org, escrow)
    return _loan_out(session, engine, desk, escrow)


def current_loan(
    session: Session, engine: Engine, chain: ChainClient, org: Organisation
) -> LoanOut | None:
    """Your open loan, else your newest loan, else None."""
    row = my_farmer(session, org)
    desk = loan_desk(chain)
    active = desk.active_loan_of(bytes.fromhex(row.farmer_id[2:]))
    escrows = [active] if active else _my_escrows(session, engine, desk, row)
    return _loan_out(session, engine, desk, escrows[0]) if escrows else None


def repay(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    org: Organisation,
    escrow: str,
    body: RepayIn,
) -> RepayOut:
    """Repay from your wallet: your organisation's key signs the approval and the repayment, the
    platform pays their gas."""
    desk = _mine(session, chain, org, escrow)
    account = org_account(settings, org)
    state = desk.state(desk.escrow(escrow).address)
    if state.status not in (LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.DEFAULTED):
        raise Conflict(f"this loan is {state.status.name.lower()}: nothing can be repaid")
    if body.amount_fen > state.outstanding_fen:
        raise Conflict(f"you owe {state.outstanding_fen} fen on this loan: repay at most that much")
    balance = desk.balance_of(account.address)
    if balance < body.amount_fen:
        raise Conflict(f"your wallet holds {balance} fen, less than {body.amount_fen} fen")
    fund_gas(chain, account.address, REPAY_GAS)
    desk.repay(state.escrow, org_sender(chain, settings, org), body.amount_fen)
    after = desk.state(state.escrow)
    return RepayOut(
        escrow=state.escrow,
        amount_fen=body.amount_fen,
        outstanding_fen=after.outstanding_fen,
        wallet_balance_fen=desk.balance_of(account.address),
    )


# ----------------------------------------------------------------------------- profile reads


def profile_reads(
    session: Session, engine: Engine, org: Organisation, page: PageParams
) -> Page[ProfileRead]:
    """Every request to read your profile (allowed or refused), newest first."""
    row = my_farmer(session, org)
    log = list(reversed(CreditStore(engine).access_log(row.farmer_id)))
    window = log[page.offset : page.offset + page.limit]
    names = _names(session, {e.lender for e in window})
    items = [
        ProfileRead(
            lender=e.lender,
            lender_name=names.get(e.lender.lower()),
            purpose=e.purpose,
            outcome=e.outcome.value,
            at=e.at,
            decision_id=e.decision_id,
        )
        for e in window
    ]
    return Page(items=items, total=len(log), limit=page.limit, offset=page.offset)

"""Lenders: consenting farmers, their profiles (consent-gated, logged), decisions and loans.

- A profile is read only with the farmer's active consent, checked on chain at the moment of
  the read (ConsentRegistry; fail closed: an unreachable node is 503). Every read and every
  refusal is appended to the credit store's profile access log.
- Decisions are made by lending.credit.decision.decide and stored whole in the credit store; a
  decision is shown only to the lender that asked for it (403 for anyone else's).
- A loan is issued from the lender's own approved decision: the body budgets the principal by
  merchant category; the server sets the principal (the budgets' sum, never above the
  decision's limit), the rate (the decision's offered rate), the schedule and the disclosure
  hash, and the escrow's lender (the calling organisation).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated
from weakref import WeakKeyDictionary

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Engine, select
from web3 import Web3

from api.admin.chain_roles import org_sender
from api.core.chain import chain_call, same_address
from api.core.loans import ensure_lender_role, factory_escrow, loan_call, loan_desk
from api.core.models import Organisation
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from api.lenders.profiles import (
    consenting_farmers,
    farmer_bytes,
    indexed_read,
    indexer_engine,
    profile_of,
)
from chain.client import ChainClient
from indexer.models import Checkpoint
from indexer.profiles import FarmerProfile
from lending.credit.access import AccessOutcome, ProfileAccess, check_consent
from lending.credit.decision import DecisionRecord, decide
from lending.credit.profiles import IndexedProfileReader
from lending.credit.scorecard import load_model
from lending.credit.store import CreditStore
from lending.errors import (
    BudgetsNotFinancedError,
    ConsentCheckError,
    ConsentRequiredError,
    DecisionExpiredError,
    DecisionNotApprovedError,
    DecisionNotFoundError,
    InvalidRequestError,
    LoanOfferError,
    PrincipalOverLimitError,
    ProfileDataError,
    ProfileNotFoundError,
)
from lending.loans.disbursement import ConfirmationMode, LoanState
from lending.loans.offers import escrow_terms, offer_disclosure
from lending.pricing.disclosure import Disclosure
from traceability import contracts
from traceability.consent import ConsentService

# What each refusal of lending.loans.offers answers.
_OFFER_STATUS: dict[type[LoanOfferError], int] = {
    DecisionNotApprovedError: status.HTTP_409_CONFLICT,
    DecisionExpiredError: status.HTTP_409_CONFLICT,
    PrincipalOverLimitError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    BudgetsNotFinancedError: status.HTTP_422_UNPROCESSABLE_CONTENT,
}
_STORES: WeakKeyDictionary[Engine, CreditStore] = WeakKeyDictionary()

# --------------------------------------------------------------------------- models


class ConsentingFarmer(BaseModel):
    """A farmer who lets you read their profile, as indexed."""

    farmer_id: str
    cooperative: str
    consent_expires_at: int


class ConsentingFarmers(Page[ConsentingFarmer]):
    """A page of consenting farmers and the indexed block they reflect."""

    block_number: int


class Confirmation(StrEnum):
    """Who releases an ordered payment: nobody (paid at once) or the merchant on delivery."""

    IMMEDIATE = "immediate"
    MERCHANT = "merchant"


Category = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


class LoanCreate(BaseModel):
    """What a lender chooses: budgets by merchant category (fen), draw window, confirmation.

    The server sets principal, rate, schedule, disclosure, farmer and lender."""

    model_config = ConfigDict(extra="ignore")

    budgets_fen: Annotated[
        dict[Category, Annotated[int, Field(gt=0)]], Field(min_length=1, max_length=16)
    ]
    draw_days: int = Field(default=60, ge=1, le=180)
    confirmation: Confirmation = Confirmation.IMMEDIATE


class LoanIssuedPublic(BaseModel):
    """A loan on chain, issued and funded."""

    decision_id: str
    loan_id: int
    escrow: str
    farmer_id: str
    farmer_wallet: str
    principal_fen: int
    total_due_fen: int
    rate_bps: int
    apr_regz_pct: str
    due_date: int
    draw_deadline: int
    confirmation: Confirmation
    transaction: str
    disclosure: Disclosure


class LoanPublic(BaseModel):
    """An escrow's terms, status and money movements (fen), read from the chain."""

    escrow: str
    loan_id: int
    status: str
    farmer_id: str
    lender: str
    farmer: str
    principal_fen: int
    total_due_fen: int
    draw_deadline: int
    due_date: int
    confirmation: str
    funded_fen: int
    paid_fen: int
    reserved_fen: int
    returned_fen: int
    available_fen: int
    repaid_fen: int
    amount_due_fen: int
    outstanding_fen: int


# --------------------------------------------------------------------------- plumbing


def credit_store(engine: Engine) -> CreditStore:
    """The credit store on the app's database (its tables and triggers come from migration 0003)."""
    if engine not in _STORES:
        _STORES[engine] = CreditStore(engine)
    return _STORES[engine]


def _profiles(settings: ApiSettings) -> IndexedProfileReader:
    return IndexedProfileReader(indexer_engine(settings.database_url))


def _consent(chain: ChainClient, farmer_id: str, lender: str) -> bool:
    """The farmer's consent for `lender` now, on chain (503 when it cannot be checked)."""
    try:
        with chain_call():
            checker = ConsentService(chain)
        return check_consent(checker, farmer_id, lender)
    except ConsentCheckError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


def _indexed_profile(settings: ApiSettings, farmer_id: str) -> tuple[str, FarmerProfile]:
    """(normalized id, profile); 422 for a malformed id, 404 for a farmer never indexed."""
    farmer = farmer_bytes(farmer_id)
    with indexed_read(indexer_engine(settings.database_url)) as conn:
        profile = profile_of(conn, farmer)
    if profile is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"farmer 0x{farmer.hex()} has not been indexed"
        )
    return "0x" + farmer.hex(), profile


# --------------------------------------------------------------------------- farmers


def list_farmers(settings: ApiSettings, org: Organisation, page: PageParams) -> ConsentingFarmers:
    """Farmers whose latest indexed consent for you is active now."""
    with indexed_read(indexer_engine(settings.database_url)) as conn:
        rows, total = consenting_farmers(
            conn, org.chain_address, int(time.time()), page.limit, page.offset
        )
        block = conn.execute(select(Checkpoint.block_number)).scalar() or 0
    items = [ConsentingFarmer(farmer_id="0x" + f.hex(), cooperative=Web3.to_checksum_address(c),
                              consent_expires_at=e) for f, c, e in rows]  # fmt: skip
    return ConsentingFarmers(
        items=items, total=total, limit=page.limit, offset=page.offset, block_number=int(block)
    )


def read_profile(
    engine: Engine, settings: ApiSettings, chain: ChainClient, org: Organisation, farmer_id: str
) -> FarmerProfile:
    """The farmer's profile with consent (else 403); the read or refusal is logged."""
    fid, profile = _indexed_profile(settings, farmer_id)
    lender = org.chain_address.lower()
    store = credit_store(engine)
    access = {"farmer_id": fid, "lender": lender, "purpose": "profile_view",
              "at": datetime.now(UTC)}  # fmt: skip
    if not _consent(chain, fid, lender):
        store.record_access(ProfileAccess(**access, outcome=AccessOutcome.REFUSED_NO_CONSENT))
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"farmer {fid} has not given you an active consent; nothing was read",
        )
    store.record_access(ProfileAccess(
        **access, outcome=AccessOutcome.READ, block_number=profile.valid_at.block_number,
        block_hash=profile.valid_at.block_hash,
    ))  # fmt: skip
    return profile


# --------------------------------------------------------------------------- decisions


def make_decision(
    engine: Engine, settings: ApiSettings, chain: ChainClient, org: Organisation, farmer_id: str
) -> DecisionRecord:
    """Score the farmer (consent checked and the read logged by `decide`) and store it."""
    fid, _ = _indexed_profile(settings, farmer_id)
    store = credit_store(engine)
    with chain_call():
        checker = ConsentService(chain)
    try:
        return decide(
            fid,
            org.chain_address,
            profiles=_profiles(settings),
            consent=checker,
            access_log=store,
            model=load_model(),
            store=store,
        )
    except ConsentRequiredError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except ConsentCheckError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    except ProfileNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except ProfileDataError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"the profile cannot be scored: {exc}"
        ) from exc
    except InvalidRequestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


def own_decision(engine: Engine, org: Organisation, decision_id: str) -> DecisionRecord:
    """A stored decision of yours: 404 if unknown, 403 if another lender's."""
    if len(decision_id) != 32 or not decision_id.isalnum():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no decision {decision_id!r}")
    try:
        record = credit_store(engine).get_decision(decision_id)
    except DecisionNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    if not same_address(record.lender, org.chain_address):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this decision was made by another lender")
    return record


def latest_decision(engine: Engine, org: Organisation, farmer_id: str) -> DecisionRecord | None:
    """Your most recent decision about the farmer, if any."""
    mine = [
        r
        for r in credit_store(engine).decisions_for(farmer_id)
        if same_address(r.lender, org.chain_address)
    ]
    return mine[-1] if mine else None


# --------------------------------------------------------------------------- loans


def issue_loan(
    engine: Engine,
    settings: ApiSettings,
    chain: ChainClient,
    org: Organisation,
    decision_id: str,
    body: LoanCreate,
) -> LoanIssuedPublic:
    """Issue and fund an escrow loan from your approved decision."""
    record = own_decision(engine, org, decision_id)
    principal = sum(body.budgets_fen.values())
    now = datetime.now(UTC)
    try:
        disclosure = offer_disclosure(record, body.budgets_fen, now=now)
    except LoanOfferError as exc:
        raise HTTPException(_OFFER_STATUS[type(exc)], str(exc)) from exc
    farmer_id = bytes.fromhex(record.decision.farmer_id[2:])
    with chain_call():
        info = contracts.tea_trace(chain).functions.farmer(farmer_id).call()
    wallet = str(info[1])
    if int(wallet, 16) == 0:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "the farmer has no wallet on chain: the cooperative must register one first",
        )
    mode = (
        ConfirmationMode.MERCHANT_CONFIRMS
        if body.confirmation is Confirmation.MERCHANT
        else ConfirmationMode.IMMEDIATE
    )
    with loan_call():
        terms = escrow_terms(
            record,
            disclosure,
            body.budgets_fen,
            now=now,
            draw_days=body.draw_days,
            mode=mode,
            farmer_wallet=wallet,
            lender=Web3.to_checksum_address(org.chain_address),
        )
    if settings.environment != "production":  # development chains: role and eCNY on demand
        ensure_lender_role(chain, org, mint_fen=principal)
    desk = loan_desk(chain)
    sender = org_sender(chain, settings, org)
    with loan_call():
        desk.approve_factory(sender, principal)
        issued = desk.issue(terms, sender, fund=True)
    return LoanIssuedPublic(
        decision_id=record.decision_id,
        loan_id=issued.loan_id,
        escrow=issued.escrow,
        farmer_id=record.decision.farmer_id,
        farmer_wallet=wallet,
        principal_fen=principal,
        total_due_fen=terms.total_due_fen,
        rate_bps=record.decision.pricing.offered_rate_bps or 0,  # type: ignore[union-attr]
        apr_regz_pct=str(disclosure.apr_regz_pct),
        due_date=terms.due_date,
        draw_deadline=terms.draw_deadline,
        confirmation=body.confirmation,
        transaction=issued.tx_hash,
        disclosure=disclosure,
    )


def loan_public(state: LoanState) -> LoanPublic:
    """The API view of an escrow's state."""
    return LoanPublic(
        escrow=state.escrow,
        loan_id=state.loan_id,
        status=state.status.name.lower(),
        farmer_id="0x" + state.farmer_id.hex(),
        lender=state.lender,
        farmer=state.farmer,
        principal_fen=state.principal_fen,
        total_due_fen=state.total_due_fen,
        draw_deadline=state.draw_deadline,
        due_date=state.due_date,
        confirmation=state.mode.name.lower(),
        funded_fen=state.funded_fen,
        paid_fen=state.paid_fen,
        reserved_fen=state.reserved_fen,
        returned_fen=state.returned_fen,
        available_fen=state.available_fen,
        repaid_fen=state.repaid_fen,
        amount_due_fen=state.amount_due_fen,
        outstanding_fen=state.outstanding_fen,
    )


def own_loan(chain: ChainClient, org: Organisation, escrow: str) -> LoanPublic:
    """An escrow you lent through: 404 if the factory never issued it, 403 if not yours."""
    desk, contract, _ = factory_escrow(chain, escrow)
    with loan_call():
        state = desk.state(contract.address)
    if not same_address(state.lender, org.chain_address):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this loan was issued by another lender")
    return loan_public(state)

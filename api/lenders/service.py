"""Lenders: consenting farmers, their profiles (consent-gated, logged), decisions and loans.

- A profile is read only with the farmer's active consent (api/core/consent_gate.py: the
  indexed ConsentRegistry state and the revocations made through this service, the chain only
  when the index shows no active grant; fail closed: a source that cannot answer is 503). Every
  read and every refusal is appended to the credit store's profile access log.
- Decisions are made by lending.credit.decision.decide and stored whole in the credit store; a
  decision is shown only to the lender that asked for it (403 for anyone else's).
- A loan starts as an offer from the lender's own approved decision: the body budgets the
  principal by merchant category; the server sets the principal (the budgets' sum, never above
  the decision's limit), the rate (the decision's offered rate), the schedule, the disclosure
  hash and the escrow's lender (the calling organisation). One decision gives one offer, so one
  loan (409 for a second). The farmer reads the offer and signs its terms (api/farmers); then
  the lender issues the loan with that signature. Everything is checked before anything is
  sent (an eth_call of the issue included); the lender then approves exactly the principal and
  issues and funds in one transaction. Deadlines count from the chain's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated
from weakref import WeakKeyDictionary

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Engine
from web3 import Web3

from api.core.chain import factory_escrow, loan_desk, org_sender
from api.core.consent_gate import ConsentGate
from api.core.errors import ApiError, Conflict, Forbidden, NotFound
from api.core.ids import same_address
from api.core.indexed import index_ready, indexed_block, indexed_read, indexer_engine
from api.core.models import Organisation
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from api.core.types import MAX_FEN, Int
from api.lenders.profiles import (
    consenting_farmers,
    farmer_bytes,
)
from chain.client import ChainClient
from chain.clock import chain_now
from chain.roles import grant_role_once
from chain.sender import PendingTx, Sender
from indexer.profiles import FarmerProfile
from lending.credit.access import read_with_consent
from lending.credit.decision import DecisionRecord, decide
from lending.credit.models import DECISION_ID_LENGTH
from lending.credit.profiles import IndexedProfileReader
from lending.credit.scorecard import load_model
from lending.credit.store import CreditStore
from lending.errors import LendingError, ProfileDataError
from lending.loans.contracts import LENDER_ROLE
from lending.loans.disbursement import ConfirmationMode, IssuedLoan, LoanDesk, LoanState
from lending.loans.errors import from_revert, translate_reverts
from lending.loans.gas import MINT_GAS, issue_gas
from lending.loans.offers import (
    OfferExistsError,
    OfferStore,
    StoredOffer,
    escrow_terms,
    offer_disclosure,
)
from lending.pricing.disclosure import Disclosure
from traceability.contracts import farmer_record

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
        dict[Category, Annotated[Int, Field(gt=0, le=MAX_FEN)]], Field(min_length=1, max_length=16)
    ]
    draw_days: Int = Field(default=60, ge=1, le=180)
    confirmation: Confirmation = Confirmation.IMMEDIATE
    cooperative_agent: bool = Field(
        default=True,
        description="the farmer's cooperative (from TeaTrace) orders payments as the farmer's "
        "agent; false: only the farmer's own wallet orders",
    )


class LoanOfferPublic(BaseModel):
    """A loan offer: its terms and disclosure; the farmer's acceptance; the loan once issued."""

    offer_id: str
    decision_id: str
    status: str
    farmer_id: str
    farmer_wallet: str
    principal_fen: int
    total_due_fen: int
    apr_bps: int
    budgets_fen: dict[str, int]
    draw_deadline: int
    due_date: int
    confirmation: Confirmation
    agent: str | None = Field(description="the cooperative that orders payments for the farmer")
    disclosure: Disclosure
    escrow: str | None
    loan_id: int | None


class LoanIssuedPublic(BaseModel):
    """A loan on chain, accepted by the farmer, issued and funded."""

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
    offer_id: str
    acceptance_digest: str


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


def _farmer(farmer_id: str) -> str:
    """The normalized 0x id (422 for a malformed one)."""
    return "0x" + farmer_bytes(farmer_id).hex()


@dataclass(frozen=True)
class _Read:
    """A profile as read, with the block it reflects (what the access log records)."""

    profile: FarmerProfile

    @property
    def block_number(self) -> int:
        """The indexed block the profile is valid at."""
        return self.profile.valid_at.block_number

    @property
    def block_hash(self) -> str:
        """That block's hash."""
        return self.profile.valid_at.block_hash


# --------------------------------------------------------------------------- farmers


def list_farmers(
    settings: ApiSettings, chain: ChainClient, org: Organisation, page: PageParams
) -> ConsentingFarmers:
    """Farmers whose latest indexed consent for you is active at the chain's time."""
    with indexed_read(settings.database_url) as conn:
        rows, total = consenting_farmers(
            conn, org.chain_address, chain_now(chain.w3), page.limit, page.offset
        )
        block = indexed_block(conn)
    items = [ConsentingFarmer(farmer_id="0x" + f.hex(), cooperative=Web3.to_checksum_address(c),
                              consent_expires_at=e) for f, c, e in rows]  # fmt: skip
    return ConsentingFarmers(
        items=items, total=total, limit=page.limit, offset=page.offset, block_number=int(block)
    )


def read_profile(
    engine: Engine, settings: ApiSettings, chain: ChainClient, org: Organisation, farmer_id: str
) -> FarmerProfile:
    """The farmer's profile with consent (403 without, 503 if it cannot be checked);
    the read or the refusal is logged (lending.credit.access.read_with_consent)."""
    with index_ready():
        read = read_with_consent(
            _farmer(farmer_id),
            org.chain_address.lower(),
            purpose="profile_view",
            consent=ConsentGate(engine, chain),
            profiles=_profiles(settings),
            access_log=credit_store(engine),
            parse=lambda profile: _Read(profile),  # type: ignore[arg-type]
            at=datetime.now(UTC),
        )
    return read.profile


# --------------------------------------------------------------------------- decisions


def make_decision(
    engine: Engine, settings: ApiSettings, chain: ChainClient, org: Organisation, farmer_id: str
) -> DecisionRecord:
    """Score the farmer (consent checked and the read logged by `decide`) and store it."""
    fid = _farmer(farmer_id)
    store = credit_store(engine)
    try:
        with index_ready():
            return decide(
                fid,
                org.chain_address,
                profiles=_profiles(settings),
                consent=ConsentGate(engine, chain),
                access_log=store,
                model=load_model(),
                store=store,
            )
    except ProfileDataError as exc:
        raise Conflict(f"the profile cannot be scored: {exc}") from exc


def own_decision(engine: Engine, org: Organisation, decision_id: str) -> DecisionRecord:
    """A stored decision of yours: 404 if unknown, 403 if another lender's."""
    if len(decision_id) != DECISION_ID_LENGTH or not decision_id.isalnum():
        raise NotFound(f"no decision {decision_id!r}")
    record = credit_store(engine).get_decision(decision_id)  # DecisionNotFoundError: 404
    if not same_address(record.lender, org.chain_address):
        raise Forbidden("this decision was made by another lender")
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


def _confirmation(mode: ConfirmationMode) -> Confirmation:
    """The API name of a confirmation mode."""
    merchant = mode is ConfirmationMode.MERCHANT_CONFIRMS
    return Confirmation.MERCHANT if merchant else Confirmation.IMMEDIATE


def offer_public(offer: StoredOffer) -> LoanOfferPublic:
    """The API view of a stored offer."""
    t = offer.terms
    return LoanOfferPublic(
        offer_id=offer.offer_id,
        decision_id=offer.decision_id,
        status=offer.status,
        farmer_id=offer.farmer_id,
        farmer_wallet=t.farmer,
        principal_fen=t.principal_fen,
        total_due_fen=t.total_due_fen,
        apr_bps=t.apr_bps,
        budgets_fen={str(k): v for k, v in t.budgets_fen.items()},
        draw_deadline=t.draw_deadline,
        due_date=t.due_date,
        confirmation=_confirmation(t.mode),
        agent=t.agent,
        disclosure=offer.disclosure,
        escrow=offer.escrow,
        loan_id=offer.loan_id,
    )


def create_offer(
    engine: Engine,
    chain: ChainClient,
    org: Organisation,
    decision_id: str,
    body: LoanCreate,
) -> LoanOfferPublic:
    """Offer the farmer a loan from your approved decision (one offer per decision)."""
    record = own_decision(engine, org, decision_id)
    chain_time = chain_now(chain.w3)
    disclosure = offer_disclosure(
        record,
        body.budgets_fen,
        now=datetime.now(UTC),
        chain_now=datetime.fromtimestamp(chain_time, UTC),
    )
    farmer = farmer_record(chain, bytes.fromhex(record.decision.farmer_id[2:]))
    if farmer.wallet is None:
        raise Conflict("the farmer has no wallet on chain: the cooperative must register one first")
    if not farmer.active:
        raise Conflict("the farmer is deactivated on chain: no new loans")
    mode = (
        ConfirmationMode.MERCHANT_CONFIRMS
        if body.confirmation is Confirmation.MERCHANT
        else ConfirmationMode.IMMEDIATE
    )
    terms = escrow_terms(
        record,
        disclosure,
        body.budgets_fen,
        chain_time=chain_time,
        draw_days=body.draw_days,
        mode=mode,
        farmer_wallet=farmer.wallet,
        lender=Web3.to_checksum_address(org.chain_address),
        agent=_agent(farmer.cooperative, org) if body.cooperative_agent else None,
    )
    try:
        stored = OfferStore(engine).create(record.decision_id, terms, disclosure)
    except OfferExistsError as exc:
        raise Conflict(str(exc)) from exc
    return offer_public(stored)


def _agent(cooperative: str | None, lender: Organisation) -> str | None:
    """The farmer's TeaTrace cooperative as agent, unless it is the lender itself (a lender
    cannot be the agent of its own loan)."""
    if cooperative is None or same_address(cooperative, lender.chain_address):
        return None
    return cooperative


def own_offer(engine: Engine, org: Organisation, offer_id: str) -> StoredOffer:
    """An offer you made: 404 if unknown, 403 if another lender's."""
    offer = OfferStore(engine).get(offer_id) if len(offer_id) == 32 else None
    if offer is None:
        raise NotFound(f"no loan offer {offer_id!r}")
    if not same_address(offer.lender, org.chain_address):
        raise Forbidden("this offer was made by another lender")
    return offer


def _check_before_sending(
    engine: Engine, chain: ChainClient, desk: LoanDesk, org: Organisation, offer: StoredOffer
) -> None:
    """Everything the issue needs, checked before any transaction (409 with the reason)."""
    if offer.escrow is not None:
        raise Conflict(f"offer {offer.offer_id} is already loan {offer.escrow}: one decision "
                       "gives one loan")  # fmt: skip
    if offer.acceptance is None:
        raise Conflict("the farmer has not accepted this offer yet: the farmer signs its terms")
    record = own_decision(engine, org, offer.decision_id)
    offer_disclosure(record, dict(offer.terms.budgets_fen), now=datetime.now(UTC))  # still valid
    terms = offer.terms
    farmer = farmer_record(chain, terms.farmer_id)
    if not farmer.active or farmer.wallet is None or not same_address(farmer.wallet, terms.farmer):
        raise Conflict("the farmer is deactivated or changed wallet since accepting: offer again")
    open_loan = desk.active_loan_of(terms.farmer_id)
    if open_loan is not None:
        raise Conflict(f"the farmer already has open loan {open_loan}")
    desk.check_acceptance(terms, offer.acceptance)


def issue_loan(
    engine: Engine,
    settings: ApiSettings,
    chain: ChainClient,
    org: Organisation,
    offer_id: str,
) -> LoanIssuedPublic:
    """Issue and fund the loan the farmer accepted. Checks first (including an eth_call of the
    issue); then, in development, eCNY; then approve exactly the principal and issue."""
    offer = own_offer(engine, org, offer_id)
    desk = loan_desk(chain)
    _check_before_sending(engine, chain, desk, org, offer)
    terms, acceptance = offer.terms, offer.acceptance
    assert acceptance is not None
    development = settings.environment != "production"
    if development:  # the role first: without it the eth_call below is refused
        ensure_lender_role(chain, org)
    desk.check_issue(terms, acceptance, terms.lender)  # everything but the allowance
    if development:
        ensure_lender_role(chain, org, mint_fen=terms.principal_fen)
    sender = org_sender(chain, settings, org)
    desk.approve_factory(sender, terms.principal_fen)
    try:
        issued = desk.issue(terms, sender, acceptance, fund=True)
    except Exception:
        desk.approve_factory(sender, 0)  # leave no allowance behind
        raise
    digest = desk.acceptance_of(issued.escrow)[0]
    return _recorded_issue(engine, desk, org, offer, issued, digest)


def _recorded_issue(
    engine: Engine,
    desk: LoanDesk,
    org: Organisation,
    offer: StoredOffer,
    issued: IssuedLoan,
    digest: bytes,
) -> LoanIssuedPublic:
    """Record an issued loan with its offer; the loan as the lender's API shows it, with the
    acceptance digest its escrow stored."""
    terms = offer.terms
    stored = OfferStore(engine).record_issue(
        offer.offer_id, issued.escrow, issued.loan_id, issued.tx_hash
    )
    record = own_decision(engine, org, offer.decision_id)
    return LoanIssuedPublic(
        decision_id=stored.decision_id,
        loan_id=issued.loan_id,
        escrow=issued.escrow,
        farmer_id=stored.farmer_id,
        farmer_wallet=terms.farmer,
        principal_fen=terms.principal_fen,
        total_due_fen=terms.total_due_fen,
        rate_bps=record.decision.pricing.offered_rate_bps or 0,  # type: ignore[union-attr]
        apr_regz_pct=str(stored.disclosure.apr_regz_pct),
        due_date=terms.due_date,
        draw_deadline=terms.draw_deadline,
        confirmation=_confirmation(terms.mode),
        transaction=issued.tx_hash,
        disclosure=stored.disclosure,
        offer_id=stored.offer_id,
        acceptance_digest="0x" + digest.hex(),
    )


MAX_ISSUE_BATCH = 200
"""Offers one batch issues: its approval and pipelined issues stay well inside a few blocks."""


class IssueBatch(BaseModel):
    """Accepted offers to issue at once."""

    model_config = ConfigDict(extra="forbid")

    offer_ids: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        min_length=1, max_length=MAX_ISSUE_BATCH
    )


class IssueRefused(BaseModel):
    """An offer the batch did not issue, and why (nothing was sent for it unless it says so)."""

    offer_id: str
    reason: str


class IssueBatchOut(BaseModel):
    """What a batch issued and what it refused."""

    issued: list[LoanIssuedPublic]
    refused: list[IssueRefused]


def issue_loans(
    engine: Engine,
    settings: ApiSettings,
    chain: ChainClient,
    org: Organisation,
    body: IssueBatch,
) -> IssueBatchOut:
    """Issue and fund many accepted offers at once: each checked as the single route checks it
    (a refused one is listed with its reason and nothing is sent for it), then, in development,
    eCNY for all of them, one approval of their sum and the issues pipelined with measured gas
    limits. An issue that fails on chain is listed too, and no allowance is left behind."""
    desk = loan_desk(chain)
    if settings.environment != "production":
        ensure_lender_role(chain, org)
    ready, refused = _ready_to_issue(engine, chain, desk, org, body.offer_ids)
    issued: list[LoanIssuedPublic] = []
    if not ready:
        return IssueBatchOut(issued=issued, refused=refused)
    total = sum(offer.terms.principal_fen for offer in ready)
    if settings.environment != "production":
        ensure_lender_role(chain, org, mint_fen=total)
    sender = org_sender(chain, settings, org)
    try:
        approval, pending = _send_issues(desk, sender, ready, total)
        with translate_reverts():
            sender.wait([approval])
    except Exception:
        desk.approve_factory(sender, 0)  # leave no allowance behind
        raise
    loans: list[tuple[StoredOffer, IssuedLoan]] = []
    for offer, tx in zip(ready, pending, strict=True):
        try:
            loans.append((offer, desk.issued_by(sender, tx)))
        except LendingError as exc:
            refused.append(IssueRefused(offer_id=offer.offer_id, reason=f"failed on chain: {exc}"))
    accepted = desk.acceptances_of([loan.escrow for _, loan in loans])
    for (offer, loan), (digest, _, _) in zip(loans, accepted, strict=True):
        issued.append(_recorded_issue(engine, desk, org, offer, loan, digest))
    if len(issued) < len(ready):
        desk.approve_factory(sender, 0)  # what the failed ones would have pulled
    return IssueBatchOut(issued=issued, refused=refused)


def _send_issues(
    desk: LoanDesk, sender: Sender, ready: list[StoredOffer], total_fen: int
) -> tuple[PendingTx, list[PendingTx]]:
    """The approval of `total_fen`, then the issues pipelined behind it; on a node that mines
    on demand (anvil), mined together in blocks of at most the gas target (Sender.packed), the
    approval in the first: it comes first in the lender's nonces, so before the issues in any
    block, and a batch costs one block less (each costs anvil a pass over all storage)."""
    gas = max(issue_gas(len(o.terms.budgets_fen)) for o in ready)
    sent: list[PendingTx] = []

    def send(part: Sequence[StoredOffer]) -> list[PendingTx]:
        """One block's issues, behind the approval in the first."""
        if not sent:
            sent.append(desk.send_approval(sender, total_fen))
        return [
            desk.send_issue(o.terms, sender, o.acceptance, checked=False)  # type: ignore[arg-type]
            for o in part
        ]

    issues = sender.packed(ready, gas, send)  # one approval more in the first: within the limit
    return sent[0], issues


def _ready_to_issue(
    engine: Engine, chain: ChainClient, desk: LoanDesk, org: Organisation, offer_ids: list[str]
) -> tuple[list[StoredOffer], list[IssueRefused]]:
    """The offers that pass every check before sending (an eth_call of each issue included,
    all of them in one batch), and the others with the reason, in the batch's order."""
    checked = [_checked_offer(engine, chain, desk, org, i) for i in dict.fromkeys(offer_ids)]
    offers = [c for c in checked if isinstance(c, StoredOffer)]
    calls = [desk.issue_call(o.terms, o.acceptance, fund=False) for o in offers]  # type: ignore[arg-type]
    errors = dict(zip(map(id, offers), chain.check_calls(calls, org.chain_address), strict=True))
    ready: list[StoredOffer] = []
    refused: list[IssueRefused] = []
    farmers: set[bytes] = set()
    for item in checked:
        if isinstance(item, IssueRefused):
            refused.append(item)
        elif item.terms.farmer_id in farmers:
            reason = "another offer in this batch lends to the same farmer"
            refused.append(IssueRefused(offer_id=item.offer_id, reason=reason))
        elif (error := errors[id(item)]) is not None:
            refused.append(IssueRefused(offer_id=item.offer_id, reason=str(from_revert(error))))
        else:
            farmers.add(item.terms.farmer_id)
            ready.append(item)
    return ready, refused


def _checked_offer(
    engine: Engine, chain: ChainClient, desk: LoanDesk, org: Organisation, offer_id: str
) -> StoredOffer | IssueRefused:
    """The offer if it passes the checks made before the issue's eth_call, else why not."""
    try:
        offer = own_offer(engine, org, offer_id)
        _check_before_sending(engine, chain, desk, org, offer)
    except (ApiError, LendingError) as exc:
        return IssueRefused(offer_id=offer_id, reason=str(exc))
    return offer


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
    state = desk.state(contract.address)
    if not same_address(state.lender, org.chain_address):
        raise Forbidden("this loan was issued by another lender")
    return loan_public(state)


def ensure_lender_role(chain: ChainClient, org: Organisation, mint_fen: int = 0) -> list[str]:
    """Grant the organisation LENDER_ROLE (platform admin) and, in development, mint it
    `mint_fen` eCNY when its balance is lower; returns the transaction hashes sent."""
    admin = chain.sender(0)
    address = Web3.to_checksum_address(org.chain_address)
    desk = loan_desk(chain)
    receipts = [grant_role_once(admin, desk.factory, LENDER_ROLE, address)]
    balance = desk.balance_of(address)
    if mint_fen and balance < mint_fen:
        mint = desk.mint_call(address, mint_fen - balance)
        receipts.append(admin.transact(mint, gas=MINT_GAS, preflight=True))
    return [r["transactionHash"].to_0x_hex() for r in receipts if r is not None]

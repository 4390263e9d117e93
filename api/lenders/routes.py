"""Lenders: consenting farmers, their profiles, credit decisions and escrow loans.

A profile is read only with the farmer's active consent (403 otherwise) and every read
or refusal is logged; decisions and loans are visible to the lender that made them only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.core.deps import (
    ChainDep,
    KeyAndRoles,
    SettingsDep,
    caller_with_role,
    key_for_role,
    require_role,
)
from api.core.errors import Invalid
from api.core.models import Organisation, Role
from api.core.pagination import PageDep
from api.core.settings import ApiSettings
from api.core.types import Id32Path
from api.lenders import history, portfolio, service, servicing
from api.lenders.history import LoanHistoryOut
from api.lenders.portfolio import Action, DisbursementReport, Portfolio, StatusFilter
from api.lenders.service import (
    ConsentingFarmers,
    LoanCreate,
    LoanIssuedPublic,
    LoanOfferPublic,
    LoanPublic,
)
from chain.client import ChainClient
from indexer.profiles import FarmerProfile
from lending.credit.decision import DecisionRecord

router = APIRouter(prefix="/lenders", tags=["lenders"])

LenderOrg = Annotated[Organisation, Depends(require_role(Role.LENDER))]
LenderKey = Annotated[KeyAndRoles, Depends(key_for_role(Role.LENDER))]


@router.get("/farmers", response_model=ConsentingFarmers)
def consenting_farmers(
    settings: SettingsDep, chain: ChainDep, page: PageDep, org: LenderOrg
) -> ConsentingFarmers:
    """Farmers whose consent for you is active, as indexed (by farmer id)."""
    return service.list_farmers(settings, chain, org, page)


@router.get("/farmers/{farmer_id}/profile", response_model=FarmerProfile)
async def farmer_profile(
    farmer_id: Id32Path, request: Request, settings: SettingsDep, chain: ChainDep, key: LenderKey
) -> Response:
    """The farmer's indexed profile, valid at a stated block; only with active consent."""
    # The key check, the consent, the read and its log in one worker thread: the sync
    # dependencies (session, organisation, role) were three more thread hops, and each hop is a
    # wait for a core on a busy machine (docs/benchmarks.md).
    return await run_in_threadpool(_profile, farmer_id, request, settings, chain, key)


def _profile(
    farmer_id: str, request: Request, settings: ApiSettings, chain: ChainClient, key: KeyAndRoles
) -> Response:
    """The profile route's work: 401/403 as `LenderOrg`, then the consent-gated, logged read."""
    org = caller_with_role(request, key)
    profile = service.read_profile(request.app.state.engine, settings, chain, org, farmer_id)
    # Already a validated FarmerProfile: encoded once by pydantic-core, not validated again and
    # walked by jsonable_encoder (a millisecond or more of every read).
    return Response(profile.model_dump_json(), media_type="application/json")


@router.post(
    "/farmers/{farmer_id}/decisions",
    status_code=status.HTTP_201_CREATED,
    response_model=DecisionRecord,
)
def make_decision(
    farmer_id: Id32Path, request: Request, settings: SettingsDep, chain: ChainDep, org: LenderOrg
) -> DecisionRecord:
    """Score the farmer: outcome, reasons, limit, capped price and disclosure (stored)."""
    engine = request.app.state.engine
    return service.make_decision(engine, settings, chain, org, farmer_id)


@router.get("/decisions/{decision_id}", response_model=DecisionRecord)
def get_decision(decision_id: str, request: Request, org: LenderOrg) -> DecisionRecord:
    """One of your stored decisions."""
    return service.own_decision(request.app.state.engine, org, decision_id)


@router.post(
    "/decisions/{decision_id}/offers",
    status_code=status.HTTP_201_CREATED,
    response_model=LoanOfferPublic,
)
def create_offer(
    decision_id: str, body: LoanCreate, request: Request, chain: ChainDep, org: LenderOrg
) -> LoanOfferPublic:
    """Offer a loan from your approved decision (one per decision: 409 for a second)."""
    return service.create_offer(request.app.state.engine, chain, org, decision_id, body)


@router.get("/offers/{offer_id}", response_model=LoanOfferPublic)
def get_offer(offer_id: str, request: Request, org: LenderOrg) -> LoanOfferPublic:
    """One of your offers: offered, accepted by the farmer, or issued."""
    return service.offer_public(service.own_offer(request.app.state.engine, org, offer_id))


@router.post(
    "/offers/{offer_id}/loan",
    status_code=status.HTTP_201_CREATED,
    response_model=LoanIssuedPublic,
)
def issue_loan(
    offer_id: str, request: Request, settings: SettingsDep, chain: ChainDep, org: LenderOrg
) -> LoanIssuedPublic:
    """Issue and fund the escrow loan the farmer accepted (409 until the farmer signed)."""
    engine = request.app.state.engine
    return service.issue_loan(engine, settings, chain, org, offer_id)


@router.post("/loans/batch", response_model=service.IssueBatchOut)
def issue_loans(
    body: service.IssueBatch,
    request: Request,
    settings: SettingsDep,
    chain: ChainDep,
    org: LenderOrg,
) -> service.IssueBatchOut:
    """Issue and fund up to 200 accepted offers at once (refused ones listed with the reason).

    Each offer is checked as the single route checks it; then one approval of the sum and the
    issues pipelined."""
    return service.issue_loans(request.app.state.engine, settings, chain, org, body)


@router.get("/loans/{escrow}", response_model=LoanPublic)
def loan_state(escrow: str, chain: ChainDep, org: LenderOrg) -> LoanPublic:
    """The state of one of your loans, read from its escrow."""
    return service.own_loan(chain, org, escrow)


def only_query(*names: str) -> Callable[[Request], None]:
    """Dependency: 422 for a query parameter the route does not take (an export with a typo
    in its filter would otherwise silently export everything)."""

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - set(names))
        if unknown:
            raise Invalid(f"unknown query parameter(s): {', '.join(unknown)[:200]}")

    return check


StatusQuery = Annotated[StatusFilter, Query(description="open: issued, active, overdue, defaulted")]


@router.get(
    "/loans",
    response_model=Portfolio,
    dependencies=[Depends(only_query("status", "limit", "offset"))],
)
def loans(
    request: Request,
    chain: ChainDep,
    page: PageDep,
    org: LenderOrg,
    status: StatusQuery = StatusFilter.ALL,
) -> Portfolio:
    """Your loans with status, drawn, outstanding and days past due, newest first."""
    return portfolio.portfolio(request.app.state.engine, chain, org, status, page)


@router.get(
    "/portfolio.csv",
    response_class=Response,
    dependencies=[Depends(only_query("status"))],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def portfolio_csv(
    request: Request, chain: ChainDep, org: LenderOrg, status: StatusQuery = StatusFilter.ALL
) -> Response:
    """Your loans passing the filter as CSV (fen; unix times), for a spreadsheet."""
    rows, _ = portfolio.all_loans(request.app.state.engine, chain, org, status)
    return Response(
        portfolio.portfolio_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="portfolio.csv"'},
    )


@router.get("/disbursements", response_model=DisbursementReport)
def disbursements(request: Request, chain: ChainDep, org: LenderOrg) -> DisbursementReport:
    """What your loans paid to merchants, by category and merchant."""
    return portfolio.disbursements(request.app.state.engine, chain, org)


@router.post("/loans/{escrow}/{action}", response_model=LoanPublic)
def service_loan(
    escrow: str, action: Action, settings: SettingsDep, chain: ChainDep, org: LenderOrg
) -> LoanPublic:
    """Service a loan: `refresh`, `return-unspent`, `default`, `write-off`; 409 with the reason."""
    return service.loan_public(portfolio.service_loan(chain, settings, org, escrow, action))


@router.get("/servicing/due", response_model=servicing.DueLoans)
def loans_due(
    request: Request,
    chain: ChainDep,
    org: LenderOrg,
    action: Annotated[Action, Query(description="refresh, return-unspent, default")],
) -> servicing.DueLoans:
    """Your loans an action is due on now, each checked by an eth_call of the action."""
    return servicing.due_now(request.app.state.engine, chain, org, action)


@router.post("/servicing", response_model=servicing.ServiceBatchOut)
def service_loans(
    body: servicing.ServiceBatch, settings: SettingsDep, chain: ChainDep, org: LenderOrg
) -> servicing.ServiceBatchOut:
    """Send one servicing action to up to 200 of your loans, refusals with their reasons.

    Each loan is checked as the single route checks it (a status refresh that would change
    nothing is refused too), then the rest are sent back to back."""
    return servicing.service_loans(chain, settings, org, body)


@router.get("/loans/{escrow}/history", response_model=LoanHistoryOut)
def loan_history(escrow: str, request: Request, chain: ChainDep, org: LenderOrg) -> LoanHistoryOut:
    """One of your loans in full: budgets, payment orders, repayments, the accepted schedule."""
    engine = request.app.state.engine
    return history.history_out(engine, history.read_history(engine, chain, org, escrow))

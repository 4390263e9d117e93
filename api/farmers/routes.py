"""Farmers: their own record and their consents for lenders (signed with their key, relayed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from api.core.acceptance import AcceptanceIn
from api.core.consent import ConsentChanged, ConsentIn
from api.core.deps import ChainDep, SessionDep, SettingsDep, require_role
from api.core.models import Organisation, Role
from api.core.pagination import Page, PageDep
from api.core.types import Id32Path, RowIdPath
from api.farmers import loans, service
from api.farmers.service import (
    ConsentPublic,
    FarmerSelf,
    OfferForFarmer,
    OfferToSign,
)

router = APIRouter(prefix="/farmers", tags=["farmers"])

FarmerOrg = Annotated[Organisation, Depends(require_role(Role.FARMER))]


@router.get("/me", response_model=FarmerSelf)
def my_record(session: SessionDep, chain: ChainDep, org: FarmerOrg) -> FarmerSelf:
    """Your farmer record (the one whose wallet is your organisation's address)."""
    return service.farmer_self(session, chain, service.my_farmer(session, org))


@router.get("/me/consents", response_model=Page[ConsentPublic])
def my_consents(
    session: SessionDep, chain: ChainDep, page: PageDep, org: FarmerOrg
) -> Page[ConsentPublic]:
    """Lenders you consented to (not revoked), read from the chain."""
    return service.consents(session, chain, org, page)


@router.post("/me/consents", status_code=status.HTTP_201_CREATED, response_model=ConsentChanged)
def grant_consent(
    body: ConsentIn, session: SessionDep, settings: SettingsDep, chain: ChainDep, org: FarmerOrg
) -> ConsentChanged:
    """Let a lender read your profile for `days` days (signed with your key; no gas needed)."""
    return service.grant(session, chain, settings, org, body)


@router.delete("/me/consents/{lender_org_id}", response_model=ConsentChanged)
def revoke_consent(
    lender_org_id: RowIdPath,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    org: FarmerOrg,
) -> ConsentChanged:
    """Withdraw a lender's consent at once."""
    return service.revoke(session, chain, settings, org, lender_org_id)


@router.get("/me/offers", response_model=list[OfferForFarmer])
def my_offers(request: Request, session: SessionDep, org: FarmerOrg) -> list[OfferForFarmer]:
    """Loan offers made to you: APR, maximum annual rate, schedule, budgets, status."""
    return service.my_offers(session, request.app.state.engine, org)


@router.get("/me/offers/{offer_id}", response_model=OfferToSign)
def offer_to_sign(
    offer_id: str, request: Request, session: SessionDep, chain: ChainDep, org: FarmerOrg
) -> OfferToSign:
    """An offer and the EIP-712 typed data your wallet signs to accept it."""
    return service.offer_to_sign(session, request.app.state.engine, chain, org, offer_id)


@router.post("/me/offers/{offer_id}/acceptance", response_model=OfferForFarmer)
def accept_offer(
    offer_id: str,
    body: AcceptanceIn,
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    org: FarmerOrg,
) -> OfferForFarmer:
    """Accept an offer with your wallet's signature of its terms (no gas: the lender relays)."""
    engine = request.app.state.engine
    return service.accept_offer(session, engine, chain, org, offer_id, body)


@router.get("/me/offer-details", response_model=Page[loans.OfferDetail])
def my_offer_details(
    request: Request, session: SessionDep, page: PageDep, org: FarmerOrg
) -> Page[loans.OfferDetail]:
    """Your offers, newest first (declined too): status, lender, the decision behind each."""
    return loans.my_offer_details(session, request.app.state.engine, org, page)


@router.get("/me/offers/{offer_id}/detail", response_model=loans.OfferDetail)
def offer_detail(
    offer_id: str, request: Request, session: SessionDep, org: FarmerOrg
) -> loans.OfferDetail:
    """One offer with the reasons behind it and how its limit was computed."""
    return loans.offer_detail(session, request.app.state.engine, org, offer_id)


@router.get("/me/offers/{offer_id}/quote", response_model=loans.Quote)
def offer_quote(
    offer_id: str,
    request: Request,
    session: SessionDep,
    org: FarmerOrg,
    amount_fen: Annotated[int, Query(ge=1, le=loans.MAX_FEN)],
    term_months: Annotated[int, Query(ge=1, le=loans.MAX_TERM_MONTHS)],
) -> loans.Quote:
    """APR calculator: APR, cost and schedule of another amount or term; the offer stays."""
    engine = request.app.state.engine
    return loans.quote(session, engine, org, offer_id, amount_fen, term_months)


@router.post("/me/offers/{offer_id}/accept", response_model=loans.OfferDetail)
def accept_with_my_key(
    offer_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    org: FarmerOrg,
) -> loans.OfferDetail:
    """Accept an offer: the service signs its terms with your key (EIP-712); no gas for you."""
    engine = request.app.state.engine
    return loans.accept_with_my_key(session, engine, chain, settings, org, offer_id)


@router.post("/me/offers/{offer_id}/decline", response_model=loans.OfferDetail)
def decline_offer(
    offer_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    org: FarmerOrg,
) -> loans.OfferDetail:
    """Decline an offer (a signature you gave for it is voided on chain)."""
    engine = request.app.state.engine
    return loans.decline(session, engine, chain, settings, org, offer_id)


@router.get("/me/loans", response_model=Page[loans.LoanSummary])
def my_loans(
    request: Request, session: SessionDep, chain: ChainDep, page: PageDep, org: FarmerOrg
) -> Page[loans.LoanSummary]:
    """Your loans, newest first."""
    return loans.my_loans(session, request.app.state.engine, chain, org, page)


@router.get("/me/loans/{escrow}", response_model=loans.LoanOut)
def my_loan(
    escrow: str, request: Request, session: SessionDep, chain: ChainDep, org: FarmerOrg
) -> loans.LoanOut:
    """One of your loans: budgets, payments, schedule and next due, repayments, what is left."""
    return loans.my_loan(session, request.app.state.engine, chain, org, escrow)


@router.post("/me/loans/{escrow}/repayments", response_model=loans.RepayOut)
def repay(
    escrow: str,
    body: loans.RepayIn,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    org: FarmerOrg,
) -> loans.RepayOut:
    """Repay from your wallet (signed with your organisation's key)."""
    return loans.repay(session, chain, settings, org, escrow, body)


@router.get("/me/profile-reads", response_model=Page[loans.ProfileRead])
def profile_reads(
    request: Request, session: SessionDep, page: PageDep, org: FarmerOrg
) -> Page[loans.ProfileRead]:
    """Who asked to read your profile, when, why, and whether your consent allowed it."""
    return loans.profile_reads(session, request.app.state.engine, org, page)


@router.get("/{farmer_id}", response_model=FarmerSelf)
def farmer_record(
    farmer_id: Id32Path, session: SessionDep, chain: ChainDep, org: FarmerOrg
) -> FarmerSelf:
    """A farmer record by id: only your own (403 for anyone else's)."""
    row = service.farmer_by_id(session, chain, org, farmer_id)
    return service.farmer_self(session, chain, row)

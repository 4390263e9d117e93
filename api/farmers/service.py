"""A farmer organisation's own record and its consents for lenders.

A farmer organisation is linked to exactly one member farmer: the one whose registered wallet
is the organisation's chain address (set by the cooperative at registration). Consents are
EIP-712 messages signed with the farmer organisation's keystore key and relayed by the
platform account (`ConsentService.sign_* / relay_*`), so farmers never need gas; expiries and
deadlines count from the chain's latest block (`chain.clock.chain_now`). The consent
list is read from the chain: `ConsentGranted` events of the farmer, then each lender's current
expiry (0 once revoked).

Loan offers: a farmer sees each offer a lender made from a decision about them (APR, the
maximum annual rate allowed, the schedule, the budgets, the dates) and the EIP-712 typed data
of its terms, signs that in the farmer's own wallet, and posts the signature; the service
checks it (signer = the farmer's TeaTrace wallet, current nonce, deadline) and keeps it for the
lender, who relays it with the issuing transaction: the farmer needs no gas.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlmodel import Session, col, select

from api.core.acceptance import AcceptanceIn, record_acceptance, typed_data
from api.core.chain import org_account
from api.core.consent import ConsentChanged, ConsentIn
from api.core.consent_gate import revocation_cleared, revocation_mined, revocation_pending
from api.core.errors import ApiError, Conflict, Forbidden, Invalid, NotFound
from api.core.ids import hex32, parse_id, same_address, tx_hex
from api.core.models import Farmer, Organisation, Role
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from api.core.types import mask_national_id
from chain.client import ChainClient
from chain.clock import chain_now
from lending.loans.offers import OfferStore, StoredOffer
from lending.pricing.disclosure import Disclosure
from lending.pricing.schedule import Installment
from traceability.consent import ConsentService
from traceability.contracts import farmer_record
from traceability.errors import TraceabilityError

DAY = 86_400


class FarmerSelf(BaseModel):
    """What a farmer sees of its own record."""

    farmer_id: str
    cooperative_id: int
    cooperative_name: str
    cooperative_address: str
    wallet: str | None
    name: str | None
    national_id_masked: str | None
    personal_data_erased: bool
    active: bool


class ConsentPublic(BaseModel):
    """A lender holding (or having held, until expiry) one of your consents."""

    lender_org_id: int | None
    lender_name: str | None
    lender_address: str
    expires_at: int
    active: bool


def _fid(row: Farmer) -> bytes:
    """The farmer's id as bytes."""
    return bytes.fromhex(row.farmer_id[2:])


def my_farmer(session: Session, org: Organisation) -> Farmer:
    """The member whose wallet is this farmer organisation, else 404."""
    row = session.exec(select(Farmer).where(Farmer.wallet_org_id == org.id)).first()
    if row is None:
        raise NotFound(
            "no farmer record has your wallet: ask your cooperative to register you with "
            "your farmer organisation as wallet"
        )
    return row


def farmer_self(session: Session, chain: ChainClient, row: Farmer) -> FarmerSelf:
    """The record with its cooperative and on-chain status."""
    coop = session.get(Organisation, row.cooperative_id)
    assert coop is not None and coop.id is not None
    on_chain = farmer_record(chain, _fid(row))
    return FarmerSelf(
        farmer_id=row.farmer_id,
        cooperative_id=coop.id,
        cooperative_name=coop.name,
        cooperative_address=coop.chain_address,
        wallet=on_chain.wallet,
        name=row.name,
        national_id_masked=mask_national_id(row.national_id),
        personal_data_erased=row.erased_at is not None,
        active=on_chain.active,
    )


def farmer_by_id(session: Session, chain: ChainClient, org: Organisation, farmer: str) -> Farmer:
    """A farmer record by id, only one's own: 403 someone else's, 404 unknown."""
    key = hex32(parse_id(farmer, "farmer"))
    row = session.exec(select(Farmer).where(Farmer.farmer_id == key)).first()
    if row is not None and row.wallet_org_id == org.id:
        return row
    if row is None and not farmer_record(chain, bytes.fromhex(key[2:])).registered:
        raise NotFound(f"farmer {key} is not registered")
    raise Forbidden(f"farmer {key} is not you")


def _lender(session: Session, lender_org_id: int, missing: type[ApiError]) -> Organisation:
    """A lender organisation; `missing` is the error when it is none (404 path, 422 body)."""
    org = session.get(Organisation, lender_org_id)
    if org is None or not org.active:
        raise NotFound(f"organisation {lender_org_id} does not exist")
    if org.role != Role.LENDER:
        raise missing(f"organisation {lender_org_id} is not a lender")
    return org


def _check_wallet(chain: ChainClient, row: Farmer, address: str) -> None:
    """The chain must know this organisation as the farmer's wallet."""
    wallet = farmer_record(chain, _fid(row)).wallet
    if not same_address(wallet, address):
        raise Conflict(
            f"farmer {row.farmer_id}'s wallet on chain is {wallet}, not your address {address}: "
            "ask your cooperative to set it"
        )


def grant(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    org: Organisation,
    body: ConsentIn,
) -> ConsentChanged:
    """Sign a consent with the farmer organisation's key and relay it."""
    row = my_farmer(session, org)
    lender = _lender(session, body.lender_org_id, Invalid)
    account = org_account(settings, org)
    _check_wallet(chain, row, account.address)
    # The registry judges expiry and deadline by block time, which a development chain may
    # have moved ahead of the server's clock.
    expires_at = chain_now(chain.w3) + body.days * DAY
    consent = ConsentService(chain)
    deadline, signature = consent.sign_grant(account, _fid(row), lender.chain_address, expires_at)
    receipt = consent.relay_grant(
        chain.sender(0), _fid(row), lender.chain_address, expires_at, deadline, signature
    )
    revocation_cleared(session.get_bind(), row.farmer_id, lender.chain_address)
    assert lender.id is not None
    return ConsentChanged(
        farmer_id=row.farmer_id,
        lender_org_id=lender.id,
        lender_address=lender.chain_address,
        expires_at=expires_at,
        transaction=tx_hex(receipt),
    )


def revoke(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    org: Organisation,
    lender_org_id: int,
) -> ConsentChanged:
    """Sign a revocation with the farmer organisation's key and relay it."""
    row = my_farmer(session, org)
    lender = _lender(session, lender_org_id, NotFound)
    account = org_account(settings, org)
    _check_wallet(chain, row, account.address)
    consent = ConsentService(chain)
    deadline, signature = consent.sign_revocation(account, _fid(row), lender.chain_address)
    # Recorded before it is relayed, so that no service process lets the lender read from the
    # moment the chain may have it (api/core/consent_gate.py); a revert withdraws the record.
    engine = session.get_bind()
    revocation_pending(engine, row.farmer_id, lender.chain_address, chain.w3.eth.block_number)
    try:
        receipt = consent.relay_revocation(
            chain.sender(0), _fid(row), lender.chain_address, deadline, signature
        )
    except TraceabilityError:
        revocation_cleared(engine, row.farmer_id, lender.chain_address)
        raise
    revocation_mined(engine, row.farmer_id, lender.chain_address, receipt["blockNumber"])
    assert lender.id is not None
    return ConsentChanged(
        farmer_id=row.farmer_id,
        lender_org_id=lender.id,
        lender_address=lender.chain_address,
        expires_at=0,
        transaction=tx_hex(receipt),
    )


def consents(
    session: Session, chain: ChainClient, org: Organisation, page: PageParams
) -> Page[ConsentPublic]:
    """The farmer's unrevoked consents (active or expired), in order of first grant."""
    row = my_farmer(session, org)
    service = ConsentService(chain)
    lenders = service.granted_lenders(_fid(row))
    expiries = {lender: service.expiry(_fid(row), lender) for lender in lenders}
    held = [lender for lender in lenders if expiries[lender] > 0]
    window = held[page.offset : page.offset + page.limit]
    spellings = {*window, *(a.lower() for a in window)}
    rows = session.exec(
        select(Organisation).where(col(Organisation.chain_address).in_(spellings))
    ).all()
    known = {o.chain_address.lower(): o for o in rows}
    now = chain_now(chain.w3)  # active as the registry's hasConsent sees it
    items = []
    for address in window:
        lender = known.get(address.lower())
        items.append(
            ConsentPublic(
                lender_org_id=lender.id if lender else None,
                lender_name=lender.name if lender else None,
                lender_address=address,
                expires_at=expiries[address],
                active=expiries[address] > now,
            )
        )
    return Page(items=items, total=len(held), limit=page.limit, offset=page.offset)


# --------------------------------------------------------------------------- loan offers


class OfferForFarmer(BaseModel):
    """A loan offer as the farmer sees it before signing: the terms in the farmer's words."""

    offer_id: str
    status: str
    lender: str
    agent: str | None = PydField(description="the cooperative that may order payments for you")
    principal_fen: int
    total_due_fen: int
    apr_pct: str
    apr_bps: int
    max_annual_rate_pct: str
    max_annual_rate_rule: str
    budgets_fen: dict[str, int]
    draw_deadline: int
    due_date: int
    schedule: list[Installment]
    disclosure: Disclosure
    escrow: str | None


class OfferToSign(OfferForFarmer):
    """An offer and the EIP-712 typed data (eth_signTypedData_v4) the farmer's wallet signs."""

    typed_data: dict[str, Any]


def _offer_view(offer: StoredOffer) -> OfferForFarmer:
    """What the farmer is shown of an offer."""
    t, d = offer.terms, offer.disclosure
    return OfferForFarmer(
        offer_id=offer.offer_id,
        status=offer.status,
        lender=t.lender,
        agent=t.agent,
        principal_fen=t.principal_fen,
        total_due_fen=t.total_due_fen,
        apr_pct=str(d.apr_regz_pct),
        apr_bps=t.apr_bps,
        max_annual_rate_pct=str(d.rate_cap.cap_pct),
        max_annual_rate_rule=d.rate_cap.rule,
        budgets_fen={str(k): v for k, v in t.budgets_fen.items()},
        draw_deadline=t.draw_deadline,
        due_date=t.due_date,
        schedule=list(d.installments),
        disclosure=d,
        escrow=offer.escrow,
    )


def my_offers(session: Session, engine: Any, org: Organisation) -> list[OfferForFarmer]:
    """Every loan offer made to you, oldest first."""
    row = my_farmer(session, org)
    return [_offer_view(o) for o in OfferStore(engine).for_farmer(row.farmer_id)]


def _my_offer(session: Session, engine: Any, org: Organisation, offer_id: str) -> StoredOffer:
    """An offer made to you: 404 if unknown, 403 if made to another farmer."""
    row = my_farmer(session, org)
    offer = OfferStore(engine).get(offer_id) if len(offer_id) == 32 else None
    if offer is None:
        raise NotFound(f"no loan offer {offer_id!r}")
    if offer.farmer_id.lower() != row.farmer_id.lower():
        raise Forbidden("this offer was made to another farmer")
    return offer


def offer_to_sign(
    session: Session, engine: Any, chain: ChainClient, org: Organisation, offer_id: str
) -> OfferToSign:
    """The offer and the typed data to sign (your current nonce; a deadline in chain time)."""
    offer = _my_offer(session, engine, org, offer_id)
    return OfferToSign(**_offer_view(offer).model_dump(), typed_data=typed_data(chain, offer))


def accept_offer(
    session: Session,
    engine: Any,
    chain: ChainClient,
    org: Organisation,
    offer_id: str,
    body: AcceptanceIn,
) -> OfferForFarmer:
    """Check your signature of the offer's terms and keep it for the lender to relay."""
    offer = _my_offer(session, engine, org, offer_id)
    return _offer_view(record_acceptance(engine, chain, offer, body))

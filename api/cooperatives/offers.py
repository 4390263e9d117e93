"""Members' loan offers at the cooperative: the farmer signs on the cooperative's phone.

Many members keep their own wallet (a wallet app) and have no login of their own. The clerk
opens the member's offer, the member reads it and signs its typed data in their wallet app, and
the clerk relays the signature. The signature alone binds the farmer (api.core.acceptance); the
cooperative sees only its own members' offers (403 for another cooperative's).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from api.core.acceptance import AcceptanceIn, record_acceptance, typed_data
from api.core.errors import Forbidden, NotFound
from api.core.ids import same_address
from api.core.models import Farmer, Organisation
from api.core.pagination import Page, PageParams
from chain.client import ChainClient
from lending.loans.offers import OfferStore, StoredOffer


class MemberOffer(BaseModel):
    """A loan offer to one of the cooperative's members."""

    offer_id: str
    farmer_id: str
    member_number: int
    member_name: str | None
    lender: str
    lender_name: str | None
    status: str
    principal_fen: int
    total_due_fen: int
    apr_bps: int
    budgets_fen: dict[str, int]
    draw_deadline: int
    due_date: int
    agent_is_you: bool
    escrow: str | None


class MemberOfferToSign(MemberOffer):
    """The offer and the EIP-712 typed data the member's wallet signs to accept it."""

    typed_data: dict[str, Any]


def _view(
    offer: StoredOffer, member: Farmer, coop: Organisation, names: dict[str, str]
) -> MemberOffer:
    """The API view of a member's offer."""
    assert member.id is not None
    t = offer.terms
    return MemberOffer(
        offer_id=offer.offer_id,
        farmer_id=member.farmer_id,
        member_number=member.id,
        member_name=member.name,
        lender=t.lender,
        lender_name=names.get(t.lender.lower()),
        status=offer.status,
        principal_fen=t.principal_fen,
        total_due_fen=t.total_due_fen,
        apr_bps=t.apr_bps,
        budgets_fen={str(k): v for k, v in t.budgets_fen.items()},
        draw_deadline=t.draw_deadline,
        due_date=t.due_date,
        agent_is_you=t.agent is not None and same_address(t.agent, coop.chain_address),
        escrow=offer.escrow,
    )


def _lender_names(session: Session, offers: list[StoredOffer]) -> dict[str, str]:
    """Lenders' names by lower-case address."""
    wanted = {o.lender.lower() for o in offers}
    if not wanted:
        return {}
    query = select(Organisation).where(func.lower(Organisation.chain_address).in_(wanted))
    return {r.chain_address.lower(): r.name for r in session.exec(query).all()}


def member_offers(
    session: Session, engine: Engine, coop: Organisation, page: PageParams, waiting: bool
) -> Page[MemberOffer]:
    """Offers to your members, newest first; `waiting`: only those not signed yet."""
    members = {
        m.farmer_id.lower(): m
        for m in session.exec(select(Farmer).where(col(Farmer.cooperative_id) == coop.id)).all()
    }
    offers = [o for o in OfferStore(engine).for_farmers(list(members)) if not waiting
              or o.status == "offered"]  # fmt: skip
    offers.reverse()
    window = offers[page.offset : page.offset + page.limit]
    names = _lender_names(session, window)
    items = [_view(o, members[o.farmer_id.lower()], coop, names) for o in window]
    return Page(items=items, total=len(offers), limit=page.limit, offset=page.offset)


def _member_offer(
    session: Session, engine: Engine, coop: Organisation, offer_id: str
) -> tuple[StoredOffer, Farmer]:
    """An offer to one of your members: 404 if unknown, 403 if to another's member."""
    offer = OfferStore(engine).get(offer_id) if len(offer_id) == 32 else None
    if offer is None:
        raise NotFound(f"no loan offer {offer_id!r}")
    member = session.exec(select(Farmer).where(Farmer.farmer_id == offer.farmer_id)).first()
    if member is None or member.cooperative_id != coop.id:
        raise Forbidden("this offer was made to another cooperative's member")
    return offer, member


def offer_to_sign(
    session: Session, engine: Engine, chain: ChainClient, coop: Organisation, offer_id: str
) -> MemberOfferToSign:
    """A member's offer and the typed data their wallet signs."""
    offer, member = _member_offer(session, engine, coop, offer_id)
    view = _view(offer, member, coop, _lender_names(session, [offer]))
    return MemberOfferToSign(**view.model_dump(), typed_data=typed_data(chain, offer))


def relay_acceptance(
    session: Session,
    engine: Engine,
    chain: ChainClient,
    coop: Organisation,
    offer_id: str,
    body: AcceptanceIn,
) -> MemberOffer:
    """Keep the member's wallet signature of the offer (checked) for the lender to relay."""
    offer, member = _member_offer(session, engine, coop, offer_id)
    stored = record_acceptance(engine, chain, offer, body)
    return _view(stored, member, coop, _lender_names(session, [stored]))

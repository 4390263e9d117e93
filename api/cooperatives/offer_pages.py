"""Cooperative pages for members' loan offers: a member signs at the cooperative's desk.

The clerk opens the member's offer and reads its terms with the member; the member signs the
offer's typed data in their own wallet app (the page shows it to copy into the app), and the
clerk pastes the signature back. The service checks the signature against the terms before it
keeps it (api.core.acceptance); nothing is sent to the chain here: the lender issues the loan.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse

from api.cooperatives import offers
from api.cooperatives.labels import LABELS
from api.core.acceptance import AcceptanceIn
from api.core.deps import ChainDep, SessionDep
from api.core.errors import ROOTS, detail_of, status_of
from api.core.labels import OFFER_STATUS, OFFER_STATUS_FOR_COOPERATIVE
from api.core.models import Role
from api.core.pages import page_router
from api.core.pagination import PageParams
from api.core.sessions import PageSession, check_csrf, page_session
from api.core.templates import templates

router = page_router()
CoopPage = Annotated[PageSession, Depends(page_session(Role.COOPERATIVE))]
Csrf = Annotated[str, Form(max_length=64)]
# An offer's status as the clerk reads it: (中文, English) by status, for the templates' `S`.
OFFER_STATUS_HERE = OFFER_STATUS | OFFER_STATUS_FOR_COOPERATIVE


def _render(request: Request, page: PageSession, name: str, code: int = 200, **extra: Any):  # noqa: ANN202
    """A cooperative offers page with the labels and the form token."""
    context = {"coop": page.org, "csrf": page.csrf, "L": LABELS, "S": OFFER_STATUS_HERE, **extra}
    return templates.TemplateResponse(request, name, context, code)


@router.get("/coop/offers", response_class=HTMLResponse)
def coop_offers(request: Request, session: SessionDep, page: CoopPage) -> HTMLResponse:
    """Loan offers to your members, those waiting for a signature first (社员报价)."""
    listed = offers.member_offers(
        session, request.app.state.engine, page.org, PageParams(limit=500, offset=0), False
    )
    waiting = [o for o in listed.items if o.status == "offered"]
    done = [o for o in listed.items if o.status != "offered"]
    return _render(request, page, "coop_offers.html", waiting=waiting, done=done)


def _offer_page(request: Request, session: SessionDep, chain: ChainDep, page: PageSession,
                offer_id: str, code: int = 200, **extra: Any) -> HTMLResponse:  # fmt: skip
    """One member's offer, its typed data and the signature form."""
    offer = offers.offer_to_sign(session, request.app.state.engine, chain, page.org, offer_id)
    typed = json.dumps(offer.typed_data, ensure_ascii=False, indent=1)
    return _render(request, page, "coop_offer.html", code, offer=offer, typed=typed, **extra)


@router.get("/coop/offers/{offer_id}", response_class=HTMLResponse)
def coop_offer(
    offer_id: str, request: Request, session: SessionDep, chain: ChainDep, page: CoopPage
) -> HTMLResponse:
    """A member's offer to read together and sign in the member's wallet app (社员报价)."""
    return _offer_page(request, session, chain, page, offer_id)


@router.post("/coop/offers/{offer_id}/acceptance", response_class=HTMLResponse)
def coop_offer_signed(
    offer_id: str,
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    page: CoopPage,
    nonce: Annotated[str, Form(max_length=20)],
    deadline: Annotated[str, Form(max_length=20)],
    signature: Annotated[str, Form(max_length=200)],
    csrf: Csrf,
) -> HTMLResponse:
    """Hand in the signature the member's wallet app made; the service checks it first."""
    check_csrf(page, csrf)
    engine = request.app.state.engine
    try:
        body = AcceptanceIn.model_validate(
            {"nonce": nonce, "deadline": deadline, "signature": signature.strip()}, strict=False
        )
        offers.relay_acceptance(session, engine, chain, page.org, offer_id, body)
    except (ValueError, *ROOTS) as exc:
        code = status_of(exc) if isinstance(exc, ROOTS) else 422
        error = detail_of(exc) if isinstance(exc, ROOTS) else "签名格式不对 · not a signature"
        return _offer_page(request, session, chain, page, offer_id, code, error=error)
    return _offer_page(request, session, chain, page, offer_id, signed=True)

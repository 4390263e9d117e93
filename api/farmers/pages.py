"""Farmer pages, phone first: home, an offer with its APR calculator, accept or decline after a
confirmation, my loan with a repayment form, consents and who read my profile.

Chinese by default, English first with `?lang=en` (kept in a cookie; `?lang=zh` goes back).
Every action is a form with the session's CSRF token, behind a confirmation page that shows
exactly what will happen. All numbers come from api/farmers/loans.py (and through it from
lending.loans.history and lending.pricing): the pages compute nothing themselves.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.core.deps import ChainDep, SessionDep, SettingsDep
from api.core.errors import Invalid, NotFound
from api.core.models import Organisation, Role
from api.core.pages import page_router, see_other
from api.core.pagination import PageParams
from api.core.sessions import PageSession, check_csrf, page_session
from api.core.templates import CHINA, templates
from api.core.types import MAX_ROW_ID
from api.farmers import labels, loans, service
from api.farmers.loans import MAX_TERM_MONTHS

router = page_router()
FarmerPage = Annotated[PageSession, Depends(page_session(Role.FARMER))]
LANG_COOKIE = "tealedger_lang"
LIST_LIMIT = 50
MAX_YUAN = Decimal(10**12)


def _lang(request: Request) -> str:
    """en if asked for (query or cookie), else zh."""
    asked = request.query_params.get("lang")
    if asked in ("zh", "en"):
        return asked
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"


def _render(request: Request, name: str, context: dict[str, Any], code: int = 200) -> Response:
    """A farmer page in the chosen language; remembers an explicit choice in a cookie."""
    lang = _lang(request)
    context = {"lang": lang, "L": labels, "path": request.url.path, **context}
    response = templates.TemplateResponse(request, name, context, code)
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86_400, samesite="lax")
    return response


def yuan_to_fen(text: str) -> int:
    """A yuan amount typed by a person (up to 2 decimals) as integer fen; 422 otherwise."""
    try:
        value = Decimal(text.strip().replace(",", "").replace("¥", ""))
    except (InvalidOperation, AttributeError) as exc:
        raise Invalid(f"金额格式不对 · not an amount: {text!r}") from exc
    if not value.is_finite() or value <= 0 or value > MAX_YUAN:
        raise Invalid(f"金额必须大于零 · the amount must be above zero: {text!r}")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise Invalid("金额最多两位小数 · at most two decimals (fen)")
    return int(fen)


@router.get("/farmer", response_class=HTMLResponse)
def farmer_home(
    request: Request, session: SessionDep, chain: ChainDep, page: FarmerPage
) -> Response:
    """Home: who I am, my loan (next due, what is left), offers waiting (我的贷款)."""
    engine = request.app.state.engine
    me = service.farmer_self(session, chain, service.my_farmer(session, page.org))
    offers = loans.my_offer_details(
        session, engine, page.org, PageParams(limit=LIST_LIMIT, offset=0)
    )
    loan = loans.current_loan(session, engine, chain, page.org)
    context = {"me": me, "offers": offers, "loan": loan}
    return _render(request, "farmer_home.html", context)


@router.get("/farmer/offers/{offer_id}", response_class=HTMLResponse)
def farmer_offer(
    request: Request,
    session: SessionDep,
    page: FarmerPage,
    offer_id: str,
    amount_yuan: Annotated[str | None, Query(max_length=20)] = None,
    term_months: Annotated[int | None, Query(ge=1, le=MAX_TERM_MONTHS)] = None,
) -> Response:
    """An offer: terms, schedule, why, the limit, APR calculator; accept or decline (贷款报价)."""
    engine = request.app.state.engine
    offer = loans.offer_detail(session, engine, page.org, offer_id)
    quote, quote_error = None, None
    if amount_yuan or term_months:
        try:
            amount = yuan_to_fen(amount_yuan or "")
            months = term_months or (offer.explanation.term_months if offer.explanation else 12)
            quote = loans.quote(session, engine, page.org, offer_id, amount, months)
        except Invalid as exc:
            quote_error = str(exc)
    context = {
        "offer": offer,
        "quote": quote,
        "quote_error": quote_error,
        "amount_yuan": amount_yuan or f"{offer.principal_fen / 100:.2f}",
        "term_months": term_months or (offer.explanation.term_months if offer.explanation else 12),
        "terms_allowed": [3, 6, 9, 12, 18, 24, 36],
    }
    return _render(request, "farmer_offer.html", context)


@router.get("/farmer/offers/{offer_id}/confirm", response_class=HTMLResponse)
def farmer_offer_confirm(
    request: Request,
    session: SessionDep,
    page: FarmerPage,
    offer_id: str,
    action: Annotated[str, Query(pattern="^(accept|decline)$")],
) -> Response:
    """Before accepting or declining: the terms once more and one button (请确认)."""
    offer = loans.offer_detail(session, request.app.state.engine, page.org, offer_id)
    context = {"offer": offer, "action": action, "csrf": page.csrf}
    return _render(request, "farmer_confirm.html", context)


@router.post("/farmer/offers/{offer_id}/accept", response_class=HTMLResponse)
def farmer_offer_accept(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: FarmerPage,
    offer_id: str,
    csrf: Annotated[str, Form(max_length=200)],
) -> Response:
    """Accept: the service signs the terms with my organisation's key."""
    check_csrf(page, csrf)
    engine = request.app.state.engine
    loans.accept_with_my_key(session, engine, chain, settings, page.org, offer_id)
    return see_other(f"/farmer/offers/{offer_id}?done=accepted")


@router.post("/farmer/offers/{offer_id}/decline", response_class=HTMLResponse)
def farmer_offer_decline(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: FarmerPage,
    offer_id: str,
    csrf: Annotated[str, Form(max_length=200)],
) -> Response:
    """Decline the offer."""
    check_csrf(page, csrf)
    engine = request.app.state.engine
    loans.decline(session, engine, chain, settings, page.org, offer_id)
    return see_other(f"/farmer/offers/{offer_id}?done=declined")


@router.get("/farmer/loans/{escrow}", response_class=HTMLResponse)
def farmer_loan(
    request: Request, session: SessionDep, chain: ChainDep, page: FarmerPage, escrow: str
) -> Response:
    """My loan: budgets, payments, schedule and next due, repayments, left (我的贷款)."""
    loan = loans.my_loan(session, request.app.state.engine, chain, page.org, escrow)
    return _render(request, "farmer_loan.html", {"loan": loan, "now": datetime.now(CHINA)})


@router.get("/farmer/loans/{escrow}/repay", response_class=HTMLResponse)
def farmer_repay_confirm(
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    page: FarmerPage,
    escrow: str,
    amount_yuan: Annotated[str, Query(max_length=20)],
) -> Response:
    """Before repaying: the amount, from which wallet, what will be left (请确认)."""
    loan = loans.my_loan(session, request.app.state.engine, chain, page.org, escrow)
    amount = yuan_to_fen(amount_yuan)
    context = {"loan": loan, "amount_fen": amount, "csrf": page.csrf, "action": "repay"}
    return _render(request, "farmer_confirm.html", context)


@router.post("/farmer/loans/{escrow}/repay", response_class=HTMLResponse)
def farmer_repay(
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: FarmerPage,
    escrow: str,
    csrf: Annotated[str, Form(max_length=200)],
    amount_fen: Annotated[int, Form(ge=1, le=loans.MAX_FEN)],
) -> Response:
    """Repay from my wallet."""
    check_csrf(page, csrf)
    loans.repay(session, chain, settings, page.org, escrow, loans.RepayIn(amount_fen=amount_fen))
    return see_other(f"/farmer/loans/{escrow}?done=repaid")


@router.get("/farmer/privacy", response_class=HTMLResponse)
def farmer_privacy(
    request: Request, session: SessionDep, chain: ChainDep, page: FarmerPage
) -> Response:
    """My consents and who read my profile when (授权与查询)."""
    params = PageParams(limit=LIST_LIMIT, offset=0)
    consents = service.consents(session, chain, page.org, params)
    reads = loans.profile_reads(session, request.app.state.engine, page.org, params)
    return _render(request, "farmer_privacy.html", {"consents": consents, "reads": reads})


@router.get("/farmer/consents/{lender_org_id}/revoke", response_class=HTMLResponse)
def farmer_revoke_confirm(
    request: Request,
    session: SessionDep,
    page: FarmerPage,
    lender_org_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
) -> Response:
    """Before withdrawing a consent: which lender, what it means (请确认)."""
    lender = session.get(Organisation, lender_org_id)
    if lender is None or lender.role != Role.LENDER:
        raise NotFound(f"organisation {lender_org_id} is not a lender")
    context = {"lender": lender, "csrf": page.csrf, "action": "revoke"}
    return _render(request, "farmer_confirm.html", context)


@router.post("/farmer/consents/{lender_org_id}/revoke", response_class=HTMLResponse)
def farmer_revoke(
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: FarmerPage,
    lender_org_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
    csrf: Annotated[str, Form(max_length=200)],
) -> Response:
    """Withdraw a lender's consent at once (signed with my key, relayed)."""
    check_csrf(page, csrf)
    service.revoke(session, chain, settings, page.org, lender_org_id)
    return see_other("/farmer/privacy?done=revoked")

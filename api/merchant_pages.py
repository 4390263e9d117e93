"""Merchant pages: loan payments received by loan and category (cookie session of /login)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import merchant_service
from api.chain_dep import ChainDep
from api.coop_pages import COOKIE
from api.deps import SessionDep
from api.lender_pages import error_page
from api.models import Role
from api.pages import templates
from api.pagination import PageParams
from api.security import authenticate

router = APIRouter(include_in_schema=False)
PAYMENTS_PER_PAGE = 100


@router.get("/merchant/payments", response_class=HTMLResponse, response_model=None)
def merchant_payments_page(request: Request, session: SessionDep, chain: ChainDep) -> Response:
    """Loan payments received, by loan and category."""
    key = request.cookies.get(COOKIE, "")
    org = authenticate(session, key) if key else None
    if org is None:
        return RedirectResponse("/login", 303)
    if org.role != Role.MERCHANT:
        message = f"此页面仅供商户使用 · this page is for merchants; you are {org.role.value}"
        return error_page(request, 403, message)
    try:
        page = merchant_service.payments(chain, org, PageParams(limit=PAYMENTS_PER_PAGE, offset=0))
    except HTTPException as exc:
        return error_page(request, exc.status_code, str(exc.detail))
    return templates.TemplateResponse(request, "merchant_payments.html", {"org": org, "page": page})

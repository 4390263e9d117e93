"""Merchant pages: loan payments received by loan and category (cookie session of /login)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.cooperatives.pages import COOKIE
from api.core.deps import ChainDep, SessionDep
from api.core.models import Role
from api.core.pagination import PageParams
from api.core.security import authenticate
from api.core.templates import templates
from api.lenders.pages import error_page
from api.merchants import service as merchant_service

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

"""Merchant pages: loan payments received by loan and category (session of /login)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from api.core.deps import ChainDep
from api.core.models import Role
from api.core.pages import page_router
from api.core.pagination import PageParams
from api.core.sessions import PageSession, page_session
from api.core.templates import templates
from api.merchants import service

router = page_router()
PAYMENTS_PER_PAGE = 100


@router.get("/merchant/payments", response_class=HTMLResponse)
def merchant_payments_page(
    request: Request,
    chain: ChainDep,
    page: Annotated[PageSession, Depends(page_session(Role.MERCHANT))],
) -> HTMLResponse:
    """Loan payments received, by loan and category."""
    payments = service.payments(chain, page.org, PageParams(limit=PAYMENTS_PER_PAGE, offset=0))
    context = {"org": page.org, "page": payments}
    return templates.TemplateResponse(request, "merchant_payments.html", context)

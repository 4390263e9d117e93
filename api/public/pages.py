"""Server-rendered pages (Jinja2): bilingual, mobile-friendly, no front-end build."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from api.core.deps import ChainDep, SettingsDep
from api.core.templates import templates
from api.public.trace import parse_lot, public_trace, qr_svg

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Landing page with a lot lookup."""
    return templates.TemplateResponse(request, "home.html", {})


@router.get("/trace/{lot}", response_class=HTMLResponse)
def trace_page(request: Request, lot: str, chain: ChainDep, settings: SettingsDep) -> HTMLResponse:
    """The public trace page a package's QR code opens."""
    try:
        lot_id = parse_lot(lot)
        trace = public_trace(chain, lot_id)
    except HTTPException as exc:
        context = {"status": exc.status_code, "detail": exc.detail}
        return templates.TemplateResponse(request, "error.html", context, exc.status_code)
    url = f"{settings.public_base_url}/trace/{trace.lot}"
    context = {"trace": trace, "qr": Markup(qr_svg(url)), "url": url}
    return templates.TemplateResponse(request, "trace.html", context)

"""Public pages: the landing page with a lot lookup, and the trace page a QR code opens."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from api.core.deps import ChainDep, SettingsDep
from api.core.links import base_url
from api.core.pages import page_router
from api.core.templates import templates
from api.public.trace import parse_lot, public_trace, qr_svg

router = page_router()


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Landing page with a lot lookup."""
    return templates.TemplateResponse(request, "home.html", {})


@router.get("/trace/{lot}", response_class=HTMLResponse)
def trace_page(request: Request, lot: str, chain: ChainDep, settings: SettingsDep) -> HTMLResponse:
    """The public trace page a package's QR code opens."""
    trace = public_trace(chain, parse_lot(lot))
    url = f"{base_url(request, settings.public_base_url)}/trace/{trace.lot}"
    context = {"trace": trace, "qr": Markup(qr_svg(url)), "url": url}
    return templates.TemplateResponse(request, "trace.html", context)

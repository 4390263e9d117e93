"""Public pages: the landing page with a lot lookup, and the trace page a QR code opens."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlmodel import Session, col, func, select

from api.core.demo_status import indexed_so_far, read_status
from api.core.deps import ChainDep, SessionDep, SettingsDep
from api.core.links import base_url
from api.core.models import Organisation
from api.core.pages import page_router
from api.core.templates import templates
from api.public.resolver import package_url, packed_as
from api.public.trace import parse_lot, public_trace, qr_svg

router = page_router()


@router.get("/", response_class=HTMLResponse)
def home(request: Request, settings: SettingsDep) -> HTMLResponse:
    """Landing page with a lot lookup (查询茶叶批次), and a demo's progress where one runs."""
    demo = read_status(settings.data_dir)
    indexed = indexed_so_far(settings.database_url) if demo else None
    return templates.TemplateResponse(request, "home.html", {"demo": demo, "indexed": indexed})


@router.get("/trace/{lot}", response_class=HTMLResponse)
def trace_page(
    request: Request, lot: str, chain: ChainDep, settings: SettingsDep, session: SessionDep
) -> HTMLResponse:
    """The public trace page a package's QR code opens (溯源)."""
    key = parse_lot(lot)
    trace = public_trace(chain, key)
    url = package_url(session, base_url(request, settings.public_base_url), key)
    names = organisation_names(session, trace.cooperatives)
    packed = packed_as(session, key)
    context = {
        "trace": trace,
        "qr": Markup(qr_svg(url)),
        "url": url,
        "names": names,
        "product": packed[1] if packed else None,
        "lot_code": packed[0].lot_code if packed else None,
    }
    return templates.TemplateResponse(request, "trace.html", context)


def organisation_names(session: Session, addresses: list[str]) -> dict[str, str]:
    """Organisations' names by lower-case chain address (cooperatives are public, not people)."""
    wanted = {a.lower() for a in addresses}
    if not wanted:
        return {}
    address = func.lower(col(Organisation.chain_address))
    orgs = session.exec(select(Organisation).where(address.in_(wanted), col(Organisation.active)))
    return {o.chain_address.lower(): o.name for o in orgs}

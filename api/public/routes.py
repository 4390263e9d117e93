"""Public: lot lineage for consumers scanning a package's QR code (no personal data)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.core.deps import ChainDep, SessionDep
from api.core.links import BaseUrlDep
from api.core.types import Id32Path
from api.public.resolver import package_url
from api.public.trace import PublicTrace, parse_lot, public_trace, qr_svg

router = APIRouter(prefix="/public", tags=["public"])


@router.get("/lots/{lot}/trace", response_model=PublicTrace)
def trace_lot(lot: Id32Path, chain: ChainDep) -> PublicTrace:
    """A lot's lineage back to its harvests: cooperatives, seasons, grades, quality, recalls."""
    return public_trace(chain, parse_lot(lot))


@router.get("/lots/{lot}/qr.svg", response_class=Response)
def lot_qr(lot: Id32Path, base: BaseUrlDep, session: SessionDep) -> Response:
    """The QR code printed on the lot's packages: its Digital Link once packed, else its trace.

    A lot packed as a product (a GTIN and a lot code) carries `{base}/01/{gtin}/10/{lot code}`
    (api/public/resolver.py); any other lot its trace page's address.
    """
    svg = qr_svg(package_url(session, base, parse_lot(lot)))
    return Response(svg, media_type="image/svg+xml")

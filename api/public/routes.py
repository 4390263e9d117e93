"""Public: lot lineage for consumers scanning a package's QR code (no personal data)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.core.deps import ChainDep
from api.core.links import BaseUrlDep
from api.core.types import Id32Path
from api.public.trace import PublicTrace, parse_lot, public_trace, qr_svg

router = APIRouter(prefix="/public", tags=["public"])


@router.get("/lots/{lot}/trace", response_model=PublicTrace)
def trace_lot(lot: Id32Path, chain: ChainDep) -> PublicTrace:
    """A lot's lineage back to its harvests: cooperatives, seasons, grades, quality, recalls."""
    return public_trace(chain, parse_lot(lot))


@router.get("/lots/{lot}/qr.svg", response_class=Response)
def lot_qr(lot: Id32Path, base: BaseUrlDep) -> Response:
    """The QR code printed on the lot's packages, pointing at its trace page."""
    lot_id = "0x" + parse_lot(lot).hex()
    svg = qr_svg(f"{base}/trace/{lot_id}")
    return Response(svg, media_type="image/svg+xml")

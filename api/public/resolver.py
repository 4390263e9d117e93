"""A GS1 Digital Link resolver for our packages: `/01/{gtin}` and `/01/{gtin}/10/{lot code}`.

A package's QR code carries `{base}/01/{gtin14}/10/{lot code}` once its lot is packed as a
product (api/cooperatives/products.py), else the trace page's address (`package_url`). The
resolver answers as the GS1 resolver standard (1.1) describes:

* a browser (no `linkType`, no JSON in `Accept`) is sent (307) to the default link, the lot's
  trace page `/trace/0x…` (a product alone: its product information page);
* `linkType=gs1:traceability` (or `https://gs1.org/voc/traceability`) is sent (307) to the
  lot's EPCIS document (`epcis_document_path`), `gs1:pip` to the product page;
* `linkType=all` or linkset/JSON in `Accept` gets the RFC 9264 linkset of every link
  (`application/linkset+json`);
* a link type we do not have falls back to the default link, as the standard asks.

A GTIN with a bad check digit or a lot code outside GS1 charset 82 is 400; an unknown GTIN or
lot code 404, each with a message (as JSON to a client asking for JSON, else the error page).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from api.core.deps import SessionDep
from api.core.errors import ROOTS, NotFound, body_of, status_of
from api.core.links import BaseUrlDep
from api.core.models import Organisation, Product, ProductLot
from api.core.pages import page_router
from api.core.templates import templates
from traceability.digital_link import (
    ALL,
    DEFAULT_LINK,
    GS1_VOC,
    PIP,
    TRACEABILITY,
    DigitalLink,
    digital_link,
    link_type,
    parse_digital_link,
)

router = page_router()
LINKSET = "application/linkset+json"
# What a machine asks for in Accept; a browser's Accept names text/html.
_MACHINE = ("application/linkset+json", "application/json", "application/ld+json")
# Public answers any web app may read (GS1 resolver standard 1.1: resolvers allow every origin).
_SHARED = {"Vary": "Accept", "Access-Control-Allow-Origin": "*"}
LinkType = Annotated[
    str | None,
    Query(alias="linkType", max_length=200, description="gs1:traceability, gs1:pip, all, ..."),
]


def epcis_document_path(lot: str) -> str:
    """Where a lot's EPCIS document is served (`api.epcis.routes.lot_epcis_document`; a test
    follows the redirect to it)."""
    return f"/epcis/lots/{lot}/document"


def packed_as(session: Session, lot: bytes) -> tuple[ProductLot, Product] | None:
    """The product a lot is packed as, with its lot code (None: not packed)."""
    row = session.exec(
        select(ProductLot, Product)
        .join(Product, col(Product.gtin) == col(ProductLot.gtin))
        .where(ProductLot.lot == "0x" + lot.hex())
    ).first()
    return (row[0], row[1]) if row is not None else None


def package_url(session: Session, base: str, lot: bytes) -> str:
    """What a lot's QR code carries: its Digital Link once packed as a product, else the trace
    page (the one choice every QR code of a lot goes through)."""
    packed = packed_as(session, lot)
    if packed is None:
        return f"{base}/trace/0x{lot.hex()}"
    return digital_link(base, packed[0].gtin, packed[0].lot_code)


def _wants_machine(request: Request) -> bool:
    """A client asking for JSON (a linkset) rather than a page."""
    accept = request.headers.get("accept", "").lower()
    return "text/html" not in accept and any(kind in accept for kind in _MACHINE)


def _link(href: str, title: str, kind: str) -> dict[str, Any]:
    """One target of a linkset relation."""
    return {"href": href, "title": title, "type": kind, "hreflang": ["zh", "en"]}


def _linkset(anchor: str, links: dict[str, dict[str, Any]]) -> JSONResponse:
    """The RFC 9264 linkset of `anchor` (relations named by their GS1 vocabulary URIs)."""
    context = {GS1_VOC + rel: [target] for rel, target in links.items()}
    body = {"linkset": [{"anchor": anchor, **context}]}
    return JSONResponse(body, media_type=LINKSET, headers=_SHARED)


def _redirect(url: str, anchor: str) -> RedirectResponse:
    """307 to a link, naming the linkset of everything the identifier has (GS1 resolver 1.1)."""
    linkset = f'<{anchor}?linkType=all>; rel="linkset"; type="{LINKSET}"'
    return RedirectResponse(url, 307, headers={"Link": linkset, **_SHARED})


def _product(session: Session, gtin: str) -> Product:
    """The product of a GTIN, else 404."""
    product = session.exec(select(Product).where(Product.gtin == gtin)).first()
    if product is None:
        raise NotFound(f"no product here has GTIN {gtin}: check the number on the package")
    return product


def _packed(session: Session, link: DigitalLink) -> ProductLot:
    """The lot a (GTIN, lot code) names, else 404."""
    row = session.exec(
        select(ProductLot).where(ProductLot.gtin == link.gtin, ProductLot.lot_code == link.lot_code)
    ).first()
    if row is None:
        raise NotFound(f"product {link.gtin} has no lot {link.lot_code!r}: check the lot code")
    return row


def _raw_path(request: Request) -> str:
    """The path as sent, still percent-encoded (an encoded `/` stays inside its lot code)."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes):
        return raw.decode("latin-1").split("?", 1)[0]
    return quote(request.url.path)


def _product_page(request: Request, session: Session, product: Product, base: str) -> Response:
    """The product information page (产品信息)."""
    coop = session.get(Organisation, product.cooperative_id)
    context = {
        "product": product,
        "cooperative": coop.name if coop is not None else None,
        "link": digital_link(base, product.gtin),
    }
    return templates.TemplateResponse(request, "product.html", context)


def _resolve(request: Request, session: Session, base: str, wanted: str | None) -> Response:
    """The answer to one Digital Link request (see the module's docstring)."""
    link = parse_digital_link("https://resolver" + _raw_path(request))
    product = _product(session, link.gtin)
    kind = link_type(wanted) if wanted else None
    product_url = digital_link(base, product.gtin)
    names = f"{product.name_zh} {product.name_en}"
    if link.lot_code is None:
        pip = _link(product_url, names, "text/html")
        if kind == ALL or (kind is None and _wants_machine(request)):
            return _linkset(product_url, {PIP: pip, DEFAULT_LINK: pip})
        if kind == TRACEABILITY:
            raise NotFound(f"traceability is per lot: add /10/{{lot code}} to GTIN {link.gtin}")
        return _product_page(request, session, product, base)
    packed = _packed(session, link)
    anchor = digital_link(base, link.gtin, link.lot_code)
    trace = f"{base}/trace/{packed.lot}"
    epcis = base + epcis_document_path(packed.lot)
    if kind == ALL or (kind is None and _wants_machine(request)):
        return _linkset(
            anchor,
            {
                DEFAULT_LINK: _link(trace, f"茶叶溯源 Tea lot trace · {names}", "text/html"),
                PIP: _link(product_url, names, "text/html"),
                TRACEABILITY: _link(epcis, "EPCIS events of the lot", "application/ld+json"),
            },
        )
    targets = {TRACEABILITY: epcis, PIP: product_url}
    return _redirect(targets.get(kind or DEFAULT_LINK, trace), anchor)


@router.get("/01/{identifiers:path}", response_class=HTMLResponse)
def resolve(
    request: Request, session: SessionDep, base: BaseUrlDep, wanted: LinkType = None
) -> Response:
    """GS1 Digital Link resolver (产品与批次): /01/{gtin} and /01/{gtin}/10/{lot code}."""
    try:
        return _resolve(request, session, base, wanted)
    except ROOTS as exc:
        if not _wants_machine(request) and not wanted:
            raise  # a person: the error page
        return JSONResponse(body_of(exc), status_of(exc))

"""Cooperative pages for products and packed lots: register a GTIN, pack a lot, retire.

One page (`/coop/products`) with three forms, each carrying the session's CSRF token; a refused
form shows the page again with the message and what was typed (api.core.pages.answer).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.cooperatives import products
from api.cooperatives.products import GtinPath, ProductCreate, ProductLotIn
from api.core.deps import SessionDep, SettingsDep
from api.core.errors import ROOTS
from api.core.labels import FLUSH
from api.core.links import base_url
from api.core.models import Role
from api.core.pages import answer, page_router
from api.core.pagination import PageParams
from api.core.sessions import PageSession, check_csrf, page_session
from api.core.settings import ApiSettings
from api.core.templates import templates
from traceability.models import Grade

router = page_router()
CoopPage = Annotated[PageSession, Depends(page_session(Role.COOPERATIVE))]
Csrf = Annotated[str, Form(max_length=64)]
PRODUCTS_ON_PAGE = 200


def _errors(exc: ValidationError) -> list[str]:
    """A form's validation errors as lines a clerk reads."""
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


def _page(
    request: Request,
    session: SessionDep,
    settings: ApiSettings,
    page: PageSession,
    code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """The products page: products, the forms, the newest packed lots."""
    base = base_url(request, settings.public_base_url)
    listed = products.list_products(
        session, page.org, PageParams(limit=PRODUCTS_ON_PAGE, offset=0), base, retired=True
    )
    try:
        lots = products.own_lots(settings, page.org)
    except ROOTS:  # nothing indexed yet: the lot list is empty, the rest works
        lots = []
    context = {
        "coop": page.org,
        "csrf": page.csrf,
        "products": listed.items,
        "active": [p for p in listed.items if p.retired_at is None],
        "lots": lots,
        "packed": products.packed_lots(session, page.org, base),
        "grades": list(Grade),
        "flushes": FLUSH,
        "form": {},
        "errors": [],
        **extra,
    }
    return templates.TemplateResponse(request, "coop_products.html", context, code)


@router.get("/coop/products", response_class=HTMLResponse)
def coop_products(
    request: Request, session: SessionDep, settings: SettingsDep, page: CoopPage
) -> HTMLResponse:
    """Products with their GTINs and the lots packed as them (产品条码)."""
    return _page(request, session, settings, page)


@router.post("/coop/products", response_class=HTMLResponse)
def coop_create_product(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    page: CoopPage,
    gtin: Annotated[str, Form(max_length=40)],
    name_zh: Annotated[str, Form(max_length=200)],
    name_en: Annotated[str, Form(max_length=200)],
    csrf: Csrf,
    grade: Annotated[str, Form(max_length=10)] = "",
    flush: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Register a product from the form."""
    check_csrf(page, csrf)
    form = {"gtin": gtin, "name_zh": name_zh, "name_en": name_en, "grade": grade, "flush": flush}
    try:
        body = ProductCreate.model_validate(
            {**form, "grade": int(grade) if grade.isdigit() else None, "flush": flush or None}
        )
    except ValidationError as exc:
        return _page(request, session, settings, page, 422, form=form, errors=_errors(exc))
    base = base_url(request, settings.public_base_url)
    return answer(
        lambda: products.create_product(session, page.org, body, base),
        "/coop/products",
        lambda error, code: _page(
            request, session, settings, page, code, form=form, errors=[error]
        ),
        rollback=session,
    )


@router.post("/coop/products/lots", response_class=HTMLResponse)
def coop_pack_lot(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    page: CoopPage,
    lot: Annotated[str, Form(max_length=80)],
    gtin: Annotated[str, Form(max_length=40)],
    csrf: Csrf,
    lot_code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Pack one of your lots as one of your products from the form."""
    check_csrf(page, csrf)
    form = {"lot": lot.strip(), "pack_gtin": gtin, "lot_code": lot_code}
    try:
        body = ProductLotIn.model_validate({"gtin": gtin, "lot_code": lot_code.strip() or None})
    except ValidationError as exc:
        return _page(request, session, settings, page, 422, form=form, errors=_errors(exc))
    base = base_url(request, settings.public_base_url)
    return answer(
        lambda: products.assign_lot(session, settings, page.org, lot.strip(), body, base),
        "/coop/products",
        lambda error, code: _page(
            request, session, settings, page, code, form=form, errors=[error]
        ),
        rollback=session,
    )


@router.post("/coop/products/{gtin}/retire", response_class=HTMLResponse)
def coop_retire_product(
    request: Request,
    gtin: GtinPath,
    session: SessionDep,
    settings: SettingsDep,
    page: CoopPage,
    csrf: Csrf,
) -> Response:
    """Retire a product from its button."""
    check_csrf(page, csrf)
    base = base_url(request, settings.public_base_url)
    return answer(
        lambda: products.retire_product(session, page.org, gtin, base),
        "/coop/products",
        lambda error, code: _page(request, session, settings, page, code, errors=[error]),
        rollback=session,
    )

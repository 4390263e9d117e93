"""Processor and distributor pages: find a lot, see its farmer shares from lineage, commit them
(its maker) and pay for it (its holder or first buyer), each behind a confirmation page
(session of /login, CSRF on every form)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

import api.core.labels  # noqa: F401  (registers the label filters)
from api.core.deps import ChainDep, SessionDep, SettingsDep
from api.core.errors import ROOTS, Invalid
from api.core.ids import same_address
from api.core.models import Organisation, Role
from api.core.pages import answer, message_page, page_router, see_other
from api.core.pagination import PageParams
from api.core.sessions import PageSession, check_csrf, page_session
from api.core.suppliers import PartnerOut, SupplierIn, set_supplier, suppliers
from api.core.templates import templates
from api.core.types import MAX_FEN, MAX_ROW_ID, Id32Path
from api.supply_chain import settlement
from api.supply_chain.lots import my_lots, with_settlement
from api.supply_chain.settlement import SettleIn

router = page_router()
SETTLEMENTS_SHOWN = 50
SupplyPage = Annotated[
    PageSession, Depends(page_session(Role.PROCESSOR, Role.DISTRIBUTOR, Role.COOPERATIVE))
]
AmountText = Annotated[str, Query(min_length=1, max_length=20, description="yuan, e.g. 1280.50")]


PARTIES = ("maker", "holder", "first_buyer")


class Done(StrEnum):
    """What the lot page reports after an action."""

    COMMIT = "commit"
    SETTLE = "settle"


DONE = {
    Done.COMMIT: "份额已提交上链 Shares committed on chain",
    Done.SETTLE: "货款已结算给农户 Sale settled to the farmers",
}


def fen_of(amount: str) -> int:
    """Fen from yuan typed by a clerk ("1280", "1280.5", "1,280.50"); 422 otherwise."""
    try:
        value = Decimal(amount.replace(",", "").replace("¥", "").strip())
    except InvalidOperation as exc:
        raise Invalid(f"金额无效 · not an amount in yuan: {amount!r}") from exc
    fen = value * 100
    if not value.is_finite() or fen != fen.to_integral_value() or not 0 < fen <= MAX_FEN:
        raise Invalid(
            f"金额须为正数，最多两位小数 · a positive amount, at most 2 decimals: {amount!r}"
        )
    return int(fen)


SUPPLIER_DONE = {
    True: "已接受该合作社交售鲜叶 · You now accept that cooperative's deliveries",
    False: "已停止接受该合作社交售 · You no longer accept that cooperative's deliveries",
}


def _suppliers(session: Session, chain: Any, org: Organisation) -> list[PartnerOut] | None:
    """The cooperatives a factory or distributor may take leaf from (None: not its page's
    business, or the node is away)."""
    if org.role not in (Role.PROCESSOR, Role.DISTRIBUTOR):
        return None
    try:
        return suppliers(session, chain, org)
    except ROOTS:
        return None


@router.get("/supply", response_class=HTMLResponse)
def supply_home(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: SupplyPage,
    accepted: Annotated[bool | None, Query()] = None,
) -> HTMLResponse:
    """Your lots to settle, a lot found by id, the cooperatives you take leaf from (茶批结算).

    Lots you made or bought first; for a factory or distributor, each cooperative with a
    button to accept or stop its deliveries (供货合作社).
    """
    lots = with_settlement(chain, my_lots(settings, page.org))
    context = {
        "org": page.org,
        "lots": lots,
        "csrf": page.csrf,
        "suppliers": _suppliers(session, chain, page.org),
        "done": None if accepted is None else SUPPLIER_DONE[accepted],
    }
    return templates.TemplateResponse(request, "supply_home.html", context)


@router.post("/supply/suppliers", response_class=HTMLResponse)
def supply_set_supplier(
    request: Request,
    csrf: Annotated[str, Form(max_length=64)],
    cooperative_org_id: Annotated[int, Form(ge=1, le=MAX_ROW_ID)],
    accepted: Annotated[bool, Form()],
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: SupplyPage,
) -> Response:
    """Accept (or stop accepting) a cooperative's deliveries, then back to the supply page."""
    check_csrf(page, csrf)
    body = SupplierIn(cooperative_org_id=cooperative_org_id, accepted=accepted)
    return answer(
        lambda: set_supplier(session, chain, settings, page.org, body),
        f"/supply?accepted={str(accepted).lower()}#suppliers",
        partial(message_page, request),
    )


@router.get("/supply/find")
def supply_find(lot: Annotated[str, Query(max_length=100)], page: SupplyPage) -> Response:
    """The lot page of the id typed in."""
    return see_other(f"/supply/lots/{lot.strip()}")


def _lot_context(chain: Any, page: PageSession, lot: str, amount_fen: int | None) -> dict[str, Any]:
    """What the lot and confirmation pages show."""
    preview = settlement.preview(chain, page.org, lot, amount_fen)
    me = page.org.chain_address
    return {
        "org": page.org,
        "csrf": page.csrf,
        "p": preview,
        "is_maker": same_address(me, preview.maker),
        "may_pay": any(same_address(me, x) for x in (preview.holder, preview.first_buyer)),
    }


def org_name(session: Session, address: str | None) -> str | None:
    """The name of the organisation signing with `address` (None if it is not one of ours)."""
    if address is None:
        return None
    query = select(Organisation).where(col(Organisation.chain_address) == address)
    found = session.exec(query).first()
    return None if found is None else found.name


@router.get("/supply/lots/{lot}", response_class=HTMLResponse)
def supply_lot(
    request: Request,
    lot: Id32Path,
    chain: ChainDep,
    session: SessionDep,
    page: SupplyPage,
    done: Annotated[Done | None, Query()] = None,
) -> HTMLResponse:
    """A lot's farmer shares, their commitment, its settlements and the actions (茶批)."""
    context = _lot_context(chain, page, lot, None)
    sales = settlement.settlements(
        chain, page.org, lot, PageParams(limit=SETTLEMENTS_SHOWN, offset=0)
    )
    names = {who: org_name(session, getattr(context["p"], who)) for who in PARTIES}
    context |= {"sales": sales, "done": DONE[done] if done else None, "names": names}
    return templates.TemplateResponse(request, "supply_lot.html", context)


def _confirm_page(
    request: Request,
    chain: Any,
    page: PageSession,
    lot: str,
    action: Done,
    amount_fen: int | None = None,
    error: str | None = None,
    code: int = 200,
) -> HTMLResponse:
    """The confirmation page of an action on the lot, with the error of a failed attempt."""
    context = _lot_context(chain, page, lot, amount_fen) | {"action": action.value, "error": error}
    return templates.TemplateResponse(request, "supply_confirm.html", context, code)


@router.get("/supply/lots/{lot}/commit", response_class=HTMLResponse)
def supply_commit_page(
    request: Request, lot: Id32Path, chain: ChainDep, page: SupplyPage
) -> HTMLResponse:
    """The confirmation step of committing the shares (确认提交份额)."""
    return _confirm_page(request, chain, page, lot, Done.COMMIT)


@router.post("/supply/lots/{lot}/commit", response_class=HTMLResponse)
def supply_commit(
    request: Request,
    lot: Id32Path,
    csrf: Annotated[str, Form(max_length=64)],
    chain: ChainDep,
    settings: SettingsDep,
    page: SupplyPage,
) -> Response:
    """Commit the shares, then back to the lot page."""
    check_csrf(page, csrf)
    return answer(
        lambda: settlement.commit(chain, settings, page.org, lot),
        f"/supply/lots/{lot}?done=commit",
        lambda error, code: _confirm_page(
            request, chain, page, lot, Done.COMMIT, None, error, code
        ),
    )


@router.get("/supply/lots/{lot}/settle", response_class=HTMLResponse)
def supply_settle_page(
    request: Request, lot: Id32Path, amount: AmountText, chain: ChainDep, page: SupplyPage
) -> HTMLResponse:
    """The confirmation step of paying: the amount and each farmer's part (确认结算)."""
    return _confirm_page(request, chain, page, lot, Done.SETTLE, fen_of(amount))


@router.post("/supply/lots/{lot}/settle", response_class=HTMLResponse)
def supply_settle(
    request: Request,
    lot: Id32Path,
    csrf: Annotated[str, Form(max_length=64)],
    amount_fen: Annotated[int, Form(gt=0, le=MAX_FEN)],
    chain: ChainDep,
    settings: SettingsDep,
    page: SupplyPage,
) -> Response:
    """Pay for the lot, then back to the lot page."""
    check_csrf(page, csrf)
    return answer(
        lambda: settlement.settle(chain, settings, page.org, lot, SettleIn(amount_fen=amount_fen)),
        f"/supply/lots/{lot}?done=settle",
        lambda error, code: _confirm_page(
            request, chain, page, lot, Done.SETTLE, amount_fen, error, code
        ),
    )

"""Merchant pages: the shop's home (orders waiting, payments received, approvals), every action
on an order behind a confirmation page (session of /login, CSRF on every form)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

import api.core.labels  # noqa: F401  (registers the label filters)
from api.core.deps import ChainDep, SessionDep, SettingsDep
from api.core.models import Role
from api.core.pages import answer, page_router
from api.core.pagination import MAX_OFFSET, Page, PageParams
from api.core.sessions import PageSession, check_csrf, page_session
from api.core.templates import templates
from api.core.types import Text
from api.merchants import service
from api.merchants.service import MAX_MATCHES, OrderView
from chain.clock import chain_now

router = page_router()
ORDERS_ON_HOME = 50
PAYMENTS_ON_HOME = 10
PAYMENTS_PER_PAGE = 50
MerchantPage = Annotated[PageSession, Depends(page_session(Role.MERCHANT))]
OrderId = Annotated[int, Path(ge=1, le=2**256 - 1)]


class Action(StrEnum):
    """What a shop can do with an order waiting for it."""

    ACCEPT = "accept"
    CONFIRM = "confirm"
    DECLINE = "decline"


# (Chinese, English, the question the confirmation page asks, what it means)
ACTIONS = {
    Action.ACCEPT: ("接单", "Take the order", "确认接单？ Take this order?",
                    "接单后农户不能取消，请在送货后确认送达。 Once taken, the farmer cannot "
                    "cancel it; confirm delivery after you deliver."),
    Action.CONFIRM: ("确认送达", "Confirm delivery", "确认已送达？ Confirm delivery?",
                     "确认后贷款立即向您付款。 The loan pays you as soon as you confirm."),
    Action.DECLINE: ("拒绝", "Decline", "确认拒绝此订单？ Decline this order?",
                     "订单金额退回农户的贷款预算。 The amount goes back to the farmer's loan "
                     "budget."),
}  # fmt: skip
DONE = {
    Action.ACCEPT: "已接单 Order taken",
    Action.CONFIRM: "已确认送达，货款已到账 Delivery confirmed, payment received",
    Action.DECLINE: "已拒绝订单 Order declined",
}


def _actions_for(order: service.MerchantOrder) -> list[Action]:
    """The buttons an order shows: take (pending, merchant-confirmed), confirm, decline."""
    if order.status not in ("pending", "accepted"):
        return []
    if order.mode != "merchant_confirms":
        return [Action.DECLINE]
    take = [Action.ACCEPT] if order.status == "pending" else []
    return [*take, Action.CONFIRM, Action.DECLINE]


templates.env.globals["merchant_actions"] = _actions_for
templates.env.globals["merchant_action_names"] = ACTIONS


@router.get("/merchant", response_class=HTMLResponse)
def merchant_home(
    request: Request,
    chain: ChainDep,
    session: SessionDep,
    page: MerchantPage,
    done: Annotated[Action | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Orders waiting for the shop, the latest payments, approvals (商户工作台)."""
    org = page.org
    waiting = service.orders(
        chain, session, org, OrderView.OPEN, PageParams(limit=ORDERS_ON_HOME, offset=offset)
    )
    paid = service.received(chain, session, org, PageParams(limit=PAYMENTS_ON_HOME, offset=0))
    context: dict[str, Any] = {
        "org": org,
        "waiting": waiting,
        "paid": paid,
        "approvals": service.approvals(chain, org),
        "now": chain_now(chain.w3),  # approvals expire by the chain's clock
        "done": DONE[done] if done else None,
    }
    return templates.TemplateResponse(request, "merchant_home.html", context)


@router.get("/merchant/payments", response_class=HTMLResponse)
def merchant_payments_page(
    request: Request,
    chain: ChainDep,
    session: SessionDep,
    page: MerchantPage,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Every payment received, newest first, with farmer, cooperative, invoice (收款记录)."""
    paid = service.received(
        chain, session, page.org, PageParams(limit=PAYMENTS_PER_PAGE, offset=offset)
    )
    context = {"org": page.org, "page": paid}
    return templates.TemplateResponse(request, "merchant_payments.html", context)


@router.get("/merchant/orders/{escrow}/{order_id}/{action}", response_class=HTMLResponse)
def merchant_confirm_page(
    request: Request,
    escrow: str,
    order_id: OrderId,
    action: Action,
    chain: ChainDep,
    session: SessionDep,
    page: MerchantPage,
) -> HTMLResponse:
    """Confirmation step of take, confirm delivery or decline: the order, yes or back (请确认)."""
    order = service.one_order(chain, session, page.org, escrow, order_id)
    return _confirm_page(request, page, order, action)


def _confirm_page(
    request: Request,
    page: PageSession,
    order: service.MerchantOrder,
    action: Action,
    error: str | None = None,
    code: int = 200,
) -> HTMLResponse:
    """The confirmation page, with the error of a failed attempt if any."""
    context = {
        "org": page.org,
        "csrf": page.csrf,
        "order": order,
        "action": action.value,
        "names": ACTIONS[action],
        "allowed": action in _actions_for(order),
        "error": error,
    }
    return templates.TemplateResponse(request, "merchant_confirm.html", context, code)


@router.post("/merchant/orders/{escrow}/{order_id}/{action}", response_class=HTMLResponse)
def merchant_act(
    request: Request,
    escrow: str,
    order_id: OrderId,
    action: Action,
    csrf: Annotated[str, Form(max_length=64)],
    chain: ChainDep,
    session: SessionDep,
    settings: SettingsDep,
    page: MerchantPage,
) -> Response:
    """Do the confirmed action, then back to the home page with what was done."""
    check_csrf(page, csrf)
    act = {
        Action.ACCEPT: service.accept,
        Action.CONFIRM: service.confirm_order,
        Action.DECLINE: service.decline,
    }[action]

    def failed(error: str, code: int) -> HTMLResponse:
        order = service.one_order(chain, session, page.org, escrow, order_id)
        return _confirm_page(request, page, order, action, error, code)

    return answer(
        lambda: act(chain, settings, page.org, escrow, order_id),
        f"/merchant?done={action.value}",
        failed,
    )


@router.get("/merchant/invoices", response_class=HTMLResponse)
def merchant_invoice_page(
    request: Request,
    chain: ChainDep,
    session: SessionDep,
    page: MerchantPage,
    number: Annotated[Text, Query(min_length=1, max_length=64)],
) -> HTMLResponse:
    """One of the shop's invoice numbers: its orders and the payments it brought (发票)."""
    match = service.find_invoice(chain, session, page.org, number)
    paid = Page(items=match.payments, total=len(match.payments), limit=MAX_MATCHES, offset=0)
    context = {"org": page.org, "match": match, "paid": paid}
    return templates.TemplateResponse(request, "merchant_invoice.html", context)

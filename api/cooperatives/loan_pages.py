"""Cooperative pages for members' loans: what is due, paying merchants, cancelling orders.

Every action is two steps: the form posts to a `.../confirm` page that shows what will be sent
(member, merchant and category by name, amount in yuan) and a confirm button; only that second
form sends anything. Errors of the first step come back on the same page with what was typed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from api.cooperatives import loans, members
from api.cooperatives.labels import LABELS
from api.cooperatives.loans import MemberLoanDetail, OrderCreate, OrderPlaced, PreviewRow
from api.cooperatives.roll_file import RollFileOut, area_centi_mu, register_roll_file
from api.cooperatives.schemas import FarmerCreate, FarmerPublic, PlotCreate
from api.core.deps import ChainDep, SessionDep, SettingsDep
from api.core.errors import ROOTS, Invalid, detail_of
from api.core.ids import hex32
from api.core.models import Farmer, Organisation, Plot, Role
from api.core.pages import answer, page_router
from api.core.pagination import PageParams
from api.core.sessions import PageSession, check_csrf, page_session
from api.core.templates import templates
from api.core.types import MAX_ROW_ID, mask_national_id
from chain.client import ChainClient
from lending.loans.contracts import MERCHANT_CATEGORIES

router = page_router()
CoopPage = Annotated[PageSession, Depends(page_session(Role.COOPERATIVE))]
Csrf = Annotated[str, Form(max_length=64)]
MAX_FILE = 256 * 1024


def _render(request: Request, page: PageSession, name: str, code: int = 200, **extra: Any):  # noqa: ANN202
    """A cooperative page with the labels and the form token."""
    context = {"coop": page.org, "csrf": page.csrf, "L": LABELS, **extra}
    return templates.TemplateResponse(request, name, context, code)


def _merchants(session: Session) -> list[Organisation]:
    """Active merchant organisations, by name."""
    query = select(Organisation).where(Organisation.role == Role.MERCHANT)
    return sorted((m for m in session.exec(query).all() if m.active), key=lambda m: m.name)


# ------------------------------------------------------------------------------------ loans


@router.get("/coop/loans", response_class=HTMLResponse)
def coop_loans(
    request: Request, session: SessionDep, chain: ChainDep, page: CoopPage
) -> HTMLResponse:
    """Members' loans and what is due, and the order file upload (社员贷款)."""
    listed = loans.list_member_loans(
        session, chain, page.org, PageParams(limit=500, offset=0), request.app.state.engine
    )
    return _render(request, page, "coop_loans.html", loans=listed, batch=None, preview=None)


def _loan_page(request: Request, session: Session, chain: ChainClient, page: PageSession,
               escrow: str, code: int = 200, **extra: Any) -> HTMLResponse:  # fmt: skip
    """A member's loan with the order form."""
    loan: MemberLoanDetail = loans.loan_detail(session, chain, page.org, escrow)
    context = {"loan": loan, "merchants": _merchants(session),
               "categories": MERCHANT_CATEGORIES, "form": {}, "errors": [], **extra}  # fmt: skip
    return _render(request, page, "coop_loan.html", code, **context)


def _loan_failed(
    request: Request,
    session: Session,
    chain: ChainClient,
    page: PageSession,
    escrow: str,
    form: dict[str, str],
) -> Callable[[str, int], HTMLResponse]:
    """The loan page again, with the error and what was typed."""
    return lambda error, code: _loan_page(
        request, session, chain, page, escrow, code, form=form, errors=[error]
    )


@router.get("/coop/loans/{escrow}", response_class=HTMLResponse)
def coop_loan(
    escrow: str, request: Request, session: SessionDep, chain: ChainDep, page: CoopPage
) -> HTMLResponse:
    """One member's loan: budgets, orders, what is due; pay, cancel (社员贷款)."""
    return _loan_page(request, session, chain, page, escrow)


def _order_body(session: Session, form: dict[str, str]) -> OrderCreate:
    """The order the form describes (Invalid with what is wrong)."""
    try:
        return OrderCreate(
            merchant=form["merchant"],
            category=form["category"],
            amount_fen=loans.yuan_to_fen(form["amount_yuan"]),
            invoice=form["invoice"],
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(f"{first['loc'][0]}: {first['msg']}") from exc


def _order_form(
    merchant: Annotated[str, Form(max_length=120)],
    category: Annotated[str, Form(max_length=64)],
    amount_yuan: Annotated[str, Form(max_length=20)],
    invoice: Annotated[str, Form(max_length=64)],
) -> dict[str, str]:
    """The order form as typed (both steps take it: the confirm page passes it on)."""
    return {"merchant": merchant, "category": category, "amount_yuan": amount_yuan,
            "invoice": invoice}  # fmt: skip


OrderForm = Annotated[dict[str, str], Depends(_order_form)]


@router.post("/coop/loans/{escrow}/orders/confirm", response_class=HTMLResponse)
def coop_order_confirm(
    escrow: str,
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    page: CoopPage,
    form: OrderForm,
    csrf: Csrf,
) -> Response:
    """Step 1: show the order to be sent, with a confirm button."""
    check_csrf(page, csrf)

    def checked() -> tuple[OrderCreate, str]:
        body = _order_body(session, form)
        return body, loans.find_merchant(session, body.merchant)

    def confirm(order: tuple[OrderCreate, str]) -> HTMLResponse:
        body, address = order
        loan = loans.loan_detail(session, chain, page.org, escrow)
        names = {m.chain_address.lower(): m.name for m in _merchants(session)}
        return _render(request, page, "coop_confirm.html", action=f"/coop/loans/{escrow}/orders",
                       back=f"/coop/loans/{escrow}", what="order", loan=loan, form=form,
                       merchant_name=names.get(address.lower(), address),
                       amount_fen=body.amount_fen)  # fmt: skip

    return answer(checked, confirm, _loan_failed(request, session, chain, page, escrow, form))


@router.post("/coop/loans/{escrow}/orders", response_class=HTMLResponse)
def coop_order(
    escrow: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: CoopPage,
    form: OrderForm,
    csrf: Csrf,
) -> Response:
    """Step 2: send the confirmed order and show the loan with its result."""
    check_csrf(page, csrf)

    def place() -> OrderPlaced:
        body = _order_body(session, form)
        return loans.place_order(session, chain, settings, page.org, escrow, body)

    return answer(
        place,
        lambda placed: _loan_page(request, session, chain, page, escrow, placed=placed),
        _loan_failed(request, session, chain, page, escrow, form),
    )


@router.post("/coop/loans/{escrow}/orders/{order_id}/cancel/confirm", response_class=HTMLResponse)
def coop_cancel_confirm(
    escrow: str,
    order_id: int,
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    page: CoopPage,
    csrf: Csrf,
) -> HTMLResponse:
    """Step 1 of a cancellation: the order, and a confirm button."""
    check_csrf(page, csrf)
    loan = loans.loan_detail(session, chain, page.org, escrow)
    order = next((o for o in loan.orders if o.order_id == order_id), None)
    if order is None:
        return _loan_page(request, session, chain, page, escrow, 404,
                          errors=[f"没有这笔订单 · loan has no order {order_id}"])  # fmt: skip
    return _render(request, page, "coop_confirm.html", what="cancel", loan=loan, order=order,
                   action=f"/coop/loans/{escrow}/orders/{order_id}/cancel",
                   back=f"/coop/loans/{escrow}", form={})  # fmt: skip


@router.post("/coop/loans/{escrow}/orders/{order_id}/cancel", response_class=HTMLResponse)
def coop_cancel(
    escrow: str,
    order_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: CoopPage,
    csrf: Csrf,
) -> Response:
    """Step 2: cancel the order (the contract's rules decide) and show the loan."""
    check_csrf(page, csrf)
    return answer(
        lambda: loans.cancel_order(session, chain, settings, page.org, escrow, order_id),
        lambda _: _loan_page(request, session, chain, page, escrow, cancelled=order_id),
        _loan_failed(request, session, chain, page, escrow, {}),
    )


# ------------------------------------------------------------------------------------ files


@router.post("/coop/orders/upload", response_class=HTMLResponse)
def coop_orders_preview(
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    page: CoopPage,
    file: Annotated[UploadFile, File()],
    csrf: Csrf,
) -> Response:
    """Step 1 of an order file: its rows as the clerk will send them, and a confirm button."""
    check_csrf(page, csrf)
    content = file.file.read(MAX_FILE + 1)
    listed = loans.list_member_loans(session, chain, page.org, PageParams(limit=500, offset=0))

    def rows() -> list[PreviewRow]:
        if len(content) > MAX_FILE:
            raise Invalid(f"an order file is at most {MAX_FILE // 1024} KiB")
        return loans.preview_rows(session, page.org, content)

    return answer(
        rows,
        lambda rows: _render(request, page, "coop_loans.html", loans=listed, batch=None,
                             preview=rows, content=base64.b64encode(content).decode()),
        lambda error, code: _render(request, page, "coop_loans.html", code, loans=listed,
                                    batch=None, preview=None, upload_error=error),
    )  # fmt: skip


@router.post("/coop/orders", response_class=HTMLResponse)
def coop_orders_send(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: CoopPage,
    content: Annotated[str, Form(max_length=MAX_FILE * 2)],
    csrf: Csrf,
) -> HTMLResponse:
    """Step 2: order every valid row of the confirmed file; each row's outcome."""
    check_csrf(page, csrf)
    try:
        raw = base64.b64decode(content, validate=True)
        batch = loans.order_file(session, chain, settings, page.org, raw)
        error = None
    except (binascii.Error, *ROOTS) as exc:
        batch, error = None, detail_of(exc) if isinstance(exc, ROOTS) else "bad file content"
    listed = loans.list_member_loans(session, chain, page.org, PageParams(limit=500, offset=0))
    return _render(request, page, "coop_loans.html", loans=listed, batch=batch, preview=None,
                   upload_error=error)  # fmt: skip


# ------------------------------------------------------------------------------------ members


MEMBERS_PER_PAGE = 100
"""Members a page of /coop/members shows: a cooperative of Enshi's size has tens of thousands."""


def _wallet_choices(session: Session) -> list[Organisation]:
    """Farmer organisations not yet any member's wallet (the farmer's own login and wallet)."""
    taken = select(Farmer.wallet_org_id).where(col(Farmer.wallet_org_id).is_not(None))
    query = select(Organisation).where(
        Organisation.role == Role.FARMER, col(Organisation.id).not_in(taken)
    )
    return [o for o in session.exec(query).all() if o.active]


def _members_page(request: Request, session: Session, page: PageSession, code: int = 200,
                  at: int = 1, **extra: Any) -> HTMLResponse:  # fmt: skip
    """One page of members with their member numbers and plots, and the registration forms."""
    mine = Farmer.cooperative_id == page.org.id
    total = session.exec(select(func.count()).select_from(Farmer).where(mine)).one()
    pages = max(1, -(-total // MEMBERS_PER_PAGE))
    at = min(at, pages)
    members = session.exec(
        select(Farmer).where(mine).order_by(col(Farmer.id))
        .offset((at - 1) * MEMBERS_PER_PAGE).limit(MEMBERS_PER_PAGE)
    ).all()  # fmt: skip
    ids = [m.farmer_id for m in members]
    plots = session.exec(select(Plot).where(col(Plot.farmer_id).in_(ids))).all() if ids else []
    by_farmer: dict[str, list[Plot]] = {}
    for plot in plots:
        by_farmer.setdefault(plot.farmer_id, []).append(plot)
    context = {"members": [FarmerPublic.of(m) for m in members], "plots": by_farmer,
               "wallets": _wallet_choices(session), "form": {}, "errors": [],
               "page_no": at, "pages": pages, "total": total, **extra}  # fmt: skip
    return _render(request, page, "coop_members.html", code, **context)


def _page_of(session: Session, coop: Organisation, member: int) -> int:
    """The members page that shows member number `member` (its place among the members)."""
    before = session.exec(
        select(func.count()).select_from(Farmer)
        .where(Farmer.cooperative_id == coop.id, col(Farmer.id) < member)
    ).one()  # fmt: skip
    return before // MEMBERS_PER_PAGE + 1


def _members_failed(
    request: Request, session: Session, page: PageSession, **typed: dict[str, str]
) -> Callable[[str, int], HTMLResponse]:
    """The members page again, with the error and what was typed (`form` or `plot_form`)."""
    return lambda error, code: _members_page(request, session, page, code, errors=[error], **typed)


@router.get("/coop/members", response_class=HTMLResponse)
def coop_members(
    request: Request,
    session: SessionDep,
    page: CoopPage,
    at: Annotated[int, Query(alias="page", ge=1, le=MAX_ROW_ID)] = 1,
    member: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> HTMLResponse:
    """Members (number, name, plots) a hundred a page; register a member or a plot (社员)."""
    if member is not None:
        at = _page_of(session, page.org, member)
    return _members_page(request, session, page, at=at, found=member)


def _farmer_body(form: dict[str, str]) -> FarmerCreate:
    """The registration the form describes (Invalid with what is wrong)."""
    try:
        wallet = int(form["farmer_org_id"]) if form["farmer_org_id"].strip() else None
        return FarmerCreate(name=form["name"], national_id=form["national_id"],
                            farmer_org_id=wallet)  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(f"{first['loc'][0]}: {first['msg']}") from exc
    except ValueError as exc:
        raise Invalid("choose the farmer's wallet from the list") from exc


def _farmer_form(
    name: Annotated[str, Form(max_length=120)],
    national_id: Annotated[str, Form(max_length=40)],
    farmer_org_id: Annotated[str, Form(max_length=20)] = "",
) -> dict[str, str]:
    """The registration form as typed."""
    return {"name": name, "national_id": national_id, "farmer_org_id": farmer_org_id}


FarmerForm = Annotated[dict[str, str], Depends(_farmer_form)]


@router.post("/coop/members/confirm", response_class=HTMLResponse)
def coop_member_confirm(
    request: Request,
    session: SessionDep,
    page: CoopPage,
    form: FarmerForm,
    csrf: Csrf,
) -> Response:
    """Step 1 of a registration: what will be registered, and a confirm button."""
    check_csrf(page, csrf)

    def confirm(body: FarmerCreate) -> HTMLResponse:
        wallet = session.get(Organisation, body.farmer_org_id) if body.farmer_org_id else None
        return _render(request, page, "coop_confirm.html", what="farmer", form=form,
                       masked=mask_national_id(body.national_id),
                       wallet_name=wallet.name if wallet else None,
                       action="/coop/members", back="/coop/members")  # fmt: skip

    failed = _members_failed(request, session, page, form=form)
    return answer(lambda: _farmer_body(form), confirm, failed)


@router.post("/coop/members", response_class=HTMLResponse)
def coop_member_register(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: CoopPage,
    form: FarmerForm,
    csrf: Csrf,
) -> Response:
    """Step 2: register the member on chain (pseudonym) and here (name, id)."""
    check_csrf(page, csrf)
    return answer(
        lambda: members.register_farmer(session, chain, settings, page.org, _farmer_body(form)),
        lambda made: _members_page(request, session, page, registered=made),
        _members_failed(request, session, page, form=form),
        rollback=session,
    )


@router.post("/coop/members/upload", response_class=HTMLResponse)
def coop_member_roll_upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: CoopPage,
    file: Annotated[UploadFile, File()],
    csrf: Csrf,
) -> Response:
    """Register a CSV member roll and show which members were registered and which refused."""
    check_csrf(page, csrf)

    def upload() -> RollFileOut:
        content = file.file.read()
        return register_roll_file(session, chain, settings, page.org, file.filename or "", content)

    return answer(
        upload,
        lambda made: _members_page(request, session, page, roll=made),
        lambda error, code: _members_page(request, session, page, code, roll_error=error),
        rollback=session,
    )


def _plot_body(form: dict[str, str]) -> PlotCreate:
    """The plot the form describes: area in mu (two decimals)."""
    area = area_centi_mu(form["area_mu"])
    try:
        return PlotCreate(farmer_id=form["farmer_id"], land_reference=form["land_reference"],
                          area_centi_mu=area, label=form["label"].strip() or None,
                          location=form["location"].strip() or None)  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(f"{first['loc'][0]}: {first['msg']}") from exc


def _plot_form(
    farmer_id: Annotated[str, Form(max_length=66)],
    land_reference: Annotated[str, Form(max_length=128)],
    area_mu: Annotated[str, Form(max_length=20)],
    label: Annotated[str, Form(max_length=60)] = "",
    location: Annotated[str, Form(max_length=500)] = "",
) -> dict[str, str]:
    """The plot form as typed."""
    return {"farmer_id": farmer_id, "land_reference": land_reference, "area_mu": area_mu,
            "label": label, "location": location}  # fmt: skip


PlotForm = Annotated[dict[str, str], Depends(_plot_form)]


@router.post("/coop/plots/confirm", response_class=HTMLResponse)
def coop_plot_confirm(
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    page: CoopPage,
    form: PlotForm,
    csrf: Csrf,
) -> Response:
    """Step 1 of a plot registration: what will be registered, and a confirm button."""
    check_csrf(page, csrf)

    def member() -> Farmer:
        return members.own_farmer(session, chain, page.org, hex32(_plot_body(form).farmer_id))

    def confirm(member: Farmer) -> HTMLResponse:
        return _render(request, page, "coop_confirm.html", what="plot", form=form,
                       member_name=member.name or f"{member.farmer_id[:10]}…",
                       action="/coop/plots", back="/coop/members")  # fmt: skip

    return answer(member, confirm, _members_failed(request, session, page, plot_form=form))


@router.post("/coop/plots", response_class=HTMLResponse)
def coop_plot_register(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: CoopPage,
    form: PlotForm,
    csrf: Csrf,
) -> Response:
    """Step 2: register the plot on chain and here."""
    check_csrf(page, csrf)
    return answer(
        lambda: members.register_plot(session, chain, settings, page.org, _plot_body(form)),
        lambda made: _members_page(request, session, page, plot_registered=made),
        _members_failed(request, session, page, plot_form=form),
        rollback=session,
    )

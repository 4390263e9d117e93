"""Lender pages: a consenting farmer's profile with charts, score, reasons and offer.

Pages authenticate with the session of `/login` (api/core/sessions.py) and apply the same
rules as the JSON routes: the profile page reads (and logs) the profile only with the farmer's
active consent, and shows the lender's own latest decision.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.core.chain import loan_desk
from api.core.deps import ChainDep, SettingsDep
from api.core.errors import Conflict, Invalid
from api.core.ids import same_address
from api.core.labels import category_label, loan_status_label, yuan
from api.core.models import Role
from api.core.pages import page_router, see_other
from api.core.pagination import PageParams
from api.core.sessions import PageSession, check_csrf, page_session
from api.core.templates import china_date, short_id, templates
from api.core.types import MAX_FEN
from api.lenders import history, portfolio, service, servicing
from api.lenders.portfolio import Action, StatusFilter
from api.lenders.service import MAX_ISSUE_BATCH, Confirmation, LoanCreate
from api.lenders.servicing import MAX_SERVICE_BATCH
from chain.clock import chain_now
from indexer.profiles import FarmerProfile
from lending.loans.disbursement import LoanStatus
from lending.loans.errors import EscrowError
from lending.loans.merchants import MerchantDesk
from lending.loans.offers import OfferStore
from traceability.models import Grade

router = page_router()


def bars(rows: list[tuple[str, Decimal | int]], unit: str) -> list[dict[str, Any]]:
    """Labelled bars scaled to the largest value (width in percent of the chart)."""
    top = max((Decimal(v) for _, v in rows), default=Decimal(0))
    return [
        {
            "label": label,
            "value": value,
            "unit": unit,
            "width": float(Decimal(value) * 100 / top) if top else 0.0,
        }
        for label, value in rows
    ]


def _grade_label(code: int) -> str:
    """特级..四级 (the code itself for a grade TeaTrace does not know)."""
    try:
        return Grade(code).label
    except ValueError:
        return str(code)


def charts(profile: FarmerProfile) -> dict[str, list[dict[str, Any]]]:
    """Harvest (kg) and income (yuan) per season, and the grade mix (percent)."""
    return {
        "harvest": bars([(s.season, s.fresh_leaf_kg) for s in profile.seasons], "kg"),
        "income": bars(
            [(s.season, Decimal(s.sale_income_fen) / 100) for s in profile.seasons], "元"
        ),
        "grades": bars(
            [(_grade_label(g.grade), g.share * 100) for g in profile.total.grade_mix],
            "%",
        ),
    }


@router.get("/lender/farmers/{farmer_id}", response_class=HTMLResponse)
def lender_profile_page(
    farmer_id: str,
    request: Request,
    settings: SettingsDep,
    chain: ChainDep,
    page: Annotated[PageSession, Depends(page_session(Role.LENDER))],
) -> HTMLResponse:
    """A consenting farmer's profile: charts, score, reasons, offers, open loan (茶农档案)."""
    engine = request.app.state.engine
    profile = service.read_profile(engine, settings, chain, page.org, farmer_id)
    fid = profile.farmer
    decision = service.latest_decision(engine, page.org, fid)
    offers = [o for o in OfferStore(engine).for_farmer(fid)
              if same_address(o.lender, page.org.chain_address)]  # fmt: skip
    desk = loan_desk(chain)
    active = desk.active_loan_of(bytes.fromhex(fid[2:]))
    active_state = desk.state(active) if active else None
    context = {
        "org": page.org, "profile": profile, "charts": charts(profile), "record": decision,
        "name": portfolio.farmer_names(engine, [fid]).get(fid), "offers": offers,
        "offered": {o.decision_id for o in offers}, "csrf": page.csrf,
        "categories": sorted(MerchantDesk(chain, desk.registry_address).category_names().values()),
        "active": active_state,
        "active_mine": active_state is not None
        and same_address(active_state.lender, page.org.chain_address),
    }  # fmt: skip
    return templates.TemplateResponse(request, "lender_profile.html", context)


# --------------------------------------------------------------------------- the lender's desk

LenderPage = Annotated[PageSession, Depends(page_session(Role.LENDER))]
CsrfField = Annotated[str, Form(max_length=64)]
ConfirmField = Annotated[str, Form(max_length=8)]
ACTION_TEXT = {
    Action.REFRESH: ("更新状态", "Refresh status",
                     "按链上时间更新贷款状态（例如到期未还转为逾期）。",
                     "Apply the chain's clock to the loan (e.g. past due becomes overdue)."),
    Action.RETURN_UNSPENT: ("退回未用资金", "Return unspent",
                            "提款期结束后，把未使用、未预留的本金退回贵机构。",
                            "After the draw window, unspent principal goes back to you."),
    Action.DEFAULT: ("宣告违约", "Declare default",
                     "到期日加宽限期和违约期后仍未还清：宣告违约。",
                     "Past due date, grace and default days and still owed: declare default."),
    Action.WRITE_OFF: ("核销", "Write off",
                       "把已违约的贷款核销（不可撤销）。",
                       "Write the defaulted loan off (cannot be undone)."),
}  # fmt: skip


def refusal_text(exc: EscrowError) -> str:
    """A servicing refusal as a loan officer reads it: 中文 · English, then the contract's own
    error name for whoever needs to look further."""
    v = exc.values
    draw = china_date(int(v["drawDeadline"])) if "drawDeadline" in v else ""
    after = china_date(int(v["defaultableAfter"])) if "defaultableAfter" in v else ""
    status = _status_name(v)
    texts = {
        "EscrowDrawWindowOpen": (f"提款期到 {draw} 才结束，之后才能退回未用资金",
                                 f"unspent funds return after the draw window ends on {draw}"),
        "EscrowNotYetDefaultable": (f"{after} 之后才能宣告违约",
                                    f"default may be declared after {after}"),
        "EscrowNothingToReturn": ("没有可退回的资金", "nothing is left to return"),
        "EscrowInvalidStatus": (f"贷款当前为“{loan_status_label(status)}”，不允许此操作",
                                f"the loan is {status}, which does not allow this"),
    }  # fmt: skip
    zh, en = texts.get(exc.name, ("合约拒绝了此操作", "the contract refused this"))
    return f"{zh} · {en} ({exc.name})"


def _status_name(values: dict[str, Any]) -> str:
    """The `status` argument of a refusal as the API names statuses."""
    try:
        return LoanStatus(int(values.get("status", 0))).name.lower()
    except ValueError:
        return str(values.get("status"))


def _confirm_page(
    request: Request,
    page: PageSession,
    action_url: str,
    fields: dict[str, str],
    lines: list[tuple[str, str]],
    back: str,
) -> HTMLResponse:
    """The confirmation step of an action: what will happen, confirm or go back."""
    context = {"action_url": action_url, "fields": fields, "lines": lines, "back": back,
               "csrf": page.csrf}  # fmt: skip
    return templates.TemplateResponse(request, "lender_confirm.html", context)


@router.get("/lender", response_class=HTMLResponse)
def lender_home(
    request: Request,
    settings: SettingsDep,
    chain: ChainDep,
    page: LenderPage,
    status_filter: Annotated[StatusFilter, Query(alias="status")] = StatusFilter.ALL,
) -> HTMLResponse:
    """The lender's desk: portfolio with filters and totals, consenting farmers (贷款组合)."""
    engine = request.app.state.engine
    states, now = portfolio.own_states(chain, page.org), chain_now(chain.w3)
    rows = portfolio.rows_passing(engine, states, status_filter, now)
    due = {a: servicing.due_loans(chain, a, states, now) for a in DUE_ACTIONS}
    farmers = service.list_farmers(settings, chain, page.org, PageParams(limit=100, offset=0))
    waiting = OfferStore(engine).waiting_to_issue(page.org.chain_address, MAX_ISSUE_BATCH)
    ids = [f.farmer_id for f in farmers.items] + [o.farmer_id for o in waiting]
    names = portfolio.farmer_names(engine, ids)
    context = {
        "org": page.org, "loans": rows, "now": now, "status": status_filter.value,
        "filters": list(StatusFilter), "farmers": farmers.items, "names": names,
        "waiting": waiting, "csrf": page.csrf, "batch": _batch_outcome(request),
        "due": {a: len(d) for a, d in due.items() if d}, "actions": ACTION_TEXT,
        "serviced": _service_outcome(request),
        "totals": {k: sum(getattr(r, k) for r in rows)
                   for k in ("principal_fen", "drawn_fen", "outstanding_fen")},
    }  # fmt: skip
    return templates.TemplateResponse(request, "lender_home.html", context)


@router.get("/lender/portfolio.csv")
def lender_portfolio_csv(
    request: Request,
    chain: ChainDep,
    page: LenderPage,
    status_filter: Annotated[StatusFilter, Query(alias="status")] = StatusFilter.ALL,
) -> Response:
    """The portfolio as CSV, downloaded from the desk."""
    rows, _ = portfolio.all_loans(request.app.state.engine, chain, page.org, status_filter)
    return Response(
        portfolio.portfolio_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="portfolio.csv"'},
    )


@router.get("/lender/disbursements", response_class=HTMLResponse)
def lender_disbursements(request: Request, chain: ChainDep, page: LenderPage) -> HTMLResponse:
    """What the lender's loans paid out, by category and merchant (放款去向)."""
    report = portfolio.disbursements(request.app.state.engine, chain, page.org)
    context = {"org": page.org, "report": report}
    return templates.TemplateResponse(request, "lender_disbursements.html", context)


@router.get("/lender/loans/{escrow}", response_class=HTMLResponse)
def lender_loan_page(
    escrow: str, request: Request, chain: ChainDep, page: LenderPage
) -> HTMLResponse:
    """One loan in full: budgets, orders, repayments, schedule, servicing buttons (贷款)."""
    engine = request.app.state.engine
    h = history.history_out(engine, history.read_history(engine, chain, page.org, escrow))
    context = {"org": page.org, "loan": h.loan, "h": h, "actions": ACTION_TEXT,
               "csrf": page.csrf, "done": request.query_params.get("done", "")}  # fmt: skip
    return templates.TemplateResponse(request, "lender_loan.html", context)


@router.post("/lender/loans/{escrow}/{action}", response_class=HTMLResponse)
def lender_loan_action(
    escrow: str,
    action: Action,
    request: Request,
    settings: SettingsDep,
    chain: ChainDep,
    page: LenderPage,
    csrf: CsrfField,
    confirm: ConfirmField = "",
) -> Response:
    """A servicing button: first the confirmation step, then the transaction."""
    check_csrf(page, csrf)
    _, state = portfolio.own_state(chain, page.org, escrow)
    back = f"/lender/loans/{state.escrow}"
    if confirm != "yes":
        zh, en, why_zh, why_en = ACTION_TEXT[action]
        lines = [(f"{zh}：贷款 #{state.loan_id}", f"{en}: loan #{state.loan_id}"),
                 (why_zh, why_en)]  # fmt: skip
        return _confirm_page(request, page, f"{back}/{action.value}", {}, lines, back)
    try:
        portfolio.service_loan(chain, settings, page.org, state.escrow, action)
    except EscrowError as exc:
        raise Conflict(refusal_text(exc)) from exc
    return see_other(f"{back}?done={action.value}")


@router.post("/lender/farmers/{farmer_id}/decision", response_class=HTMLResponse)
def lender_decide(
    farmer_id: str,
    request: Request,
    settings: SettingsDep,
    chain: ChainDep,
    page: LenderPage,
    csrf: CsrfField,
    confirm: ConfirmField = "",
) -> Response:
    """The score button: confirm, then score the farmer (the read is logged)."""
    check_csrf(page, csrf)
    back = f"/lender/farmers/{farmer_id}"
    if confirm != "yes":
        lines = [("为该农户做信用评估（读取档案，记入访问日志）。",
                  "Score this farmer (reads the profile; the read is logged).")]  # fmt: skip
        return _confirm_page(request, page, back + "/decision", {}, lines, back)
    engine = request.app.state.engine
    service.make_decision(engine, settings, chain, page.org, farmer_id)
    return see_other(back)


def _budgets(form: dict[str, str]) -> dict[str, int]:
    """Budget fields (budget:<category> in yuan) as fen; 422 for a malformed amount."""
    budgets: dict[str, int] = {}
    for key, value in form.items():
        if not key.startswith("budget:") or not value.strip():
            continue
        try:
            fen = Decimal(value.strip()) * 100
        except InvalidOperation as exc:
            raise Invalid(f"预算金额无效 · not an amount: {value!r}") from exc
        if fen != fen.to_integral_value() or not 0 <= fen <= MAX_FEN:
            raise Invalid(
                f"预算金额无效 · not an amount in yuan with at most 2 decimals: {value!r}"
            )
        if fen:
            budgets[key.removeprefix("budget:")] = int(fen)
    if not budgets:
        raise Invalid("至少为一个类别设定预算 · budget at least one category")
    return budgets


@router.post("/lender/decisions/{decision_id}/offer", response_class=HTMLResponse)
async def lender_offer(
    decision_id: str,
    request: Request,
    chain: ChainDep,
    page: LenderPage,
) -> Response:
    """The offer form: confirm the budgets, then offer the farmer the loan."""
    form = {k: str(v)[:64] for k, v in (await request.form()).items()}
    check_csrf(page, form.get("csrf", ""))
    engine = request.app.state.engine
    record = service.own_decision(engine, page.org, decision_id)
    back = f"/lender/farmers/{record.decision.farmer_id}"
    budgets = _budgets(form)
    try:
        body = LoanCreate(
            budgets_fen=budgets,
            draw_days=int(form.get("draw_days") or 60),
            confirmation=Confirmation(form.get("confirmation") or "immediate"),
            cooperative_agent=form.get("agent", "cooperative") != "none",
        )
    except ValueError as exc:  # pydantic's ValidationError is one
        raise Invalid(f"报价无效 · invalid offer: {exc}") from exc
    if form.get("confirm") != "yes":
        fields = {k: v for k, v in form.items() if k not in ("csrf", "confirm")}
        lines = [(f"{category_label(c)}：{yuan(f)}", "") for c, f in budgets.items()]
        days = body.draw_days
        total = f"合计 {yuan(sum(budgets.values()))}，提款期 {days} 天"
        lines.append((total, f"total, draw window {days} days; the farmer signs to accept"))
        if body.cooperative_agent:
            lines.append(("农户的合作社可代为下单", "the farmer's cooperative may order payments"))
        return _confirm_page(request, page, f"/lender/decisions/{decision_id}/offer", fields,
                             lines, back)  # fmt: skip
    service.create_offer(engine, chain, page.org, decision_id, body)
    return see_other(back)


def _counts(request: Request, *names: str) -> tuple[int, ...] | None:
    """The counts a button's redirect put in the query, else None (a hand-edited link)."""
    values = [request.query_params.get(name, "") for name in names]
    if not all(value.isdigit() for value in values):
        return None
    return tuple(int(value[:6]) for value in values)


def _batch_outcome(request: Request) -> tuple[int, ...] | None:
    """(issued, refused) after the issue-all button (its redirect's query), else None."""
    return _counts(request, "issued", "refused")


@router.post("/lender/offers/issue-all", response_class=HTMLResponse)
def lender_issue_all(
    request: Request,
    settings: SettingsDep,
    chain: ChainDep,
    page: LenderPage,
    csrf: CsrfField,
    confirm: ConfirmField = "",
) -> Response:
    """The issue-all button (全部发放): confirm, then issue every offer the farmers signed."""
    check_csrf(page, csrf)
    engine = request.app.state.engine
    waiting = OfferStore(engine).waiting_to_issue(page.org.chain_address, MAX_ISSUE_BATCH)
    if not waiting:
        return see_other("/lender")
    if confirm != "yes":
        n, total = len(waiting), yuan(sum(o.terms.principal_fen for o in waiting))
        zh = f"发放并注资 {n} 笔已签署的贷款，共 {total}（从贵机构账户转入各托管合约）。"
        lines = [(zh, f"Issue the {n} signed loans and fund their escrows from your account.")]
        return _confirm_page(request, page, "/lender/offers/issue-all", {}, lines, "/lender")
    body = service.IssueBatch(offer_ids=[o.offer_id for o in waiting])
    out = service.issue_loans(engine, settings, chain, page.org, body)
    return see_other(f"/lender?issued={len(out.issued)}&refused={len(out.refused)}")


DUE_ACTIONS = (Action.RETURN_UNSPENT, Action.REFRESH, Action.DEFAULT)
"""What the desk proposes for many loans at once (a write-off is decided loan by loan)."""


def _service_outcome(request: Request) -> tuple[Action, int, int] | None:
    """(action, done, refused) after a servicing button (its redirect's query), else None."""
    counts = _counts(request, "done", "refused")
    try:
        action = Action(request.query_params.get("serviced", ""))
    except ValueError:
        return None
    return None if counts is None else (action, *counts)  # type: ignore[return-value]


@router.post("/lender/servicing/{action}", response_class=HTMLResponse)
def lender_service_due(
    action: Action,
    request: Request,
    settings: SettingsDep,
    chain: ChainDep,
    page: LenderPage,
    csrf: CsrfField,
    confirm: ConfirmField = "",
) -> Response:
    """A servicing button of the desk: confirm, then act on every loan the action is due on."""
    check_csrf(page, csrf)
    if action not in DUE_ACTIONS:
        raise Invalid("a write-off is decided one loan at a time, on the loan's page")
    states, now = portfolio.own_states(chain, page.org), chain_now(chain.w3)
    all_due = servicing.due_loans(chain, action, states, now)
    due = all_due[:MAX_SERVICE_BATCH]
    if not due:
        return see_other("/lender")
    if confirm != "yes":
        zh, en, why_zh, why_en = ACTION_TEXT[action]
        names = portfolio.farmer_names(request.app.state.engine,
                                       ["0x" + s.farmer_id.hex() for s in due])  # fmt: skip
        loans = f"{len(due)} loan{'s' if len(due) != 1 else ''}"
        lines = [(f"{zh}：{len(due)} 笔贷款", f"{en}: {loans}"), (why_zh, why_en)]
        if len(all_due) > len(due):
            rest = len(all_due) - len(due)
            lines.append((f"其余 {rest} 笔请完成后再按一次", f"press again for the other {rest}"))
        for s in due:
            fid = "0x" + s.farmer_id.hex()
            who = names.get(fid) or f"农户 {short_id(fid)}"  # as the portfolio names them
            lines.append((f"贷款 #{s.loan_id} · {who}", f"loan #{s.loan_id}"))
        return _confirm_page(request, page, f"/lender/servicing/{action.value}", {}, lines,
                             "/lender")  # fmt: skip
    body = servicing.ServiceBatch(action=action, escrows=[s.escrow for s in due])
    out = servicing.service_loans(chain, settings, page.org, body)
    done, refused = len(out.serviced), len(out.refused)
    return see_other(f"/lender?serviced={action.value}&done={done}&refused={refused}")


@router.post("/lender/offers/{offer_id}/issue", response_class=HTMLResponse)
def lender_issue(
    offer_id: str,
    request: Request,
    settings: SettingsDep,
    chain: ChainDep,
    page: LenderPage,
    csrf: CsrfField,
    confirm: ConfirmField = "",
) -> Response:
    """The issue button: confirm, then issue and fund the loan the farmer accepted."""
    check_csrf(page, csrf)
    engine = request.app.state.engine
    offer = service.own_offer(engine, page.org, offer_id)
    back = f"/lender/farmers/{offer.farmer_id}"
    if confirm != "yes":
        lines = [(f"发放并注资 {yuan(offer.terms.principal_fen)}（从贵机构账户转入托管合约）。",
                  "Issue the loan and fund its escrow from your account.")]  # fmt: skip
        return _confirm_page(request, page, f"/lender/offers/{offer_id}/issue", {}, lines, back)
    issued = service.issue_loan(engine, settings, chain, page.org, offer_id)
    return see_other(f"/lender/loans/{issued.escrow}")

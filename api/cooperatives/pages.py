"""Cooperative pages: record a harvest by form or file, see recent lots.

Pages need a cooperative's session (api/core/sessions.py: log in with the organisation's key);
every form carries the session's CSRF token.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api.cooperatives.harvests import (
    HarvestIn,
    HarvestSubmission,
    harvests_from_body,
    list_lots,
    parse_upload,
    submit_harvests,
)
from api.cooperatives.labels import LABELS
from api.cooperatives.loans import list_member_loans
from api.core.deps import ChainDep, SessionDep, SettingsDep
from api.core.errors import ROOTS, Invalid
from api.core.links import base_url
from api.core.models import Farmer, Organisation, Plot, Role
from api.core.pages import answer, page_router
from api.core.pagination import MAX_OFFSET, PageParams
from api.core.sessions import PageSession, check_csrf, page_session
from api.core.settings import ApiSettings
from api.core.suppliers import PartnerOut, consignees
from api.core.templates import CHINA, templates
from chain.client import ChainClient
from traceability.models import Grade

LOTS_PER_PAGE = 20
PLOTS_IN_FORM = 500

router = page_router()
# More than any picking weighs; bounds the Decimal before it becomes an integer of grams.
MAX_KILOGRAMS = Decimal(10**9)
CoopPage = Annotated[PageSession, Depends(page_session(Role.COOPERATIVE))]


def _plot_choices(session: Session, coop: Organisation) -> list[dict[str, Any]]:
    """The cooperative's plots with their farmers' names, for the harvest form."""
    rows = session.exec(
        select(Plot, Farmer)
        .join(Farmer, col(Farmer.farmer_id) == col(Plot.farmer_id))
        .where(Plot.cooperative_id == coop.id)
        .order_by(col(Plot.id).desc())
        .limit(PLOTS_IN_FORM)
    ).all()
    return [
        {
            "plot_id": plot.plot_id,
            "label": " · ".join(
                [
                    farmer.name or f"{farmer.farmer_id[:10]}…",
                    plot.label or f"{plot.plot_id[:10]}…",
                    f"{plot.area_centi_mu / 100:g} 亩",
                ]
            ),
        }
        for plot, farmer in rows
    ]


def _dashboard(
    request: Request,
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    page: PageSession,
    offset: int = 0,
    code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """The cooperative's page: forms, results of the last action, recent lots."""
    coop = page.org
    lots = list_lots(
        session,
        chain,
        settings,
        coop,
        PageParams(limit=LOTS_PER_PAGE, offset=offset),
        base_url(request, settings.public_base_url),
    )
    now = datetime.now(CHINA).replace(second=0, microsecond=0, tzinfo=None)
    farmers = session.exec(select(Farmer).where(Farmer.cooperative_id == coop.id)).all()
    plots = session.exec(select(Plot).where(Plot.cooperative_id == coop.id)).all()
    context = {
        "members": len(farmers),
        "farmer_names": {f.farmer_id: f.name for f in farmers if f.name},
        "plot_labels": {p.plot_id: p.label for p in plots if p.label},
        "work": _loan_work(session, chain, coop),
        "consignees": _consignees(session, chain, coop),
        "L": LABELS,
        "coop": coop,
        "csrf": page.csrf,
        "plots": _plot_choices(session, coop),
        "grades": list(Grade),
        "lots": lots,
        "now": now.isoformat(timespec="minutes"),
        "form": {},
        "form_errors": [],
        "submission": None,
        "upload": None,
        **extra,
    }
    return templates.TemplateResponse(request, "coop_home.html", context, code)


def _consignees(session: Session, chain: ChainClient, coop: Organisation) -> list[PartnerOut]:
    """Where the day's leaf may be recorded as delivered (none while the node is away)."""
    try:
        return consignees(session, chain, coop)
    except ROOTS:
        return []


def _deliver_to(choice: str) -> int | None:
    """The form's factory choice: None for leaf the cooperative keeps."""
    if not choice.strip():
        return None
    if not choice.strip().isdigit():
        raise Invalid(f"请选择鲜叶去向 · choose where the leaf went, not {choice!r}")
    return int(choice)


def _loan_work(session: Session, chain: ChainClient, coop: Organisation) -> dict[str, int] | None:
    """Members' open loans at a glance (None where the lending contracts are not deployed)."""
    try:
        listed = list_member_loans(session, chain, coop, PageParams(limit=500, offset=0))
    except ROOTS:
        return None
    return {
        "loans": listed.total,
        "owed_fen": sum(loan.outstanding_fen for loan in listed.items),
        "left_fen": sum(loan.available_fen for loan in listed.items),
        "late": sum(1 for loan in listed.items if loan.days_past_due > 0),
    }


@router.get("/coop", response_class=HTMLResponse)
def coop_home(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: CoopPage,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Harvest entry, file upload and the cooperative's recent lots (合作社工作台)."""
    return _dashboard(request, session, chain, settings, page, offset)


def _form_record(
    session: Session, coop: Organisation, form: dict[str, str]
) -> tuple[HarvestIn | None, list[str]]:
    """The harvest the form describes, or what is wrong with it."""
    plot = session.exec(select(Plot).where(Plot.plot_id == form["plot_id"])).first()
    if plot is None or plot.cooperative_id != coop.id:
        return None, ["请选择您的地块 · choose one of your plots"]
    try:
        kilograms = Decimal(form["grams_kg"])
        if not kilograms.is_finite() or abs(kilograms) > MAX_KILOGRAMS:
            raise ValueError(form["grams_kg"])
        grams = int(kilograms * 1000)
    except (InvalidOperation, ValueError):
        return None, ["重量应为公斤数 · the mass is a number of kilograms"]
    try:
        picked = datetime.fromisoformat(form["picked_at"]).replace(tzinfo=CHINA)
    except ValueError:
        return None, ["采摘时间无效 · the picking time is not a date and time"]
    try:
        record = HarvestIn(
            farmer=plot.farmer_id,
            plot=plot.plot_id,
            grams=grams,
            grade=form["grade"],
            picked_at=int(picked.timestamp()),
            record_ref=form["record_ref"],
        )
    except ValidationError as exc:
        return None, [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return record, []


@router.post("/coop/harvests", response_class=HTMLResponse)
def coop_record_harvest(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: CoopPage,
    plot_id: Annotated[str, Form(max_length=66)],
    grams_kg: Annotated[str, Form(max_length=20)],
    grade: Annotated[str, Form(max_length=10)],
    picked_at: Annotated[str, Form(max_length=30)],
    csrf: Annotated[str, Form(max_length=64)],
    record_ref: Annotated[str, Form(max_length=128)] = "",
    deliver_to_org_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Record one picking from the form (as delivered to a factory, if one is chosen)."""
    check_csrf(page, csrf)
    form = {
        "plot_id": plot_id,
        "grams_kg": grams_kg,
        "grade": grade,
        "picked_at": picked_at,
        "record_ref": record_ref.strip(),
        "deliver_to": deliver_to_org_id.strip(),
    }
    record, errors = _form_record(session, page.org, form)
    if record is None:
        return _dashboard(
            request, session, chain, settings, page, code=422, form=form, form_errors=errors
        )

    def submit() -> HarvestSubmission:
        parsed = harvests_from_body([record])
        target = _deliver_to(deliver_to_org_id)
        return submit_harvests(session, chain, settings, page.org, parsed, target)

    return answer(
        submit,
        # the next picking most likely went where this one did: keep the choice
        lambda submission: _dashboard(
            request,
            session,
            chain,
            settings,
            page,
            submission=submission,
            form={"deliver_to": form["deliver_to"]},
        ),
        # node down: say so on the page, keep what was typed
        lambda error, code: _dashboard(
            request, session, chain, settings, page, code=code, form=form, form_errors=[error]
        ),
    )


@router.post("/coop/harvests/upload", response_class=HTMLResponse)
def coop_upload_harvests(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: CoopPage,
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form(max_length=64)],
    deliver_to_org_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Record a CSV/JSON harvest file and show each row's fate."""
    check_csrf(page, csrf)

    def upload() -> HarvestSubmission:
        target = _deliver_to(deliver_to_org_id)
        parsed = parse_upload(file.filename or "", file.file.read(), session, page.org)
        return submit_harvests(session, chain, settings, page.org, parsed, target)

    return answer(
        upload,
        lambda made: _dashboard(request, session, chain, settings, page, upload=made),
        lambda error, code: _dashboard(
            request, session, chain, settings, page, code=code, upload_error=error
        ),
    )


from api.cooperatives import loan_pages, offer_pages, product_pages  # noqa: E402 - they share this router

router.include_router(loan_pages.router)
router.include_router(offer_pages.router)
router.include_router(product_pages.router)

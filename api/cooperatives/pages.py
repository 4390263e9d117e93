"""Cooperative pages: log in, record a harvest by form or file, see recent lots.

Page authentication, kept deliberately simple:

- `GET /login` shows a form; `POST /login` with the organisation's API key sets the cookie
  `tealedger_key` (HttpOnly, SameSite=Strict, Secure when the service is served over https,
  8 hours) and redirects a cooperative to `/coop`. `POST /logout` clears it.
- Pages read the cookie and look the key up exactly like `X-API-Key`; the JSON API does not
  accept the cookie (it keeps `X-API-Key` only), so a browser session never reaches it.
- Every form carries a CSRF token (an HMAC of the key under the server secret) besides the
  SameSite cookie.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api.cooperatives.models import Farmer, Plot
from api.cooperatives.service import (
    HarvestIn,
    harvests_from_body,
    list_lots,
    parse_upload,
    submit_harvests,
)
from api.core.deps import ChainDep, SessionDep, SettingsDep
from api.core.models import Organisation, Role
from api.core.pagination import PageParams
from api.core.security import authenticate
from api.core.settings import ApiSettings
from api.core.templates import CHINA, templates
from chain.client import ChainClient
from traceability.models import Grade

COOKIE = "tealedger_key"
COOKIE_MAX_AGE = 8 * 3600
LOTS_PER_PAGE = 20
PLOTS_IN_FORM = 500

router = APIRouter(include_in_schema=False)


def _csrf(settings: ApiSettings, key: str) -> str:
    """The form token of a session: HMAC of its key under the server secret."""
    secret = settings.pseudonym_secret.get_secret_value().encode()
    return hmac.new(secret, b"tealedger.csrf.v1:" + key.encode(), hashlib.sha256).hexdigest()


def _session_org(request: Request, session: Session) -> tuple[Organisation | None, str]:
    """The organisation of the cookie's key (None if absent or invalid) and the key."""
    key = request.cookies.get(COOKIE, "")
    return (authenticate(session, key) if key else None), key


def _login_page(request: Request, error: str | None, code: int = 200) -> HTMLResponse:
    """The login form, with an error if any."""
    return templates.TemplateResponse(request, "coop_login.html", {"error": error}, code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """Ask for the API key."""
    return _login_page(request, None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=200)],
) -> Response:
    """Check the key, keep it in an HttpOnly cookie, go to the organisation's page."""
    org = authenticate(session, api_key.strip())
    if org is None:
        return _login_page(request, "密钥无效 · invalid or revoked API key", 401)
    target = "/coop" if org.role == Role.COOPERATIVE else "/"
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        COOKIE,
        api_key.strip(),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://"),
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    """Forget the key."""
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response


def _coop(request: Request, session: Session) -> tuple[Organisation | None, str, Response | None]:
    """The cooperative of the session, or the response to send instead (login / 403)."""
    org, key = _session_org(request, session)
    if org is None:
        return None, key, RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    if org.role != Role.COOPERATIVE:
        message = f"此页面仅供合作社使用 · this page is for cooperatives; you are {org.role.value}"
        return None, key, _login_page(request, message, 403)
    return org, key, None


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
    coop: Organisation,
    key: str,
    offset: int = 0,
    code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """The cooperative's page: forms, results of the last action, recent lots."""
    lots = list_lots(session, chain, settings, coop, PageParams(limit=LOTS_PER_PAGE, offset=offset))
    now = datetime.now(CHINA).replace(second=0, microsecond=0, tzinfo=None)
    context = {
        "coop": coop,
        "csrf": _csrf(settings, key),
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


@router.get("/coop", response_class=HTMLResponse, response_model=None)
def coop_home(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Harvest entry, file upload and the cooperative's recent lots."""
    coop, key, refusal = _coop(request, session)
    if refusal is not None:
        return refusal
    assert coop is not None
    return _dashboard(request, session, chain, settings, coop, key, offset)


def _check_csrf(settings: ApiSettings, key: str, token: str) -> None:
    """403 unless the form came from one of our pages for this session."""
    if not hmac.compare_digest(_csrf(settings, key), token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "form token mismatch: reload the page")


def _form_record(
    session: Session, coop: Organisation, form: dict[str, str]
) -> tuple[HarvestIn | None, list[str]]:
    """The harvest the form describes, or what is wrong with it."""
    plot = session.exec(select(Plot).where(Plot.plot_id == form["plot_id"])).first()
    if plot is None or plot.cooperative_id != coop.id:
        return None, ["请选择您的地块 · choose one of your plots"]
    try:
        grams = int(Decimal(form["grams_kg"]) * 1000)
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


@router.post("/coop/harvests", response_class=HTMLResponse, response_model=None)
def coop_record_harvest(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    plot_id: Annotated[str, Form(max_length=66)],
    grams_kg: Annotated[str, Form(max_length=20)],
    grade: Annotated[str, Form(max_length=10)],
    picked_at: Annotated[str, Form(max_length=30)],
    csrf: Annotated[str, Form(max_length=64)],
    record_ref: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Record one picking from the form."""
    coop, key, refusal = _coop(request, session)
    if refusal is not None:
        return refusal
    assert coop is not None
    _check_csrf(settings, key, csrf)
    form = {
        "plot_id": plot_id,
        "grams_kg": grams_kg,
        "grade": grade,
        "picked_at": picked_at,
        "record_ref": record_ref.strip(),
    }
    record, errors = _form_record(session, coop, form)
    if record is None:
        return _dashboard(
            request, session, chain, settings, coop, key, code=422, form=form, form_errors=errors
        )
    try:
        submission = submit_harvests(session, chain, settings, coop, harvests_from_body([record]))
    except HTTPException as exc:  # node down: say so on the page, keep what was typed
        errors = [str(exc.detail)]
        return _dashboard(
            request,
            session,
            chain,
            settings,
            coop,
            key,
            code=exc.status_code,
            form=form,
            form_errors=errors,
        )
    return _dashboard(request, session, chain, settings, coop, key, submission=submission)


@router.post("/coop/harvests/upload", response_class=HTMLResponse, response_model=None)
def coop_upload_harvests(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """Record a CSV/JSON harvest file and show each row's fate."""
    coop, key, refusal = _coop(request, session)
    if refusal is not None:
        return refusal
    assert coop is not None
    _check_csrf(settings, key, csrf)
    try:
        parsed = parse_upload(file.filename or "", file.file.read())
    except HTTPException as exc:
        return _dashboard(
            request, session, chain, settings, coop, key, code=422, upload_error=str(exc.detail)
        )
    try:
        upload = submit_harvests(session, chain, settings, coop, parsed)
    except HTTPException as exc:
        return _dashboard(
            request,
            session,
            chain,
            settings,
            coop,
            key,
            code=exc.status_code,
            upload_error=str(exc.detail),
        )
    return _dashboard(request, session, chain, settings, coop, key, upload=upload)

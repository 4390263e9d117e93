"""Lender pages: a consenting farmer's profile with charts, score, reasons and offer.

Pages authenticate with the session cookie of `/login` (api/coop_pages.py) and apply the same
rules as the JSON routes: the profile page reads (and logs) the profile only with the farmer's
active consent, and shows the lender's own latest decision.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.cooperatives.pages import COOKIE
from api.core.deps import ChainDep, SessionDep, SettingsDep
from api.core.models import Role
from api.core.security import authenticate
from api.core.templates import templates
from api.lenders import service as lender_service
from indexer.profiles import FarmerProfile

router = APIRouter(include_in_schema=False)
GRADES = {1: "特级", 2: "一级", 3: "二级", 4: "三级", 5: "四级"}


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


def charts(profile: FarmerProfile) -> dict[str, list[dict[str, Any]]]:
    """Harvest (kg) and income (yuan) per season, and the grade mix (percent)."""
    return {
        "harvest": bars([(s.season, s.fresh_leaf_kg) for s in profile.seasons], "kg"),
        "income": bars(
            [(s.season, Decimal(s.sale_income_fen) / 100) for s in profile.seasons], "元"
        ),
        "grades": bars(
            [(GRADES.get(g.grade, str(g.grade)), g.share * 100) for g in profile.total.grade_mix],
            "%",
        ),
    }


def error_page(request: Request, code: int, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "lender_error.html", {"message": message, "status": code}, code
    )


@router.get("/lender/farmers/{farmer_id}", response_class=HTMLResponse, response_model=None)
def lender_profile_page(
    farmer_id: str, request: Request, session: SessionDep, settings: SettingsDep, chain: ChainDep
) -> Response:
    """A consenting farmer's profile: charts, score and reasons, offer and schedule."""
    key = request.cookies.get(COOKIE, "")
    org = authenticate(session, key) if key else None
    if org is None:
        return RedirectResponse("/login", 303)
    if org.role != Role.LENDER:
        message = f"此页面仅供贷款机构使用 · this page is for lenders; you are {org.role.value}"
        return error_page(request, 403, message)
    engine = request.app.state.engine
    try:
        profile = lender_service.read_profile(engine, settings, chain, org, farmer_id)
    except HTTPException as exc:
        return error_page(request, exc.status_code, str(exc.detail))
    decision = lender_service.latest_decision(engine, org, profile.farmer)
    context = {"org": org, "profile": profile, "charts": charts(profile), "record": decision}
    return templates.TemplateResponse(request, "lender_profile.html", context)

"""Lender pages: a consenting farmer's profile with charts, score, reasons and offer.

Pages authenticate with the session of `/login` (api/core/sessions.py) and apply the same
rules as the JSON routes: the profile page reads (and logs) the profile only with the farmer's
active consent, and shows the lender's own latest decision.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from api.core.deps import ChainDep, SettingsDep
from api.core.models import Role
from api.core.pages import page_router
from api.core.sessions import PageSession, page_session
from api.core.templates import templates
from api.lenders import service
from indexer.profiles import FarmerProfile
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
    """A consenting farmer's profile: charts, score and reasons, offer and schedule."""
    engine = request.app.state.engine
    profile = service.read_profile(engine, settings, chain, page.org, farmer_id)
    decision = service.latest_decision(engine, page.org, profile.farmer)
    context = {"org": page.org, "profile": profile, "charts": charts(profile), "record": decision}
    return templates.TemplateResponse(request, "lender_profile.html", context)

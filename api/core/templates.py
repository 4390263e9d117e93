"""The Jinja2 templates of every page (api/templates) and the filters they share."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi.templating import Jinja2Templates

from traceability.models import Grade

# China has one time zone and no daylight saving time.
CHINA = timezone(timedelta(hours=8), "CST")

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")


def kg(grams: int) -> str:
    """Grams as kilograms with two decimals."""
    return f"{grams / 1000:,.2f} kg"


def china_time(timestamp: int) -> str:
    """Unix seconds as China time, to the minute."""
    return datetime.fromtimestamp(timestamp, CHINA).strftime("%Y-%m-%d %H:%M")


def grade_label(code: int) -> str:
    """特级..四级 for a grade code."""
    return Grade(code).label


# TeaTrace's lot states (traceability.models.LotState, lower case) as people read them.
LOT_STATE_LABELS = {
    "held": "持有 held",
    "in_transit": "运输中 in transit",
    "consumed": "已加工 processed",
}


def lot_state(state: str | None) -> str:
    """A lot's state in Chinese with English beside."""
    return LOT_STATE_LABELS.get(state or "", state or "?")


def grade_both(code: int) -> str:
    """A grade in Chinese with English beside: 特级 special."""
    grade = Grade(code)
    return f"{grade.label} {grade.name.lower()}"


templates.env.filters["kg"] = kg
templates.env.filters["cst"] = china_time
templates.env.filters["grade_label"] = grade_label
templates.env.filters["grade_both"] = grade_both
templates.env.filters["lot_state"] = lot_state


def china_date(timestamp: int) -> str:
    """Unix seconds as the China date, 2026-03-05."""
    return datetime.fromtimestamp(timestamp, CHINA).strftime("%Y-%m-%d")


def short_id(value: str) -> str:
    """A long 0x id or address shortened for people: 0x1234…abcd."""
    return value if len(value) <= 14 else f"{value[:6]}…{value[-4:]}"


templates.env.filters["cn_date"] = china_date
templates.env.filters["short"] = short_id

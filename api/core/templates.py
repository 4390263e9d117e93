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


templates.env.filters["kg"] = kg
templates.env.filters["cst"] = china_time
templates.env.filters["grade_label"] = grade_label

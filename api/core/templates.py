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


LOAN_STATUS_LABELS = {
    "none": ("无", "none"),
    "issued": ("已发放", "issued"),
    "active": ("正常", "active"),
    "overdue": ("逾期", "overdue"),
    "defaulted": ("违约", "defaulted"),
    "repaid": ("已还清", "repaid"),
    "written_off": ("已核销", "written off"),
    "cancelled": ("已取消", "cancelled"),
}


def loan_status_label(status: str) -> str:
    """A loan status as 中文 English (e.g. 逾期 overdue)."""
    zh, en = LOAN_STATUS_LABELS.get(status, (status, status))
    return f"{zh} {en}"


def yuan(fen: int) -> str:
    """Fen as ¥ yuan with two decimals and thousands separators."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def china_date(timestamp: int) -> str:
    """Unix seconds as the China date, 2026-03-05."""
    return datetime.fromtimestamp(timestamp, CHINA).strftime("%Y-%m-%d")


def short_id(value: str) -> str:
    """A long 0x id or address shortened for people: 0x1234…abcd."""
    return value if len(value) <= 14 else f"{value[:6]}…{value[-4:]}"


templates.env.filters["loan_status"] = loan_status_label
templates.env.filters["yuan"] = yuan
templates.env.filters["cn_date"] = china_date
templates.env.filters["short"] = short_id

# The registry's categories (lending/loans/contracts.py MERCHANT_CATEGORIES) in Chinese: the
# one table every audience's pages label categories from.
CATEGORY_LABELS = {
    "fertilizer": "肥料",
    "seedlings": "茶苗",
    "equipment": "农机具",
    "labour service": "劳务",
}
OFFER_STATUS_LABELS = {
    "offered": "待农户确认 offered",
    "accepted": "农户已签署 accepted",
    "issued": "已放款 issued",
}


def category_label(name: str) -> str:
    """A spending category as 中文 English (e.g. 肥料 fertilizer)."""
    zh = CATEGORY_LABELS.get(name)
    return f"{zh} {name}" if zh else name


def offer_status_label(status: str) -> str:
    """A loan offer's status as 中文 English."""
    return OFFER_STATUS_LABELS.get(status, status)


templates.env.filters["category"] = category_label
templates.env.filters["offer_status"] = offer_status_label

"""What the farmer pages print: values in Chinese and English, yuan from fen, China dates.

One function per value kind; each returns (中文, English) so a page shows either first.
"""

from __future__ import annotations

from datetime import date, datetime

from api.core.labels import (
    CATEGORY,
    LOAN_STATUS,
    OFFER_STATUS,
    OFFER_STATUS_FOR_FARMER,
    ORDER_STATUS,
    READ_OUTCOME,
    READ_PURPOSE,
    Label,
    pair,
)
from api.core.labels import yuan as yuan  # the templates' L.yuan
from api.core.templates import CHINA


def offer_status(value: str) -> Label:
    """An offer's status, as the farmer reads it."""
    return pair(OFFER_STATUS, value, OFFER_STATUS_FOR_FARMER)


def loan_status(value: str) -> Label:
    """A loan's status."""
    return pair(LOAN_STATUS, value)


def order_status(value: str) -> Label:
    """A payment order's status."""
    return pair(ORDER_STATUS, value)


def category(value: str | None) -> Label:
    """A merchant category."""
    return pair(CATEGORY, value or "—")


def read_outcome(value: str) -> Label:
    """Whether a profile read was allowed."""
    return pair(READ_OUTCOME, value)


def purpose(value: str) -> Label:
    """Why a lender read the profile."""
    return pair(READ_PURPOSE, value)


def bps_pct(bps: int) -> str:
    """Basis points as a percentage with two decimals (integers only)."""
    whole, rest = divmod(int(bps), 100)
    return f"{whole}.{rest:02d}%"


def day(value: int | str | date | datetime | None) -> tuple[str, str]:
    """A day in China time: 2026年3月5日 / 2026-03-05."""
    if value is None or value == 0:
        return ("—", "—")
    if isinstance(value, int):
        value = datetime.fromtimestamp(value, CHINA)
    elif isinstance(value, str):
        value = date.fromisoformat(value[:10])
    elif isinstance(value, datetime):
        value = value.astimezone(CHINA) if value.tzinfo else value
    return (f"{value.year}年{value.month}月{value.day}日", f"{value:%Y-%m-%d}")


def moment(value: int | datetime | None) -> tuple[str, str]:
    """A time of day in China time."""
    if value is None or value == 0:
        return ("—", "—")
    if isinstance(value, int):
        value = datetime.fromtimestamp(value, CHINA)
    elif value.tzinfo:
        value = value.astimezone(CHINA)
    zh = f"{value.year}年{value.month}月{value.day}日 {value:%H:%M}"
    return (zh, f"{value:%Y-%m-%d %H:%M}")


def short(address: str | None) -> str:
    """A long hex value shortened for people (names are shown when known)."""
    if not address:
        return "—"
    return f"{address[:6]}…{address[-4:]}"

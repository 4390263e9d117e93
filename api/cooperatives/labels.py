"""How the cooperative's pages name values: Chinese first, English beside; money in yuan."""

from __future__ import annotations

from datetime import datetime

from api.core.templates import CHINA

LOAN_STATUS = {
    "issued": ("待放款", "issued"),
    "active": ("使用中", "active"),
    "overdue": ("逾期", "overdue"),
    "defaulted": ("违约", "defaulted"),
    "repaid": ("已还清", "repaid"),
    "written_off": ("已核销", "written off"),
    "cancelled": ("已取消", "cancelled"),
}
ORDER_STATUS = {
    "pending": ("待商户确认", "waiting for the merchant"),
    "accepted": ("商户已接单", "accepted by the merchant"),
    "released": ("已付款", "paid"),
    "cancelled": ("已取消", "cancelled"),
}
CATEGORY = {
    "fertilizer": ("化肥", "fertilizer"),
    "seedlings": ("茶苗", "seedlings"),
    "equipment": ("农机具", "equipment"),
    "labour service": ("劳务", "labour service"),
}
ROW_OUTCOME = {
    "ordered": ("已下单", "ordered"),
    "duplicate": ("已下过单", "already ordered"),
    "error": ("未下单", "not ordered"),
}


def _label(table: dict[str, tuple[str, str]], value: str) -> str:
    """'中文 English' for a known value, the value itself otherwise."""
    zh, en = table.get(value, (value, ""))
    return f"{zh} {en}".strip()


def loan_status_label(value: str) -> str:
    """A loan status in Chinese and English."""
    return _label(LOAN_STATUS, value)


def order_status_label(value: str) -> str:
    """A payment order's status in Chinese and English."""
    return _label(ORDER_STATUS, value)


def category_label(value: str) -> str:
    """A budget category in Chinese and English."""
    return _label(CATEGORY, value)


def outcome_label(value: str) -> str:
    """What became of a row of an order file."""
    return _label(ROW_OUTCOME, value)


def yuan(fen: int) -> str:
    """Fen as ¥1,234.50."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def china_day(timestamp: int) -> str:
    """Unix seconds as the China date, 2026-03-05."""
    return datetime.fromtimestamp(timestamp, CHINA).strftime("%Y-%m-%d")


LABELS = {
    "loan_status": loan_status_label,
    "order_status": order_status_label,
    "category": category_label,
    "outcome": outcome_label,
    "yuan": yuan,
    "day": china_day,
}
"""Passed to the cooperative's templates as `L` (no global filters: audiences stay apart)."""

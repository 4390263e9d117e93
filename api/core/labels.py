"""Chinese-first labels of the values pages show (categories, order statuses), money and dates.

One function per kind of value; English stays beside the Chinese on every page.
"""

from __future__ import annotations

from datetime import datetime

from api.core.templates import CATEGORY_LABELS as CATEGORY_ZH
from api.core.templates import CHINA, templates

# ILoanEscrow.OrderStatus names (lower case) in Chinese, as a shop reads them.
ORDER_STATUS_ZH = {
    "pending": "待接单",
    "accepted": "已接单，待送达",
    "released": "已付款",
    "cancelled": "已取消",
}


def category_label(name: str | None) -> str:
    """肥料 fertilizer; an unregistered category shows as its name or 未知类别."""
    if not name:
        return "未知类别 unknown category"
    zh = CATEGORY_ZH.get(name)
    return f"{zh} {name}" if zh else name


def order_status_label(status: str) -> str:
    """待接单 pending, 已付款 released, ..."""
    zh = ORDER_STATUS_ZH.get(status)
    return f"{zh} {status}" if zh else status


def yuan(fen: int) -> str:
    """Fen as ¥1,234.56 (integer arithmetic, no float)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def china_date(timestamp: int) -> str:
    """Unix seconds as a China date, 2026年3月5日."""
    day = datetime.fromtimestamp(timestamp, CHINA)
    return f"{day.year}年{day.month}月{day.day}日"


def short_id(value: str, keep: int = 6) -> str:
    """A pseudonym shortened for people: 0x1a2b3c…9f8e."""
    return value if len(value) <= 2 * keep + 2 else f"{value[: keep + 2]}…{value[-4:]}"


templates.env.filters["category_label"] = category_label
templates.env.filters["order_status_label"] = order_status_label
templates.env.filters["yuan"] = yuan
templates.env.filters["china_date"] = china_date
templates.env.filters["short_id"] = short_id

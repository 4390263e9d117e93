"""What the farmer pages print: values in Chinese and English, yuan from fen, China dates.

One function per value kind; each returns (中文, English) so a page shows either first.
"""

from __future__ import annotations

from datetime import date, datetime

from api.core.templates import CATEGORY_LABELS, CHINA

OFFER_STATUS = {
    "offered": ("待您确认", "waiting for you"),
    "accepted": ("已接受，待放款", "accepted, awaiting the loan"),
    "issued": ("已放款", "loan issued"),
    "declined": ("已拒绝", "declined"),
}
LOAN_STATUS = {
    "issued": ("待放款", "awaiting funding"),
    "active": ("使用中", "active"),
    "overdue": ("已逾期", "overdue"),
    "defaulted": ("已违约", "defaulted"),
    "repaid": ("已还清", "repaid"),
    "written_off": ("已核销", "written off"),
    "cancelled": ("已取消", "cancelled"),
}
ORDER_STATUS = {
    "pending": ("待确认", "waiting for confirmation"),
    "accepted": ("商家已接单", "taken by the merchant"),
    "released": ("已付款", "paid"),
    "cancelled": ("已取消", "cancelled"),
}
CATEGORY = {name: (zh, name) for name, zh in CATEGORY_LABELS.items()}
READ_OUTCOME = {
    "read": ("已读取", "read"),
    "refused_no_consent": ("未经授权，已拒绝", "refused: no consent"),
}
PURPOSE = {
    "profile_view": ("查看档案", "viewed the profile"),
    "credit_decision": ("信用审批", "credit decision"),
}
BAND = {
    "A": ("优", "A"),
    "B": ("良", "B"),
    "C": ("中", "C"),
    "D": ("差", "D"),
}


def _pick(table: dict[str, tuple[str, str]], value: object) -> tuple[str, str]:
    """The label pair of `value`, or the value itself twice."""
    key = str(getattr(value, "value", value))
    return table.get(key, (key, key))


def offer_status(value: str) -> tuple[str, str]:
    """An offer's status."""
    return _pick(OFFER_STATUS, value)


def loan_status(value: str) -> tuple[str, str]:
    """A loan's status."""
    return _pick(LOAN_STATUS, value)


def order_status(value: str) -> tuple[str, str]:
    """A payment order's status."""
    return _pick(ORDER_STATUS, value)


def category(value: str | None) -> tuple[str, str]:
    """A merchant category."""
    return _pick(CATEGORY, value or "—")


def read_outcome(value: str) -> tuple[str, str]:
    """Whether a profile read was allowed."""
    return _pick(READ_OUTCOME, value)


def purpose(value: str) -> tuple[str, str]:
    """Why a lender read the profile."""
    return _pick(PURPOSE, value)


def yuan(fen: int) -> str:
    """Fen as ¥ yuan with two decimals, computed on integers."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


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

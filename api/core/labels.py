"""Chinese-first labels of the values pages show (statuses, outcomes, categories), money and dates.

One table per fact, each row (中文, English), for every audience's pages: the lender's and the
shop's as Jinja filters, the cooperative's and the farmer's through their own `L` helpers. Where
one audience reads a status from its own side (the farmer's offer is "waiting for you", the shop
"takes" an order), the few rows it words differently stand in an override beside the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from api.core.templates import CHINA, templates

Label = tuple[str, str]

# ILoanEscrow.LoanStatus names (lower case); "none" is a farmer without a loan.
LOAN_STATUS: dict[str, Label] = {
    "none": ("无", "none"),
    "issued": ("待放款", "issued"),
    "active": ("使用中", "active"),
    "overdue": ("逾期", "overdue"),
    "defaulted": ("违约", "defaulted"),
    "repaid": ("已还清", "repaid"),
    "written_off": ("已核销", "written off"),
    "cancelled": ("已取消", "cancelled"),
}
# A lender reads an active loan as performing.
LOAN_STATUS_FOR_LENDER: dict[str, Label] = {"active": ("正常", "active")}

# ILoanEscrow.OrderStatus names (lower case), as the farmer and the cooperative read them.
ORDER_STATUS: dict[str, Label] = {
    "pending": ("待商户确认", "waiting for the merchant"),
    "accepted": ("商户已接单", "accepted by the merchant"),
    "released": ("已付款", "paid"),
    "cancelled": ("已取消", "cancelled"),
}
# The shop is the one to take and deliver an order.
ORDER_STATUS_FOR_MERCHANT: dict[str, Label] = {
    "pending": ("待接单", "pending"),
    "accepted": ("已接单，待送达", "accepted"),
}

# Stored loan offers (lending.loans.offers), as the lender reads them.
OFFER_STATUS: dict[str, Label] = {
    "offered": ("待农户确认", "offered"),
    "accepted": ("农户已签署", "accepted"),
    "issued": ("已放款", "issued"),
    "declined": ("已拒绝", "declined"),
}
# The farmer is the one to confirm an offer.
OFFER_STATUS_FOR_FARMER: dict[str, Label] = {
    "offered": ("待您确认", "waiting for you"),
    "accepted": ("已接受，待放款", "accepted, awaiting the loan"),
    "issued": ("已放款", "loan issued"),
}
# The cooperative's clerk has the member sign at the desk.
OFFER_STATUS_FOR_COOPERATIVE: dict[str, Label] = {
    "offered": ("待社员签字", "waiting for the member's signature"),
    "accepted": ("社员已签字，待放款", "signed; the lender issues it"),
}

# The registry's categories (lending/loans/contracts.py MERCHANT_CATEGORIES).
CATEGORY: dict[str, Label] = {
    "fertilizer": ("肥料", "fertilizer"),
    "seedlings": ("茶苗", "seedlings"),
    "equipment": ("农机具", "equipment"),
    "labour service": ("劳务", "labour service"),
}
# Cooperatives' clerks order fertilizer as 化肥.
CATEGORY_FOR_COOPERATIVE: dict[str, Label] = {"fertilizer": ("化肥", "fertilizer")}

# What became of a row of a cooperative's order file (api/cooperatives/loans.py).
ROW_OUTCOME: dict[str, Label] = {
    "ordered": ("已下单", "ordered"),
    "duplicate": ("已下过单", "already ordered"),
    "error": ("未下单", "not ordered"),
}
# Whether a lender's read of a farmer's profile was allowed (the access log).
READ_OUTCOME: dict[str, Label] = {
    "read": ("已读取", "read"),
    "refused_no_consent": ("未经授权，已拒绝", "refused: no consent"),
}
# Why a lender read a farmer's profile (the access log).
READ_PURPOSE: dict[str, Label] = {
    "profile_view": ("查看档案", "viewed the profile"),
    "credit_decision": ("信用审批", "credit decision"),
}
# The risk monitor: an alert's place in the regulator's review (risk.alerts.AlertStatus) and
# how serious its rule judges it.
ALERT_STATUS: dict[str, Label] = {
    "open": ("待处理", "open"),
    "reviewed": ("已审阅", "reviewed"),
    "dismissed": ("已排除", "dismissed"),
    "confirmed": ("已确认", "confirmed"),
}
# Who is behind a wallet (risk.flows.WalletLabel.kind).
WALLET_KIND: dict[str, Label] = {
    "farmer": ("茶农", "farmer"),
    "escrow": ("贷款托管", "loan escrow"),
    "lender": ("贷款机构", "lender"),
    "merchant": ("商户", "merchant"),
    "agent": ("代理", "agent"),
    "organisation": ("机构", "organisation"),
    "contract": ("合约", "contract"),
    "mint": ("发行", "mint"),
    "unknown": ("未知", "unknown"),
}
# The flush a product's leaf was picked in (api/cooperatives/products.py).
FLUSH: dict[str, Label] = {
    "spring": ("春茶", "spring flush"),
    "summer": ("夏茶", "summer flush"),
    "autumn": ("秋茶", "autumn flush"),
    "winter": ("冬茶", "winter"),
}

SEVERITY: dict[str, Label] = {
    "high": ("高", "high"),
    "medium": ("中", "medium"),
    "low": ("低", "low"),
}


def pair(
    table: Mapping[str, Label], value: object, wording: Mapping[str, Label] | None = None
) -> Label:
    """(中文, English) of `value` (an enum by its value), an audience's wording first; an
    unknown value stands for itself in both."""
    key = str(getattr(value, "value", value))
    return (wording or {}).get(key) or table.get(key) or (key, key)


def both(
    table: Mapping[str, Label], value: object, wording: Mapping[str, Label] | None = None
) -> str:
    """'中文 English' of `value`; an unknown value once, as it is."""
    zh, en = pair(table, value, wording)
    return zh if zh == en else f"{zh} {en}"


def category_label(name: str | None) -> str:
    """肥料 fertilizer; an unregistered category shows as its name or 未知类别."""
    return both(CATEGORY, name) if name else "未知类别 unknown category"


def order_status_label(status: str) -> str:
    """An order's status as the shop reads it: 待接单 pending, 已付款 paid, ..."""
    return both(ORDER_STATUS, status, ORDER_STATUS_FOR_MERCHANT)


def loan_status_label(status: str) -> str:
    """A loan status as the lender reads it (e.g. 逾期 overdue)."""
    return both(LOAN_STATUS, status, LOAN_STATUS_FOR_LENDER)


def offer_status_label(status: str) -> str:
    """A loan offer's status as the lender reads it."""
    return both(OFFER_STATUS, status)


def yuan(fen: int) -> str:
    """Fen as ¥1,234.56 (integer arithmetic, no float)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def china_date(timestamp: int) -> str:
    """Unix seconds as a China date, 2026年3月5日."""
    day = datetime.fromtimestamp(timestamp, CHINA)
    return f"{day.year}年{day.month}月{day.day}日"


def short_id(value: str, keep: int = 6) -> str:
    """A pseudonym shortened for people: 0x1a2b3c…9f8e."""
    return value if len(value) <= 2 * keep + 2 else f"{value[: keep + 2]}…{value[-4:]}"


def alert_status_label(status: str) -> str:
    """An alert's status: 待处理 open, 已排除 dismissed, ..."""
    return both(ALERT_STATUS, status)


def wallet_kind_label(kind: str) -> str:
    """Who is behind a wallet: 商户 merchant, 贷款托管 loan escrow, ..."""
    return both(WALLET_KIND, kind)


def flush_label(flush: str) -> str:
    """A product's flush: 春茶 spring flush, ..."""
    return both(FLUSH, flush)


def severity_label(severity: str) -> str:
    """A finding's severity: 高 high, 中 medium, 低 low."""
    return both(SEVERITY, severity)


templates.env.filters["category_label"] = category_label
templates.env.filters["order_status_label"] = order_status_label
templates.env.filters["yuan"] = yuan
templates.env.filters["china_date"] = china_date
templates.env.filters["short_id"] = short_id
templates.env.filters["loan_status"] = loan_status_label
templates.env.filters["category"] = category_label
templates.env.filters["offer_status"] = offer_status_label
templates.env.filters["alert_status"] = alert_status_label
templates.env.filters["severity"] = severity_label
templates.env.filters["flush"] = flush_label
templates.env.filters["wallet_kind"] = wallet_kind_label

"""How the cooperative's pages name values: Chinese first, English beside; money in yuan.

The label tables are api/core/labels.py's, the one table per fact every audience shares.
"""

from __future__ import annotations

from datetime import datetime

from api.core.labels import (
    CATEGORY,
    CATEGORY_FOR_COOPERATIVE,
    LOAN_STATUS,
    ORDER_STATUS,
    ROW_OUTCOME,
    both,
    yuan,
)
from api.core.templates import CHINA


def loan_status_label(value: str) -> str:
    """A loan status in Chinese and English."""
    return both(LOAN_STATUS, value)


def order_status_label(value: str) -> str:
    """A payment order's status in Chinese and English."""
    return both(ORDER_STATUS, value)


def category_label(value: str) -> str:
    """A budget category in Chinese and English."""
    return both(CATEGORY, value, CATEGORY_FOR_COOPERATIVE)


def outcome_label(value: str) -> str:
    """What became of a row of an order file."""
    return both(ROW_OUTCOME, value)


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

"""Which database objects the indexer's migrations own."""

from __future__ import annotations

from typing import Any


def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Ignore tables that exist in the database but not in the indexer's models."""
    return not (type_ == "table" and reflected and compare_to is None)

"""Limit/offset pagination shared by every list route."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")
MAX_PAGE = 500
# Far past any list's end, far below what a database driver can bind (a larger offset was an
# OverflowError and a 500).
MAX_OFFSET = 1_000_000_000


class PageParams(BaseModel):
    """Which slice of a list to return."""

    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")] = 0,
) -> PageParams:
    """Query parameters `limit` (1..500) and `offset` (0..MAX_OFFSET)."""
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    """One page of results and the total count."""

    items: list[T]
    total: int
    limit: int
    offset: int

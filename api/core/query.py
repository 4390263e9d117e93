"""Unknown query parameters of a JSON route are refused, not ignored.

A typo (`?limt=5`) silently ignored answers something the client did not ask for; the schema
documents every parameter a route takes, so anything else is a 422 naming what the route
takes. Pages (kept out of the schema) are left alone: browsers and links add their own.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.core.errors import Invalid

_ATTRIBUTE = "tealedger_query_names"


def _allowed(route: APIRoute) -> frozenset[str]:
    """The query parameters a route declares (its dependencies' included), computed once and
    kept on the route itself (an id-keyed cache could hand a new route a dead one's names)."""
    known: frozenset[str] | None = getattr(route, _ATTRIBUTE, None)
    if known is None:
        known = frozenset(_query_names(route.dependant))
        setattr(route, _ATTRIBUTE, known)
    return known


def _query_names(dependant: Dependant) -> Iterator[str]:
    """Query parameter names of a dependant and its dependencies (models' fields included)."""
    for field in dependant.query_params:
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            yield from (f.alias or name for name, f in model.model_fields.items())
        else:
            yield field.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the JSON route does not take (async: a sync dependency costs
    every request a worker-thread hop)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    allowed = _allowed(route)
    for name in request.query_params:
        if name not in allowed:
            takes = ", ".join(sorted(allowed)) or "no query parameters"
            raise Invalid(f"unknown query parameter {name[:40]!r}; this route takes {takes}",
                          loc=("query", name[:40]))  # fmt: skip

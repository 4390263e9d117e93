"""Page plumbing shared by every audience's pages: errors become the error page.

Page routers are made with `page_router()`: their routes catch every error the service maps
to a status (api/core/errors.py) and render it as the bilingual error page with that status,
and send a browser without a session (`LoginRequired`) to the login form. JSON routes keep the
JSON error bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

import api.core.labels  # noqa: F401  (registers the label filters every page's templates use)
from api.core.errors import ROOTS, detail_of, status_of
from api.core.templates import templates


class LoginRequired(Exception):
    """No valid session: the page sends the browser to the login form."""


def error_page(request: Request, exc: BaseException) -> HTMLResponse:
    """The error page of any error the service maps to a status."""
    context = {"status": status_of(exc), "detail": detail_of(exc)}
    return templates.TemplateResponse(request, "error.html", context, status_of(exc))


class PageRoute(APIRoute):
    """A page: domain errors render the error page, a missing session redirects to /login."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler (dependencies included) with the page's error handling."""
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
            except ROOTS as exc:
                return error_page(request, exc)

        return page


def page_router() -> APIRouter:
    """A router for pages (kept out of the OpenAPI document)."""
    return APIRouter(include_in_schema=False, route_class=PageRoute)

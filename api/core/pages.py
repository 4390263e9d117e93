"""Page plumbing shared by every audience's pages: errors become the error page.

Page routers are made with `page_router()`: their routes catch every error the service maps
to a status (api/core/errors.py) and render it as the bilingual error page with that status,
and send a browser without a session (`LoginRequired`) to the login form. JSON routes keep the
JSON error bodies.

Every action on a page is two steps: a confirmation page showing what will be sent, then the
send. `answer` is the part of each step the audiences share: do it, and on a domain error show
the page again with the message and the error's status; on success redirect (POST-redirect-GET)
or render the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlmodel import Session

import api.core.labels  # noqa: F401  (registers the label filters every page's templates use)
from api.core.errors import ROOTS, detail_of, status_of
from api.core.templates import templates


class LoginRequired(Exception):
    """No valid session: the page sends the browser to the login form."""


def error_page(request: Request, exc: BaseException) -> HTMLResponse:
    """The error page of any error the service maps to a status."""
    return message_page(request, detail_of(exc), status_of(exc))


def message_page(request: Request, detail: str, code: int) -> HTMLResponse:
    """The error page saying `detail` with status `code` (`answer`'s `failed` takes it)."""
    context = {"status": code, "detail": detail}
    return templates.TemplateResponse(request, "error.html", context, code)


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


T = TypeVar("T")


def see_other(url: str) -> RedirectResponse:
    """After a done action, the page that shows its result (POST-redirect-GET)."""
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


def answer(
    attempt: Callable[[], T],
    done: str | Callable[[T], Response],
    failed: Callable[[str, int], Response],
    rollback: Session | None = None,
) -> Response:
    """Do a step of an action: `done` (a URL to see, or the outcome page of the result) if it
    worked, else `failed(message, status)` for the domain error (api/core/errors.py ROOTS),
    after rolling back `rollback` (what the step wrote here must not stay half done)."""
    try:
        result = attempt()
    except ROOTS as exc:
        if rollback is not None:
            rollback.rollback()
        return failed(detail_of(exc), status_of(exc))
    return see_other(done) if isinstance(done, str) else done(result)

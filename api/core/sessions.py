"""Page sessions of every audience: log in with the organisation's API key, a cookie, CSRF.

- `GET /login` shows a form; `POST /login` with the organisation's API key sets the cookie
  `tealedger_key` (HttpOnly, SameSite=Strict, Secure when the service is served over https,
  8 hours) and redirects to the organisation's home page. `POST /logout` clears it.
- Pages declare who may see them with `page_session(role)`: no valid session redirects to the
  login form, another role gets the 403 error page. The cookie is looked up exactly like
  `X-API-Key`; the JSON API does not accept it (it keeps `X-API-Key` only), so a browser session
  never reaches it.
- Every form carries a CSRF token (an HMAC of the key under the server secret) besides the
  SameSite cookie; `check_csrf` refuses a form without the session's token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.core.deps import SessionDep, SettingsDep
from api.core.errors import Forbidden
from api.core.models import Organisation, Role
from api.core.pages import LoginRequired, page_router
from api.core.security import authenticate
from api.core.settings import ApiSettings
from api.core.templates import templates

COOKIE = "tealedger_key"
COOKIE_MAX_AGE = 8 * 3600
# Where each organisation lands after logging in (the others: the public home page).
HOME_PAGES = {Role.COOPERATIVE: "/coop"}

router = page_router()


@dataclass(frozen=True)
class PageSession:
    """The organisation logged in on this browser, and its session's form token."""

    org: Organisation
    key: str
    csrf: str


def csrf_token(settings: ApiSettings, key: str) -> str:
    """The form token of a session: HMAC of its key under the server secret."""
    secret = settings.pseudonym_secret.get_secret_value().encode()
    return hmac.new(secret, b"tealedger.csrf.v1:" + key.encode(), hashlib.sha256).hexdigest()


def check_csrf(page: PageSession, token: str) -> None:
    """403 unless the form came from one of our pages for this session."""
    if not hmac.compare_digest(page.csrf, token):
        raise Forbidden("form token mismatch: reload the page")


def page_session(*roles: Role) -> Callable[..., PageSession]:
    """Dependency factory: the session's organisation if it has one of `roles`."""
    allowed = set(roles)

    def current(request: Request, session: SessionDep, settings: SettingsDep) -> PageSession:
        key = request.cookies.get(COOKIE, "")
        org = authenticate(session, key) if key else None
        if org is None:
            raise LoginRequired
        if org.role not in allowed:
            zh = "、".join(r.label_zh for r in roles)
            en = ", ".join(r.value for r in roles)
            raise Forbidden(f"此页面仅供{zh}使用 · this page is for: {en}; you are {org.role}")
        return PageSession(org, key, csrf_token(settings, key))

    return current


def _login_page(request: Request, error: str | None, code: int = 200) -> HTMLResponse:
    """The login form, with an error if any."""
    return templates.TemplateResponse(request, "login.html", {"error": error}, code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """Ask for the API key."""
    return _login_page(request, None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=200)],
) -> Response:
    """Check the key, keep it in an HttpOnly cookie, go to the organisation's page."""
    org = authenticate(session, api_key.strip())
    if org is None:
        return _login_page(request, "密钥无效 · invalid or revoked API key", 401)
    response = RedirectResponse(HOME_PAGES.get(org.role, "/"), status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        COOKIE,
        api_key.strip(),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://"),
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    """Forget the key."""
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response

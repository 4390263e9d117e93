"""Page sessions of every audience: log in with the organisation's API key, a cookie, CSRF.

- `GET /login` shows a form; `POST /login` with the organisation's API key opens a server-side
  session (`api_page_login`) and sets the cookie `tealedger_login` to its random token (HttpOnly,
  SameSite=Strict, Secure when the service is served over https, 8 hours); the key itself never
  goes into the cookie. `POST /logout` revokes the session on the server and clears the cookie,
  so a copied cookie stops working too; revoking the key ends its sessions.
- Pages declare who may see them with `page_session(role)`: no valid session redirects to the
  login form, another role gets the 403 error page. The JSON API does not accept the cookie (it
  keeps `X-API-Key` only), so a browser session never reaches it.
- Every form carries a CSRF token (an HMAC of the session token under the server secret)
  besides the SameSite cookie; `check_csrf` refuses a form without the session's token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, delete, select

from api.core.deps import SessionDep, SettingsDep
from api.core.errors import Forbidden
from api.core.links import served_over_https
from api.core.models import ApiKey, Organisation, PageLogin, Role, utcnow
from api.core.pages import LoginRequired, page_router
from api.core.security import authenticate, hash_key
from api.core.settings import ApiSettings
from api.core.templates import templates

COOKIE = "tealedger_login"
COOKIE_MAX_AGE = 8 * 3600
# Most open logins per key: a script logging in in a loop cannot grow the table without bound.
MAX_LOGINS_PER_KEY = 50
# Where each organisation lands after logging in (the others: the public home page).
HOME_PAGES = {
    Role.COOPERATIVE: "/coop",
    Role.FARMER: "/farmer",
    Role.MERCHANT: "/merchant",
    Role.LENDER: "/lender",
    Role.PROCESSOR: "/supply",
    Role.DISTRIBUTOR: "/supply",
    Role.REGULATOR: "/reg",
}

# The pages each organisation can open from the navigation bar (Chinese, English).
NAV_LINKS: dict[Role, tuple[tuple[str, str, str], ...]] = {
    Role.COOPERATIVE: (
        ("/coop", "合作社工作台", "Cooperative desk"),
        ("/coop/members", "社员", "Members"),
        ("/coop/offers", "社员报价", "Members' offers"),
        ("/coop/loans", "社员贷款", "Members' loans"),
        ("/coop/products", "产品条码", "Products"),
        ("/supply", "茶批结算", "Lot settlement"),
    ),
    Role.MERCHANT: (
        ("/merchant", "商户工作台", "Shop desk"),
        ("/merchant/payments", "收款记录", "Payments received"),
    ),
    Role.FARMER: (
        ("/farmer", "我的贷款", "My loans"),
        ("/farmer/privacy", "授权与查询", "Consents"),
    ),
    Role.PROCESSOR: (("/supply", "茶批结算", "Lot settlement"),),
    Role.DISTRIBUTOR: (("/supply", "茶批结算", "Lot settlement"),),
    Role.LENDER: (
        ("/lender", "贷款组合", "Portfolio"),
        ("/lender/disbursements", "放款去向", "Disbursements"),
    ),
    Role.REGULATOR: (
        ("/reg", "风险总览", "Risk overview"),
        ("/reg/alerts", "预警", "Alerts"),
        ("/reg/fairness", "信贷公平性", "Lending fairness"),
    ),
}

router = page_router()


@dataclass(frozen=True)
class LoginView:
    """Who is logged in on this browser, as the navigation bar shows it."""

    name: str
    role_zh: str
    role_en: str
    links: tuple[tuple[str, str, str], ...]


def current_login(request: Request) -> dict[str, LoginView | None]:
    """Template context of every page: the logged-in organisation, if any."""
    token = request.cookies.get(COOKIE, "")
    engine = getattr(request.app.state, "engine", None)
    if not 0 < len(token) <= 100 or engine is None:
        return {"login": None}
    with Session(engine) as session:
        org = login_organisation(session, token)
    if org is None:
        return {"login": None}
    view = LoginView(org.name, org.role.label_zh, org.role.value, NAV_LINKS.get(org.role, ()))
    return {"login": view}


templates.context_processors.append(current_login)


@dataclass(frozen=True)
class PageSession:
    """The organisation logged in on this browser, and its session's form token."""

    org: Organisation
    csrf: str


def csrf_token(settings: ApiSettings, token: str) -> str:
    """The form token of a session: HMAC of its login token under the server secret."""
    secret = settings.pseudonym_secret.get_secret_value().encode()
    return hmac.new(secret, b"tealedger.csrf.v2:" + token.encode(), hashlib.sha256).hexdigest()


def open_login(session: Session, key: ApiKey) -> str:
    """Start a browser session for `key`; returns the cookie's token (stored only hashed)."""
    now = utcnow()
    session.exec(delete(PageLogin).where(col(PageLogin.expires_at) < now))  # type: ignore[call-overload]
    _drop_oldest_logins(session, key)
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=COOKIE_MAX_AGE)
    session.add(PageLogin(token_hash=hash_key(token), api_key_id=key.id, expires_at=expires))
    session.commit()
    return token


def _drop_oldest_logins(session: Session, key: ApiKey) -> None:
    """Keep at most MAX_LOGINS_PER_KEY - 1 of `key`'s logins before a new one opens."""
    rows = select(PageLogin.id).where(PageLogin.api_key_id == key.id)
    ids = list(session.exec(rows.order_by(col(PageLogin.id).desc())))
    stale = ids[MAX_LOGINS_PER_KEY - 1 :]
    if stale:
        session.exec(delete(PageLogin).where(col(PageLogin.id).in_(stale)))  # type: ignore[call-overload]


def login_organisation(session: Session, token: str) -> Organisation | None:
    """The organisation of a live login: not expired, not logged out, its key not revoked."""
    login = session.exec(select(PageLogin).where(PageLogin.token_hash == hash_key(token))).first()
    if login is None or login.revoked_at is not None or _expired(login):
        return None
    key = session.get(ApiKey, login.api_key_id)
    if key is None or key.revoked_at is not None:
        return None
    org = session.get(Organisation, key.organisation_id)
    return org if org is not None and org.active else None


def _expired(login: PageLogin) -> bool:
    """Past its expiry (SQLite hands timestamps back without their zone: they are UTC)."""
    expires = login.expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=utcnow().tzinfo)
    return expires <= utcnow()


def close_login(session: Session, token: str) -> None:
    """Revoke a login, so its cookie opens nothing even if copied."""
    login = session.exec(select(PageLogin).where(PageLogin.token_hash == hash_key(token))).first()
    if login is not None and login.revoked_at is None:
        login.revoked_at = utcnow()
        session.add(login)
        session.commit()


def check_csrf(page: PageSession, token: str) -> None:
    """403 unless the form came from one of our pages for this session."""
    if not hmac.compare_digest(page.csrf, token):
        raise Forbidden("form token mismatch: reload the page")


def page_session(*roles: Role) -> Callable[..., PageSession]:
    """Dependency factory: the session's organisation if it has one of `roles`."""
    allowed = set(roles)

    def current(request: Request, session: SessionDep, settings: SettingsDep) -> PageSession:
        token = request.cookies.get(COOKIE, "")
        org = login_organisation(session, token) if 0 < len(token) <= 100 else None
        if org is None:
            raise LoginRequired
        if org.role not in allowed:
            zh = "、".join(r.label_zh for r in roles)
            en = ", ".join(r.value for r in roles)
            raise Forbidden(f"此页面仅供{zh}使用 · this page is for: {en}; you are {org.role}")
        return PageSession(org, csrf_token(settings, token))

    return current


def _login_page(request: Request, error: str | None, code: int = 200) -> HTMLResponse:
    """The login form, with an error if any."""
    return templates.TemplateResponse(request, "login.html", {"error": error}, code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """The login form: an organisation's API key opens a session (登录)."""
    return _login_page(request, None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=200)],
) -> Response:
    """Check the key, open a server-side session, go to the organisation's page."""
    secret = api_key.strip()
    org = authenticate(session, secret)
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(secret))).first()
    if org is None or key is None:
        return _login_page(request, "密钥无效 · invalid or revoked API key", 401)
    token = open_login(session, key)
    response = RedirectResponse(HOME_PAGES.get(org.role, "/"), status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=served_over_https(request, settings.public_base_url),
    )
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> RedirectResponse:
    """End the session on the server, then in the browser."""
    token = request.cookies.get(COOKIE, "")
    if 0 < len(token) <= 100:
        close_login(session, token)
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response

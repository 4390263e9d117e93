"""FastAPI dependencies: settings, database session, chain client, the calling organisation,
role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import Engine
from sqlmodel import Session

from api.core.errors import Forbidden, Unauthorized
from api.core.metrics import count_transactions
from api.core.models import Organisation, Role
from api.core.security import authenticate
from api.core.settings import ApiSettings
from chain.client import ChainClient
from indexer.archive import IndexArchive

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Organisation key")


# The dependencies that never block are async: FastAPI runs a sync one in a worker thread,
# a hop that cost every request a fraction of a millisecond (docs/benchmarks.md).


async def get_app_settings(request: Request) -> ApiSettings:
    """The settings the app was built with."""
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session on the app's engine."""
    with Session(request.app.state.engine) as session:
        yield session


async def get_chain(request: Request) -> ChainClient:
    """The app's ChainClient (injected in tests; built from the environment on first use)."""
    client = getattr(request.app.state, "chain", None)
    if client is None:
        client = request.app.state.chain = ChainClient()
        serve_client(client, request.app.state.engine)
    return client


def serve_client(client: ChainClient, engine: Engine) -> None:
    """Ready the app's chain client: its transactions counted in the metrics, old events read
    from the app's index."""
    count_transactions(client)
    client.use_archive(IndexArchive(engine))


SettingsDep = Annotated[ApiSettings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ChainDep = Annotated[ChainClient, Depends(get_chain)]


def get_current_org(
    request: Request, session: SessionDep, key: Annotated[str | None, Depends(api_key_header)]
) -> Organisation:
    """The organisation whose key is in `X-API-Key`; 401 without a valid key."""
    if not key:
        raise Unauthorized("missing X-API-Key header")
    org = authenticate(session, key)
    if org is None:
        raise Unauthorized("invalid or revoked API key")
    request.state.org = org
    return org


CurrentOrg = Annotated[Organisation, Depends(get_current_org)]


def require_role(*roles: Role) -> Callable[[Organisation], Awaitable[Organisation]]:
    """Dependency factory: 403 unless the caller has one of `roles`."""
    allowed = set(roles)

    async def check(org: CurrentOrg) -> Organisation:
        return check_role(org, allowed)

    return check


def check_role(org: Organisation, allowed: set[Role]) -> Organisation:
    """`org`, or 403 unless it has one of the `allowed` roles."""
    if org.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise Forbidden(f"this needs the role {names}; you are {org.role}")
    return org


KeyAndRoles = tuple[str | None, set[Role]]


def key_for_role(*roles: Role) -> Callable[[str | None], Awaitable[KeyAndRoles]]:
    """Dependency factory for a route that checks the caller itself, in its one worker thread
    (`caller_with_role`; each sync dependency is a thread hop of its own): the `X-API-Key` and
    the roles it must have."""
    allowed = set(roles)

    async def key_for(key: Annotated[str | None, Depends(api_key_header)]) -> KeyAndRoles:
        return key, allowed

    return key_for


def caller_with_role(request: Request, key_and_roles: KeyAndRoles) -> Organisation:
    """`get_current_org` then `require_role`'s check, in one call: 401, 403, or the caller."""
    key, allowed = key_and_roles
    with Session(request.app.state.engine) as session:
        return check_role(get_current_org(request, session, key), allowed)


AdminOrg = Annotated[Organisation, Depends(require_role(Role.ADMIN))]

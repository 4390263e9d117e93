"""Liveness, the indexer follower's state, and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from api.core.deps import SessionDep, SettingsDep
from api.core.errors import Forbidden
from api.core.follower import FollowerState, FollowerStatus
from api.core.metrics import REGISTRY

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """`degraded` while the follower retries after an error; the service still serves."""

    status: Literal["ok", "degraded"]
    database: Literal["ok"]
    indexer: FollowerStatus


@router.get("/healthz", response_model=Health)
def healthz(request: Request, session: SessionDep) -> Health:
    """The service answers, its database too, and how current the indexed reads are."""
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    follower = request.app.state.follower
    off = FollowerStatus(state=FollowerState.OFF)
    indexer = follower.status() if follower is not None else off
    degraded = indexer.state in (FollowerState.FAILED, FollowerState.STOPPED)
    return Health(status="degraded" if degraded else "ok", database="ok", indexer=indexer)


LOOPBACK = frozenset({"127.0.0.1", "::1"})
# A proxy on the same host makes every client look local: its forwarding headers say so.
FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def metrics_allowed(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str, Header(max_length=300)] = "",
) -> None:
    """The scrape key when one is configured; without one, direct loopback clients only."""
    key = settings.metrics_key
    if key is not None:
        given = authorization.removeprefix("Bearer ").strip().encode()
        if not hmac.compare_digest(given, key.get_secret_value().encode()):
            raise Forbidden("metrics need the scrape key: Authorization: Bearer <key>")
        return
    host = request.client.host if request.client else ""
    if host not in LOOPBACK or any(h in request.headers for h in FORWARDED):
        raise Forbidden(
            "metrics are served to this host only; set TEALEDGER_METRICS_KEY to scrape remotely"
        )


# The exposition is text and the refusals JSON like every other error's: documented as such
# (a text response class would document the errors as text too).
METRICS_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}
}


@router.get("/metrics", responses=METRICS_TEXT, dependencies=[Depends(metrics_allowed)])
def metrics() -> PlainTextResponse:
    """Requests, transactions sent, errors and indexer lag, in Prometheus text format."""
    return PlainTextResponse(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

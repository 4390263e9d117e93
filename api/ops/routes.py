"""Liveness, the indexer follower's state, and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from api.core.deps import SessionDep
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


@router.get("/metrics", response_class=PlainTextResponse)
def metrics() -> PlainTextResponse:
    """Prometheus exposition format."""
    return PlainTextResponse(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

"""EPCIS 2.0 capture over HTTP (the REST binding's capture interface): `POST /epcis/capture`
records a document's events on chain as the calling organisation, `GET /epcis/capture/{id}`
shows the capture job.

The binding lets a server answer 202 at once and work in the background; here the work is
done before answering (a document of a few hundred events takes seconds on chain), so the 202
already carries the finished job, and its Location serves it again later. Refusals are
synchronous: 400 for a body that is not a schema-valid EPCIS document, 422 with per-event
errors when an event cannot be recorded (nothing sent), 409 when the chain changed while
sending (what was sent stays; post the same document again to complete it).
"""

from __future__ import annotations

import threading
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from api.core.chain import recording_service
from api.core.deps import ChainDep, SettingsDep, require_role
from api.core.errors import NotFound
from api.core.models import Organisation, Role
from traceability.epcis.capture import (
    CaptureRefused,
    DocumentInvalid,
    capture,
    load_job,
    parse_document,
)

router = APIRouter(prefix="/epcis", tags=["epcis"])

CaptureOrg = Annotated[
    Organisation,
    Depends(require_role(Role.COOPERATIVE, Role.PROCESSOR, Role.DISTRIBUTOR, Role.INSPECTOR)),
]
_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
_JOB = {"type": "object", "description": "an EPCIS capture job with per-event results"}
_PROBLEM = {"type": "object", "description": "an EPCIS exception with per-event errors"}


def _answer(description: str, schema: dict[str, str]) -> dict[str, Any]:
    """An OpenAPI response entry."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


CAPTURE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: _answer("Captured (the finished job)", _JOB),
    400: _answer("Not a valid EPCIS 2.0 document", _PROBLEM),
    409: _answer("The chain changed while sending (what was sent stays)", _JOB),
    422: _answer("Events that cannot be recorded (nothing recorded)", _PROBLEM),
}


def _lock(org: Organisation) -> threading.Lock:
    """One capture at a time per organisation in this process: two posts of the same document
    must not both plan before either records."""
    assert org.id is not None
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(org.id, threading.Lock())


def _problem(code: int, kind: str, title: str, **extra: Any) -> JSONResponse:
    """An EPCIS exception (problem details) answer."""
    body = {"type": f"epcisException:{kind}", "title": title, "status": code} | extra
    return JSONResponse(body, status_code=code)


@router.post(
    "/capture",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=JSONResponse,
    responses=CAPTURE_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/ld+json": {"schema": {"type": "object"}}},
        }
    },
)
async def capture_document(
    request: Request, settings: SettingsDep, chain: ChainDep, org: CaptureOrg
) -> Response:
    """Record an EPCIS 2.0 document's events on chain as your organisation (your key signs).

    Each event must be one you did (your harvests, steps, shipments, receipts, sales,
    inspections or recalls); all are checked before anything is sent. Posting a document
    again records nothing new: events are known by their CBV 2.0 event hash."""
    body = await request.body()
    try:
        document = parse_document(body)
    except DocumentInvalid as exc:
        return _problem(400, "ValidationException", str(exc), errors=exc.details[:20])
    capture_id = str(uuid.uuid4())
    service = recording_service(chain, settings, org)
    engine = request.app.state.engine

    def run() -> Any:
        with _lock(org):
            return capture(service, engine, document, capture_id)

    from starlette.concurrency import run_in_threadpool  # chain calls block: off the loop

    try:
        report = await run_in_threadpool(run)
    except CaptureRefused as exc:
        errors = [e.__dict__ for e in exc.errors]
        return _problem(422, "ValidationException", str(exc), errors=errors)
    location = {"Location": f"/epcis/capture/{capture_id}"}
    code = status.HTTP_202_ACCEPTED if report.success else status.HTTP_409_CONFLICT
    return JSONResponse(report.as_json(), status_code=code, headers=location)


@router.get("/capture/{capture_id}", response_class=JSONResponse)
def capture_job(capture_id: str, request: Request, org: CaptureOrg) -> JSONResponse:
    """One of your capture jobs: finished, its per-event results and errors."""
    try:
        uuid.UUID(capture_id)
    except ValueError as exc:
        raise NotFound("no such capture job") from exc
    job = load_job(request.app.state.engine, org.chain_address, capture_id)
    if job is None:
        raise NotFound("no such capture job of yours")
    return JSONResponse(job)

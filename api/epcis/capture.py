"""EPCIS 2.0 capture over HTTP (the REST binding's capture interface): `POST /epcis/capture`
records a document's events on chain as the calling organisation, `GET /epcis/capture/{id}`
shows the capture job.

The binding lets a server answer 202 at once and work in the background; here the work is
done before answering (a document of a few hundred events takes seconds on chain), so the 202
already carries the finished job, and its Location serves it again later. Refusals are
synchronous, in the service's usual error shapes: 400 for a body that is not a schema-valid
EPCIS document, 422 with one item per event that cannot be recorded (nothing sent), 409 when
the chain changed while sending (what was sent stays; post the same document again).
"""

from __future__ import annotations

import threading
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.core.chain import recording_service
from api.core.deps import ChainDep, SettingsDep, require_role
from api.core.errors import NotFound, detail_of, status_of
from api.core.indexed import indexed_read
from api.core.models import Organisation, Role
from api.epcis.routes import (
    DOCUMENT_RESPONSES,
    CoopOrg,
    TimeQuery,
    answer,
    capped_events,
)
from traceability.epcis.capture import (
    CaptureRefused,
    DocumentInvalid,
    capture,
    load_job,
    parse_document,
    with_master_data,
)
from traceability.epcis.export import epcis_document

router = APIRouter(prefix="/epcis", tags=["epcis"])

CaptureOrg = Annotated[
    Organisation,
    Depends(require_role(Role.COOPERATIVE, Role.PROCESSOR, Role.DISTRIBUTOR, Role.INSPECTOR)),
]
_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
_JOB = {"type": "object", "description": "an EPCIS capture job with per-event results"}
CAPTURE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Captured: the finished capture job (Location serves it again)",
        "content": {"application/json": {"schema": _JOB}},
    },
}


def _lock(org: Organisation) -> threading.Lock:
    """One capture at a time per organisation in this process: two posts of the same document
    must not both plan before either records."""
    assert org.id is not None
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(org.id, threading.Lock())


def _invalid(exc: DocumentInvalid) -> JSONResponse:
    """400: not a schema-valid EPCIS document (the schema's findings in `args`)."""
    body = {
        "detail": str(exc),
        "error": "ValidationException",
        "args": {"violations": exc.details[:20]},
    }
    return JSONResponse(body, status_code=status.HTTP_400_BAD_REQUEST)


def _refused(exc: CaptureRefused) -> JSONResponse:
    """422: one item per event that cannot be recorded (loc: its place in the document,
    input: its eventID); nothing was recorded."""
    items = [
        {
            "loc": ["body", "epcisBody", "eventList", e.index],
            "msg": e.reason,
            "type": "epcis_event",
            "input": e.event_id,
        }
        for e in exc.errors
    ]
    return JSONResponse({"detail": items}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


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
        return _invalid(exc)
    capture_id = str(uuid.uuid4())
    service = recording_service(chain, settings, org)
    engine = request.app.state.engine

    def run() -> Any:
        with _lock(org):
            return capture(service, engine, document, capture_id)

    try:
        report = await run_in_threadpool(run)  # chain calls block: off the event loop
    except CaptureRefused as exc:
        return _refused(exc)
    except Exception as exc:
        code = status_of(exc)
        if code >= 500 and code not in (503, 504):
            raise  # a bug: the usual 500 (the job is kept all the same)
        # the node went away: if it was mid-way, the job keeps what was recorded; say where
        if load_job(engine, org.chain_address, capture_id) is None:
            raise
        body = {"detail": detail_of(exc), "args": {"captureID": capture_id}}
        headers = {"Location": f"/epcis/capture/{capture_id}"}
        return JSONResponse(body, status_code=code, headers=headers)
    location = {"Location": f"/epcis/capture/{capture_id}"}
    job = report.as_json()
    if report.success:
        return JSONResponse(job, status_code=status.HTTP_202_ACCEPTED, headers=location)
    (stopped,) = report.errors
    detail = (
        f"stopped at event {stopped.index}: {stopped.reason}; the events before it are "
        "recorded, post the document again to complete what the chain still allows"
    )
    body = {"detail": detail, "error": "CaptureIncomplete", "args": {"job": job}}
    return JSONResponse(body, status_code=status.HTTP_409_CONFLICT, headers=location)


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


@router.get("/cooperative/capture-document", response_class=Response, responses=DOCUMENT_RESPONSES)
def cooperative_capture_document(
    request: Request,
    settings: SettingsDep,
    org: CoopOrg,
    since: Annotated[TimeQuery, Query(alias="GE_eventTime")] = None,
    until: Annotated[TimeQuery, Query(alias="LT_eventTime")] = None,
) -> Response:
    """Your cooperative's export with its plots as master data, ready for capture elsewhere.

    The same events as /epcis/cooperative/document, plus each harvest plot's farmer
    pseudonym, area and variety in epcisHeader (what another deployment registers)."""
    with indexed_read(settings.database_url) as conn:
        events = capped_events(conn, org, since, until)
        document = with_master_data(conn, epcis_document(events))
    return answer(request, document)

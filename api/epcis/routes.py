"""EPCIS 2.0 over HTTP: a lot's trace document (public, like the trace), the REST binding's
`GET /events` query and a cooperative's export of its own lots.

Answers are JSON-LD (`application/ld+json`), or `application/json` when the caller asks only
for that. A bad query parameter is a 400 naming it (EPCIS's QueryParameterException).
"""

from __future__ import annotations

from typing import Annotated, ClassVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.engine import Connection

from api.core.deps import SettingsDep, require_role
from api.core.errors import ApiError, NotFound
from api.core.ids import parse_id
from api.core.indexed import indexed_read
from api.core.models import Organisation, Role
from api.core.types import Id32Path
from traceability.epcis.events import EpcisEvent, Json
from traceability.epcis.export import (
    LotNotIndexedError,
    cooperative_events,
    dumps,
    epcis_document,
    lot_document,
    query_document,
)
from traceability.epcis.query import QueryParameterError, parse_query, parse_time, run_query

router = APIRouter(prefix="/epcis", tags=["epcis"])

JSON_LD = "application/ld+json"
EPCIS_VERSION = "2.0.0"
CBV_VERSION = "2.0.0"
# A cooperative's export in one answer; a longer range must be asked for in parts.
MAX_EXPORT_EVENTS = 50_000
CoopOrg = Annotated[Organisation, Depends(require_role(Role.COOPERATIVE))]
_DOCUMENT = {"type": "object", "description": "an EPCIS 2.0 document (JSON-LD)"}
DOCUMENT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "An EPCIS 2.0 document",
        "content": {JSON_LD: {"schema": _DOCUMENT}, "application/json": {"schema": _DOCUMENT}},
    }
}


class QueryParameterException(ApiError):
    """A query parameter the EPCIS query cannot use."""

    status: ClassVar[int] = status.HTTP_400_BAD_REQUEST


def _media_type(request: Request) -> str:
    """JSON-LD unless the caller accepts only plain JSON."""
    accept = request.headers.get("accept", "")
    return "application/json" if "json" in accept and "ld+json" not in accept else JSON_LD


def answer(request: Request, document: Json, headers: dict[str, str] | None = None) -> Response:
    """The document with the EPCIS version headers."""
    versions = {"GS1-EPCIS-Version": EPCIS_VERSION, "GS1-CBV-Version": CBV_VERSION}
    return Response(
        dumps(document), media_type=_media_type(request), headers=versions | (headers or {})
    )


def _bad(exc: QueryParameterError) -> QueryParameterException:
    """The 400 of a query parameter error."""
    return QueryParameterException(str(exc), loc=("query", exc.parameter))


@router.get("/lots/{lot}/document", response_class=Response, responses=DOCUMENT_RESPONSES)
def lot_epcis_document(lot: Id32Path, request: Request, settings: SettingsDep) -> Response:
    """A lot's trace as an EPCIS 2.0 document, from its harvests to its own latest event.

    No farmer identifiers and no prices: public like the consumer trace."""
    lot_id = parse_id(lot, "lot")
    with indexed_read(settings.database_url) as conn:
        try:
            document = lot_document(conn, lot_id)
        except LotNotIndexedError as exc:
            raise NotFound(f"{exc}: is the id right, and has the indexer caught up?") from exc
    return answer(request, document)


TimeQuery = Annotated[
    str | None,
    Query(description="ISO 8601 date-time with an offset, e.g. 2026-04-01T00:00:00+08:00"),
]
ListQuery = Annotated[str | None, Query(description="one value or several separated by |")]


@router.get("/events", response_class=Response, responses=DOCUMENT_RESPONSES)
def query_events(
    request: Request,
    settings: SettingsDep,
    event_type: Annotated[ListQuery, Query(alias="eventType")] = None,
    ge_event_time: Annotated[TimeQuery, Query(alias="GE_eventTime")] = None,
    lt_event_time: Annotated[TimeQuery, Query(alias="LT_eventTime")] = None,
    eq_action: Annotated[ListQuery, Query(alias="EQ_action")] = None,
    eq_biz_step: Annotated[ListQuery, Query(alias="EQ_bizStep")] = None,
    eq_disposition: Annotated[ListQuery, Query(alias="EQ_disposition")] = None,
    match_any_epc: Annotated[ListQuery, Query(alias="MATCH_anyEPC")] = None,
    match_epc_class: Annotated[ListQuery, Query(alias="MATCH_epcClass")] = None,
    match_any_epc_class: Annotated[ListQuery, Query(alias="MATCH_anyEPCClass")] = None,
    eq_transformation_id: Annotated[ListQuery, Query(alias="EQ_transformationID")] = None,
    per_page: Annotated[
        str | None, Query(alias="perPage", description="1 to 1000, default 30")
    ] = None,
    next_page_token: Annotated[str | None, Query(alias="nextPageToken")] = None,
) -> Response:
    """EPCIS events matching the common query parameters, as an EPCISQueryDocument.

    Events come in chain order; a `Link: rel="next"` header points at the next page."""
    # The parameters above document the query and pass the unknown-parameter check; they are
    # parsed together from the raw pairs, so a repeated one is refused rather than dropped.
    try:
        query = parse_query(request.query_params.multi_items())
    except QueryParameterError as exc:
        raise _bad(exc) from exc
    with indexed_read(settings.database_url) as conn:
        page = run_query(conn, query)
    headers = {}
    if page.next_page_token is not None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
        query_text = urlencode([*params, ("nextPageToken", page.next_page_token)])
        # Relative (RFC 8288 allows it): no trust in a Host header behind a proxy.
        headers["Link"] = f'<{request.url.path}?{query_text}>; rel="next"'
    return answer(request, query_document(page.events), headers)


def time_range(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """The export's [since, until) in Unix seconds."""
    try:
        start = parse_time("GE_eventTime", since) if since is not None else None
        end = parse_time("LT_eventTime", until) if until is not None else None
    except QueryParameterError as exc:
        raise _bad(exc) from exc
    return start, end


@router.get("/cooperative/document", response_class=Response, responses=DOCUMENT_RESPONSES)
def cooperative_epcis_document(
    request: Request,
    settings: SettingsDep,
    org: CoopOrg,
    since: Annotated[TimeQuery, Query(alias="GE_eventTime")] = None,
    until: Annotated[TimeQuery, Query(alias="LT_eventTime")] = None,
) -> Response:
    """Every event of your harvest lots in a time range, as an EPCIS 2.0 document.

    For a buyer's or a certifier's EPCIS repository; at most MAX_EXPORT_EVENTS events."""
    with indexed_read(settings.database_url) as conn:
        events = capped_events(conn, org, since, until)
    return answer(request, epcis_document(events))


def capped_events(
    conn: Connection, org: Organisation, since: str | None, until: str | None
) -> list[EpcisEvent]:
    """The cooperative's events in the range, refused (400) beyond MAX_EXPORT_EVENTS."""
    start, end = time_range(since, until)
    me = bytes.fromhex(org.chain_address[2:])
    # Each kind of event reads at most one more than the cap: a huge range costs no more.
    events = cooperative_events(conn, me, start, end, limit=MAX_EXPORT_EVENTS + 1)
    if len(events) > MAX_EXPORT_EVENTS:
        raise QueryParameterException(
            f"more than {MAX_EXPORT_EVENTS} events in that range for one document: "
            "ask for a shorter range (GE_eventTime, LT_eventTime)",
            loc=("query", "LT_eventTime"),
        )
    return events

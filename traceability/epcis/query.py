"""The EPCIS 2.0 common query parameters over the indexed events (a SimpleEventQuery subset).

Supported: eventType, GE_eventTime, LT_eventTime, EQ_action, EQ_bizStep, EQ_disposition,
MATCH_anyEPC, MATCH_epcClass, MATCH_anyEPCClass, EQ_transformationID, perPage,
nextPageToken. Lists are pipe-delimited (the REST binding's `style: pipeDelimited`). URIs
match exactly. Lots are classes (quantity lists), so MATCH_anyEPC, which looks only at
instance-level EPC lists, never matches an event written here; a URI that is not a
tealedger lot (or step) matches nothing. Anything else is a QueryParameterError naming the
parameter.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from traceability.epcis.events import SOURCES, TRANSFORMED, EpcisEvent, Scope, Source, read_events
from traceability.epcis.ids import (
    CBV_NAMESPACE,
    GlnLookup,
    IdentifierError,
    IdKind,
    parse_urn32,
)

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
MAX_VALUES = 100
EVENT_TYPES = frozenset(
    {
        "ObjectEvent",
        "AggregationEvent",
        "TransactionEvent",
        "TransformationEvent",
        "AssociationEvent",
    }
)
ACTIONS = frozenset({"ADD", "OBSERVE", "DELETE"})
LIST_PARAMETERS = (
    "eventType",
    "EQ_action",
    "EQ_bizStep",
    "EQ_disposition",
    "MATCH_anyEPC",
    "MATCH_epcClass",
    "MATCH_anyEPCClass",
    "EQ_transformationID",
)
PARAMETERS = frozenset(
    {*LIST_PARAMETERS, "GE_eventTime", "LT_eventTime", "perPage", "nextPageToken"}
)
MAX_BLOCK = 2**63 - 1  # a block number the databases can compare (BIGINT)
_TOKEN = re.compile(r"([0-9]{1,19}):([0-9]{1,9})")


class QueryParameterError(ValueError):
    """A query parameter the query cannot use (EPCIS QueryParameterException)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class EventQuery:
    """A parsed query: each filter None when absent."""

    event_types: frozenset[str] | None = None
    ge_time: int | None = None
    lt_time: int | None = None
    actions: frozenset[str] | None = None
    biz_steps: frozenset[str] | None = None
    dispositions: frozenset[str] | None = None
    any_epc: frozenset[str] | None = None
    epc_classes: frozenset[str] | None = None
    any_epc_classes: frozenset[str] | None = None
    transformation_ids: frozenset[str] | None = None
    per_page: int = DEFAULT_PER_PAGE
    after: tuple[int, int] | None = None


@dataclass(frozen=True)
class EventPage:
    """One page of events and the token of the next (None on the last page)."""

    events: list[EpcisEvent]
    next_page_token: str | None


def _values(name: str, text: str) -> frozenset[str]:
    """A pipe-delimited list of non-empty values."""
    values = text.split("|")
    if len(values) > MAX_VALUES:
        raise QueryParameterError(name, f"at most {MAX_VALUES} values")
    if any(not v.strip() or len(v) > 300 for v in values):
        raise QueryParameterError(name, "empty or overlong value in the |-separated list")
    return frozenset(values)


def parse_time(name: str, text: str) -> int:
    """An ISO 8601 time with an offset (or Z), as Unix seconds."""
    try:
        moment = datetime.fromisoformat(text)
        moment.timestamp()
    except (ValueError, OverflowError, OSError):
        raise QueryParameterError(name, "not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise QueryParameterError(name, "the time needs an offset, e.g. Z or +08:00")
    # A fraction of a second still counts: GE rounds up, LT rounds up (blocks have whole seconds).
    whole = int(moment.timestamp())
    return whole + (1 if moment.timestamp() > whole else 0)


def _per_page(text: str) -> int:
    """A page size 1..MAX_PER_PAGE."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text[:6]) <= MAX_PER_PAGE:
        raise QueryParameterError("perPage", f"a whole number from 1 to {MAX_PER_PAGE}")
    return int(text)


def page_token(key: tuple[int, int]) -> str:
    """The opaque token of the page after the event at `key`."""
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def _after(text: str) -> tuple[int, int]:
    """The chain position a nextPageToken resumes after."""
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    match = _TOKEN.fullmatch(decoded)
    if len(text) > 64 or match is None or int(match[1]) > MAX_BLOCK:
        raise QueryParameterError("nextPageToken", "not a token this service issued")
    return int(match[1]), int(match[2])


def _checked(query: EventQuery) -> EventQuery:
    """Reject unknown event types and actions."""
    if query.event_types is not None and not query.event_types <= EVENT_TYPES:
        raise QueryParameterError("eventType", f"one of {', '.join(sorted(EVENT_TYPES))}")
    if query.actions is not None and not query.actions <= ACTIONS:
        raise QueryParameterError("EQ_action", "ADD, OBSERVE or DELETE")
    return query


def parse_query(params: Mapping[str, str] | Sequence[tuple[str, str]]) -> EventQuery:
    """Parse query parameters; a repeated, unknown or malformed one is a QueryParameterError."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    seen: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise QueryParameterError(name[:40], "not a query parameter supported here")
        if name in seen:
            raise QueryParameterError(name, "given twice; separate values with |")
        seen[name] = value
    lists = {n: _values(n, seen[n]) for n in LIST_PARAMETERS if n in seen}
    for name, prefix in (("EQ_bizStep", "BizStep-"), ("EQ_disposition", "Disp-")):
        if name in lists:  # CBV values as full URIs mean their bare words
            lists[name] = frozenset(v.removeprefix(CBV_NAMESPACE + prefix) for v in lists[name])
    return _checked(
        EventQuery(
            event_types=lists.get("eventType"),
            ge_time=parse_time("GE_eventTime", seen["GE_eventTime"])
            if "GE_eventTime" in seen
            else None,
            lt_time=parse_time("LT_eventTime", seen["LT_eventTime"])
            if "LT_eventTime" in seen
            else None,
            actions=lists.get("EQ_action"),
            biz_steps=lists.get("EQ_bizStep"),
            dispositions=lists.get("EQ_disposition"),
            any_epc=lists.get("MATCH_anyEPC"),
            epc_classes=lists.get("MATCH_epcClass"),
            any_epc_classes=lists.get("MATCH_anyEPCClass"),
            transformation_ids=lists.get("EQ_transformationID"),
            per_page=_per_page(seen["perPage"]) if "perPage" in seen else DEFAULT_PER_PAGE,
            after=_after(seen["nextPageToken"]) if "nextPageToken" in seen else None,
        )
    )


def _sources(query: EventQuery) -> list[Source]:
    """The sources whose events can pass the query's event type, action, step, disposition
    and identifier filters (each source says all of these for every event it gives)."""
    if query.any_epc is not None:
        return []  # no event here has an EPC list, a parent or child EPCs

    def fits(source: Source) -> bool:
        return (
            (query.event_types is None or source.event_type in query.event_types)
            and (query.actions is None or source.action in query.actions)
            and (query.biz_steps is None or source.biz_step in query.biz_steps)
            and (query.dispositions is None or source.disposition in query.dispositions)
            and (query.epc_classes is None or source is not TRANSFORMED)
            and (query.transformation_ids is None or source is TRANSFORMED)
        )

    return [s for s in SOURCES if fits(s)]


def _ids(uris: frozenset[str], kind: IdKind) -> set[bytes]:
    """The ids of the URIs that are tealedger URIs of `kind` (others match nothing)."""
    found = set()
    for uri in uris:
        try:
            found.add(parse_urn32(uri, kind))
        except IdentifierError:
            continue
    return found


def _lots(query: EventQuery) -> frozenset[bytes] | None:
    """The lots the MATCH_*EPCClass parameters allow (both given: both must hold)."""
    given = [q for q in (query.epc_classes, query.any_epc_classes) if q is not None]
    if not given:
        return None
    return frozenset(set.intersection(*(_ids(uris, IdKind.LOT) for uris in given)))


def run_query(conn: Connection, query: EventQuery, gln_of: GlnLookup | None = None) -> EventPage:
    """One page of the events matching the query, in chain order.

    Every filter runs in SQL, and each source reads at most perPage + 1 rows after the
    page token, so a page costs the same wherever it is in the history.
    """
    steps = query.transformation_ids
    scope = Scope(
        lots=_lots(query),
        since=query.ge_time,
        until=query.lt_time,
        after=query.after,
        limit=query.per_page + 1,
        process_ids=_ids(steps, IdKind.PROCESS) if steps is not None else None,
    )
    events = read_events(conn, scope, gln_of, _sources(query))
    page = events[: query.per_page]
    more = len(events) > query.per_page
    return EventPage(page, page_token(page[-1].key) if more else None)

"""EPCIS 2.0 JSON-LD documents of the indexed trace: one lot's, a cooperative's, a query's.

Documents are plain dicts whose quantities are `Decimal`s; `dumps` writes them with those
decimals as exact JSON numbers (the standard `json` module cannot, and a float could round).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from indexer.models import Harvest, LotConsumed, LotProduced
from traceability.epcis import ids
from traceability.epcis.events import EpcisEvent, Json, Scope, read_events
from traceability.epcis.ids import GlnLookup

SCHEMA_VERSION = "2.0"
CHUNK = 500  # lot ids per statement
QUERY_NAME = "SimpleEventQuery"


class LotNotIndexedError(LookupError):
    """The lot was never harvested or produced as far as the index has read the chain."""


def _now() -> str:
    """The document's creation time, UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epcis_document(events: Sequence[EpcisEvent]) -> Json:
    """An EPCISDocument of these events."""
    return {
        "@context": ids.context(),
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": _now(),
        "epcisBody": {"eventList": [e.body for e in events]},
    }


def query_document(events: Sequence[EpcisEvent]) -> Json:
    """An EPCISQueryDocument (the REST binding's answer to GET /events) of these events."""
    return {
        "@context": ids.context(),
        "type": "EPCISQueryDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": _now(),
        "epcisBody": {
            "queryResults": {
                "queryName": QUERY_NAME,
                "resultsBody": {"eventList": [e.body for e in events]},
            }
        },
    }


def _chunks(items: set[bytes]) -> list[list[bytes]]:
    """Sorted chunks of at most CHUNK ids (bound parameters per statement stay few)."""
    ordered = sorted(items)
    return [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]


def lineage(conn: Connection, lot: bytes) -> set[bytes]:
    """The lot and every lot it was made from, back to the harvests."""
    seen, frontier = {lot}, {lot}
    while frontier:
        found: set[bytes] = set()
        for chunk in _chunks(frontier):
            steps = select(LotProduced.process_id).where(LotProduced.lot.in_(chunk))  # type: ignore[attr-defined]
            inputs = select(LotConsumed.lot).where(LotConsumed.process_id.in_(steps))  # type: ignore[attr-defined]
            found |= {bytes(r) for r in conn.execute(inputs).scalars()}
        frontier = found - seen
        seen |= frontier
    return seen


def _known(conn: Connection, lot: bytes) -> bool:
    """Whether the index has the lot's harvest or production."""
    for model in (Harvest, LotProduced):
        if conn.execute(select(model.lot).where(model.lot == lot)).first() is not None:
            return True
    return False


def lot_events(conn: Connection, lot: bytes, gln_of: GlnLookup | None = None) -> list[EpcisEvent]:
    """Events of the lot and of its lineage: harvests, steps, movements, sales, quality,
    recalls (and the step that consumed the lot, if any)."""
    if not _known(conn, lot):
        raise LotNotIndexedError(f"lot 0x{lot.hex()} is not in the index")
    # A blend's lineage may hold a season's harvests: read it in chunks; a step touching
    # lots of two chunks comes twice, once kept (same log, same event).
    events: dict[tuple[int, int], EpcisEvent] = {}
    for chunk in _chunks(lineage(conn, lot)):
        events.update((e.key, e) for e in read_events(conn, Scope(lots=chunk), gln_of))
    return [events[k] for k in sorted(events)]


def lot_document(conn: Connection, lot: bytes, gln_of: GlnLookup | None = None) -> Json:
    """The lot's full trace as an EPCISDocument."""
    return epcis_document(lot_events(conn, lot, gln_of))


def cooperative_events(
    conn: Connection,
    cooperative: bytes,
    since: int | None = None,
    until: int | None = None,
    gln_of: GlnLookup | None = None,
    limit: int | None = None,
) -> list[EpcisEvent]:
    """Events of a cooperative's harvest lots in [since, until) (Unix seconds); with a
    limit, more than `limit` events in all says the range holds more than `limit`."""
    lots = select(Harvest.lot).where(Harvest.cooperative == cooperative)
    scope = Scope(lots=lots, since=since, until=until, limit=limit)  # type: ignore[arg-type]
    return read_events(conn, scope, gln_of)


def cooperative_document(
    conn: Connection,
    cooperative: bytes,
    since: int | None = None,
    until: int | None = None,
    gln_of: GlnLookup | None = None,
) -> Json:
    """A cooperative's lots' events in a time range as an EPCISDocument."""
    return epcis_document(cooperative_events(conn, cooperative, since, until, gln_of))


# ------------------------------------------------------------------------------ serialising


def _encode(value: Any, out: list[str]) -> None:
    """Append the JSON text of `value`; Decimals as numbers, exactly as they are."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON number")
        out.append(format(value, "f"))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            out.append(("," if i else "") + json.dumps(str(key), ensure_ascii=False) + ":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            out.append("," if i else "")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, float):
        raise TypeError("documents carry Decimals, never floats")
    else:
        out.append(json.dumps(value, ensure_ascii=False))


def dumps(document: Json) -> str:
    """The document as compact JSON text (quantities exact)."""
    out: list[str] = []
    _encode(document, out)
    return "".join(out)


def loads(text: str | bytes) -> Json:
    """JSON text back to a document, numbers with a fraction as Decimals."""
    value = json.loads(text, parse_float=Decimal)
    if not isinstance(value, dict):
        raise ValueError("an EPCIS document is a JSON object")
    return value

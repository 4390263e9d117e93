"""EPCIS 2.0 events from the indexer's tables (harvest, processing, movement, sale, quality,
recall), each with its position on chain for ordering, filtering and paging.

Quantities are kilograms as exact `Decimal`s (grams / 1000, never a float); `export.dumps`
writes them as JSON numbers. Times are the block's timestamp in UTC; the offset says the
events happen in China (+08:00, the zone seasons are computed in, indexer/seasons.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, or_, select, union
from sqlalchemy.engine import Connection, RowMapping

from indexer.models import (
    Checkpoint,
    Harvest,
    LotConsumed,
    LotMovement,
    LotProduced,
    Quality,
    RawEvent,
    Recall,
    Sale,
)
from indexer.seasons import season_of
from traceability.epcis import ids
from traceability.epcis.ids import BizStep, Disposition, GlnLookup, SourceDestType
from traceability.models import Grade

TIME_ZONE_OFFSET = "+08:00"
KILOGRAM = "KGM"  # UN/ECE Rec 20 unit code, as EPCIS quantity elements name units

Json = dict[str, Any]
LotSet = Collection[bytes] | Select[tuple[bytes]]
"""Which lots: ids, or a query selecting them (a cooperative's harvest lots)."""


@dataclass(frozen=True)
class Scope:
    """Which events to read: touching these lots (None: all) in [since, until) (Unix
    seconds), after the chain position `after`, at most `limit` per source (None: all)."""

    lots: LotSet | None = None
    since: int | None = None
    until: int | None = None
    after: tuple[int, int] | None = None
    limit: int | None = None
    process_ids: Collection[bytes] | None = None  # only these processing steps


@dataclass(frozen=True)
class EpcisEvent:
    """One EPCIS event and where its first log sits on chain."""

    block_number: int
    log_index: int
    timestamp: int
    body: Json

    @property
    def key(self) -> tuple[int, int]:
        """Chain order: (block, log index)."""
        return self.block_number, self.log_index

    @property
    def event_type(self) -> str:
        """ObjectEvent, TransformationEvent."""
        return str(self.body["type"])

    def classes(self, *fields: str) -> set[str]:
        """The epcClass values of the named quantity lists."""
        return {q["epcClass"] for f in fields for q in self.body.get(f, ())}


@dataclass(frozen=True)
class _Context:
    """What every event builder needs: the chain id and the GLN hook."""

    chain_id: int
    gln_of: GlnLookup | None


def kilograms(grams: int) -> Decimal:
    """Grams as exact kilograms (a decimal shift, no rounding)."""
    return Decimal(int(grams)).scaleb(-3)


def iso_time(timestamp: int) -> str:
    """Unix seconds as an ISO 8601 UTC time ending in Z."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantity(lot: bytes, grams: int | None) -> Json:
    """A quantity element of a lot (kg), or just its class when its mass is unknown."""
    element: Json = {"epcClass": ids.lot_uri(lot)}
    if grams is not None:
        element |= {"quantity": kilograms(grams), "uom": KILOGRAM}
    return element


def _head(event_type: str, row: RowMapping, ctx: _Context) -> Json:
    """Fields every event has: type, time, offset, id."""
    return {
        "type": event_type,
        "eventTime": iso_time(row["ts"]),
        "eventTimeZoneOffset": TIME_ZONE_OFFSET,
        "eventID": ids.event_id(ctx.chain_id, bytes(row["tx_hash"]), row["log_index"]),
    }


def _wrap(row: RowMapping, body: Json) -> EpcisEvent:
    """An event at the row's log."""
    return EpcisEvent(row["block_number"], row["log_index"], row["ts"], body)


def _with_raw(table: Any) -> Select[Any]:
    """The table's rows with their log's transaction hash and block time (`ts`)."""
    raw = RawEvent.__table__  # type: ignore[attr-defined]
    return select(table, raw.c.tx_hash, raw.c.block_timestamp.label("ts")).join(
        raw,
        and_(raw.c.block_number == table.c.block_number, raw.c.log_index == table.c.log_index),
    )


# ------------------------------------------------------------------------------ one per table


def _grade_name(grade: int) -> Json:
    """`tl:gradeName` of a known grade code (the contract allows only those, but a document
    must not fail on a code a later contract adds)."""
    known = Grade._value2member_map_.get(grade)
    return {ids.ext("gradeName"): known.name.lower()} if isinstance(known, Grade) else {}


def _harvest(row: RowMapping, ctx: _Context) -> EpcisEvent:
    """HarvestRecorded: the lot comes into being on its plot (ADD, commissioning)."""
    grade = int(row["grade"])
    body = _head("ObjectEvent", row, ctx) | {
        "action": "ADD",
        "quantityList": [_quantity(row["lot"], row["grams"])],
        "bizStep": BizStep.COMMISSIONING.value,
        "disposition": Disposition.ACTIVE.value,
        "readPoint": {"id": ids.plot_uri(bytes(row["plot"]))},
        "bizLocation": {"id": ids.location_uri(bytes(row["cooperative"]), ctx.gln_of)},
        "ilmd": {
            ids.ext("plot"): ids.plot_uri(bytes(row["plot"])),
            ids.ext("pickedAt"): iso_time(row["picked_at"]),
            ids.ext("season"): season_of(row["picked_at"]),
            ids.ext("grade"): grade,
            **_grade_name(grade),
        },
    }
    return _wrap(row, body)


def _movement(row: RowMapping, grams: dict[bytes, int], ctx: _Context) -> EpcisEvent:
    """LotShipped (in transit to the consignee) or LotReceived (taken in by the receiver)."""
    lot, to = bytes(row["lot"]), bytes(row["party_to"])
    body = _head("ObjectEvent", row, ctx) | {
        "action": "OBSERVE",
        "quantityList": [_quantity(lot, grams.get(lot))],
    }
    if row["kind"] == "shipped":
        body |= {
            "bizStep": BizStep.SHIPPING.value,
            "disposition": Disposition.IN_TRANSIT.value,
            "sourceList": [_source(SourceDestType.OWNING_PARTY, row["party_from"], ctx)],
            "destinationList": [_destination(SourceDestType.OWNING_PARTY, to, ctx)],
        }
    else:
        body |= {
            "bizStep": BizStep.RECEIVING.value,
            "disposition": Disposition.IN_PROGRESS.value,
            "bizLocation": {"id": ids.location_uri(to, ctx.gln_of)},
            "destinationList": [_destination(SourceDestType.OWNING_PARTY, to, ctx)],
        }
    return _wrap(row, body)


def _source(kind: SourceDestType, address: bytes, ctx: _Context) -> Json:
    """A sourceList element."""
    return {"type": kind.value, "source": ids.party_uri(bytes(address), ctx.gln_of)}


def _destination(kind: SourceDestType, address: bytes, ctx: _Context) -> Json:
    """A destinationList element."""
    return {"type": kind.value, "destination": ids.party_uri(bytes(address), ctx.gln_of)}


def _sale(row: RowMapping, grams: dict[bytes, int], ctx: _Context) -> EpcisEvent:
    """LotSold: ownership passes from seller to buyer (the price stays out of documents)."""
    lot = bytes(row["lot"])
    body = _head("ObjectEvent", row, ctx) | {
        "action": "OBSERVE",
        "quantityList": [_quantity(lot, grams.get(lot))],
        "bizStep": ids.BIZSTEP_SELLING,
        "sourceList": [_source(SourceDestType.OWNING_PARTY, row["seller"], ctx)],
        "destinationList": [_destination(SourceDestType.OWNING_PARTY, row["buyer"], ctx)],
    }
    return _wrap(row, body)


def _quality(row: RowMapping, grams: dict[bytes, int], ctx: _Context) -> EpcisEvent:
    """QualityAttested: an inspection; the verdict is the disposition, details in `tl:`."""
    lot, passed = bytes(row["lot"]), bool(row["passed"])
    verdict = Disposition.CONFORMANT if passed else Disposition.NON_CONFORMANT
    body = _head("ObjectEvent", row, ctx) | {
        "action": "OBSERVE",
        "quantityList": [_quantity(lot, grams.get(lot))],
        "bizStep": BizStep.INSPECTING.value,
        "disposition": verdict.value,
        ids.ext("inspector"): ids.party_uri(bytes(row["inspector"]), ctx.gln_of),
        ids.ext("grade"): int(row["grade"]),
        ids.ext("passed"): passed,
        ids.ext("certificateHash"): "0x" + bytes(row["certificate_hash"]).hex(),
    }
    return _wrap(row, body)


def _recall(row: RowMapping, grams: dict[bytes, int], ctx: _Context) -> EpcisEvent:
    """LotRecalled: held for review, disposition recalled."""
    lot = bytes(row["lot"])
    body = _head("ObjectEvent", row, ctx) | {
        "action": "OBSERVE",
        "quantityList": [_quantity(lot, grams.get(lot))],
        "bizStep": BizStep.HOLDING.value,
        "disposition": Disposition.RECALLED.value,
        ids.ext("inspector"): ids.party_uri(bytes(row["inspector"]), ctx.gln_of),
        ids.ext("reasonHash"): "0x" + bytes(row["reason_hash"]).hex(),
    }
    return _wrap(row, body)


def _transformation(
    consumed: list[RowMapping], produced: list[RowMapping], ctx: _Context
) -> EpcisEvent:
    """One processing step: leaf or tea lots in, made-tea lots out (kg both sides)."""
    rows = sorted([*consumed, *produced], key=lambda r: (r["block_number"], r["log_index"]))
    first = rows[0]
    processor = bytes(first["processor"])
    body = _head("TransformationEvent", first, ctx) | {
        "inputQuantityList": [_quantity(bytes(r["lot"]), r["grams"]) for r in consumed],
        "outputQuantityList": [_quantity(bytes(r["lot"]), r["grams"]) for r in produced],
        "transformationID": ids.process_uri(bytes(first["process_id"])),
        "bizStep": BizStep.COMMISSIONING.value,
        "disposition": Disposition.ACTIVE.value,
        "bizLocation": {"id": ids.location_uri(processor, ctx.gln_of)},
    }
    return _wrap(first, body)


# ----------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Source:
    """Rows of one table (one kind of row) that become one kind of EPCIS event: what the
    events of this source say, so a query picks sources before it reads anything."""

    name: str
    event_type: str
    action: str | None
    biz_step: str
    disposition: str | None


HARVESTED = Source("harvest", "ObjectEvent", "ADD", BizStep.COMMISSIONING, Disposition.ACTIVE)
SHIPPED = Source("shipped", "ObjectEvent", "OBSERVE", BizStep.SHIPPING, Disposition.IN_TRANSIT)
RECEIVED = Source("received", "ObjectEvent", "OBSERVE", BizStep.RECEIVING, Disposition.IN_PROGRESS)
SOLD = Source("sold", "ObjectEvent", "OBSERVE", ids.BIZSTEP_SELLING, None)
PASSED = Source("passed", "ObjectEvent", "OBSERVE", BizStep.INSPECTING, Disposition.CONFORMANT)
FAILED = Source("failed", "ObjectEvent", "OBSERVE", BizStep.INSPECTING, Disposition.NON_CONFORMANT)
RECALLED = Source("recalled", "ObjectEvent", "OBSERVE", BizStep.HOLDING, Disposition.RECALLED)
TRANSFORMED = Source(
    "transformed", "TransformationEvent", None, BizStep.COMMISSIONING, Disposition.ACTIVE
)
SOURCES = (HARVESTED, SHIPPED, RECEIVED, SOLD, PASSED, FAILED, RECALLED, TRANSFORMED)
OBJECT_SOURCES = SOURCES[:-1]

# Per object source: its table and the condition selecting its rows.
_TABLES: dict[Source, tuple[Any, Any]] = {
    HARVESTED: (Harvest, None),
    SHIPPED: (LotMovement, LotMovement.kind == "shipped"),
    RECEIVED: (LotMovement, LotMovement.kind == "received"),
    SOLD: (Sale, None),
    PASSED: (Quality, Quality.passed.is_(True)),  # type: ignore[attr-defined]
    FAILED: (Quality, Quality.passed.is_(False)),  # type: ignore[attr-defined]
    RECALLED: (Recall, None),
}
_RAW = RawEvent.__table__  # type: ignore[attr-defined]


def _after(table: Any, after: tuple[int, int]) -> Any:
    """Rows strictly after a chain position (portable row-value comparison)."""
    block, log = after
    return or_(
        table.c.block_number > block,
        and_(table.c.block_number == block, table.c.log_index > log),
    )


def _restricted(stmt: Select[Any], table: Any, scope: Scope, lot_column: Any) -> Select[Any]:
    """The scope's lots, time range and position."""
    if scope.lots is not None and lot_column is not None:
        stmt = stmt.where(lot_column.in_(scope.lots))
    if scope.since is not None:
        stmt = stmt.where(_RAW.c.block_timestamp >= scope.since)
    if scope.until is not None:
        stmt = stmt.where(_RAW.c.block_timestamp < scope.until)
    if scope.after is not None:
        stmt = stmt.where(_after(table, scope.after))
    return stmt


def _object_rows(conn: Connection, source: Source, scope: Scope) -> list[RowMapping]:
    """Rows of an object source within the scope, in chain order, limited."""
    model, condition = _TABLES[source]
    table = model.__table__
    stmt = _restricted(_with_raw(table), table, scope, table.c.lot)
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.order_by(table.c.block_number, table.c.log_index).limit(scope.limit)
    return list(conn.execute(stmt).mappings())


def _process_ids(lots: LotSet) -> Any:
    """Steps that consumed or produced one of the lots."""
    return union(
        select(LotConsumed.process_id).where(LotConsumed.lot.in_(lots)),  # type: ignore[attr-defined]
        select(LotProduced.process_id).where(LotProduced.lot.in_(lots)),  # type: ignore[attr-defined]
    )


def _input_rows(scope: Scope) -> Select[Any]:
    """(step, block, log) of the inputs of the scope's steps after its position, in chain
    order."""
    c = LotConsumed.__table__  # type: ignore[attr-defined]
    stmt = select(c.c.process_id, c.c.block_number, c.c.log_index).join(
        _RAW, and_(_RAW.c.block_number == c.c.block_number, _RAW.c.log_index == c.c.log_index)
    )
    stmt = _restricted(stmt, c, Scope(None, scope.since, scope.until, scope.after), None)
    if scope.lots is not None:
        stmt = stmt.where(c.c.process_id.in_(_process_ids(scope.lots)))
    if scope.process_ids is not None:
        stmt = stmt.where(c.c.process_id.in_(list(scope.process_ids)))
    return stmt.order_by(c.c.block_number, c.c.log_index)


def _step_at(conn: Connection, position: tuple[int, int]) -> bytes | None:
    """The step with an input logged at this position, if any."""
    c = LotConsumed.__table__  # type: ignore[attr-defined]
    where = and_(c.c.block_number == position[0], c.c.log_index == position[1])
    found = conn.execute(select(c.c.process_id).where(where)).scalar()
    return bytes(found) if found is not None else None


def _input_batch(limit: int | None) -> int | None:
    """Input rows read per statement when looking for `limit` steps (all when no limit)."""
    return None if limit is None else max(64, 4 * limit)


def _step_ids(conn: Connection, scope: Scope) -> list[bytes]:
    """The scope's steps in chain order, at most `limit`, reading inputs in batches.

    A step sits at its first input's log, and its other inputs follow in the same
    transaction: after a page token that is a step, that step's later inputs are skipped.
    """
    seen = {s for s in [_step_at(conn, scope.after)] if s} if scope.after else set()
    batch = _input_batch(scope.limit)
    steps: list[bytes] = []
    position = scope.after
    while scope.limit is None or len(steps) < scope.limit:
        stmt = _input_rows(replace(scope, after=position)).limit(batch)
        rows = conn.execute(stmt).all()
        for step, *_ in rows:
            if bytes(step) not in seen:
                seen.add(bytes(step))
                steps.append(bytes(step))
        if batch is None or len(rows) < batch:
            break
        position = (rows[-1][1], rows[-1][2])
    return steps[: scope.limit]


def _step_rows(conn: Connection, model: Any, steps: list[bytes]) -> list[RowMapping]:
    """All LotConsumed or LotProduced rows of these steps."""
    table = model.__table__
    rows: list[RowMapping] = []
    for start in range(0, len(steps), 500):
        stmt = _with_raw(table).where(table.c.process_id.in_(steps[start : start + 500]))
        rows += conn.execute(stmt.order_by(table.c.block_number, table.c.log_index)).mappings()
    return rows


def _transformations(conn: Connection, scope: Scope, ctx: _Context) -> list[EpcisEvent]:
    """One TransformationEvent per processing step of the scope."""
    steps = _step_ids(conn, scope)
    grouped: dict[bytes, tuple[list[RowMapping], list[RowMapping]]] = {s: ([], []) for s in steps}
    for row in _step_rows(conn, LotConsumed, steps):
        grouped[bytes(row["process_id"])][0].append(row)
    for row in _step_rows(conn, LotProduced, steps):
        grouped[bytes(row["process_id"])][1].append(row)
    return [_transformation(i, o, ctx) for i, o in grouped.values() if i and o]


def lot_grams(conn: Connection, lots: Iterable[bytes]) -> dict[bytes, int]:
    """The mass of each lot (as harvested or produced)."""
    wanted = sorted(set(lots))
    grams: dict[bytes, int] = {}
    for model in (Harvest, LotProduced):
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = select(model.lot, model.grams).where(model.lot.in_(chunk))  # type: ignore[attr-defined]
            grams.update((bytes(lot), int(g)) for lot, g in conn.execute(query))
    return grams


def chain_id(conn: Connection) -> int:
    """The indexed chain's id (0 before the indexer's first batch)."""
    return int(conn.execute(select(Checkpoint.chain_id)).scalar() or 0)


_BUILDERS = {
    SHIPPED: _movement,
    RECEIVED: _movement,
    SOLD: _sale,
    PASSED: _quality,
    FAILED: _quality,
    RECALLED: _recall,
}


def read_events(
    conn: Connection,
    scope: Scope,
    gln_of: GlnLookup | None = None,
    sources: Iterable[Source] = SOURCES,
) -> list[EpcisEvent]:
    """The events of these sources within the scope, in chain order. With a limit, each
    source gives its first `limit`, so the first `limit` of the merged list are exact."""
    ctx = _Context(chain_id(conn), gln_of)
    chosen = set(sources)
    rows = {s: _object_rows(conn, s, scope) for s in OBJECT_SOURCES if s in chosen}
    lots = (bytes(r["lot"]) for s, found in rows.items() if s is not HARVESTED for r in found)
    grams = lot_grams(conn, lots)
    events = [_harvest(r, ctx) for r in rows.get(HARVESTED, [])]
    for source, builder in _BUILDERS.items():
        events += [builder(r, grams, ctx) for r in rows.get(source, [])]
    if TRANSFORMED in chosen:
        events += _transformations(conn, scope, ctx)
    return sorted(events, key=lambda e: e.key)

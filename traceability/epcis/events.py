"""EPCIS 2.0 events from the indexer's tables (harvest, processing, movement, sale, quality,
recall), each with its position on chain for ordering, filtering and paging.

Quantities are kilograms as exact `Decimal`s (grams / 1000, never a float); `export.dumps`
writes them as JSON numbers. Times are the block's timestamp in UTC; the offset says the
events happen in China (+08:00, the zone seasons are computed in, indexer/seasons.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, select, union
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
    """Which events to read: of these lots (None: all) in [since, until) (Unix seconds)."""

    lots: LotSet | None = None
    since: int | None = None
    until: int | None = None


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


def _scoped(stmt: Select[Any], lot_column: Any, scope: Scope) -> Select[Any]:
    """Restrict to the scope's lots and time range."""
    raw = RawEvent.__table__  # type: ignore[attr-defined]
    if scope.lots is not None:
        stmt = stmt.where(lot_column.in_(scope.lots))
    if scope.since is not None:
        stmt = stmt.where(raw.c.block_timestamp >= scope.since)
    if scope.until is not None:
        stmt = stmt.where(raw.c.block_timestamp < scope.until)
    return stmt


def _rows(conn: Connection, model: Any, scope: Scope) -> list[RowMapping]:
    """Rows of a per-lot event table within the scope."""
    table = model.__table__
    return list(conn.execute(_scoped(_with_raw(table), table.c.lot, scope)).mappings())


# ------------------------------------------------------------------------------ one per table


def _harvest(row: RowMapping, ctx: _Context) -> EpcisEvent:
    """HarvestRecorded: the lot comes into being on its plot (ADD, commissioning)."""
    grade = Grade(row["grade"])
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
            ids.ext("grade"): int(grade),
            ids.ext("gradeName"): grade.name.lower(),
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
            "destinationList": [_destination(SourceDestType.POSSESSING_PARTY, to, ctx)],
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


def _process_ids(scope: Scope) -> Select[Any]:
    """Steps that consumed or produced a lot of the scope."""
    assert scope.lots is not None
    return union(
        select(LotConsumed.process_id).where(LotConsumed.lot.in_(scope.lots)),  # type: ignore[attr-defined]
        select(LotProduced.process_id).where(LotProduced.lot.in_(scope.lots)),  # type: ignore[attr-defined]
    )  # type: ignore[return-value]


def _step_rows(conn: Connection, model: Any, scope: Scope) -> list[RowMapping]:
    """LotConsumed or LotProduced rows of the scope's steps, in its time range."""
    table = model.__table__
    stmt = _scoped(_with_raw(table), table.c.lot, Scope(None, scope.since, scope.until))
    if scope.lots is not None:
        stmt = stmt.where(table.c.process_id.in_(_process_ids(scope)))
    return list(conn.execute(stmt).mappings())


def _transformations(conn: Connection, scope: Scope, ctx: _Context) -> Iterator[EpcisEvent]:
    """One TransformationEvent per processing step."""
    steps: dict[bytes, tuple[list[RowMapping], list[RowMapping]]] = defaultdict(lambda: ([], []))
    for row in _step_rows(conn, LotConsumed, scope):
        steps[bytes(row["process_id"])][0].append(row)
    for row in _step_rows(conn, LotProduced, scope):
        steps[bytes(row["process_id"])][1].append(row)
    for consumed, produced in steps.values():
        if consumed and produced:  # both halves are in one transaction, so one block
            yield _transformation(consumed, produced, ctx)


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


def read_events(
    conn: Connection, scope: Scope, gln_of: GlnLookup | None = None
) -> list[EpcisEvent]:
    """Every event of the scope, in chain order."""
    ctx = _Context(chain_id(conn), gln_of)
    observed = {model: _rows(conn, model, scope) for model in (LotMovement, Sale, Quality, Recall)}
    grams = lot_grams(conn, (bytes(r["lot"]) for rows in observed.values() for r in rows))
    events = [_harvest(r, ctx) for r in _rows(conn, Harvest, scope)]
    events += [_movement(r, grams, ctx) for r in observed[LotMovement]]
    events += [_sale(r, grams, ctx) for r in observed[Sale]]
    events += [_quality(r, grams, ctx) for r in observed[Quality]]
    events += [_recall(r, grams, ctx) for r in observed[Recall]]
    events += _transformations(conn, scope, ctx)
    return sorted(events, key=lambda e: e.key)

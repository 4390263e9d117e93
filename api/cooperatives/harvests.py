"""A cooperative's harvests: JSON batches and CSV/JSON uploads recorded on chain, and its lots.

Valid records are recorded, never twice (a record already on chain is a `duplicate`); rows of a
file that do not validate are listed with the reason and nothing is sent for them.

Lots are read from the indexer's `harvest` table (every lot the cooperative recorded, through
the service or not), as indexed up to the block the answer names; the service itself keeps
only each lot's receipt number (`registry_harvest_ref`), which the chain holds only hashed.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator
from pydantic import Field as PydField
from sqlalchemy import Row, Select, and_
from sqlmodel import Session, col, func, select

from api.cooperatives.schemas import HarvestLotPublic
from api.core.chain import recording_service
from api.core.errors import ROOTS, Forbidden, Invalid, NotFound, Restated, detail_of, revert_of
from api.core.ids import hex32, parse_id
from api.core.indexed import indexed_block, indexed_read
from api.core.models import Farmer, HarvestRef, Organisation, Plot
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from api.core.suppliers import consignee_of
from api.core.types import Id32, Int
from chain.client import ChainClient
from indexer.models import Harvest, RawEvent
from traceability.files import RowError, decode_text, read_harvest_bytes
from traceability.models import (
    EARLIEST_HARVEST,
    UINT64_MAX,
    GradeField,
    HarvestRecord,
    _unix_seconds,
)
from traceability.service import HarvestReport, Outcome, RecordingService

MAX_HARVEST_BATCH = 1_000
_ON_CHAIN = (Outcome.RECORDED, Outcome.DUPLICATE)
UPLOAD_SUFFIXES = (".csv", ".json")


# ------------------------------------------------------------------------------------ harvests


def _not_in_future(value: int) -> int:
    """A picking happened: not after now (the chain checks against its own clock too)."""
    now = int(time.time())
    if value > now:
        raise ValueError(f"picked_at {value} is in the future (now {now})")
    return value


class HarvestIn(BaseModel):
    """One picking. The lot id, owner and data hash are derived by the server and the chain."""

    farmer: Id32 = PydField(description="the farmer's 0x pseudonym")
    plot: Id32 = PydField(description="the plot's 0x pseudonym")
    grams: Int = PydField(gt=0, le=UINT64_MAX)
    grade: GradeField = PydField(description="1-5, a name (special..fourth) or 特级..四级")
    picked_at: Annotated[int, BeforeValidator(_unix_seconds), AfterValidator(_not_in_future)] = (
        PydField(ge=EARLIEST_HARVEST, description="unix seconds or ISO 8601 (naive means UTC)")
    )
    record_ref: str = PydField(
        default="", max_length=128, description="your receipt number: keeps equal pickings apart"
    )

    def record(self) -> HarvestRecord:
        """The record sent to TeaTrace."""
        return HarvestRecord(**self.model_dump())


class HarvestOutcomePublic(BaseModel):
    """What happened to one submitted record."""

    index: int
    where: str
    lot: str
    outcome: Outcome
    reason: str = ""


class RowErrorPublic(BaseModel):
    """A row of an uploaded file that was not valid (nothing was sent for it)."""

    where: str
    field: str
    message: str


class HarvestSubmission(BaseModel):
    """Outcomes of a harvest batch or upload: valid records are recorded, never twice."""

    recorded: int
    duplicates: int
    rejected: int
    invalid: int = PydField(default=0, description="rows of a file that did not validate")
    outcomes: list[HarvestOutcomePublic]
    errors: list[RowErrorPublic] = []
    transactions: list[str]
    gas_used: int


@dataclass(frozen=True)
class _Parsed:
    """Records ready to send, where they came from, and rows that did not validate."""

    records: list[HarvestRecord]
    wheres: list[str]
    errors: list[RowError]


def harvests_from_body(items: Sequence[HarvestIn]) -> _Parsed:
    """A validated JSON batch as records."""
    return _Parsed(
        [i.record() for i in items], [f"record {n}" for n in range(1, len(items) + 1)], []
    )


def _names_to_ids(session: Session, coop: Organisation, content: bytes, name: str) -> bytes:
    """A CSV whose `farmer` cells may be member numbers and `plot` cells plot names (what the
    clerk sees on the members page), rewritten with the ids; other cells are left as they are."""
    text = decode_text(content, name)
    reader = csv.DictReader(io.StringIO(text))
    fields = list(reader.fieldnames or [])
    if "farmer" not in fields or "plot" not in fields:
        return content
    rows = session.exec(select(Farmer).where(Farmer.cooperative_id == coop.id)).all()
    members = {str(f.id): f.farmer_id for f in rows}
    plots = session.exec(select(Plot).where(Plot.cooperative_id == coop.id)).all()
    labels = {(p.farmer_id, p.label.strip()): p.plot_id for p in plots if p.label}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in reader:
        farmer = (row.get("farmer") or "").strip()
        row["farmer"] = members.get(farmer, farmer)
        plot = (row.get("plot") or "").strip()
        row["plot"] = labels.get((row["farmer"].lower(), plot), plot)
        writer.writerow({k: v for k, v in row.items() if k is not None})
    return out.getvalue().encode()


def parse_upload(
    filename: str, content: bytes, session: Session | None = None, coop: Organisation | None = None
) -> _Parsed:
    """Rows of an uploaded .csv or .json harvest file (traceability.files rules); with the
    cooperative, a CSV may name farmers by member number and plots by name."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise Invalid(
            f"harvest files are .csv or .json, not {suffix or 'a file without extension'}"
        )
    name = Path(filename).name or "the uploaded file"
    if suffix == ".csv" and session is not None and coop is not None:
        content = _names_to_ids(session, coop, content, name)
    # InvalidRecordError: not text, missing or unknown columns
    rows, errors = read_harvest_bytes(content, suffix, name)
    return _Parsed([r.record for r in rows], [r.where for r in rows], errors)


def submit_harvests(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    parsed: _Parsed,
    deliver_to: int | None = None,
) -> HarvestSubmission:
    """Record the valid records on chain, then index the cooperative's new lots here; with
    `deliver_to` (an organisation id), as delivered to it: 422 unless it accepts the
    cooperative's deliveries, checked before anything is sent."""
    report = HarvestReport(outcomes=[])
    consignee = None if deliver_to is None else consignee_of(session, chain, coop, deliver_to)
    if parsed.records:
        service = recording_service(chain, settings, coop)
        address = None if consignee is None else consignee.chain_address
        try:
            report = service.record_harvests(parsed.records, deliver_to=address)
        except ROOTS as exc:
            # Earlier batches of a long submission may have landed; a refused one says why.
            if len(parsed.records) > service.batch_size and revert_of(exc) is None:
                resubmit = f"{detail_of(exc)}. Resubmit the same records: none is recorded twice"
                raise Restated(exc, resubmit) from exc
            raise
        _keep_refs(session, coop, parsed.records, report)
    outcomes = [
        HarvestOutcomePublic(
            index=o.index,
            where=parsed.wheres[o.index],
            lot=hex32(o.lot),
            outcome=o.outcome,
            reason=o.reason,
        )
        for o in report.outcomes
    ]
    return HarvestSubmission(
        recorded=report.recorded,
        duplicates=report.duplicates,
        rejected=len(report.rejected),
        invalid=len({e.where for e in parsed.errors}),
        outcomes=outcomes,
        errors=[
            RowErrorPublic(where=e.where, field=e.field, message=e.message) for e in parsed.errors
        ],
        transactions=["0x" + t.hex() for t in report.transactions],
        gas_used=report.gas_used,
    )


def _keep_refs(session: Session, coop: Organisation, records: Sequence[HarvestRecord],
               report: HarvestReport) -> None:  # fmt: skip
    """Keep the receipt numbers of the lots on chain now (recorded, or recorded before)."""
    kept = {o.lot: records[o.index].record_ref for o in report.outcomes if o.outcome in _ON_CHAIN}
    refs = {hex32(lot): ref for lot, ref in kept.items() if ref}
    if not refs:
        return
    known = session.exec(select(HarvestRef.lot).where(col(HarvestRef.lot).in_(list(refs)))).all()
    for lot in refs.keys() - set(known):
        session.add(HarvestRef(lot=lot, cooperative_id=coop.id, record_ref=refs[lot]))
    session.commit()


# ------------------------------------------------------------------------------------ lots


class HarvestLots(Page[HarvestLotPublic]):
    """A page of a cooperative's harvest lots, as indexed up to `block_number`."""

    block_number: int


def _lot_public(row: Row, refs: dict[str, str], base_url: str) -> HarvestLotPublic:
    """An indexed harvest without its state on chain."""
    lot = hex32(row.lot)
    return HarvestLotPublic(
        lot=lot,
        farmer_id=hex32(row.farmer),
        plot_id=hex32(row.plot),
        grams=row.grams,
        grade=row.grade,
        picked_at=row.picked_at,
        record_ref=refs.get(lot, ""),
        tx_hash=hex32(row.tx_hash) if row.tx_hash is not None else None,
        block_number=row.block_number,
        created_at=datetime.fromtimestamp(row.block_timestamp, UTC),
        trace_url=f"{base_url}/trace/{lot}",
    )


def _with_state(service: Callable[[], RecordingService], items: list[HarvestLotPublic]) -> None:
    """Fill in holder, state and recall flag from one batched view call (skipped if down)."""
    if not items:
        return
    try:
        views = service().lots([i.lot for i in items])
    except ROOTS:
        return  # reads still work from the database while the node is away
    for item, view in zip(items, views, strict=True):
        item.state = view.state.name.lower()
        item.holder = view.holder
        item.recalled = view.recalled


def _harvests() -> Select:
    """Indexed harvests with the transaction that recorded each."""
    raw = RawEvent.__table__.c  # type: ignore[attr-defined]
    h = Harvest.__table__.c  # type: ignore[attr-defined]
    joined = Harvest.__table__.outerjoin(  # type: ignore[attr-defined]
        RawEvent.__table__,  # type: ignore[attr-defined]
        and_(raw.block_number == h.block_number, raw.log_index == h.log_index),
    )
    return select(*h, raw.tx_hash).select_from(joined)


def _refs(session: Session, lots: Sequence[str]) -> dict[str, str]:
    """The receipt numbers kept for these lots."""
    rows = session.exec(select(HarvestRef).where(col(HarvestRef.lot).in_(lots))).all()
    return {r.lot: r.record_ref for r in rows}


def list_lots(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    page: PageParams,
    base: str,
) -> HarvestLots:
    """The cooperative's harvest lots as indexed, newest first, with their state on chain."""
    mine = Harvest.cooperative == bytes.fromhex(coop.chain_address[2:])
    with indexed_read(settings.database_url) as conn:
        total = conn.execute(select(func.count()).select_from(Harvest).where(mine)).scalar_one()
        rows = conn.execute(
            _harvests()
            .where(mine)
            .order_by(Harvest.block_number.desc(), Harvest.log_index.desc())  # type: ignore[attr-defined]
            .offset(page.offset)
            .limit(page.limit)
        ).all()
        block = indexed_block(conn)
    refs = _refs(session, [hex32(r.lot) for r in rows])
    items = [_lot_public(r, refs, base) for r in rows]
    _with_state(lambda: recording_service(chain, settings, coop), items)
    return HarvestLots(
        items=items, total=total, limit=page.limit, offset=page.offset, block_number=block
    )


def lot_detail(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    lot: str,
    base: str,
) -> HarvestLotPublic:
    """One of the cooperative's harvest lots: 404 unknown or not indexed yet, 403 another's."""
    key = parse_id(lot, "lot")
    with indexed_read(settings.database_url) as conn:
        row = conn.execute(_harvests().where(Harvest.lot == key)).first()
    if row is None:
        raise NotFound(
            f"lot {hex32(key)} is not a harvest lot indexed so far (a lot recorded moments "
            "ago appears once the indexer has caught up)"
        )
    if hex32(row.cooperative) != coop.chain_address.lower():
        raise Forbidden(f"lot {hex32(key)} is not a harvest lot of your cooperative")
    item = _lot_public(row, _refs(session, [hex32(key)]), base)
    _with_state(lambda: recording_service(chain, settings, coop), [item])
    return item

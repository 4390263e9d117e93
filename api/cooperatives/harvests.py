"""A cooperative's harvests: JSON batches and CSV/JSON uploads recorded on chain, and its lots.

Valid records are recorded, never twice (a record already on chain is a `duplicate`); rows of a
file that do not validate are listed with the reason and nothing is sent for them. The lots a
submission recorded are kept in `registry_harvest_lot` with the transaction that made them.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator
from pydantic import Field as PydField
from sqlmodel import Session, col, func, select

from api.cooperatives.schemas import HarvestLotPublic
from api.core.chain import recording_service
from api.core.errors import ROOTS, Forbidden, Invalid, NotFound, Restated, detail_of, revert_of
from api.core.ids import hex32, parse_id
from api.core.models import HarvestLot, Organisation
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from api.core.types import Id32
from chain.client import ChainClient
from chain.errors import ChainError
from chain.sender import TRANSIENT
from traceability.files import RowError, read_harvest_file
from traceability.models import (
    EARLIEST_HARVEST,
    UINT64_MAX,
    GradeField,
    HarvestRecord,
    _unix_seconds,
)
from traceability.service import HarvestReport, Outcome, RecordingService

MAX_HARVEST_BATCH = 1_000
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
    grams: int = PydField(gt=0, le=UINT64_MAX)
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


def parse_upload(filename: str, content: bytes) -> _Parsed:
    """Rows of an uploaded .csv or .json harvest file (traceability.files rules)."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise Invalid(
            f"harvest files are .csv or .json, not {suffix or 'a file without extension'}"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(content)
        rows, errors = read_harvest_file(path)  # InvalidRecordError: missing/unknown columns
    return _Parsed([r.record for r in rows], [r.where for r in rows], errors)


def submit_harvests(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    parsed: _Parsed,
) -> HarvestSubmission:
    """Record the valid records on chain, then index the cooperative's new lots here."""
    report = HarvestReport(outcomes=[])
    if parsed.records:
        service = recording_service(chain, settings, coop)
        try:
            report = service.record_harvests(parsed.records)
        except ROOTS as exc:
            # Earlier batches of a long submission may have landed; a refused one says why.
            if len(parsed.records) > service.batch_size and revert_of(exc) is None:
                resubmit = f"{detail_of(exc)}. Resubmit the same records: none is recorded twice"
                raise Restated(exc, resubmit) from exc
            raise
        _index_lots(session, service, coop, parsed.records, report)
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


def _recorded_in(service: RecordingService, report: HarvestReport) -> dict[bytes, str]:
    """lot -> transaction hash of the lots this submission recorded (best effort)."""
    hashes = ["0x" + t.hex() for t in report.transactions]
    recorded = [o.lot for o in report.outcomes if o.outcome is Outcome.RECORDED]
    if len(hashes) == 1:
        return dict.fromkeys(recorded, hashes[0])
    found: dict[bytes, str] = {}
    try:
        for tx in report.transactions:
            for lot in service.harvests_in(tx):
                found[lot] = "0x" + tx.hex()
    except (ChainError, *TRANSIENT):
        pass  # the lots are on chain either way; only the hash is missing from the index
    return found


def _existing(service: RecordingService, lots: Sequence[bytes]) -> set[bytes]:
    """Which of these lots exist on chain (a repeat of a rejected record does not)."""
    if not lots:
        return set()
    try:
        return {view.lot for view in service.lots(list(dict.fromkeys(lots))) if view.exists}
    except (ChainError, *TRANSIENT):
        return set()  # indexed on the next resubmission


def _index_lots(
    session: Session,
    service: RecordingService,
    coop: Organisation,
    records: Sequence[HarvestRecord],
    report: HarvestReport,
) -> None:
    """Rows for recorded lots, and for duplicates not yet here (an earlier failed write)."""
    keep = [o for o in report.outcomes if o.outcome in (Outcome.RECORDED, Outcome.DUPLICATE)]
    if not keep:
        return
    ids = [hex32(o.lot) for o in keep]
    known = set(session.exec(select(HarvestLot.lot).where(col(HarvestLot.lot).in_(ids))).all())
    txs = _recorded_in(service, report)
    on_chain = set(txs) | _existing(service, [o.lot for o in keep if hex32(o.lot) not in known])
    for outcome in keep:
        lot = hex32(outcome.lot)
        if lot in known or outcome.lot not in on_chain:
            continue
        known.add(lot)
        record = records[outcome.index]
        session.add(
            HarvestLot(
                lot=lot,
                cooperative_id=coop.id,
                farmer_id=hex32(record.farmer),
                plot_id=hex32(record.plot),
                grams=record.grams,
                grade=int(record.grade),
                picked_at=record.picked_at,
                record_ref=record.record_ref,
                tx_hash=txs.get(outcome.lot),
            )
        )
    session.commit()


# ------------------------------------------------------------------------------------ lots


def _lot_public(row: HarvestLot, base_url: str) -> HarvestLotPublic:
    """A stored lot without chain state."""
    return HarvestLotPublic(
        **row.model_dump(exclude={"id", "cooperative_id"}), trace_url=f"{base_url}/trace/{row.lot}"
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


def list_lots(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    page: PageParams,
) -> Page[HarvestLotPublic]:
    """The cooperative's harvest lots, newest first, with their state on chain."""
    where = HarvestLot.cooperative_id == coop.id
    total = session.exec(select(func.count()).select_from(HarvestLot).where(where)).one()
    rows = session.exec(
        select(HarvestLot)
        .where(where)
        .order_by(col(HarvestLot.id).desc())
        .offset(page.offset)
        .limit(page.limit)
    ).all()
    items = [_lot_public(r, settings.public_base_url) for r in rows]
    _with_state(lambda: recording_service(chain, settings, coop), items)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def lot_detail(
    session: Session, chain: ChainClient, settings: ApiSettings, coop: Organisation, lot: str
) -> HarvestLotPublic:
    """One of the cooperative's harvest lots: 404 unknown, 403 recorded by someone else."""
    key = hex32(parse_id(lot, "lot"))
    row = session.exec(select(HarvestLot).where(HarvestLot.lot == key)).first()
    service = recording_service(chain, settings, coop)
    if row is None or row.cooperative_id != coop.id:
        view = service.lot(key)
        if row is None and not view.exists:
            raise NotFound(f"lot {key} does not exist")
        raise Forbidden(f"lot {key} is not a harvest lot of your cooperative")
    item = _lot_public(row, settings.public_base_url)
    _with_state(lambda: service, [item])
    return item

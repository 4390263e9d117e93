"""What the cooperative routes do: members, plots and harvests, on chain first, then here.

Order of every write: validate and authorise, send to the chain, and only once the chain
accepted it write the database row. A node that is down leaves nothing behind; a database
failure after the chain accepted is repaired by simply repeating the request (the record is
found on chain and adopted instead of being sent again).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import HTTPException, status
from pydantic import AfterValidator, BaseModel, BeforeValidator
from pydantic import Field as PydField
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from api.cooperatives.identity import farmer_pseudonym, location_digest, plot_pseudonym
from api.cooperatives.models import (
    Farmer,
    FarmerCreate,
    FarmerPublic,
    FarmerRegistered,
    HarvestLot,
    HarvestLotPublic,
    Id32,
    Plot,
    PlotCreate,
    PlotPublic,
    PlotRegistered,
)
from api.core.chain import (
    ZERO_ADDRESS,
    chain_call,
    hex32,
    organisation,
    parse_id,
    recording_service,
    same_address,
    tx_hex,
)
from api.core.models import Organisation, Role, utcnow
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from chain.client import ChainClient
from chain.errors import ChainError
from chain.sender import TRANSIENT
from traceability.files import RowError, read_harvest_file
from traceability.models import (
    EARLIEST_HARVEST,
    UINT64_MAX,
    FarmerRegistration,
    GradeField,
    HarvestRecord,
    PlotRegistration,
    _unix_seconds,
)
from traceability.service import HarvestReport, Outcome, RecordingService

MAX_HARVEST_BATCH = 1_000
UPLOAD_SUFFIXES = (".csv", ".json")


# ------------------------------------------------------------------------------------ farmers


def _farmer_row(session: Session, farmer: str) -> Farmer | None:
    """The stored farmer with this 0x pseudonym."""
    return session.exec(select(Farmer).where(Farmer.farmer_id == farmer)).first()


def _chain_farmer(service: RecordingService, farmer: bytes) -> tuple[str, str, bool]:
    """(cooperative, wallet, active) on chain; the cooperative is zero for an unknown farmer."""
    with chain_call():
        cooperative, wallet, active = service.contract.functions.farmer(farmer).call()
    return cooperative, wallet, bool(active)


def own_farmer(
    session: Session, chain: ChainClient, settings: ApiSettings, coop: Organisation, farmer: str
) -> Farmer:
    """The cooperative's own member: 422 malformed, 403 another's, 404 unknown."""
    fid = parse_id(farmer, "farmer")
    key = hex32(fid)
    row = _farmer_row(session, key)
    if row is not None:
        if row.cooperative_id != coop.id:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"farmer {key} is a member of another cooperative"
            )
        return row
    cooperative, _, _ = _chain_farmer(recording_service(chain, settings, coop), fid)
    if same_address(cooperative, ZERO_ADDRESS):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"farmer {key} is not registered")
    if not same_address(cooperative, coop.chain_address):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"farmer {key} is a member of another cooperative"
        )
    raise HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"farmer {key} is yours on chain but has no record here: register them again "
        "with their national id to attach it",
    )


def _wallet(session: Session, body: FarmerCreate) -> Organisation | None:
    """The farmer organisation whose address becomes the wallet (each links one farmer)."""
    if body.farmer_org_id is None:
        return None
    org = organisation(session, body.farmer_org_id, {Role.FARMER}, "farmer organisation")
    linked = session.exec(select(Farmer).where(Farmer.wallet_org_id == org.id)).first()
    if linked is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"farmer organisation {org.id} is already the wallet of another farmer",
        )
    return org


def register_farmer(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    body: FarmerCreate,
) -> FarmerRegistered:
    """Register a member on chain by pseudonym, then keep its personal data here."""
    fid = farmer_pseudonym(settings, coop, body.national_id)
    key = hex32(fid)
    if _farmer_row(session, key) is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"this person is already registered as farmer {key}"
        )
    wallet_org = _wallet(session, body)
    wallet = wallet_org.chain_address if wallet_org else None
    service = recording_service(chain, settings, coop)
    cooperative, chain_wallet, _ = _chain_farmer(service, fid)
    transaction = None
    with chain_call():
        if same_address(cooperative, ZERO_ADDRESS):
            receipt = service.register_farmers([FarmerRegistration(farmer=fid, wallet=wallet)])
            transaction = tx_hex(receipt[0])
        elif not same_address(cooperative, coop.chain_address):
            # Cannot happen with per-cooperative salts short of a hash collision: let the
            # contract refuse it with its own error.
            service.register_farmers([FarmerRegistration(farmer=fid, wallet=wallet)])
        elif not same_address(chain_wallet, wallet):
            # Registered by an earlier attempt whose database write failed: adopt it.
            transaction = tx_hex(service.set_farmer_wallet(fid, wallet))
    row = Farmer(
        farmer_id=key,
        cooperative_id=coop.id,
        name=body.name,
        national_id=body.national_id,
        wallet_org_id=wallet_org.id if wallet_org else None,
        wallet=wallet,
        registered_tx=transaction,
    )
    _commit(session, row, f"farmer {key} was registered at the same time by another request")
    return FarmerRegistered(**FarmerPublic.of(row).model_dump(), transaction=transaction)


def _commit(session: Session, row: Farmer | Plot, conflict: str) -> None:
    """Insert one row; a concurrent insert of the same id is a 409 (retrying adopts it)."""
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, conflict) from None
    session.refresh(row)


def list_farmers(session: Session, coop: Organisation, page: PageParams) -> Page[FarmerPublic]:
    """The cooperative's members, in registration order."""
    where = Farmer.cooperative_id == coop.id
    total = session.exec(select(func.count()).select_from(Farmer).where(where)).one()
    rows = session.exec(
        select(Farmer).where(where).order_by(col(Farmer.id)).offset(page.offset).limit(page.limit)
    ).all()
    items = [FarmerPublic.of(r) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def farmer_detail(
    session: Session, chain: ChainClient, settings: ApiSettings, coop: Organisation, farmer: str
) -> FarmerPublic:
    """One member, with its status on chain."""
    row = own_farmer(session, chain, settings, coop, farmer)
    service = recording_service(chain, settings, coop)
    _, _, active = _chain_farmer(service, bytes.fromhex(row.farmer_id[2:]))
    return FarmerPublic.of(row).model_copy(update={"active": active})


def erase_personal_data(session: Session, row: Farmer) -> FarmerPublic:
    """Erase name, national id and plot labels; keep the pseudonym (idempotent)."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        # Overwrite freed content instead of leaving it in free pages of the file.
        session.connection().exec_driver_sql("PRAGMA secure_delete = ON")
    row.name = None
    row.national_id = None
    if row.erased_at is None:
        row.erased_at = utcnow()
    session.add(row)
    plots = session.exec(select(Plot).where(Plot.farmer_id == row.farmer_id)).all()
    for plot in plots:
        plot.label = None
        session.add(plot)
    session.commit()
    session.refresh(row)
    return FarmerPublic.of(row)


# ------------------------------------------------------------------------------------ plots


def register_plot(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    body: PlotCreate,
) -> PlotRegistered:
    """Register a plot of one of the cooperative's own members."""
    fid = body.farmer_id
    farmer = own_farmer(session, chain, settings, coop, hex32(fid))
    pid = plot_pseudonym(settings, coop, body.land_reference)
    key = hex32(pid)
    if session.exec(select(Plot).where(Plot.plot_id == key)).first() is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"this plot is already registered as {key}")
    service = recording_service(chain, settings, coop)
    transaction = None
    with chain_call():
        on_farmer, on_coop, _, _ = service.contract.functions.plot(pid).call()
        adopt = same_address(on_coop, coop.chain_address) and bytes(on_farmer) == fid
        if not adopt:  # new (or someone else's: the contract refuses it with its error)
            registration = PlotRegistration(
                plot=pid,
                farmer=fid,
                area_centi_mu=body.area_centi_mu,
                variety=body.variety,
                location_hash=location_digest(settings, coop, body.location),
            )
            transaction = tx_hex(service.register_plots([registration])[0])
    row = Plot(
        plot_id=key,
        farmer_id=farmer.farmer_id,
        cooperative_id=coop.id,
        label=body.label.strip() if body.label and body.label.strip() else None,
        area_centi_mu=body.area_centi_mu,
        variety=body.variety,
        registered_tx=transaction,
    )
    _commit(session, row, f"plot {key} was registered at the same time by another request")
    return PlotRegistered(**PlotPublic.of(row).model_dump(), transaction=transaction)


def list_plots(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    page: PageParams,
    farmer: str | None = None,
) -> Page[PlotPublic]:
    """The cooperative's plots, optionally of one (own) member."""
    where = [Plot.cooperative_id == coop.id]
    if farmer is not None:
        where.append(Plot.farmer_id == own_farmer(session, chain, settings, coop, farmer).farmer_id)
    total = session.exec(select(func.count()).select_from(Plot).where(*where)).one()
    rows = session.exec(
        select(Plot).where(*where).order_by(col(Plot.id)).offset(page.offset).limit(page.limit)
    ).all()
    return Page(
        items=[PlotPublic.of(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


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
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"harvest files are .csv or .json, not {suffix or 'a file without extension'}",
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(content)
        with chain_call():  # InvalidRecordError (missing/unknown columns) -> 422
            rows, errors = read_harvest_file(path)
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
            with chain_call():
                report = service.record_harvests(parsed.records)
        except HTTPException as exc:
            if len(parsed.records) > service.batch_size:  # earlier batches may have landed
                exc.detail = f"{exc.detail}. Resubmit the same records: none is recorded twice"
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
        with chain_call():
            views = service().lots([i.lot for i in items])
    except (HTTPException, ChainError):
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
        with chain_call():
            view = service.lot(key)
        if row is None and not view.exists:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"lot {key} does not exist")
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"lot {key} is not a harvest lot of your cooperative"
        )
    item = _lot_public(row, settings.public_base_url)
    _with_state(lambda: service, [item])
    return item

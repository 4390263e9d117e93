"""A cooperative's members and their plots: on chain by pseudonym first, personal data here.

Order of every write: validate and authorise, send to the chain, and only once the chain
accepted it write the database row. A node that is down leaves nothing behind; a database
failure after the chain accepted is repaired by simply repeating the request (the record is
found on chain and adopted instead of being sent again).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from api.cooperatives.identity import farmer_pseudonym, location_digest, plot_pseudonym
from api.cooperatives.schemas import (
    FarmerCreate,
    FarmerPublic,
    FarmerRegistered,
    PlotCreate,
    PlotFields,
    PlotPublic,
    PlotRegistered,
)
from api.core.chain import recording_service
from api.core.errors import Conflict, Forbidden, NotFound
from api.core.ids import hex32, parse_id, same_address, tx_hex
from api.core.models import Farmer, Organisation, Plot, Role, utcnow
from api.core.organisations import find_organisation
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from chain.client import ChainClient
from traceability.contracts import farmer_record, plot_record
from traceability.models import FarmerRegistration, PlotRegistration

# ------------------------------------------------------------------------------------ farmers


def farmer_row(session: Session, farmer: str) -> Farmer | None:
    """The stored farmer with this 0x pseudonym."""
    return session.exec(select(Farmer).where(Farmer.farmer_id == farmer)).first()


def own_farmer(session: Session, chain: ChainClient, coop: Organisation, farmer: str) -> Farmer:
    """The cooperative's own member: 422 malformed, 403 another's, 404 unknown."""
    fid = parse_id(farmer, "farmer")
    key = hex32(fid)
    row = farmer_row(session, key)
    if row is not None:
        if row.cooperative_id != coop.id:
            raise Forbidden(f"farmer {key} is a member of another cooperative")
        return row
    on_chain = farmer_record(chain, fid)
    if not on_chain.registered:
        raise NotFound(f"farmer {key} is not registered")
    if not same_address(on_chain.cooperative, coop.chain_address):
        raise Forbidden(f"farmer {key} is a member of another cooperative")
    raise NotFound(
        f"farmer {key} is yours on chain but has no record here: register them again "
        "with their national id to attach it"
    )


def wallet_org(session: Session, body: FarmerCreate) -> Organisation | None:
    """The farmer organisation whose address becomes the wallet (each links one farmer)."""
    if body.farmer_org_id is None:
        return None
    org = find_organisation(session, body.farmer_org_id, {Role.FARMER}, "farmer organisation")
    linked = session.exec(select(Farmer).where(Farmer.wallet_org_id == org.id)).first()
    if linked is not None:
        raise Conflict(f"farmer organisation {org.id} is already the wallet of another farmer")
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
    if farmer_row(session, key) is not None:
        raise Conflict(f"this person is already registered as farmer {key}")
    linked_org = wallet_org(session, body)
    wallet = linked_org.chain_address if linked_org else body.wallet
    service = recording_service(chain, settings, coop)
    on_chain = farmer_record(chain, fid, service.contract)
    registration = FarmerRegistration(farmer=fid, wallet=wallet)
    transaction = None
    if not on_chain.registered:
        transaction = tx_hex(service.register_farmers([registration])[0])
    elif not same_address(on_chain.cooperative, coop.chain_address):
        # Cannot happen with per-cooperative salts short of a hash collision: let the
        # contract refuse it with its own error.
        service.register_farmers([registration])
    elif not same_address(on_chain.wallet, wallet):
        # Registered by an earlier attempt whose database write failed: adopt it.
        transaction = tx_hex(service.set_farmer_wallet(fid, wallet))
    row = Farmer(
        farmer_id=key,
        cooperative_id=coop.id,
        name=body.name,
        national_id=body.national_id,
        wallet_org_id=linked_org.id if linked_org else None,
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
        raise Conflict(conflict) from None
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
    session: Session, chain: ChainClient, coop: Organisation, farmer: str
) -> FarmerPublic:
    """One member, with its status on chain."""
    row = own_farmer(session, chain, coop, farmer)
    active = farmer_record(chain, bytes.fromhex(row.farmer_id[2:])).active
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
    farmer = own_farmer(session, chain, coop, hex32(fid))
    pid = plot_pseudonym(settings, coop, body.land_reference)
    key = hex32(pid)
    if session.exec(select(Plot).where(Plot.plot_id == key)).first() is not None:
        raise Conflict(f"this plot is already registered as {key}")
    service = recording_service(chain, settings, coop)
    on_chain = plot_record(chain, pid, service.contract)
    transaction = None
    adopt = same_address(on_chain.cooperative, coop.chain_address) and on_chain.farmer == fid
    if not adopt:  # new (or someone else's: the contract refuses it with its error)
        registration = plot_registration(settings, coop, fid, pid, body)
        transaction = tx_hex(service.register_plots([registration])[0])
    row = Plot(
        plot_id=key,
        farmer_id=farmer.farmer_id,
        cooperative_id=coop.id,
        label=plot_label(body),
        area_centi_mu=body.area_centi_mu,
        variety=body.variety,
        registered_tx=transaction,
    )
    _commit(session, row, f"plot {key} was registered at the same time by another request")
    return PlotRegistered(**PlotPublic.of(row).model_dump(), transaction=transaction)


def plot_registration(
    settings: ApiSettings, coop: Organisation, farmer: bytes, plot: bytes, body: PlotFields
) -> PlotRegistration:
    """What TeaTrace records of a plot: ids, area, variety and the location's keyed hash."""
    return PlotRegistration(
        plot=plot,
        farmer=farmer,
        area_centi_mu=body.area_centi_mu,
        variety=body.variety,
        location_hash=location_digest(settings, coop, body.location),
    )


def plot_label(body: PlotFields) -> str | None:
    """The plot's short name as stored: trimmed, None when blank."""
    return body.label.strip() if body.label and body.label.strip() else None


def list_plots(
    session: Session,
    chain: ChainClient,
    coop: Organisation,
    page: PageParams,
    farmer: str | None = None,
) -> Page[PlotPublic]:
    """The cooperative's plots, optionally of one (own) member."""
    where = [Plot.cooperative_id == coop.id]
    if farmer is not None:
        where.append(Plot.farmer_id == own_farmer(session, chain, coop, farmer).farmer_id)
    total = session.exec(select(func.count()).select_from(Plot).where(*where)).one()
    rows = session.exec(
        select(Plot).where(*where).order_by(col(Plot.id)).offset(page.offset).limit(page.limit)
    ).all()
    return Page(
        items=[PlotPublic.of(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )

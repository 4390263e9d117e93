"""A cooperative's member roll in one request: many members, each with its plots.

A cooperative of tens of thousands of members does not enter them one request at a time. Each
member is checked as the single registration checks it (its own national id once, a farmer
organisation the wallet of one farmer only, plots not registered yet), against this database and
the chain (their records read in JSON-RPC batches); a refused member is listed with its reason
and nothing is sent or stored for it or its plots. The rest go on chain in pipelined batches
(registerFarmers, then registerPlots) and only then into the database, as the single
registration does. A member already on chain under this cooperative (an earlier attempt whose
database write failed) is adopted, not sent again: repeating a request that failed half-way
finishes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.cooperatives.identity import farmer_pseudonym, plot_pseudonym
from api.cooperatives.members import farmer_row, plot_label, plot_registration, wallet_org
from api.cooperatives.schemas import (
    FarmerCreate,
    FarmerPublic,
    FarmerRegistered,
    PlotFields,
    PlotPublic,
    PlotRegistered,
)
from api.core.chain import recording_service
from api.core.errors import ROOTS, Conflict, Invalid, refusal
from api.core.ids import hex32, same_address, tx_hex
from api.core.models import Farmer, Organisation, Plot
from api.core.settings import ApiSettings
from chain.client import ChainClient
from traceability.contracts import FarmerRecord, PlotRecord, farmer_records, plot_records
from traceability.models import FarmerRegistration, PlotRegistration
from traceability.service import RecordingService

MAX_MEMBER_BATCH = 500
"""Members per request: five registerFarmers transactions and their plots' at most."""
MAX_MEMBER_PLOTS = 20


class MemberIn(FarmerCreate):
    """One member of a roll, with the plots to register for it."""

    plots: list[PlotFields] = PydField(default_factory=list, max_length=MAX_MEMBER_PLOTS)


class MemberRoll(BaseModel):
    """Members to register at once."""

    model_config = ConfigDict(extra="forbid")

    members: list[MemberIn] = PydField(min_length=1, max_length=MAX_MEMBER_BATCH)


class MemberRefused(BaseModel):
    """A member the roll did not register, and why (nothing was sent or stored for it)."""

    item: int
    name: str
    reason: str


class MemberAdded(FarmerRegistered):
    """A registered member with its registered plots."""

    plots: list[PlotRegistered]


class MemberRollOut(BaseModel):
    """What a roll registered (in its order) and what it refused."""

    registered: list[MemberAdded]
    refused: list[MemberRefused]


@dataclass
class _Member:
    """A member that passed every check, with what the chain already holds of it."""

    item: int
    body: MemberIn
    farmer_id: bytes
    wallet: str | None
    wallet_org_id: int | None
    plot_ids: list[bytes]
    on_chain: FarmerRecord | None = None
    plots_on_chain: list[PlotRecord] = field(default_factory=list)


class _RollChecks:
    """A roll's members checked one by one against the database and the roll's earlier ones."""

    def __init__(self, session: Session, settings: ApiSettings, coop: Organisation) -> None:
        self.session, self.settings, self.coop = session, settings, coop
        self.farmers: dict[bytes, int] = {}
        self.plots: dict[bytes, int] = {}
        self.wallet_orgs: dict[int, int] = {}

    def check(self, item: int, body: MemberIn) -> _Member | MemberRefused:
        """The member ready to register, or refused with the reason."""
        try:
            return self._checked(item, body)
        except ROOTS as exc:
            return MemberRefused(item=item, name=body.name, reason=refusal(exc))

    def _checked(self, item: int, body: MemberIn) -> _Member:
        """_Member of one roll entry; raises what the single registration would."""
        fid = farmer_pseudonym(self.settings, self.coop, body.national_id)
        _once(self.farmers, fid, item, "the same national id")
        org = wallet_org(self.session, body)
        if org is not None:
            assert org.id is not None
            _once(self.wallet_orgs, org.id, item, f"farmer organisation {org.id} as wallet")
        pids = [plot_pseudonym(self.settings, self.coop, p.land_reference) for p in body.plots]
        for pid in pids:
            _once(self.plots, pid, item, "a plot of the same land reference")
        if len(set(pids)) < len(pids):
            raise Invalid("two of this member's plots have the same land reference")
        self._not_stored(fid, pids)
        self._commit_keys(item, fid, pids, org.id if org else None)
        wallet = org.chain_address if org else body.wallet
        return _Member(item, body, fid, wallet, org.id if org else None, pids)

    def _not_stored(self, fid: bytes, pids: Sequence[bytes]) -> None:
        """Conflict if the member or one of its plots is in this database already."""
        row = farmer_row(self.session, hex32(fid))
        if row is not None:
            raise Conflict(f"已登记为社员 {row.id} · already registered as member no. {row.id}")
        keys = [hex32(p) for p in pids]
        if keys and self.session.exec(select(Plot.id).where(col(Plot.plot_id).in_(keys))).first():
            raise Conflict("one of this member's plots is already registered")

    def _commit_keys(self, item: int, fid: bytes, pids: Sequence[bytes], org: int | None) -> None:
        """Remember what this member claims, so that later entries cannot claim it again."""
        self.farmers[fid] = item
        self.plots.update((p, item) for p in pids)
        if org is not None:
            self.wallet_orgs[org] = item


def _once(seen: dict, key: object, item: int, what: str) -> None:
    """Invalid if an earlier entry of the roll already claimed `key`."""
    if key in seen:
        raise Invalid(f"entry {seen[key]} of this roll has {what}: each may appear once")


def _read_chain(chain: ChainClient, service: RecordingService, members: list[_Member]) -> None:
    """Each member's and plot's record on chain, read in JSON-RPC batches."""
    farmers = farmer_records(chain, [m.farmer_id for m in members], service.contract)
    plots = plot_records(chain, [p for m in members for p in m.plot_ids], service.contract)
    start = 0
    for member, record in zip(members, farmers, strict=True):
        member.on_chain = record
        member.plots_on_chain = plots[start : start + len(member.plot_ids)]
        start += len(member.plot_ids)


def _chain_refusal(coop: Organisation, member: _Member) -> str | None:
    """Why the chain's records forbid registering the member here, or None."""
    record = member.on_chain
    assert record is not None
    if record.registered and not same_address(record.cooperative, coop.chain_address):
        return "this member is registered on chain by another cooperative"
    for plot in member.plots_on_chain:
        if plot.cooperative is not None and not (
            same_address(plot.cooperative, coop.chain_address) and plot.farmer == member.farmer_id
        ):
            return "one of this member's plots is registered on chain to another farmer"
    return None


def register_members(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    roll: MemberRoll,
) -> MemberRollOut:
    """Register a roll of members with their plots: each checked first (a refused one sends and
    stores nothing), the rest sent in pipelined batches, then stored."""
    checks = _RollChecks(session, settings, coop)
    outcomes = [checks.check(item, body) for item, body in enumerate(roll.members)]
    refused = [o for o in outcomes if isinstance(o, MemberRefused)]
    ready = [o for o in outcomes if isinstance(o, _Member)]
    service = recording_service(chain, settings, coop)
    if ready:
        _read_chain(chain, service, ready)
    members: list[_Member] = []
    for member in ready:
        reason = _chain_refusal(coop, member)
        if reason is None:
            members.append(member)
        else:
            refused.append(MemberRefused(item=member.item, name=member.body.name, reason=reason))
    refused.sort(key=lambda r: r.item)
    if not members:
        return MemberRollOut(registered=[], refused=refused)
    farmer_txs = _send_farmers(service, members)
    plot_txs = _send_plots(settings, coop, service, members)
    return MemberRollOut(
        registered=_store(session, coop, members, farmer_txs, plot_txs), refused=refused
    )


def _send_farmers(service: RecordingService, members: list[_Member]) -> dict[bytes, str]:
    """Register the members not yet on chain and point adopted ones at their wallet; the
    transaction of each member sent."""
    new = [m for m in members if m.on_chain is not None and not m.on_chain.registered]
    sent: dict[bytes, str] = {}
    if new:
        registrations = [FarmerRegistration(farmer=m.farmer_id, wallet=m.wallet) for m in new]
        receipts = service.register_farmers(registrations)
        # register_farmers sends its batches of `batch_size` in order, one receipt each.
        for i, member in enumerate(new):
            sent[member.farmer_id] = tx_hex(receipts[i // service.batch_size])
    for member in members:
        record = member.on_chain
        assert record is not None
        if record.registered and not same_address(record.wallet, member.wallet):
            sent[member.farmer_id] = tx_hex(
                service.set_farmer_wallet(member.farmer_id, member.wallet)
            )
    return sent


def _send_plots(
    settings: ApiSettings, coop: Organisation, service: RecordingService, members: list[_Member]
) -> dict[bytes, str]:
    """Register the members' plots not yet on chain; the transaction of each plot sent."""
    new: list[PlotRegistration] = []
    for member in members:
        for body, pid, record in zip(
            member.body.plots, member.plot_ids, member.plots_on_chain, strict=True
        ):
            if record.cooperative is None:
                new.append(plot_registration(settings, coop, member.farmer_id, pid, body))
    if not new:
        return {}
    receipts = service.register_plots(new)
    return {r.plot: tx_hex(receipts[i // service.batch_size]) for i, r in enumerate(new)}


def _store(
    session: Session,
    coop: Organisation,
    members: list[_Member],
    farmer_txs: dict[bytes, str],
    plot_txs: dict[bytes, str],
) -> list[MemberAdded]:
    """The members and their plots into the database, in one commit."""
    rows: list[tuple[Farmer, list[Plot]]] = []
    for m in members:
        farmer = Farmer(
            farmer_id=hex32(m.farmer_id), cooperative_id=coop.id, name=m.body.name,
            national_id=m.body.national_id, wallet_org_id=m.wallet_org_id, wallet=m.wallet,
            registered_tx=farmer_txs.get(m.farmer_id),
        )  # fmt: skip
        plots = [
            Plot(
                plot_id=hex32(pid),
                farmer_id=farmer.farmer_id,
                cooperative_id=coop.id,
                label=plot_label(body),
                area_centi_mu=body.area_centi_mu,
                variety=body.variety,
                registered_tx=plot_txs.get(pid),
            )
            for body, pid in zip(m.body.plots, m.plot_ids, strict=True)
        ]
        session.add(farmer)
        session.add_all(plots)
        rows.append((farmer, plots))
    try:
        session.flush()  # the member numbers, read before the commit expires every row
        added = [_added(farmer, plots) for farmer, plots in rows]
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            "some of these members were registered at the same time by another request: "
            "send the roll again to register the rest"
        ) from None
    return added


def _added(farmer: Farmer, plots: list[Plot]) -> MemberAdded:
    """The answer for one stored member."""
    return MemberAdded(
        **FarmerPublic.of(farmer).model_dump(),
        transaction=farmer.registered_tx,
        plots=[
            PlotRegistered(**PlotPublic.of(p).model_dump(), transaction=p.registered_tx)
            for p in plots
        ],
    )

"""Deliveries straight to a factory: who accepts whose leaf.

A factory (or any supply-chain member) accepts a cooperative as a supplier on chain
(`TeaTrace.setSupplier`); from then on the cooperative may record its members' harvests as
delivered to it, each new lot held by the factory at once (`recordDeliveries`), instead of
recording, shipping and receiving every lot. The pair lives on chain only: there is no copy
here to drift from it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlmodel import Session, col, select

from api.core.chain import recording_service
from api.core.errors import Invalid
from api.core.ids import tx_hex
from api.core.models import Organisation, Role
from api.core.organisations import find_organisation
from api.core.settings import ApiSettings
from api.core.types import RowId
from chain.client import ChainClient
from traceability.contracts import supplier_flags

CONSIGNEE_ROLES = frozenset({Role.PROCESSOR, Role.DISTRIBUTOR, Role.COOPERATIVE})


class SupplierIn(BaseModel):
    """Accept a cooperative's deliveries, or stop accepting them."""

    cooperative_org_id: RowId = PydField(description="the cooperative's organisation id")
    accepted: bool = PydField(default=True, description="false: stop accepting its deliveries")


class PartnerOut(BaseModel):
    """An organisation on the other side of a supply agreement, and whether it holds."""

    org_id: int
    name: str
    chain_address: str
    accepted: bool
    transaction: str | None = PydField(default=None, description="the transaction that set it")


def _active(
    session: Session, roles: Sequence[Role], other_than: Organisation
) -> list[Organisation]:
    """Active organisations of `roles`, by name, without `other_than`."""
    query = select(Organisation).where(
        col(Organisation.active), col(Organisation.role).in_(list(roles))
    )
    orgs = session.exec(query.order_by(col(Organisation.name))).all()
    return [o for o in orgs if o.id != other_than.id]


def _partners(
    chain: ChainClient, orgs: list[Organisation], pairs: list[tuple[str, str]]
) -> list[PartnerOut]:
    """Each organisation with the flag of its (consignee, cooperative) pair."""
    flags = supplier_flags(chain, pairs) if pairs else []
    return [
        PartnerOut(org_id=o.id or 0, name=o.name, chain_address=o.chain_address, accepted=f)
        for o, f in zip(orgs, flags, strict=True)
    ]


def suppliers(session: Session, chain: ChainClient, org: Organisation) -> list[PartnerOut]:
    """Every cooperative, and whether `org` accepts its deliveries."""
    coops = _active(session, [Role.COOPERATIVE], org)
    return _partners(chain, coops, [(org.chain_address, c.chain_address) for c in coops])


def consignees(session: Session, chain: ChainClient, coop: Organisation) -> list[PartnerOut]:
    """The organisations that accept `coop`'s deliveries (where its leaf may be recorded to)."""
    orgs = _active(session, sorted(CONSIGNEE_ROLES), coop)
    found = _partners(chain, orgs, [(o.chain_address, coop.chain_address) for o in orgs])
    return [p for p in found if p.accepted]


def set_supplier(
    session: Session, chain: ChainClient, settings: ApiSettings, org: Organisation, body: SupplierIn
) -> PartnerOut:
    """Accept (or stop accepting) a cooperative's deliveries, signed as `org`."""
    coop = find_organisation(session, body.cooperative_org_id, [Role.COOPERATIVE], "cooperative")
    if coop.id == org.id:
        raise Invalid("一个组织不能接受自己供货 · an organisation does not supply itself")
    service = recording_service(chain, settings, org)
    receipt = service.set_supplier(coop.chain_address, body.accepted)
    return PartnerOut(
        org_id=coop.id or 0,
        name=coop.name,
        chain_address=coop.chain_address,
        accepted=body.accepted,
        transaction=tx_hex(receipt),
    )


def consignee_of(
    session: Session, chain: ChainClient, coop: Organisation, org_id: int
) -> Organisation:
    """The organisation `coop` records a delivery to: 404 unknown, 422 if it does not accept."""
    target = find_organisation(
        session, org_id, CONSIGNEE_ROLES, "cooperative, processor or distributor"
    )
    pair = (target.chain_address, coop.chain_address)
    if target.id == coop.id or not supplier_flags(chain, [pair])[0]:
        raise Invalid(
            f"{target.name} 未接受本合作社供货 · {target.name} does not accept deliveries from "
            f"{coop.name}: it must first accept {coop.name} as a supplier"
        )
    return target

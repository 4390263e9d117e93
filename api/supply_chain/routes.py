"""The supply chain after the harvest: processing, shipping, receiving, sales, quality, recalls.

Cooperatives, processors and distributors move the lots they hold; inspectors attest and
recall. The paths stay under /cooperatives/, where these routes began.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from api.core.deps import ChainDep, SessionDep, SettingsDep, require_role
from api.core.models import Organisation, Role
from api.supply_chain import service
from api.supply_chain.service import (
    AttestationIn,
    Attested,
    Moved,
    Processed,
    ProcessIn,
    Recalled,
    RecallIn,
    ReceiptIn,
    SaleIn,
    ShipmentIn,
    Sold,
)

router = APIRouter(prefix="/cooperatives", tags=["supply chain"])

ProcessorOrg = Annotated[Organisation, Depends(require_role(Role.PROCESSOR))]
SupplyChainOrg = Annotated[
    Organisation, Depends(require_role(Role.COOPERATIVE, Role.PROCESSOR, Role.DISTRIBUTOR))
]
InspectorOrg = Annotated[Organisation, Depends(require_role(Role.INSPECTOR))]


@router.post("/processing", status_code=status.HTTP_201_CREATED, response_model=Processed)
def process_lots(
    body: ProcessIn, settings: SettingsDep, chain: ChainDep, org: ProcessorOrg
) -> Processed:
    """Processors: turn lots you hold into made-tea lots (yield capped on chain)."""
    return service.process(chain, settings, org, body)


@router.post("/shipments", status_code=status.HTTP_201_CREATED, response_model=Moved)
def ship_lots(
    body: ShipmentIn,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    org: SupplyChainOrg,
) -> Moved:
    """Ship lots you hold to another cooperative, processor or distributor."""
    return service.ship(session, chain, settings, org, body)


@router.post("/receipts", response_model=Moved)
def receive_lots(
    body: ReceiptIn, settings: SettingsDep, chain: ChainDep, org: SupplyChainOrg
) -> Moved:
    """Take delivery of lots shipped to you."""
    return service.receive(chain, settings, org, body)


@router.post("/sales", status_code=status.HTTP_201_CREATED, response_model=Sold)
def sell_lot(
    body: SaleIn, session: SessionDep, settings: SettingsDep, chain: ChainDep, org: SupplyChainOrg
) -> Sold:
    """Record the sale of a lot you hold; the buyer becomes its holder."""
    return service.sell(session, chain, settings, org, body)


@router.post("/attestations", status_code=status.HTTP_201_CREATED, response_model=Attested)
def attest_lot(
    body: AttestationIn, settings: SettingsDep, chain: ChainDep, org: InspectorOrg
) -> Attested:
    """Inspectors: attest a lot's grade and whether it passed."""
    return service.attest(chain, settings, org, body)


@router.post("/recalls", response_model=Recalled)
def recall_lot(
    body: RecallIn, settings: SettingsDep, chain: ChainDep, org: InspectorOrg
) -> Recalled:
    """Inspectors: recall a lot and every lot made from it."""
    return service.recall(chain, settings, org, body)

"""The supply chain after the harvest: processing, shipping, receiving, sales, quality, recalls.

Cooperatives, processors and distributors move the lots they hold; inspectors attest and
recall. The paths stay under /cooperatives/, where these routes began.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from api.core import suppliers
from api.core.deps import ChainDep, SessionDep, SettingsDep, require_role
from api.core.models import Organisation, Role
from api.core.pagination import Page, PageDep
from api.core.suppliers import PartnerOut, SupplierIn
from api.core.types import MAX_FEN, Id32Path
from api.supply_chain import batch, service, settlement
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
from api.supply_chain.settlement import (
    SettleIn,
    SettlementOut,
    SharesCommittedOut,
    SharesPreview,
)

router = APIRouter(prefix="/cooperatives", tags=["supply chain"])

ProcessorOrg = Annotated[Organisation, Depends(require_role(Role.PROCESSOR))]
SupplyChainOrg = Annotated[
    Organisation, Depends(require_role(Role.COOPERATIVE, Role.PROCESSOR, Role.DISTRIBUTOR))
]
InspectorOrg = Annotated[Organisation, Depends(require_role(Role.INSPECTOR))]
# Who may look at a lot's money: its maker, holder or first buyer (checked per lot).
LotPartyOrg = Annotated[
    Organisation,
    Depends(require_role(Role.COOPERATIVE, Role.PROCESSOR, Role.DISTRIBUTOR, Role.MERCHANT)),
]


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


@router.get("/suppliers", response_model=list[PartnerOut])
def list_suppliers(session: SessionDep, chain: ChainDep, org: SupplyChainOrg) -> list[PartnerOut]:
    """Every cooperative, and whether you accept its harvests recorded straight to you."""
    return suppliers.suppliers(session, chain, org)


@router.post("/suppliers", response_model=PartnerOut)
def set_supplier(
    body: SupplierIn,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    org: SupplyChainOrg,
) -> PartnerOut:
    """Accept a cooperative's deliveries, or stop accepting them (`accepted: false`).

    A cooperative you accept may record its harvests as delivered to you: each new lot is
    yours on chain at once, with no shipment and receipt of its own.
    """
    return suppliers.set_supplier(session, chain, settings, org, body)


# ------------------------------------------------------------------------------------ money


@router.get("/lots/{lot}/shares", response_model=SharesPreview)
def preview_shares(
    lot: Id32Path,
    chain: ChainDep,
    org: LotPartyOrg,
    amount_fen: Annotated[
        int | None,
        Query(gt=0, le=MAX_FEN, description="show each farmer's part of this amount (fen)"),
    ] = None,
) -> SharesPreview:
    """A lot's farmer shares computed from its lineage, and what is committed; sends nothing."""
    return settlement.preview(chain, org, lot, amount_fen)


@router.post(
    "/lots/{lot}/shares", status_code=status.HTTP_201_CREATED, response_model=SharesCommittedOut
)
def commit_shares(
    lot: Id32Path, settings: SettingsDep, chain: ChainDep, org: LotPartyOrg
) -> SharesCommittedOut:
    """The lot's maker: commit the shares the preview shows to SaleSettlement."""
    return settlement.commit(chain, settings, org, lot)


@router.post(
    "/lots/{lot}/settlements", status_code=status.HTTP_201_CREATED, response_model=SettlementOut
)
def settle_sale(
    lot: Id32Path, body: SettleIn, settings: SettingsDep, chain: ChainDep, org: LotPartyOrg
) -> SettlementOut:
    """The lot's holder or first buyer: pay for it in eCNY, split among its farmers."""
    return settlement.settle(chain, settings, org, lot, body)


@router.post("/shares", response_model=batch.BatchOut)
def commit_many(
    body: batch.LotsIn, settings: SettingsDep, chain: ChainDep, org: SupplyChainOrg
) -> batch.BatchOut:
    """Commit the lineage shares of many lots you made; each lot's own outcome."""
    return batch.commit_lots(chain, settings, org, body)


@router.post("/settlements", response_model=batch.BatchOut)
def settle_many(
    body: batch.SalesIn, settings: SettingsDep, chain: ChainDep, org: SupplyChainOrg
) -> batch.BatchOut:
    """Pay for many lots you hold or bought first; each lot's own outcome."""
    return batch.settle_lots(chain, settings, org, body)


@router.get("/lots/{lot}/settlements", response_model=Page[SettlementOut])
def list_settlements(
    lot: Id32Path, chain: ChainDep, org: LotPartyOrg, page: PageDep
) -> Page[SettlementOut]:
    """What each settled sale of the lot paid each farmer: to loans, to the farmer, held."""
    return settlement.settlements(chain, org, lot, page)

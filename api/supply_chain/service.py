"""Lots moving along the chain: processing, shipping, receiving, sales, quality, recalls.

Each action signs as the calling organisation. Before sending, the lots named are looked up
on chain: an unknown lot is 404, a lot held by another organisation is 403 (for shipping,
processing, selling and receiving: the holder is the consignee while in transit). Inspectors
attest and recall any existing lot. Whatever the contract still refuses comes back as 409 with
its decoded error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, BaseModel
from pydantic import Field as PydField
from sqlmodel import Session

from api.core.chain import recording_service
from api.core.errors import Forbidden, NotFound
from api.core.ids import hex32, same_address, tx_hex
from api.core.models import Organisation, Role
from api.core.organisations import find_organisation
from api.core.settings import ApiSettings
from api.core.types import MAX_FEN, Id32, Int, RowId, Text
from chain.client import ChainClient
from traceability.contracts import deployment_block
from traceability.ids import output_data_hash, text_hash
from traceability.models import (
    UINT64_MAX,
    GradeField,
    LotView,
    ProcessOutput,
    QualityAttestation,
)
from traceability.service import RecordingService

MAX_LOTS = 500
SUPPLY_CHAIN_ROLES = frozenset({Role.COOPERATIVE, Role.PROCESSOR, Role.DISTRIBUTOR})
BUYER_ROLES = SUPPLY_CHAIN_ROLES | {Role.MERCHANT}


def _distinct(lots: list[bytes]) -> list[bytes]:
    """Refuse a lot named twice in one request."""
    if len(set(lots)) != len(lots):
        raise ValueError("a lot is named more than once")
    return lots


LotList = Annotated[list[Id32], PydField(min_length=1, max_length=MAX_LOTS)]
DistinctLots = Annotated[LotList, AfterValidator(_distinct)]


def lot_views(
    service: RecordingService, lots: Sequence[bytes], held_by: str | None = None
) -> list[LotView]:
    """On-chain views of `lots`; 404 for an unknown lot, 403 if one is held by someone else.

    Ownership on chain is public (anyone can call `TeaTrace.lot(id)`), so a lot of another
    organisation is answered with 403, not disguised as 404.
    """
    views = service.lots(list(lots))
    for view in views:
        if not view.exists:
            raise NotFound(f"lot {hex32(view.lot)} does not exist")
        if held_by is not None and not same_address(view.holder, held_by):
            raise Forbidden(
                f"lot {hex32(view.lot)} is held by {view.holder}, not by you ({held_by})"
            )
    return views


# ------------------------------------------------------------------------------------ bodies


class OutputIn(BaseModel):
    """One output lot of made tea."""

    grams: Int = PydField(gt=0, le=UINT64_MAX)


class ProcessIn(BaseModel):
    """A processing run: whole input lots in, made-tea lots out (the contract caps the yield)."""

    inputs: Annotated[list[Id32], PydField(min_length=1, max_length=100), AfterValidator(_distinct)]
    outputs: list[OutputIn] = PydField(min_length=1, max_length=50)
    process_ref: Text = PydField(
        max_length=128, description="your run reference: output lot ids are derived from it"
    )


class ShipmentIn(BaseModel):
    """Lots you hold, sent to another cooperative, processor or distributor."""

    lots: DistinctLots
    to_org_id: RowId


class ReceiptIn(BaseModel):
    """Lots shipped to you, taken into your hands."""

    lots: DistinctLots


class SaleIn(BaseModel):
    """The sale of a lot you hold (money is settled elsewhere); the buyer becomes its holder."""

    lot: Id32
    buyer_org_id: RowId
    price_fen: Int = PydField(gt=0, le=MAX_FEN, description="price in fen (0.01 yuan)")


class AttestationIn(BaseModel):
    """An inspector's verdict on a lot."""

    lot: Id32
    grade: GradeField
    passed: bool
    certificate_ref: Text = PydField(
        max_length=256, description="certificate number (only its hash goes on chain)"
    )


class RecallIn(BaseModel):
    """Recall a lot and every lot made from it."""

    lot: Id32
    reason: Text = PydField(max_length=1_000, description="recall notice (hashed on chain)")


# ------------------------------------------------------------------------------------ answers


class LotOut(BaseModel):
    """A lot created by a processing run."""

    lot: str
    grams: int


class Processed(BaseModel):
    """A processing run on chain."""

    process_id: str
    inputs: list[str]
    outputs: list[LotOut]
    transaction: str


class Moved(BaseModel):
    """Lots shipped or received."""

    lots: list[str]
    to: str | None = None
    transactions: list[str]


class Sold(BaseModel):
    """A recorded sale."""

    lot: str
    buyer: str
    buyer_org_id: int
    price_fen: int
    transaction: str


class Attested(BaseModel):
    """A recorded attestation."""

    lot: str
    grade: int
    passed: bool
    certificate_hash: str
    transaction: str


class Recalled(BaseModel):
    """Lots recalled (the lot and its descendants not recalled before)."""

    lots: list[str]
    reason_hash: str


# ------------------------------------------------------------------------------------ actions


def process(
    chain: ChainClient, settings: ApiSettings, org: Organisation, body: ProcessIn
) -> Processed:
    """Consume input lots the processor holds into new made-tea lots."""
    service = recording_service(chain, settings, org)
    lot_views(service, body.inputs, held_by=service.address)
    outputs = [
        ProcessOutput(grams=o.grams, data_hash=output_data_hash(body.process_ref, i, o.grams))
        for i, o in enumerate(body.outputs)
    ]
    result = service.process(body.inputs, outputs)
    return Processed(
        process_id=hex32(result.process_id),
        inputs=[hex32(lot) for lot in body.inputs],
        outputs=[
            LotOut(lot=hex32(lot), grams=o.grams)
            for lot, o in zip(result.outputs, outputs, strict=True)
        ],
        transaction=tx_hex(result.receipt),
    )


def ship(
    session: Session, chain: ChainClient, settings: ApiSettings, org: Organisation, body: ShipmentIn
) -> Moved:
    """Ship held lots to another member of the supply chain."""
    to = find_organisation(
        session, body.to_org_id, SUPPLY_CHAIN_ROLES, "cooperative, processor or distributor"
    )
    service = recording_service(chain, settings, org)
    lot_views(service, body.lots, held_by=service.address)
    receipts = service.ship_many(body.lots, to.chain_address)
    return Moved(
        lots=[hex32(lot) for lot in body.lots],
        to=to.chain_address,
        transactions=[tx_hex(r) for r in receipts],
    )


def receive(chain: ChainClient, settings: ApiSettings, org: Organisation, body: ReceiptIn) -> Moved:
    """Take delivery of lots shipped to this organisation."""
    service = recording_service(chain, settings, org)
    lot_views(service, body.lots, held_by=service.address)
    receipts = service.receive_many(body.lots)
    return Moved(lots=[hex32(lot) for lot in body.lots], transactions=[tx_hex(r) for r in receipts])


def sell(
    session: Session, chain: ChainClient, settings: ApiSettings, org: Organisation, body: SaleIn
) -> Sold:
    """Record the sale of a held lot to another organisation."""
    buyer = find_organisation(
        session, body.buyer_org_id, BUYER_ROLES, "cooperative, processor, distributor or merchant"
    )
    service = recording_service(chain, settings, org)
    lot_views(service, [body.lot], held_by=service.address)
    receipt = service.sell(body.lot, buyer.chain_address, body.price_fen)
    assert buyer.id is not None
    return Sold(
        lot=hex32(body.lot),
        buyer=buyer.chain_address,
        buyer_org_id=buyer.id,
        price_fen=body.price_fen,
        transaction=tx_hex(receipt),
    )


def attest(
    chain: ChainClient, settings: ApiSettings, org: Organisation, body: AttestationIn
) -> Attested:
    """Record an inspector's attestation of an existing lot."""
    service = recording_service(chain, settings, org)
    lot_views(service, [body.lot])
    certificate = text_hash(body.certificate_ref)
    attestation = QualityAttestation(
        lot=body.lot, grade=body.grade, passed=body.passed, certificate_hash=certificate
    )
    receipt = service.attest(attestation)
    return Attested(
        lot=hex32(body.lot),
        grade=int(body.grade),
        passed=body.passed,
        certificate_hash=hex32(certificate),
        transaction=tx_hex(receipt),
    )


def recall(
    chain: ChainClient, settings: ApiSettings, org: Organisation, body: RecallIn
) -> Recalled:
    """Recall a lot and its descendants (found through lineage events)."""
    service = recording_service(chain, settings, org)
    lot_views(service, [body.lot])
    reason = text_hash(body.reason)
    lots = service.recall_with_descendants(body.lot, reason, deployment_block(chain))
    return Recalled(lots=[hex32(lot) for lot in lots], reason_hash=hex32(reason))

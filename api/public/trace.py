"""What the public may see of a lot: its lineage without any farmer identifier."""

from __future__ import annotations

import logging
from collections import Counter

import requests
import segno
from pydantic import BaseModel
from web3.exceptions import Web3Exception

from api.core.errors import Unavailable
from api.core.ids import parse_id
from chain.client import ChainClient
from chain.errors import ChainError, ContractRevertError
from chain.sender import TRANSIENT
from indexer.seasons import season_of
from traceability.errors import TraceabilityError
from traceability.lineage import Lineage, LineageReader, LotNode

logger = logging.getLogger(__name__)


class PublicAttestation(BaseModel):
    """An inspector's verdict."""

    lot: str
    inspector: str
    grade: int
    passed: bool
    certificate_hash: str


class PublicStep(BaseModel):
    """One node of the public lineage tree."""

    lot: str
    kind: str
    grams: int
    recalled: bool
    picked_date: str | None = None
    grade: int | None = None
    inputs: list[PublicStep] = []


class PublicTrace(BaseModel):
    """A lot's public lineage: cooperatives, seasons, harvests, quality, recall status."""

    lot: str
    kind: str
    grams: int
    state: str
    holder: str
    recalled: bool
    recalled_in_lineage: bool
    cooperatives: list[str]
    seasons: list[str]
    harvest_count: int
    farmer_count: int
    fresh_leaf_grams: int
    first_picked: str | None
    last_picked: str | None
    grade_mix: dict[str, int]
    processing_depth: int
    attestations: list[PublicAttestation]
    tree: PublicStep


def parse_lot(value: str) -> bytes:
    """A lot id as 0x + 64 hex digits, else 422."""
    return parse_id(value, "lot")


def _node(node: LotNode, seen: set[bytes]) -> PublicStep:
    """The public tree, each processing step expanded once."""
    step = PublicStep(
        lot="0x" + node.lot.hex(),
        kind=node.kind.name.lower(),
        grams=node.grams,
        recalled=bool(node.view and node.view.recalled),
    )
    if node.harvest is not None:
        step.picked_date, step.grade = node.harvest.picked_date, int(node.harvest.grade)
    produced = node.produced_by
    if produced is not None and produced.process_id not in seen:
        seen.add(produced.process_id)
        step.inputs = [_node(i, seen) for i in produced.inputs]
    return step


UNREADABLE = (
    "this lot's trace cannot be read right now: the tea ledger is not answering. "
    "Please try again in a few minutes."
)


def public_trace(client: ChainClient, lot: bytes) -> PublicTrace:
    """Trace a lot on chain and keep only what the public may see (404: LotNotFoundError;
    503 with a plain message while the node cannot be read)."""
    try:
        return _summarise(LineageReader.from_client(client).trace(lot))
    except (TraceabilityError, ContractRevertError):
        raise  # the lot's own answer (not found, not deployed)
    except (ChainError, Web3Exception, requests.RequestException, *TRANSIENT) as exc:
        logger.warning("public trace of 0x%s: the chain cannot be read: %r", lot.hex(), exc)
        raise Unavailable(UNREADABLE) from exc


def _summarise(lineage: Lineage) -> PublicTrace:
    """Summary figures of a lineage."""
    harvests = lineage.harvests()
    root = lineage.root
    assert root.view is not None
    attestations = [
        PublicAttestation(
            lot="0x" + n.lot.hex(),
            inspector=a.inspector,
            grade=int(a.grade),
            passed=a.passed,
            certificate_hash="0x" + a.certificate_hash.hex(),
        )
        for n in lineage.nodes.values()
        for a in n.attestations
    ]
    return PublicTrace(
        lot="0x" + root.lot.hex(),
        kind=root.kind.name.lower(),
        grams=root.grams,
        state=root.view.state.name.lower(),
        holder=root.view.holder,
        recalled=root.view.recalled,
        recalled_in_lineage=any(n.view and n.view.recalled for n in lineage.nodes.values()),
        cooperatives=sorted({h.cooperative for h in harvests if h.cooperative}),
        seasons=sorted({season_of(h.picked_at) for h in harvests}),
        harvest_count=len(harvests),
        farmer_count=len(lineage.farmers()),
        fresh_leaf_grams=sum(h.grams for h in harvests),
        first_picked=harvests[0].picked_date if harvests else None,
        last_picked=harvests[-1].picked_date if harvests else None,
        grade_mix=dict(sorted(Counter(h.grade.label for h in harvests).items())),
        processing_depth=lineage.depth(),
        attestations=attestations,
        tree=_node(root, set()),
    )


def qr_svg(url: str) -> str:
    """An inline SVG QR code for `url`."""
    return segno.make(url, error="m").svg_inline(scale=4, dark="#1f3d2b")

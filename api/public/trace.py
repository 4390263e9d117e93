"""What the public may see of a lot: its lineage without any farmer identifier."""

from __future__ import annotations

from collections import Counter

import segno
from pydantic import BaseModel

from api.core.errors import Invalid
from chain.client import ChainClient
from indexer.seasons import season_of
from traceability.lineage import Lineage, LineageReader, LotNode


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
    text = value.removeprefix("0x")
    if len(text) != 64:
        raise Invalid("a lot id is 0x + 64 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise Invalid("a lot id is 0x + 64 hex digits") from None


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


def public_trace(client: ChainClient, lot: bytes) -> PublicTrace:
    """Trace a lot on chain and keep only what the public may see (404: LotNotFoundError)."""
    return _summarise(LineageReader.from_client(client).trace(lot))


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

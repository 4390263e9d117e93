"""Lineage from chain data alone: a lot's tree back to its harvests, its farmer weights, and a
recall's reach.

Each processing step has an id; `LotProduced(lot, processId)` and `LotConsumed(lot, processId)`
index both, so walking the graph is a few topic-filtered eth_getLogs per level (no full scan):
backwards lot -> producing step -> its inputs, forwards lot -> consuming step -> its outputs.
A lot's farmer weights (traceability.weights, what SaleSettlement's shares are committed from)
take the same backward walk plus one query for the mass of every output of its steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from web3.contract import Contract

from chain.client import ChainClient
from chain.events import Event, EventReader
from chain.rpc import RpcError
from traceability import contracts
from traceability.errors import LotNotFoundError, TraceabilityError
from traceability.models import Grade, LotKind, LotState, LotView
from traceability.weights import LeafFlow, LeafLot, MassStep

LOT_VIEW_CHUNK = 500


def _hex(value: bytes) -> str:
    """0x-hex of bytes."""
    return "0x" + value.hex()


@dataclass(frozen=True)
class HarvestInfo:
    """Where a harvest lot came from (pseudonymous: no personal data)."""

    lot: bytes
    farmer: bytes
    plot: bytes
    grams: int
    grade: Grade
    picked_at: int
    data_hash: bytes
    block_number: int
    cooperative: str | None = None
    plot_area_centi_mu: int | None = None
    plot_variety: int | None = None

    @property
    def picked_date(self) -> str:
        """ISO date of picking (UTC)."""
        return datetime.fromtimestamp(self.picked_at, UTC).date().isoformat()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "lot": _hex(self.lot),
            "farmer": _hex(self.farmer),
            "plot": _hex(self.plot),
            "grams": self.grams,
            "grade": int(self.grade),
            "grade_label": self.grade.label,
            "picked_at": self.picked_at,
            "picked_date": self.picked_date,
            "data_hash": _hex(self.data_hash),
            "block_number": self.block_number,
            "cooperative": self.cooperative,
            "plot_area_centi_mu": self.plot_area_centi_mu,
            "plot_variety": self.plot_variety,
        }


@dataclass(frozen=True)
class Attestation:
    """An inspector's verdict on a lot."""

    inspector: str
    grade: Grade
    passed: bool
    certificate_hash: bytes
    block_number: int


@dataclass
class ProcessStep:
    """One processing step: its inputs (lots) and outputs (lot ids)."""

    process_id: bytes
    processor: str
    block_number: int
    inputs: list[LotNode] = field(default_factory=list)
    outputs: list[bytes] = field(default_factory=list)


@dataclass
class LotNode:
    """A lot in a lineage tree; a step shared by two branches is the same object (a DAG)."""

    lot: bytes
    view: LotView | None = None
    harvest: HarvestInfo | None = None
    produced_by: ProcessStep | None = None
    attestations: list[Attestation] = field(default_factory=list)
    recall_reasons: list[bytes] = field(default_factory=list)

    @property
    def kind(self) -> LotKind:
        """Fresh leaf or made tea."""
        return self.view.kind if self.view else LotKind.NONE

    @property
    def grams(self) -> int:
        """Mass of the lot."""
        return self.view.grams if self.view else 0

    def to_dict(self, seen: set[bytes] | None = None) -> dict[str, Any]:
        """JSON-ready tree (a step reached twice is expanded once, then referenced)."""
        seen = set() if seen is None else seen
        view = self.view
        out: dict[str, Any] = {
            "lot": _hex(self.lot),
            "kind": self.kind.name.lower(),
            "grams": self.grams,
            "holder": view.holder if view else None,
            "state": view.state.name.lower() if view else None,
            "recalled": bool(view and view.recalled),
            "attestations": [
                {
                    "inspector": a.inspector,
                    "grade": int(a.grade),
                    "passed": a.passed,
                    "certificate_hash": _hex(a.certificate_hash),
                }
                for a in self.attestations
            ],
        }
        if self.harvest is not None:
            out["harvest"] = self.harvest.to_dict()
        step = self.produced_by
        if step is not None:
            out["process"] = {"process_id": _hex(step.process_id), "processor": step.processor}
            if step.process_id not in seen:
                seen.add(step.process_id)
                out["process"]["block_number"] = step.block_number
                out["process"]["inputs"] = [i.to_dict(seen) for i in step.inputs]
        return out


@dataclass
class Lineage:
    """A lot's full ancestry."""

    root: LotNode
    steps: dict[bytes, ProcessStep]
    nodes: dict[bytes, LotNode]

    def harvests(self) -> list[HarvestInfo]:
        """Every ancestor harvest, once, by picking time."""
        found = [n.harvest for n in self.nodes.values() if n.harvest is not None]
        return sorted(found, key=lambda h: (h.picked_at, h.lot))

    def farmers(self) -> set[bytes]:
        """Pseudonymous ids of every farmer whose leaf went into the lot."""
        return {h.farmer for h in self.harvests()}

    def depth(self) -> int:
        """Processing steps on the longest path from a harvest to the root."""

        def down(node: LotNode) -> int:
            step = node.produced_by
            return 0 if step is None else 1 + max((down(i) for i in step.inputs), default=0)

        return down(self.root)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the tree plus a summary."""
        harvests = self.harvests()
        return {
            "lot": _hex(self.root.lot),
            "depth": self.depth(),
            "harvest_count": len(harvests),
            "farmer_count": len(self.farmers()),
            "fresh_leaf_grams": sum(h.grams for h in harvests),
            "tree": self.root.to_dict(),
        }


@dataclass(frozen=True)
class AffectedLot:
    """A descendant of a recalled lot, with where it is now."""

    lot: bytes
    depth: int
    process_id: bytes
    view: LotView

    @property
    def live(self) -> bool:
        """Still exists as goods (not consumed into another lot)."""
        return self.view.state != LotState.CONSUMED


@dataclass
class RecallImpact:
    """Everything made from a lot, through any number of processing steps."""

    lot: bytes
    view: LotView
    descendants: list[AffectedLot]

    def holders(self) -> dict[str, list[bytes]]:
        """Live affected lots (the lot itself included) grouped by current holder."""
        grouped: dict[str, list[bytes]] = {}
        live = [(self.lot, self.view)] if self.view.state != LotState.CONSUMED else []
        live += [(d.lot, d.view) for d in self.descendants if d.live]
        for lot, view in live:
            grouped.setdefault(view.holder, []).append(lot)
        return grouped

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "lot": _hex(self.lot),
            "recalled": self.view.recalled,
            "descendants": [
                {
                    "lot": _hex(d.lot),
                    "depth": d.depth,
                    "process_id": _hex(d.process_id),
                    "grams": d.view.grams,
                    "holder": d.view.holder,
                    "state": d.view.state.name.lower(),
                    "recalled": d.view.recalled,
                }
                for d in self.descendants
            ],
            "holders": {h: [_hex(x) for x in lots] for h, lots in self.holders().items()},
        }


class LineageReader:
    """Answers lineage questions from TeaTrace's events and lot slots."""

    def __init__(self, contract: Contract, logs: EventReader) -> None:
        self._contract = contract
        self._logs = logs

    @classmethod
    def on(cls, client: ChainClient, contract: Contract, from_block: int = 0) -> LineageReader:
        """On `contract` (a TeaTrace) through the client, its events from `from_block`."""
        return cls(contract, client.event_reader(contract.address, contract.abi, from_block))

    @classmethod
    def from_client(cls, client: ChainClient) -> LineageReader:
        """On the TeaTrace deployed on the client's chain, reading from its deployment block."""
        return cls.on(client, contracts.tea_trace(client), contracts.deployment_block(client))

    def _events(self, name: str, arg: str, values: Iterable[bytes]) -> list[Event]:
        """Events `name` whose indexed argument `arg` is one of `values`."""
        try:
            return self._logs.events(name, arg, values)
        except RpcError as exc:
            address = self._contract.address
            raise TraceabilityError(f"eth_getLogs on {address} failed: {exc.rpc_message}") from exc

    def lots(self, ids: Sequence[bytes]) -> dict[bytes, LotView]:
        """Stored slots of lots, by id."""
        views: dict[bytes, LotView] = {}
        for start in range(0, len(ids), LOT_VIEW_CHUNK):
            chunk = list(ids[start : start + LOT_VIEW_CHUNK])
            raw = self._contract.functions.lots(chunk).call()
            views.update(
                {lot: LotView.from_chain(lot, r) for lot, r in zip(chunk, raw, strict=True)}
            )
        return views

    def _existing(self, lot: bytes) -> LotView:
        """The lot's slot, or LotNotFoundError."""
        view = self.lots([lot])[lot]
        if not view.exists:
            raise LotNotFoundError(f"lot 0x{lot.hex()} does not exist on this chain")
        return view

    def trace(self, lot: bytes) -> Lineage:
        """The lot's tree back to every harvest, with farmers, plots, dates, grades."""
        root = LotNode(lot, self._existing(lot))
        nodes, steps = self._walk(root)
        views = self.lots(list(nodes))
        for node in nodes.values():
            node.view = views[node.lot]
        self._annotate(nodes)
        return Lineage(root, steps, nodes)

    def leaf_flow(self, lot: bytes) -> LeafFlow:
        """The harvests and processing steps behind `lot`, with every output's mass."""
        nodes, steps = self._walk(LotNode(lot))
        outputs: dict[bytes, list[tuple[bytes, int]]] = {pid: [] for pid in steps}
        for e in self._events("LotProduced", "processId", list(steps)):
            outputs[e.args["processId"]].append((e.args["lot"], e.args["grams"]))
        harvests = [
            LeafLot(n.lot, n.harvest.farmer, n.harvest.grams)
            for n in nodes.values()
            if n.harvest is not None
        ]
        mass_steps = [
            MassStep(pid, tuple(i.lot for i in step.inputs), tuple(outputs[pid]))
            for pid, step in steps.items()
        ]
        return LeafFlow(harvests, mass_steps)

    def farmer_weights(self, lot: bytes) -> dict[bytes, int]:
        """Whole fresh-leaf grams each farmer contributed to `lot` (traceability.weights)."""
        return self.leaf_flow(lot).weights(lot)

    def _walk(self, root: LotNode) -> tuple[dict[bytes, LotNode], dict[bytes, ProcessStep]]:
        """Every ancestor of `root` and the steps between, a generation at a time."""
        nodes = {root.lot: root}
        steps: dict[bytes, ProcessStep] = {}
        frontier = [root.lot]
        while frontier:
            frontier = self._trace_level(frontier, nodes, steps)
        return nodes, steps

    def _trace_level(
        self, frontier: list[bytes], nodes: dict[bytes, LotNode], steps: dict[bytes, ProcessStep]
    ) -> list[bytes]:
        """Resolve one generation: harvests end a branch, produced lots lead to their inputs."""
        for e in self._events("HarvestRecorded", "lot", frontier):
            nodes[e.args["lot"]].harvest = _harvest(e)
        new_steps: list[bytes] = []
        for e in self._events("LotProduced", "lot", frontier):
            pid = e.args["processId"]
            if pid not in steps:
                steps[pid] = ProcessStep(pid, e.args["processor"], e.block_number)
                new_steps.append(pid)
            steps[pid].outputs.append(e.args["lot"])
            nodes[e.args["lot"]].produced_by = steps[pid]
        parents: list[bytes] = []
        for e in self._events("LotConsumed", "processId", new_steps):
            source = e.args["lot"]
            if source not in nodes:
                nodes[source] = LotNode(source)
                parents.append(source)
            steps[e.args["processId"]].inputs.append(nodes[source])
        return parents

    def _annotate(self, nodes: dict[bytes, LotNode]) -> None:
        """Add cooperatives and plot details to harvests, attestations and recalls to lots."""
        harvests = [n.harvest for n in nodes.values() if n.harvest is not None]
        coops = {
            e.args["farmer"]: e.args["cooperative"]
            for e in self._events("FarmerRegistered", "farmer", {h.farmer for h in harvests})
        }
        plots = {
            e.args["plot"]: (e.args["areaCentiMu"], e.args["variety"])
            for e in self._events("PlotRegistered", "plot", {h.plot for h in harvests})
        }
        for node in nodes.values():
            h = node.harvest
            if h is not None:
                area, variety = plots.get(h.plot, (None, None))
                node.harvest = replace(
                    h,
                    cooperative=coops.get(h.farmer),
                    plot_area_centi_mu=area,
                    plot_variety=variety,
                )
        for e in self._events("QualityAttested", "lot", list(nodes)):
            nodes[e.args["lot"]].attestations.append(
                Attestation(
                    e.args["inspector"],
                    Grade(e.args["grade"]),
                    e.args["passed"],
                    e.args["certificateHash"],
                    e.block_number,
                )
            )
        for e in self._events("LotRecalled", "lot", list(nodes)):
            nodes[e.args["lot"]].recall_reasons.append(e.args["reasonHash"])

    def recall_impact(self, lot: bytes) -> RecallImpact:
        """Every lot made from `lot`, at any depth, and who holds each one now."""
        view = self._existing(lot)
        found: list[tuple[bytes, int, bytes]] = []
        seen = {lot}
        frontier, depth = [lot], 0
        while frontier:
            depth += 1
            consumed = self._events("LotConsumed", "lot", frontier)
            step_ids = {e.args["processId"] for e in consumed}
            frontier = []
            for e in self._events("LotProduced", "processId", step_ids):
                child = e.args["lot"]
                if child not in seen:
                    seen.add(child)
                    found.append((child, depth, e.args["processId"]))
                    frontier.append(child)
        views = self.lots([child for child, _, _ in found])
        affected = [AffectedLot(c, d, pid, views[c]) for c, d, pid in found]
        return RecallImpact(lot, view, affected)


def _harvest(e: Event) -> HarvestInfo:
    """HarvestInfo from a HarvestRecorded event."""
    a = e.args
    return HarvestInfo(
        lot=a["lot"],
        farmer=a["farmer"],
        plot=a["plot"],
        grams=a["grams"],
        grade=Grade(a["grade"]),
        picked_at=a["pickedAt"],
        data_hash=a["dataHash"],
        block_number=e.block_number,
    )

"""Lineage from chain events: trace back to harvests, recall impact forward, 4 levels deep."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain.nodes import ProcessNode
from tests._fixtures import client_for, needs_node
from tests.traceability._system import System, build_system
from traceability.errors import LotNotFoundError
from traceability.ids import text_hash
from traceability.lineage import LineageReader
from traceability.models import Grade, LotKind, LotState
from traceability.service import RecordingService


@dataclass
class Graph:
    """harvests h0..h5 -> A (h0-h2), B (h3-h5) -> split A into A1, A2 -> C = A1 + B -> D = C."""

    harvests: list[bytes]
    a: bytes
    b: bytes
    a1: bytes
    a2: bytes
    c: bytes
    d: bytes


def build_graph(system: System) -> Graph:
    """Four levels of processing over six harvest lots of 10 kg."""
    h = system.harvest([10_000] * 6)
    system.move(h, system.coop, system.processor)
    (a,) = system.process(h[:3], [9_000])
    (b,) = system.process(h[3:], [8_000])
    a1, a2 = system.process([a], [5_000, 4_000])
    (c,) = system.process([a1, b], [13_000])
    (d,) = system.process([c], [12_500])
    return Graph(h, a, b, a1, a2, c, d)


def reader(system: System) -> LineageReader:
    return LineageReader.on(system.client, system.tt)


def check_trace_and_recall(system: System, g: Graph) -> None:
    """The assertions shared by every backend."""
    lineage = reader(system).trace(g.d)
    assert lineage.depth() == 4
    harvests = lineage.harvests()
    assert {x.lot for x in harvests} == set(g.harvests)
    assert lineage.farmers() == set(system.farmers)  # harvests cycle over the 4 farmers
    first = next(x for x in harvests if x.lot == g.harvests[0])
    assert (first.farmer, first.plot, first.grams, first.grade) == (
        system.farmers[0],
        system.plots[0],
        10_000,
        Grade.FIRST,
    )
    assert first.cooperative == system.coop.address and first.plot_area_centi_mu == 250
    assert lineage.root.kind is LotKind.MADE_TEA and lineage.root.grams == 12_500
    step_c = lineage.root.produced_by.inputs[0].produced_by  # D <- C <- (A1, B)
    assert [n.lot for n in step_c.inputs] == [g.a1, g.b]
    assert json.loads(json.dumps(lineage.to_dict()))["harvest_count"] == 6

    system.move([g.d], system.processor, system.distributor)
    impact = reader(system).recall_impact(g.harvests[0])
    depths = {x.lot: x.depth for x in impact.descendants}
    assert depths == {g.a: 1, g.a1: 2, g.a2: 2, g.c: 3, g.d: 4}
    live = {x.lot for x in impact.descendants if x.live}
    assert live == {g.a2, g.d}
    holders = impact.holders()
    assert holders[system.distributor.address] == [g.d]
    assert holders[system.processor.address] == [g.a2]
    assert reader(system).recall_impact(g.d).descendants == []


def test_trace_and_recall_impact_through_four_levels(system: System):
    check_trace_and_recall(system, build_graph(system))


@needs_node()
@pytest.mark.node
def test_trace_and_recall_impact_on_ganache(ganache_node: ProcessNode, tmp_path: Path):
    client = client_for(ganache_node, tmp_path)
    system = build_system(client)
    check_trace_and_recall(system, build_graph(system))


def test_recalling_a_harvest_recalls_every_live_descendant(system: System):
    g = build_graph(system)
    inspector = RecordingService(system.client, 4, contract=system.tt)
    inspector.recall(g.a1, text_hash("earlier notice"))
    targets = inspector.recall_with_descendants(
        g.harvests[1], text_hash("notice 2026-17: residue above MRL")
    )
    assert set(targets) == {g.harvests[1], g.a, g.a2, g.c, g.d}  # a1 was already recalled
    assert all(v.recalled for v in inspector.lots([*targets, g.a1]))
    assert inspector.recall_with_descendants(g.harvests[1], text_hash("again")) == []
    lineage = reader(system).trace(g.d)
    assert lineage.root.view.recalled
    assert lineage.root.recall_reasons == [text_hash("notice 2026-17: residue above MRL")]
    assert not lineage.nodes[g.harvests[4]].view.recalled  # another branch's harvest


def test_a_split_merged_again_is_one_shared_step(system: System):
    h = system.harvest([10_000, 10_000])
    system.move(h, system.coop, system.processor)
    x1, x2 = system.process(h, [3_000, 3_000])
    (y,) = system.process([x1, x2], [6_000])
    system.inspector.transact(system.tt.functions.attestQuality((y, 1, True, b"\1" * 32)))
    lineage = reader(system).trace(y)
    step = lineage.root.produced_by
    assert [n.lot for n in step.inputs] == [x1, x2]
    assert step.inputs[0].produced_by is step.inputs[1].produced_by  # one step, two outputs
    assert len(lineage.harvests()) == 2 and lineage.depth() == 2
    assert [a.grade for a in lineage.root.attestations] == [Grade.SPECIAL]
    tree = lineage.to_dict()["tree"]
    inputs = tree["process"]["inputs"]
    assert "inputs" in inputs[0]["process"] and "inputs" not in inputs[1]["process"]


def test_a_harvest_lot_traces_to_itself(system: System):
    (lot,) = system.harvest([7_000])
    lineage = reader(system).trace(lot)
    assert lineage.depth() == 0 and [x.lot for x in lineage.harvests()] == [lot]
    assert lineage.root.view.state is LotState.HELD


def test_unknown_lot(system: System):
    with pytest.raises(LotNotFoundError, match="does not exist"):
        reader(system).trace(b"\x42" * 32)
    with pytest.raises(LotNotFoundError):
        reader(system).recall_impact(b"\x42" * 32)

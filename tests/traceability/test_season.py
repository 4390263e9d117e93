"""A whole season on anvil: thousands of harvest records batched and pipelined, submitted twice,
processed into made tea and blended, then traced back to their harvests from chain events."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chain.nodes import ProcessNode
from simulation.season import generate
from tests._fixtures import client_for, needs_node
from traceability.contracts import deploy_traceability
from traceability.ids import farmer_id, output_data_hash, plot_id
from traceability.lineage import LineageReader
from traceability.models import FarmerRegistration, HarvestRecord, PlotRegistration, ProcessOutput
from traceability.service import RecordingService

SALT = b"enshi-cooperative-salt-2025-0001"


@needs_node()
@pytest.mark.node
@pytest.mark.slow
def test_a_season_recorded_processed_and_traced_on_anvil(anvil_node: ProcessNode, tmp_path: Path):
    client = client_for(anvil_node, tmp_path)
    deploy_traceability(client)
    coop, proc = RecordingService(client, 1), RecordingService(client, 2)
    season = generate(farmers=120, seed=11, year=datetime.now(UTC).year - 1, cooperatives=1)

    fids = [farmer_id(SALT, f.national_id) for f in season.farmers]
    pids = [[plot_id(SALT, p.reference) for p in f.plots] for f in season.farmers]
    coop.register_farmers([FarmerRegistration(farmer=fid) for fid in fids])
    coop.register_plots(
        [
            PlotRegistration(
                plot=pid, farmer=fids[i], area_centi_mu=p.area_centi_mu, variety=p.variety
            )
            for i, f in enumerate(season.farmers)
            for pid, p in zip(pids[i], f.plots, strict=True)
        ]
    )
    records = [
        HarvestRecord(
            farmer=fids[h.farmer],
            plot=pids[h.farmer][h.plot],
            grams=h.grams,
            grade=h.grade,
            picked_at=h.picked_at,
            record_ref=h.record_ref,
        )
        for h in season.harvests
    ]
    assert len(records) > 2_000

    started = time.perf_counter()
    report = coop.record_harvests(records)
    elapsed = time.perf_counter() - started
    assert report.recorded == len(records), report.rejected[:3]
    assert len(report.transactions) == -(-len(records) // 100)
    assert report.gas_used / len(records) < 33_000
    print(f"\n{len(records)} harvest records in {elapsed:.1f} s ({len(records) / elapsed:.0f}/s)")

    again = coop.record_harvests(records)  # the same file submitted a second time
    assert (again.recorded, again.duplicates, again.transactions) == (0, len(records), [])

    lots = [o.lot for o in report.outcomes]
    spring = [b for b in season.batches if b.flush == "spring"]
    used = sorted({i for b in spring for i in b.harvests})
    coop.ship_many([lots[i] for i in used], proc.address)
    proc.receive_many([lots[i] for i in used])
    steps = [
        (
            [lots[i] for i in b.harvests],
            [
                ProcessOutput(grams=g, data_hash=output_data_hash(f"{b.day}/{b.grade}", k, g))
                for k, g in enumerate(b.outputs_grams)
            ],
        )
        for b in spring
    ]
    results = proc.process_many(steps)
    special = [(b, r) for b, r in zip(spring, results, strict=True) if b.grade == 1]
    made = [lot for _, r in special for lot in r.outputs]
    made_grams = sum(v.grams for v in proc.lots(made))
    blend = proc.process(made, [ProcessOutput(grams=made_grams - 500, data_hash=b"\x01" * 32)])

    lineage = LineageReader.from_client(client).trace(blend.outputs[0])
    expected = {lots[i] for b, _ in special for i in b.harvests}
    harvests = lineage.harvests()
    assert {h.lot for h in harvests} == expected
    assert {h.grade for h in harvests} == {1}
    assert sum(h.grams for h in harvests) == sum(
        records[i].grams for b, _ in special for i in b.harvests
    )
    assert lineage.farmers() == {
        fids[season.harvests[i].farmer] for b, _ in special for i in b.harvests
    }
    assert lineage.depth() == 2

    first = special[0][0].harvests[0]
    impact = LineageReader.from_client(client).recall_impact(lots[first])
    assert {d.lot for d in impact.descendants} == set(special[0][1].outputs) | set(blend.outputs)
    assert impact.holders() == {proc.address: blend.outputs}

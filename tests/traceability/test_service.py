"""The recording service on a real EVM: validation, batching, idempotency, named errors."""

from __future__ import annotations

import time

import pytest

from tests.traceability._system import System
from traceability.errors import (
    LotStateError,
    MassBalanceError,
    TraceabilityError,
    UnauthorizedError,
    UnknownRecordError,
)
from traceability.ids import farmer_id, lot_id, output_data_hash, plot_id, text_hash
from traceability.models import (
    FarmerRegistration,
    HarvestCheck,
    HarvestRecord,
    LotKind,
    LotState,
    PlotRegistration,
    ProcessOutput,
    QualityAttestation,
)
from traceability.service import Outcome, RecordingService

SALT = b"cooperative-secret-salt-0001"


def service(system: System, index: int, batch_size: int = 100) -> RecordingService:
    return RecordingService(system.client, index, contract=system.tt, batch_size=batch_size)


def harvest(system: System, i: int, grams: int = 8_000, ref: str = "", **kw) -> HarvestRecord:
    fields = {
        "farmer": system.farmers[i],
        "plot": system.plots[i],
        "grams": grams,
        "grade": 2,
        "picked_at": int(time.time()) - 7_200,
        "record_ref": ref or f"R-{i}-{grams}-{time.time_ns()}",
    }
    return HarvestRecord.model_validate({**fields, **kw})


def test_register_farmers_and_plots_in_pipelined_batches(system: System):
    coop = service(system, 1, batch_size=2)
    ids = [farmer_id(SALT, f"4228011985031200{i}{i}") for i in range(5)]
    wallet = system.client.accounts[7].address
    receipts = coop.register_farmers([FarmerRegistration(farmer=f, wallet=wallet) for f in ids])
    assert len(receipts) == 3
    plots = [
        PlotRegistration(
            plot=plot_id(SALT, f"land-{i}"), farmer=f, area_centi_mu=180 + i, variety=1
        )
        for i, f in enumerate(ids)
    ]
    assert len(coop.register_plots(plots)) == 3
    assert tuple(system.tt.functions.farmer(ids[4]).call()) == (coop.address, wallet, True)
    assert system.tt.functions.plot(plots[2].plot).call()[0] == ids[2]
    with pytest.raises(TraceabilityError) as info:
        coop.register_farmers([FarmerRegistration(farmer=ids[0])])
    assert info.value.name == "TeaTraceFarmerExists"


def test_each_record_is_recorded_duplicate_or_rejected_with_a_reason(system: System):
    coop = service(system, 1)
    system.coop.transact(system.tt.functions.deactivateFarmer(system.farmers[3]))
    good = [harvest(system, i) for i in range(3)]
    wrong_plot = harvest(system, 0, plot=system.plots[1])
    inactive = harvest(system, 3)
    records = [good[0], wrong_plot, good[1], good[0], inactive, good[2]]
    seen: list[int] = []
    report = coop.record_harvests(records, on_progress=seen.append)
    assert [o.outcome for o in report.outcomes] == [
        Outcome.RECORDED,
        Outcome.REJECTED,
        Outcome.RECORDED,
        Outcome.DUPLICATE,
        Outcome.REJECTED,
        Outcome.RECORDED,
    ]
    assert report.outcomes[1].reason == HarvestCheck.UNKNOWN_PLOT.reason
    assert report.outcomes[3].reason == "same record as #1 of this submission"
    assert report.outcomes[4].reason == HarvestCheck.FARMER_INACTIVE.reason
    assert sum(seen) == len(records)
    assert len(report.transactions) == 1 and report.gas_used > 0
    for r in good:
        view = coop.lot(lot_id(coop.address, r.key))
        assert (view.holder, view.grams, view.state, view.kind) == (
            coop.address,
            r.grams,
            LotState.HELD,
            LotKind.FRESH_LEAF,
        )


def test_resubmitting_the_same_records_records_nothing_twice(system: System):
    coop = service(system, 1, batch_size=3)
    records = [harvest(system, i % 4, grams=1_000 + i) for i in range(7)]
    first = coop.record_harvests(records)
    assert first.recorded == 7 and len(first.transactions) == 3  # pipelined batches
    again = coop.record_harvests(records)
    assert again.recorded == 0 and again.duplicates == 7
    assert again.transactions == []  # the pre-check caught them; nothing was sent
    assert all("already recorded on chain" in o.reason for o in again.outcomes)


def test_harvests_delivered_to_a_factory_are_held_by_it(system: System):
    coop, factory = service(system, 1, batch_size=2), service(system, 2)
    records = [harvest(system, i % 4, grams=2_000 + i) for i in range(5)]
    block = system.client.w3.eth.block_number
    with pytest.raises(TraceabilityError, match="does not accept harvests from"):
        coop.record_harvests(records, deliver_to=factory.address)
    assert system.client.w3.eth.block_number == block  # refused before anything was sent
    with pytest.raises(TraceabilityError):
        coop.record_harvests(records, deliver_to="not an address")
    factory.set_supplier(coop.address)
    assert factory.is_supplier(factory.address, coop.address)
    report = coop.record_harvests(records, deliver_to=factory.address.lower())
    assert report.recorded == 5 and len(report.transactions) == 3
    views = coop.lots([lot_id(coop.address, r.key) for r in records])
    assert {(v.holder, v.state) for v in views} == {(factory.address, LotState.HELD)}
    again = coop.record_harvests(records, deliver_to=factory.address)
    assert again.duplicates == 5 and again.transactions == []
    factory.process([lot_id(coop.address, r.key) for r in records], [ProcessOutput(
        grams=1_000, data_hash=output_data_hash("delivered", 0, 1_000))])  # fmt: skip
    factory.set_supplier(coop.address, accepted=False)
    with pytest.raises(TraceabilityError, match="does not accept"):
        coop.record_harvests([harvest(system, 0)], deliver_to=factory.address)


def test_a_delivery_batch_stays_within_the_block_gas_target(system: System):
    """Each delivered record logs two events more: its gas bound is bigger, so its batches on
    30 M-gas blocks hold fewer records than plain harvests' 372."""
    from traceability.service import (
        DELIVERY_GAS,
        HARVEST_RECORD_GAS,
        HARVEST_TX_GAS,
        harvest_batch_cap,
    )

    cap = harvest_batch_cap(30_000_000, HARVEST_RECORD_GAS + DELIVERY_GAS)
    assert cap == 338 < harvest_batch_cap(30_000_000)
    assert HARVEST_TX_GAS + (HARVEST_RECORD_GAS + DELIVERY_GAS) * cap <= 15_000_000


def test_a_batch_failing_after_the_precheck_is_rechecked_and_resent(system: System, monkeypatch):
    """State can change between the check and the block: the service recovers per record."""
    coop = service(system, 1)
    records = [harvest(system, 0), harvest(system, 1, plot=system.plots[0]), harvest(system, 2)]
    real = coop.check_harvests
    calls = {"n": 0}

    def stale_first_check(batch, as_of=None):
        calls["n"] += 1
        return [HarvestCheck.OK] * len(batch) if calls["n"] == 1 else real(batch, as_of)

    monkeypatch.setattr(coop, "check_harvests", stale_first_check)
    report = coop.record_harvests(records)
    assert [o.outcome for o in report.outcomes] == [
        Outcome.RECORDED,
        Outcome.REJECTED,
        Outcome.RECORDED,
    ]
    assert calls["n"] == 2


def test_processing_movement_sale_quality_and_recall(system: System):
    coop, proc, dist, insp = (service(system, i) for i in (1, 2, 3, 4))
    report = coop.record_harvests([harvest(system, i, grams=20_000) for i in range(3)])
    lots = [o.lot for o in report.outcomes]
    coop.ship_many(lots, proc.address)
    proc.receive_many(lots)
    outputs = [
        ProcessOutput(grams=9_000, data_hash=output_data_hash("B-1", k, 9_000)) for k in range(2)
    ]
    result = proc.process(lots, outputs)
    assert [v.kind for v in proc.lots(result.outputs)] == [LotKind.MADE_TEA] * 2
    proc.ship(result.outputs[0], dist.address)
    dist.receive(result.outputs[0])
    dist.sell(result.outputs[0], system.outsider.address, 1_800_000)
    insp.attest(QualityAttestation(lot=result.outputs[1], grade="一级", passed=True))
    insp.recall(result.outputs[1], text_hash("recall notice 2026-07"))
    assert proc.lot(result.outputs[1]).recalled
    assert proc.lot(result.outputs[0]).holder == system.outsider.address


def test_reverts_come_back_as_named_domain_errors(system: System):
    coop, proc = service(system, 1), service(system, 2)
    lots = [o.lot for o in coop.record_harvests([harvest(system, i) for i in range(2)]).outcomes]
    with pytest.raises(UnauthorizedError) as info:
        coop.process(lots, [ProcessOutput(grams=1, data_hash=b"\1" * 32)])
    assert info.value.name == "AccessControlUnauthorizedAccount"
    assert info.value.args_by_name["account"] == coop.address
    with pytest.raises(UnauthorizedError, match="held by"):
        proc.ship(lots[0], system.distributor.address)
    coop.ship_many(lots, proc.address)
    proc.receive_many(lots)
    with pytest.raises(MassBalanceError) as too_much:
        proc.process(lots, [ProcessOutput(grams=4_801, data_hash=b"\2" * 32)])
    assert too_much.value.args_by_name["allowedGrams"] == 4_800
    proc.process(lots[:1], [ProcessOutput(grams=100, data_hash=b"\3" * 32)])
    with pytest.raises(LotStateError) as spent:
        proc.process(lots, [ProcessOutput(grams=100, data_hash=b"\4" * 32)])
    assert spent.value.name == "TeaTraceLotAlreadyConsumed"
    assert spent.value.args_by_name == {"lot": lots[0]}
    with pytest.raises(UnknownRecordError):
        coop.deactivate_farmer(b"\7" * 32)


def test_values_are_validated_before_sending(system: System):
    coop = service(system, 1)
    (lot,) = system.harvest()
    with pytest.raises(TraceabilityError, match="positive whole number of fen"):
        coop.sell(lot, system.distributor.address, 0)
    with pytest.raises(ValueError):
        coop.ship("0x12", system.distributor.address)
    with pytest.raises(ValueError):
        coop.ship(lot, "not-an-address")

"""TeaTrace on a real EVM: roles, farmers, plots, harvests, processing, movement, quality."""

from __future__ import annotations

import time

import pytest
from eth_utils import keccak
from web3.logs import DISCARD

from tests.traceability._system import ZERO, System, harvest_gas, reverts, unique_hash
from traceability.contracts import (
    COOPERATIVE_ROLE,
    DEFAULT_ADMIN_ROLE,
    INSPECTOR_ROLE,
    PROCESSOR_ROLE,
)
from traceability.ids import lot_id, process_id
from traceability.models import HarvestCheck, LotKind, LotState

HELD, IN_TRANSIT, CONSUMED = LotState.HELD, LotState.IN_TRANSIT, LotState.CONSUMED
FRESH, MADE = LotKind.FRESH_LEAF, LotKind.MADE_TEA


def events(system: System, receipt, name: str) -> list[dict]:
    """Decoded events `name` of a receipt."""
    event = getattr(system.tt.events, name)()
    return [dict(e["args"]) for e in event.process_receipt(receipt, errors=DISCARD)]


# ---------------------------------------------------------------------- access control

ROLE_GUARDS = [
    # (function, args factory, caller attribute, needed role)
    ("setMaxYieldBps", lambda s: (2500,), "coop", DEFAULT_ADMIN_ROLE),
    ("grantRole", lambda s: (PROCESSOR_ROLE, s.outsider.address), "coop", DEFAULT_ADMIN_ROLE),
    ("revokeRole", lambda s: (COOPERATIVE_ROLE, s.coop.address), "processor", DEFAULT_ADMIN_ROLE),
    ("revokeRole", lambda s: (INSPECTOR_ROLE, s.inspector.address), "outsider", DEFAULT_ADMIN_ROLE),
    ("registerFarmer", lambda s: (keccak(text="x"), ZERO), "outsider", COOPERATIVE_ROLE),
    ("registerFarmers", lambda s: ([(keccak(text="x"), ZERO)],), "processor", COOPERATIVE_ROLE),
    ("setFarmerWallet", lambda s: (s.farmers[0], ZERO), "outsider", COOPERATIVE_ROLE),
    ("deactivateFarmer", lambda s: (s.farmers[0],), "distributor", COOPERATIVE_ROLE),
    ("reactivateFarmer", lambda s: (s.farmers[0],), "outsider", COOPERATIVE_ROLE),
    (
        "registerPlot",
        lambda s: ((keccak(text="p"), s.farmers[0], 1, 0, b"\0" * 32),),
        "inspector",
        COOPERATIVE_ROLE,
    ),
    (
        "registerPlots",
        lambda s: ([(keccak(text="p"), s.farmers[0], 1, 0, b"\0" * 32)],),
        "outsider",
        COOPERATIVE_ROLE,
    ),
    ("recordHarvests", lambda s: ([s.harvest_tuple(0)],), "processor", COOPERATIVE_ROLE),
    (
        "recordDeliveries",
        lambda s: ([s.harvest_tuple(0)], s.distributor.address),
        "processor",
        COOPERATIVE_ROLE,
    ),
    ("process", lambda s: ([b"\1" * 32], [(1, b"\2" * 32)]), "coop", PROCESSOR_ROLE),
    ("attestQuality", lambda s: ((b"\1" * 32, 1, True, b"\0" * 32),), "coop", INSPECTOR_ROLE),
    (
        "attestQualityBatch",
        lambda s: ([(b"\1" * 32, 1, True, b"\0" * 32)],),
        "distributor",
        INSPECTOR_ROLE,
    ),
    ("recall", lambda s: (b"\1" * 32, b"\0" * 32), "processor", INSPECTOR_ROLE),
    ("recallBatch", lambda s: ([b"\1" * 32], b"\0" * 32), "outsider", INSPECTOR_ROLE),
]


@pytest.mark.parametrize(
    ("fn", "args", "caller", "role"), ROLE_GUARDS, ids=[g[0] for g in ROLE_GUARDS]
)
def test_role_guarded_functions_refuse_unauthorized_callers(system: System, fn, args, caller, role):
    sender = getattr(system, caller)
    with reverts("AccessControlUnauthorizedAccount", account=sender.address, neededRole=role):
        sender.transact(getattr(system.tt.functions, fn)(*args(system)))


MEMBER_GUARDS = [
    ("ship", lambda s, lot: (lot, s.processor.address)),
    ("shipBatch", lambda s, lot: ([lot], s.processor.address)),
    ("receiveLot", lambda s, lot: (lot,)),
    ("receiveBatch", lambda s, lot: ([lot],)),
    ("sell", lambda s, lot: (lot, s.distributor.address, 100)),
    ("sellBatch", lambda s, lot: ([lot], s.distributor.address, [100])),
    ("setSupplier", lambda s, lot: (s.coop.address, True)),
]


@pytest.mark.parametrize(("fn", "args"), MEMBER_GUARDS, ids=[g[0] for g in MEMBER_GUARDS])
@pytest.mark.parametrize("caller", ["outsider", "inspector"])
def test_movement_needs_a_supply_chain_role(system: System, fn, args, caller):
    (lot,) = system.harvest()
    sender = getattr(system, caller)
    with reverts("TeaTraceNotSupplyChainMember", account=sender.address):
        sender.transact(getattr(system.tt.functions, fn)(*args(system, lot)))


def test_nobody_grants_a_role_to_itself(system: System):
    with reverts("TeaTraceSelfGrant", role=PROCESSOR_ROLE, account=system.admin.address):
        system.admin.transact(system.tt.functions.grantRole(PROCESSOR_ROLE, system.admin.address))


def test_only_the_holder_moves_a_lot(system: System):
    (lot,) = system.harvest()
    with reverts(
        "TeaTraceNotLotHolder", lot=lot, holder=system.coop.address, caller=system.processor.address
    ):
        system.processor.transact(system.tt.functions.ship(lot, system.distributor.address))
    with reverts("TeaTraceNotLotHolder", caller=system.distributor.address):
        system.distributor.transact(system.tt.functions.sell(lot, system.processor.address, 5))


def test_a_cooperative_acts_only_for_its_own_farmers(system: System):
    other = system.coop2
    farmer = system.farmers[0]
    expected = {"farmer": farmer, "cooperative": system.coop.address, "caller": other.address}
    with reverts("TeaTraceNotFarmerCooperative", **expected):
        other.transact(system.tt.functions.setFarmerWallet(farmer, other.address))
    with reverts("TeaTraceNotFarmerCooperative", **expected):
        other.transact(system.tt.functions.deactivateFarmer(farmer))
    with reverts("TeaTraceNotFarmerCooperative", **expected):
        other.transact(
            system.tt.functions.registerPlot((keccak(text="q"), farmer, 5, 0, b"\0" * 32))
        )
    with reverts("TeaTraceNotFarmerCooperative", **expected):
        other.transact(system.tt.functions.recordHarvests([system.harvest_tuple(0)]))


def test_a_mined_revert_is_decoded_too(system: System):
    """Skip estimation (explicit gas): the failure comes from the mined receipt."""
    (lot,) = to_processor(system, [10_000])
    out = system.process([lot], [1000])
    with reverts("TeaTraceLotAlreadyConsumed", lot=lot):
        system.processor.wait(
            [
                system.processor.send(
                    system.tt.functions.process([lot], [(1, unique_hash())]), gas=300_000
                )
            ]
        )
    assert system.lot(out[0])[2] == HELD


# ---------------------------------------------------------------------- farmers and plots


def test_register_farmer_records_membership_and_wallet(system: System):
    farmer, wallet = keccak(text="new-farmer"), system.client.accounts[7].address
    count = system.tt.functions.farmerCount().call()
    receipt = system.coop.transact(system.tt.functions.registerFarmer(farmer, wallet))
    assert events(system, receipt, "FarmerRegistered") == [
        {"farmer": farmer, "cooperative": system.coop.address, "wallet": wallet}
    ]
    assert tuple(system.tt.functions.farmer(farmer).call()) == (system.coop.address, wallet, True)
    assert system.tt.functions.farmerCount().call() == count + 1


def test_farmer_registration_refuses_duplicates_zero_ids_and_empty_batches(system: System):
    with reverts("TeaTraceFarmerExists", farmer=system.farmers[0]):
        system.coop.transact(system.tt.functions.registerFarmer(system.farmers[0], ZERO))
    with reverts("TeaTraceFarmerExists", farmer=system.farmers[1]):
        system.coop2.transact(system.tt.functions.registerFarmers([(system.farmers[1], ZERO)]))
    with reverts("TeaTraceZeroId"):
        system.coop.transact(system.tt.functions.registerFarmer(b"\0" * 32, ZERO))
    with reverts("TeaTraceEmptyBatch"):
        system.coop.transact(system.tt.functions.registerFarmers([]))


def test_unknown_farmer_is_named(system: System):
    with reverts("TeaTraceUnknownFarmer", farmer=keccak(text="nobody")):
        system.coop.transact(system.tt.functions.deactivateFarmer(keccak(text="nobody")))


def test_deactivated_farmer_gets_no_harvests_or_plots_until_reactivated(system: System):
    farmer = system.farmers[0]
    receipt = system.coop.transact(system.tt.functions.deactivateFarmer(farmer))
    assert events(system, receipt, "FarmerDeactivated") == [
        {"farmer": farmer, "cooperative": system.coop.address}
    ]
    assert system.tt.functions.farmer(farmer).call()[2] is False
    with reverts("TeaTraceFarmerInactive", farmer=farmer):
        system.coop.transact(system.tt.functions.recordHarvests([system.harvest_tuple(0)]))
    with reverts("TeaTraceFarmerInactive", farmer=farmer):
        system.coop.transact(
            system.tt.functions.registerPlot((keccak(text="p9"), farmer, 9, 0, b"\0" * 32))
        )
    with reverts("TeaTraceFarmerStatusUnchanged", farmer=farmer, active=False):
        system.coop.transact(system.tt.functions.deactivateFarmer(farmer))
    system.coop.transact(system.tt.functions.reactivateFarmer(farmer))
    with reverts("TeaTraceFarmerStatusUnchanged", farmer=farmer, active=True):
        system.coop.transact(system.tt.functions.reactivateFarmer(farmer))
    assert system.harvest()  # farmer 0 again


def test_activity_bits_do_not_leak_across_bitmap_words(system: System):
    farmers = [keccak(text=f"many-{i}") for i in range(260)]
    system.coop.transact(system.tt.functions.registerFarmers([(f, ZERO) for f in farmers]))
    victim = farmers[-1]  # index >= 256: the second word
    system.coop.transact(system.tt.functions.deactivateFarmer(victim))
    active = [
        system.tt.functions.farmer(f).call()[2]
        for f in (farmers[0], farmers[-2], victim, system.farmers[0])
    ]
    assert active == [True, True, False, True]


def test_farmer_wallet_can_change(system: System):
    farmer, new = system.farmers[0], system.client.accounts[8].address
    old = system.tt.functions.farmer(farmer).call()[1]
    receipt = system.coop.transact(system.tt.functions.setFarmerWallet(farmer, new))
    assert events(system, receipt, "FarmerWalletChanged") == [
        {"farmer": farmer, "previousWallet": old, "wallet": new}
    ]
    assert system.tt.functions.farmer(farmer).call()[1] == new


def test_plot_registration(system: System):
    plot, farmer, loc = keccak(text="plot-new"), system.farmers[1], keccak(text="loc")
    receipt = system.coop.transact(system.tt.functions.registerPlot((plot, farmer, 1234, 7, loc)))
    assert events(system, receipt, "PlotRegistered") == [
        {
            "plot": plot,
            "farmer": farmer,
            "cooperative": system.coop.address,
            "areaCentiMu": 1234,
            "variety": 7,
            "locationHash": loc,
        }
    ]
    assert tuple(system.tt.functions.plot(plot).call()) == (farmer, system.coop.address, 1234, 7)


def test_plot_ids_are_unique_and_areas_positive(system: System):
    with reverts("TeaTracePlotExists", plot=system.plots[0]):
        system.coop.transact(
            system.tt.functions.registerPlot((system.plots[0], system.farmers[1], 5, 0, b"\0" * 32))
        )
    with reverts("TeaTraceZeroPlotArea", plot=keccak(text="flat")):
        system.coop.transact(
            system.tt.functions.registerPlot(
                (keccak(text="flat"), system.farmers[1], 0, 0, b"\0" * 32)
            )
        )
    with reverts("TeaTraceZeroId"):
        system.coop.transact(
            system.tt.functions.registerPlots([(b"\0" * 32, system.farmers[1], 5, 0, b"\0" * 32)])
        )


# ---------------------------------------------------------------------- harvests


def test_harvests_create_held_fresh_leaf_lots(system: System):
    records = [system.harvest_tuple(i, grams=1000 * (i + 1), grade=i + 1) for i in range(3)]
    assert system.tt.functions.recordHarvests(records).call({"from": system.coop.address}) == 3
    receipt = system.coop.transact(system.tt.functions.recordHarvests(records))
    logged = events(system, receipt, "HarvestRecorded")
    for record, event in zip(records, logged, strict=True):
        lot = lot_id(system.coop.address, record[5])
        assert event == {
            "lot": lot, "farmer": record[0], "plot": record[1], "grams": record[2],
            "grade": record[3], "pickedAt": record[4], "dataHash": record[5],
        }  # fmt: skip
        assert system.lot(lot) == (system.coop.address, record[2], HELD, FRESH, False)
        assert system.tt.functions.lotId(system.coop.address, record[5]).call() == lot


def test_resubmitting_records_never_records_twice(system: System):
    batch = [system.harvest_tuple(i % 4) for i in range(6)]
    system.coop.transact(system.tt.functions.recordHarvests(batch[:4]))
    assert system.tt.functions.recordHarvests(batch).call({"from": system.coop.address}) == 2
    receipt = system.coop.transact(system.tt.functions.recordHarvests(batch))
    assert len(events(system, receipt, "HarvestRecorded")) == 2
    skipped = events(system, receipt, "HarvestSkipped")
    assert [e["dataHash"] for e in skipped] == [r[5] for r in batch[:4]]
    again = system.coop.transact(system.tt.functions.recordHarvests(batch))
    assert events(system, again, "HarvestRecorded") == []
    assert len(events(system, again, "HarvestSkipped")) == 6


def test_the_same_data_hash_from_another_cooperative_is_another_lot(system: System):
    data_hash = unique_hash()
    assert lot_id(system.coop.address, data_hash) != lot_id(system.coop2.address, data_hash)


def test_within_batch_duplicate_is_skipped(system: System):
    record = system.harvest_tuple(0)
    receipt = system.coop.transact(system.tt.functions.recordHarvests([record, record]))
    assert len(events(system, receipt, "HarvestRecorded")) == 1
    assert len(events(system, receipt, "HarvestSkipped")) == 1


BAD_HARVESTS = [
    # (name, record overrides, expected check, error name, expected args factory)
    (
        "zero grams",
        {"grams": 0},
        HarvestCheck.ZERO_MASS,
        "TeaTraceZeroMass",
        lambda s, r: {"dataHash": r[5]},
    ),
    (
        "grade 0",
        {"grade": 0},
        HarvestCheck.UNKNOWN_GRADE,
        "TeaTraceUnknownGrade",
        lambda s, r: {"grade": 0},
    ),
    (
        "grade 6",
        {"grade": 6},
        HarvestCheck.UNKNOWN_GRADE,
        "TeaTraceUnknownGrade",
        lambda s, r: {"grade": 6},
    ),
    (
        "plot of another farmer",
        {"plot": 1},
        HarvestCheck.UNKNOWN_PLOT,
        "TeaTraceUnknownPlot",
        lambda s, r: {"farmer": r[0], "plot": r[1]},
    ),
    (
        "picked next week",
        {"picked_at": 7 * 86400},
        HarvestCheck.PICKED_IN_FUTURE,
        "TeaTraceHarvestInFuture",
        lambda s, r: {"dataHash": r[5], "pickedAt": r[4]},
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "check", "error", "expected"), BAD_HARVESTS, ids=[b[0] for b in BAD_HARVESTS]
)
def test_impossible_harvests_are_refused(system: System, name, change, check, error, expected):
    kw = {}
    grams, grade = change.get("grams", 10_000), change.get("grade", 2)
    if "plot" in change:
        kw["plot"] = system.plots[change["plot"]]
    if "picked_at" in change:
        kw["picked_at"] = int(time.time()) + change["picked_at"]
    record = system.harvest_tuple(0, grams=grams, grade=grade, **kw)
    good = system.harvest_tuple(1)
    assert system.tt.functions.checkHarvests(
        system.coop.address, int(time.time()), [good, record]
    ).call() == [
        HarvestCheck.OK,
        check,
    ]
    with reverts(error, **expected(system, record)):
        system.coop.transact(system.tt.functions.recordHarvests([good, record]))


def test_check_harvests_reports_membership_activity_and_duplicates(system: System):
    (done,) = [system.harvest_tuple(2)]
    system.coop.transact(system.tt.functions.recordHarvests([done]))
    system.coop.transact(system.tt.functions.deactivateFarmer(system.farmers[3]))
    records = [system.harvest_tuple(0), done, system.harvest_tuple(3)]
    now = int(time.time())
    assert system.tt.functions.checkHarvests(system.coop.address, now, records).call() == [
        HarvestCheck.OK,
        HarvestCheck.DUPLICATE,
        HarvestCheck.FARMER_INACTIVE,
    ]
    assert system.tt.functions.checkHarvests(system.coop2.address, now, records[:1]).call() == [
        HarvestCheck.NOT_FARMER_COOPERATIVE
    ]


def test_small_clock_skew_is_tolerated(system: System):
    record = system.harvest_tuple(0, picked_at=int(time.time()) + 60)
    system.coop.transact(system.tt.functions.recordHarvests([record]))
    assert system.lot(lot_id(system.coop.address, record[5]))[2] == HELD


def test_empty_harvest_batch_is_refused(system: System):
    with reverts("TeaTraceEmptyBatch"):
        system.coop.transact(system.tt.functions.recordHarvests([]))


# ---------------------------------------------------------------------- processing


def to_processor(system: System, masses: list[int]) -> list[bytes]:
    """Harvest lots and hand them to the processor."""
    lots = system.harvest(masses)
    system.move(lots, system.coop, system.processor)
    return lots


def test_merge_consumes_inputs_and_creates_made_tea(system: System):
    lots = to_processor(system, [10_000, 10_000, 10_000])
    outputs = [(9_000, unique_hash())]
    receipt = system.processor.transact(system.tt.functions.process(lots, outputs))
    pid = process_id(lots)
    out = lot_id(system.processor.address, outputs[0][1])
    assert events(system, receipt, "LotConsumed") == [
        {"lot": lot, "processId": pid, "processor": system.processor.address, "grams": 10_000}
        for lot in lots
    ]
    assert events(system, receipt, "LotProduced") == [
        {
            "lot": out,
            "processId": pid,
            "processor": system.processor.address,
            "grams": 9_000,
            "dataHash": outputs[0][1],
        }
    ]
    assert [system.lot(lot)[2] for lot in lots] == [CONSUMED] * 3
    assert system.lot(out) == (system.processor.address, 9_000, HELD, MADE, False)


def test_output_above_the_yield_ratio_is_refused(system: System):
    lots = to_processor(system, [10_000, 20_000])
    expected = {
        "freshLeafGrams": 30_000,
        "madeTeaGrams": 0,
        "allowedGrams": 9_000,
        "outputGrams": 9_001,
    }
    with reverts("TeaTraceYieldExceeded", **expected):
        system.process(lots, [4_000, 5_001])
    assert [system.lot(lot)[2] for lot in lots] == [HELD, HELD]


def test_split_and_reprocess_made_tea_at_full_ratio(system: System):
    (lot,) = to_processor(system, [100_000])
    parts = system.process([lot], [10_000, 10_000, 10_000])
    with reverts(
        "TeaTraceYieldExceeded", freshLeafGrams=0, madeTeaGrams=20_000, allowedGrams=20_000
    ):
        system.process(parts[:2], [20_001])
    blend = system.process(parts[:2], [12_000, 8_000])
    assert [system.lot(b)[1] for b in blend] == [12_000, 8_000]
    # fresh leaf and made tea together: 10 kg x 30% + 10 kg
    (fresh,) = to_processor(system, [10_000])
    with reverts("TeaTraceYieldExceeded", allowedGrams=13_000):
        system.process([fresh, parts[2]], [13_001])
    system.process([fresh, parts[2]], [13_000])


def test_no_lot_is_spent_twice(system: System):
    lots = to_processor(system, [10_000, 10_000])
    system.process(lots[:1], [1_000])
    with reverts("TeaTraceLotAlreadyConsumed", lot=lots[0]):
        system.process(lots, [1_000])
    with reverts("TeaTraceLotAlreadyConsumed", lot=lots[1]):
        system.process([lots[1], lots[1]], [1_000])
    with reverts("TeaTraceLotAlreadyConsumed", lot=lots[0]):
        system.processor.transact(system.tt.functions.ship(lots[0], system.distributor.address))


def test_process_inputs_must_be_held_by_the_processor(system: System):
    (at_coop,) = system.harvest()
    with reverts(
        "TeaTraceNotLotHolder",
        lot=at_coop,
        holder=system.coop.address,
        caller=system.processor.address,
    ):
        system.process([at_coop], [1])
    system.coop.transact(system.tt.functions.ship(at_coop, system.processor.address))
    with reverts("TeaTraceLotInTransit", lot=at_coop, consignee=system.processor.address):
        system.process([at_coop], [1])
    with reverts("TeaTraceUnknownLot", lot=b"\7" * 32):
        system.process([b"\7" * 32], [1])


def test_process_outputs_must_be_new_and_positive(system: System):
    lots = to_processor(system, [10_000, 10_000])
    data_hash = unique_hash()
    with reverts("TeaTraceLotExists", lot=lot_id(system.processor.address, data_hash)):
        system.processor.transact(
            system.tt.functions.process(lots, [(100, data_hash), (100, data_hash)])
        )
    with reverts("TeaTraceZeroMass", dataHash=data_hash):
        system.processor.transact(system.tt.functions.process(lots, [(0, data_hash)]))
    with reverts("TeaTraceEmptyProcess", inputs=2, outputs=0):
        system.processor.transact(system.tt.functions.process(lots, []))
    with reverts("TeaTraceEmptyProcess", inputs=0, outputs=1):
        system.processor.transact(system.tt.functions.process([], [(1, data_hash)]))


def test_admin_configures_the_yield_ratio(system: System):
    assert system.tt.functions.maxYieldBps().call() == 3000
    receipt = system.admin.transact(system.tt.functions.setMaxYieldBps(2500))
    assert events(system, receipt, "MaxYieldChanged") == [{"previousBps": 3000, "newBps": 2500}]
    lots = to_processor(system, [10_000])
    with reverts("TeaTraceYieldExceeded", allowedGrams=2_500):
        system.process(lots, [2_501])
    for bad in (0, 10_001):
        with reverts("TeaTraceInvalidYield", bps=bad):
            system.admin.transact(system.tt.functions.setMaxYieldBps(bad))


# ---------------------------------------------------------------------- deliveries


def _deliver(system: System, records: list[tuple], sender=None):
    """recordDeliveries of `records` to the processor; the receipt."""
    sender = sender or system.coop
    fn = system.tt.functions.recordDeliveries(records, system.processor.address)
    return sender.transact(fn, gas=harvest_gas(len(records)))


def test_a_delivered_harvest_is_born_held_by_the_factory(system: System):
    system.processor.transact(system.tt.functions.setSupplier(system.coop.address, True))
    records = [system.harvest_tuple(i, grams=1_000 * (i + 1)) for i in range(3)]
    receipt = _deliver(system, records)
    lots = [lot_id(system.coop.address, r[5]) for r in records]
    coop, factory = system.coop.address, system.processor.address
    assert [system.lot(lot) for lot in lots] == [
        (factory, 1_000 * (i + 1), HELD, FRESH, False) for i in range(3)
    ]
    assert [e["lot"] for e in events(system, receipt, "HarvestRecorded")] == lots
    assert events(system, receipt, "LotShipped") == [
        {"lot": lot, "from": coop, "to": factory} for lot in lots
    ]
    assert events(system, receipt, "LotReceived") == [
        {"lot": lot, "receiver": factory} for lot in lots
    ]
    # The factory processes it at once; a re-sent delivery records nothing twice.
    system.process(lots, [1_500])
    again = _deliver(system, records)
    assert len(events(system, again, "HarvestSkipped")) == 3
    assert events(system, again, "LotShipped") == []
    assert system.lot(lots[0])[2] == CONSUMED


def test_only_a_consignee_that_accepts_the_cooperative_takes_deliveries(system: System):
    coop, factory = system.coop.address, system.processor.address
    with reverts("TeaTraceNotSupplier", consignee=factory, cooperative=coop):
        _deliver(system, [system.harvest_tuple(0)])
    receipt = system.processor.transact(system.tt.functions.setSupplier(coop, True))
    assert events(system, receipt, "SupplierSet") == [
        {"consignee": factory, "cooperative": coop, "accepted": True}
    ]
    assert system.tt.functions.isSupplier(factory, coop).call()
    assert not system.tt.functions.isSupplier(factory, system.coop2.address).call()
    with reverts("TeaTraceNotSupplier", consignee=factory, cooperative=system.coop2.address):
        _deliver(system, [system.harvest_tuple(0)], sender=system.coop2)
    with reverts("TeaTraceEmptyBatch"):
        _deliver(system, [])
    system.processor.transact(system.tt.functions.setSupplier(coop, False))
    with reverts("TeaTraceNotSupplier", consignee=factory, cooperative=coop):
        _deliver(system, [system.harvest_tuple(0)])


def test_a_consignee_that_lost_its_role_takes_no_delivery(system: System):
    coop, factory = system.coop.address, system.processor.address
    system.processor.transact(system.tt.functions.setSupplier(coop, True))
    system.admin.transact(system.tt.functions.revokeRole(PROCESSOR_ROLE, factory))
    with reverts("TeaTraceNotSupplier", consignee=factory, cooperative=coop):
        _deliver(system, [system.harvest_tuple(0)])


@pytest.mark.parametrize("supplier", ["self", "zero"])
def test_a_consignee_accepts_neither_itself_nor_nobody(system: System, supplier):
    cooperative = ZERO if supplier == "zero" else system.processor.address
    with reverts("TeaTraceInvalidSupplier", cooperative=cooperative):
        system.processor.transact(system.tt.functions.setSupplier(cooperative, True))


def test_an_invalid_delivery_reverts_the_batch(system: System):
    system.processor.transact(system.tt.functions.setSupplier(system.coop.address, True))
    good, bad = system.harvest_tuple(0), system.harvest_tuple(1, grams=0)
    with reverts("TeaTraceZeroMass", dataHash=bad[5]):
        _deliver(system, [good, bad])
    assert system.lot(lot_id(system.coop.address, good[5]))[2] == LotState.NONE


# ---------------------------------------------------------------------- movement and sale


def test_ship_and_receive(system: System):
    (lot,) = system.harvest()
    receipt = system.coop.transact(system.tt.functions.ship(lot, system.processor.address))
    assert events(system, receipt, "LotShipped") == [
        {"lot": lot, "from": system.coop.address, "to": system.processor.address}
    ]
    assert system.lot(lot)[:3] == (system.processor.address, 10_000, IN_TRANSIT)
    with reverts("TeaTraceLotInTransit", lot=lot, consignee=system.processor.address):
        system.coop.transact(system.tt.functions.ship(lot, system.distributor.address))
    with reverts(
        "TeaTraceNotLotHolder", holder=system.processor.address, caller=system.distributor.address
    ):
        system.distributor.transact(system.tt.functions.receiveLot(lot))
    receipt = system.processor.transact(system.tt.functions.receiveLot(lot))
    assert events(system, receipt, "LotReceived") == [
        {"lot": lot, "receiver": system.processor.address}
    ]
    assert system.lot(lot)[:3] == (system.processor.address, 10_000, HELD)
    with reverts("TeaTraceLotNotInTransit", lot=lot, state=HELD):
        system.processor.transact(system.tt.functions.receiveLot(lot))


@pytest.mark.parametrize("recipient", ["outsider", "inspector", "coop", "zero"])
def test_shipments_go_only_to_other_members(system: System, recipient):
    (lot,) = system.harvest()
    to = ZERO if recipient == "zero" else getattr(system, recipient).address
    with reverts("TeaTraceInvalidRecipient", to=to):
        system.coop.transact(system.tt.functions.ship(lot, to))
    with reverts("TeaTraceInvalidRecipient", to=to):
        system.coop.transact(system.tt.functions.shipBatch([lot], to))


def test_batched_movement(system: System):
    lots = system.harvest([1_000, 2_000, 3_000])
    system.move(lots, system.coop, system.distributor)
    assert {system.lot(lot)[:3] for lot in lots} == {
        (system.distributor.address, g, HELD) for g in (1_000, 2_000, 3_000)
    }
    with reverts("TeaTraceEmptyBatch"):
        system.coop.transact(system.tt.functions.receiveBatch([]))


def test_sale_records_price_and_hands_the_lot_to_the_buyer(system: System):
    (lot,) = system.harvest()
    receipt = system.coop.transact(
        system.tt.functions.sell(lot, system.distributor.address, 123_456)
    )
    assert events(system, receipt, "LotSold") == [
        {
            "lot": lot,
            "seller": system.coop.address,
            "buyer": system.distributor.address,
            "priceFen": 123_456,
        }
    ]
    assert system.lot(lot)[:3] == (system.distributor.address, 10_000, HELD)
    # a retail buyer without a role ends the on-chain journey
    system.distributor.transact(system.tt.functions.sell(lot, system.outsider.address, 200_000))
    with reverts("TeaTraceNotSupplyChainMember"):
        system.outsider.transact(system.tt.functions.ship(lot, system.coop.address))


def test_sale_checks_price_buyer_and_lengths(system: System):
    lots = system.harvest([1_000, 2_000])
    with reverts("TeaTraceZeroPrice", lot=lots[0]):
        system.coop.transact(system.tt.functions.sell(lots[0], system.distributor.address, 0))
    for buyer in (ZERO, system.coop.address):
        with reverts("TeaTraceInvalidBuyer", buyer=buyer):
            system.coop.transact(system.tt.functions.sell(lots[0], buyer, 1))
    with reverts("TeaTraceLengthMismatch", expected=2, actual=1):
        system.coop.transact(system.tt.functions.sellBatch(lots, system.distributor.address, [1]))
    receipt = system.coop.transact(
        system.tt.functions.sellBatch(lots, system.distributor.address, [10, 20])
    )
    assert [e["priceFen"] for e in events(system, receipt, "LotSold")] == [10, 20]


# ---------------------------------------------------------------------- quality and recall


def test_quality_attestation(system: System):
    (lot,) = system.harvest()
    cert = keccak(text="certificate")
    receipt = system.inspector.transact(system.tt.functions.attestQuality((lot, 1, True, cert)))
    assert events(system, receipt, "QualityAttested") == [
        {
            "lot": lot,
            "inspector": system.inspector.address,
            "grade": 1,
            "passed": True,
            "certificateHash": cert,
        }
    ]
    with reverts("TeaTraceUnknownGrade", grade=0):
        system.inspector.transact(system.tt.functions.attestQuality((lot, 0, True, cert)))
    with reverts("TeaTraceUnknownLot", lot=b"\5" * 32):
        system.inspector.transact(
            system.tt.functions.attestQualityBatch(
                [(lot, 2, False, cert), (b"\5" * 32, 2, False, cert)]
            )
        )


def test_recalled_lot_stops_moving(system: System):
    lots = system.harvest([1_000, 2_000, 3_000])
    reason = keccak(text="pesticide residue")
    receipt = system.inspector.transact(system.tt.functions.recall(lots[0], reason))
    assert events(system, receipt, "LotRecalled") == [
        {"lot": lots[0], "inspector": system.inspector.address, "reasonHash": reason}
    ]
    assert system.lot(lots[0])[4] is True
    with reverts("TeaTraceLotAlreadyRecalled", lot=lots[0]):
        system.inspector.transact(system.tt.functions.recall(lots[0], reason))
    with reverts("TeaTraceLotRecalled", lot=lots[0]):
        system.coop.transact(system.tt.functions.ship(lots[0], system.processor.address))
    with reverts("TeaTraceLotRecalled", lot=lots[0]):
        system.coop.transact(system.tt.functions.sell(lots[0], system.distributor.address, 1))
    system.inspector.transact(system.tt.functions.recallBatch(lots[1:], reason))
    assert [system.lot(lot)[4] for lot in lots] == [True, True, True]
    system.inspector.transact(system.tt.functions.attestQuality((lots[0], 5, False, reason)))
    with reverts("TeaTraceUnknownLot"):
        system.inspector.transact(system.tt.functions.recall(b"\3" * 32, reason))


def test_recalled_input_cannot_be_processed(system: System):
    lots = to_processor(system, [10_000, 10_000])
    system.inspector.transact(system.tt.functions.recall(lots[1], keccak(text="mould")))
    with reverts("TeaTraceLotRecalled", lot=lots[1]):
        system.process(lots, [1_000])


def test_views_return_unknown_lots_as_state_none(system: System):
    (lot,) = system.harvest()
    found = system.tt.functions.lots([lot, b"\x09" * 32]).call()
    assert [tuple(f) for f in found] == [
        (system.coop.address, 10_000, HELD, FRESH, False),
        (ZERO, 0, 0, 0, False),
    ]
    assert tuple(system.tt.functions.farmer(b"\x09" * 32).call()) == (ZERO, ZERO, False)
    assert tuple(system.tt.functions.plot(b"\x09" * 32).call()) == (b"\0" * 32, ZERO, 0, 0)


# ---------------------------------------------------------------------- wallet epoch, first buyer


def test_every_wallet_change_starts_a_new_epoch(system: System):
    tea, fid = system.tt.functions, system.farmers[0]
    wallet = tea.farmer(fid).call()[1]
    start = tea.walletEpoch(fid).call()
    for address in (system.outsider.address, ZERO, wallet, wallet):  # back and forth, even same
        system.coop.transact(tea.setFarmerWallet(fid, address))
    assert tea.walletEpoch(fid).call() == start + 4
    assert tea.farmer(fid).call()[1] == wallet
    assert tea.walletEpoch(keccak(text="nobody")).call() == 0


def test_the_first_buyer_of_a_lot_is_kept_through_resales(system: System):
    tea = system.tt.functions
    (lot,) = system.harvest()
    assert tea.boughtBy(lot).call() == ZERO
    system.coop.transact(tea.sell(lot, system.distributor.address, 100))
    system.distributor.transact(tea.sell(lot, system.processor.address, 150))
    assert tea.boughtBy(lot).call() == system.distributor.address
    assert system.lot(lot)[0] == system.processor.address

"""What capture does when the chain moves under it or the process dies mid-way (anvil,
SQLite): it stops at the event the chain now refuses, keeps what was sent, and a re-post
completes what can be completed; a harvest mined before a crash is found by its anchor."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_utils import keccak
from sqlalchemy import Engine

from indexer.db import make_engine, migrate
from tests.api.conftest import DATABASES, database_for
from tests.traceability._epcis_world import EpcisWorld, build_world
from traceability.epcis import capture as capture_module
from traceability.epcis import ids
from traceability.epcis.capture import CaptureRefused, capture, load_job, plot_master_data
from traceability.epcis.export import dumps, loads, lot_document
from traceability.service import RecordingService


@pytest.fixture(scope="module")
def world(anvil_node, tmp_path_factory) -> EpcisWorld:
    return build_world(anvil_node, tmp_path_factory.mktemp("epcis-capture-core"))


@pytest.fixture(scope="module", params=DATABASES)
def engine(request, world, tmp_path_factory, pg_databases) -> Engine:
    """The capture tables on SQLite and on PostgreSQL."""
    directory = tmp_path_factory.mktemp("capture-db")
    engine = make_engine(database_for(request.param, directory, pg_databases))
    migrate(engine)
    return engine


def _document(events: list[dict], master: list | None = None) -> dict:
    """A published document of these events."""
    document = {
        "@context": ids.context(),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-04-02T02:00:00Z",
        "epcisBody": {"eventList": events},
    }
    if master:
        document["epcisHeader"] = plot_master_data(master)
    return loads(dumps(document))


def _ship(lot: bytes, source: str, to: str, minute: int) -> dict:
    return {
        "type": "ObjectEvent",
        "eventTime": f"2026-04-02T03:{minute:02d}:00Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "quantityList": [{"epcClass": ids.lot_uri(lot)}],
        "sourceList": [{"type": "owning_party", "source": _party(source)}],
        "destinationList": [{"type": "owning_party", "destination": _party(to)}],
    }


def _party(address: str) -> str:
    return ids.party_uri(bytes.fromhex(address[2:].lower()))


def test_a_recall_between_check_and_send_stops_capture_there(world, engine, monkeypatch) -> None:
    system = world.system
    first, second = system.harvest([5_000, 6_000])
    coop = RecordingService(system.client, 1)
    document = _document(
        [
            _ship(first, system.coop.address, system.processor.address, 1),
            _ship(second, system.coop.address, system.processor.address, 2),
        ]
    )
    sent: list[object] = []
    real = coop.sender.transact

    def transact_then_recall(call, *args, **kwargs):
        receipt = real(call, *args, **kwargs)
        if not sent:  # the inspector acts on the second lot while capture is under way
            system.inspector.transact(system.tt.functions.recall(second, b"\x33" * 32))
        sent.append(call)
        return receipt

    monkeypatch.setattr(coop.sender, "transact", transact_then_recall)
    report = capture(coop, engine, document, "race-1")
    assert not report.success and len(sent) == 1
    (error,) = report.errors
    assert error.index == 1 and "recalled" in error.reason.lower()
    assert [r.status for r in report.results] == ["recorded"]
    assert system.lot(first)[2] == 2  # the first shipment stays: in transit
    monkeypatch.undo()
    with pytest.raises(CaptureRefused) as refused:  # posting again: the first is known,
        capture(coop, engine, document, "race-2")  # the second is refused before sending
    assert [e.index for e in refused.value.errors] == [1]


def test_a_harvest_mined_before_a_crash_is_completed_by_its_anchor(
    world, engine, monkeypatch
) -> None:
    system = world.system
    coop = RecordingService(system.client, 1)
    plot, farmer = keccak(text="crash-plot"), keccak(text="crash-farmer")
    me = bytes.fromhex(system.coop.address[2:].lower())
    harvest = {
        "type": "ObjectEvent",
        "eventTime": "2026-04-02T04:00:00Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "quantityList": [
            {"epcClass": ids.lot_uri(keccak(text="crash-lot")), "quantity": 4, "uom": "KGM"}
        ],
        "readPoint": {"id": ids.plot_uri(plot)},
        "bizLocation": {"id": ids.location_uri(me)},
        "ilmd": {"tl:pickedAt": "2026-04-02T00:00:00Z", "tl:grade": 3},
    }
    master = type("P", (), {"plot": plot, "farmer": farmer, "area_centi_mu": 100, "variety": 1,
                            "location_hash": b"\x00" * 32})  # fmt: skip
    document = _document([harvest], [master])

    def crash(*args, **kwargs):
        raise SystemExit("the process dies after the harvest is mined")

    monkeypatch.setattr(capture_module._Recorder, "_write", crash)
    with pytest.raises(SystemExit):
        capture(coop, engine, document, "crash-1")
    monkeypatch.undo()
    block = system.client.w3.eth.block_number
    report = capture(coop, engine, document, "crash-2")
    assert report.success
    (result,) = report.results
    assert result.status == "already_captured" and result.tx_hash is None
    assert system.client.w3.eth.block_number == block  # found on chain, nothing sent
    lot = bytes.fromhex(result.lots[0][2:])
    assert system.lot(lot)[1] == 4_000
    again = capture(coop, engine, document, "crash-3")
    assert [r.status for r in again.results] == ["already_captured"]


def test_a_step_mined_before_a_crash_is_completed_by_its_anchor(world, engine, monkeypatch) -> None:
    system = world.system
    leaves = system.harvest([10_000, 20_000])
    system.move(leaves, system.coop, system.processor)
    processor = RecordingService(system.client, 2)
    me = bytes.fromhex(system.processor.address[2:].lower())
    step = {
        "type": "TransformationEvent",
        "eventTime": "2026-04-02T05:00:00Z",
        "eventTimeZoneOffset": "+08:00",
        "inputQuantityList": [
            {"epcClass": ids.lot_uri(lot), "quantity": grams, "uom": "GRM"}
            for lot, grams in zip(leaves, (10_000, 20_000), strict=True)
        ],
        "outputQuantityList": [
            {
                "epcClass": ids.lot_uri(keccak(text="crash-made")),
                "quantity": Decimal("7.5"),
                "uom": "KGM",
            }
        ],
        "bizStep": "commissioning",
        "bizLocation": {"id": ids.location_uri(me)},
    }
    document = _document([step])

    def crash(*args, **kwargs):
        raise SystemExit("the process dies after the step is mined")

    monkeypatch.setattr(capture_module._Recorder, "_write", crash)
    with pytest.raises(SystemExit):
        capture(processor, engine, document, "crash-step-1")
    monkeypatch.undo()
    assert system.lot(leaves[0])[2] == 3  # consumed: the step is on chain
    block = system.client.w3.eth.block_number
    report = capture(processor, engine, document, "crash-step-2")
    assert report.success and [r.status for r in report.results] == ["already_captured"]
    assert system.client.w3.eth.block_number == block
    made = bytes.fromhex(report.results[0].lots[0][2:])
    assert system.lot(made)[1] == 7_500


def test_a_lot_of_this_chain_is_not_captured_again_as_a_new_one(world, engine) -> None:
    """The cooperative posts its own exported harvest back into the same deployment: the lot
    exists here, so recording it again would count the leaf twice."""
    coop = RecordingService(world.system.client, 1)
    with world.engine.connect() as conn:
        document = loads(dumps(lot_document(conn, world.lone)))
    block = world.system.client.w3.eth.block_number
    with pytest.raises(CaptureRefused) as refused:
        capture(coop, engine, document, "own-1")
    (error,) = refused.value.errors
    assert "recorded on this chain already" in error.reason
    assert world.system.client.w3.eth.block_number == block


def test_a_capture_cut_short_by_the_node_keeps_its_job(world, engine, monkeypatch) -> None:
    system = world.system
    first, second = system.harvest([3_000, 4_000])
    coop = RecordingService(system.client, 1)
    document = _document(
        [
            _ship(first, system.coop.address, system.processor.address, 11),
            _ship(second, system.coop.address, system.processor.address, 12),
        ]
    )
    real = coop.sender.transact
    calls: list[object] = []

    def node_goes_away(call, *args, **kwargs):
        calls.append(call)
        if len(calls) == 2:
            raise ConnectionError("the node stopped answering")
        return real(call, *args, **kwargs)

    monkeypatch.setattr(coop.sender, "transact", node_goes_away)
    with pytest.raises(ConnectionError):
        capture(coop, engine, document, "cut-1")
    monkeypatch.undo()
    job = load_job(engine, system.coop.address, "cut-1")
    assert job is not None and job["success"] is False
    assert [e["status"] for e in job["events"]] == ["recorded"]
    assert job["errors"][0]["index"] == -1
    report = capture(coop, engine, document, "cut-2")  # posting again completes it
    assert [r.status for r in report.results] == ["already_captured", "recorded"]

"""EPCIS 2.0 documents of a real indexed chain (anvil + SQLite): lineage, mapping, exact kg,
no personal data, and every document valid against GS1's official schema."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy.engine import Connection

from tests.api.conftest import DATABASES, database_for
from tests.traceability._epcis_world import (
    BLEND_GRAMS,
    LEAF_GRAMS,
    LONE_GRAMS,
    MADE_GRAMS,
    EpcisWorld,
    build_world,
)
from traceability.epcis import ids
from traceability.epcis.export import (
    LotNotIndexedError,
    cooperative_document,
    dumps,
    loads,
    lot_document,
)
from traceability.epcis.validate import validate_text


@pytest.fixture(scope="module", params=DATABASES)
def world(request, anvil_node, tmp_path_factory, pg_databases) -> EpcisWorld:
    """Every trace event once, indexed into SQLite and into PostgreSQL."""
    directory = tmp_path_factory.mktemp("epcis")
    return build_world(anvil_node, directory, database_for(request.param, directory, pg_databases))


@pytest.fixture
def conn(world) -> Iterator[Connection]:
    with world.engine.connect() as connection:
        yield connection


def _published(document: dict) -> dict:
    """The document as published: serialised, schema-checked, read back with exact numbers."""
    text = dumps(document)
    validate_text(text)
    return loads(text)


def _events(document: dict) -> list[dict]:
    return document["epcisBody"]["eventList"]


def _of(events: list[dict], lot: bytes, step: str) -> list[dict]:
    uri = ids.lot_uri(lot)
    return [
        e
        for e in events
        if e.get("bizStep") == step and any(q["epcClass"] == uri for q in e.get("quantityList", []))
    ]


def test_a_harvest_lot_is_one_commissioning_event(world, conn) -> None:
    document = _published(lot_document(conn, world.lone))
    assert document["@context"][0] == "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
    assert document["type"] == "EPCISDocument" and document["schemaVersion"] == "2.0"
    (event,) = _events(document)
    assert event["type"] == "ObjectEvent" and event["action"] == "ADD"
    assert event["bizStep"] == "commissioning" and event["disposition"] == "active"
    assert event["quantityList"] == [
        {"epcClass": ids.lot_uri(world.lone), "quantity": Decimal("12.345"), "uom": "KGM"}
    ]
    plot = ids.parse_urn32(event["readPoint"]["id"], ids.IdKind.PLOT)
    assert plot in world.system.plots
    assert event["ilmd"]["tl:plot"] == event["readPoint"]["id"]
    assert event["ilmd"]["tl:grade"] == 2
    assert event["eventTime"].endswith("Z") and event["eventTimeZoneOffset"] == "+08:00"
    coop = ids.parse_location_uri(event["bizLocation"]["id"]).address
    assert coop == bytes.fromhex(world.system.coop.address[2:])


def test_kilograms_are_exact(world, conn) -> None:
    text = dumps(lot_document(conn, world.lone))
    assert '"quantity":12.345,' in text  # a JSON number, three decimals, no float noise
    assert Decimal(LONE_GRAMS) / 1000 == Decimal("12.345")


def test_a_blend_carries_its_whole_lineage(world, conn) -> None:
    events = _events(_published(lot_document(conn, world.blend)))
    harvests = [e for e in events if e.get("action") == "ADD"]
    assert {q["epcClass"] for e in harvests for q in e["quantityList"]} == {
        ids.lot_uri(x) for x in world.leaves
    }
    steps = [e for e in events if e["type"] == "TransformationEvent"]
    assert len(steps) == 2  # leaves -> made tea, made[0] -> blend
    merge = next(e for e in steps if len(e["inputQuantityList"]) == 2)
    assert [q["quantity"] for q in merge["inputQuantityList"]] == [
        Decimal(g).scaleb(-3) for g in LEAF_GRAMS
    ]
    assert [q["epcClass"] for q in merge["outputQuantityList"]] == [
        ids.lot_uri(x) for x in world.made
    ]
    assert (
        sum(q["quantity"] for q in merge["outputQuantityList"]) == Decimal(sum(MADE_GRAMS)) / 1000
    )
    blend_step = next(e for e in steps if e is not merge)
    assert blend_step["outputQuantityList"][0]["quantity"] == Decimal(BLEND_GRAMS) / 1000
    assert ids.parse_urn32(blend_step["transformationID"], ids.IdKind.PROCESS)
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)
    assert _of(events, world.lone, "commissioning") == []  # not in this lineage


def test_shipping_receiving_selling_and_inspection_map_to_cbv(world, conn) -> None:
    events = _events(_published(lot_document(conn, world.blend)))
    system = world.system

    def party(address: str) -> str:
        return ids.party_uri(bytes.fromhex(address[2:]))

    (shipped,) = _of(events, world.blend, "shipping")
    assert shipped["action"] == "OBSERVE" and shipped["disposition"] == "in_transit"
    assert shipped["sourceList"] == [
        {"type": "owning_party", "source": party(system.processor.address)}
    ]
    assert shipped["destinationList"][0]["destination"] == party(system.distributor.address)
    (received,) = _of(events, world.blend, "receiving")
    assert received["disposition"] == "in_progress"
    (sold,) = _of(events, world.blend, ids.BIZSTEP_SELLING)
    assert sold["destinationList"] == [
        {"type": "owning_party", "destination": party(system.outsider.address)}
    ]
    assert "1234567" not in dumps(lot_document(conn, world.blend))  # no prices published
    (inspected,) = _of(events, world.blend, "inspecting")
    assert inspected["disposition"] == "conformant" and inspected["tl:passed"] is True


def test_a_failed_and_recalled_lot(world, conn) -> None:
    events = _events(_published(lot_document(conn, world.made[1])))
    (inspected,) = _of(events, world.made[1], "inspecting")
    assert inspected["disposition"] == "non_conformant" and inspected["tl:grade"] == 4
    (recalled,) = _of(events, world.made[1], "holding")
    assert recalled["disposition"] == "recalled"
    assert recalled["tl:reasonHash"] == "0x" + "22" * 32


def test_no_farmer_identifier_is_published(world, conn) -> None:
    for lot in (world.blend, world.made[1], world.lone):
        text = dumps(lot_document(conn, lot))
        for farmer in world.system.farmers:
            assert farmer.hex() not in text
        assert "farmer" not in text.lower()


def test_event_ids_are_unique_and_stable(world, conn) -> None:
    first = [e["eventID"] for e in _events(lot_document(conn, world.blend))]
    again = [e["eventID"] for e in _events(lot_document(conn, world.blend))]
    assert first == again and len(set(first)) == len(first)


def test_a_cooperative_exports_its_lots_in_a_time_range(world, conn) -> None:
    coop = bytes.fromhex(world.system.coop.address[2:])
    events = _events(_published(cooperative_document(conn, coop)))
    harvested = {
        q["epcClass"] for e in events if e.get("action") == "ADD" for q in e["quantityList"]
    }
    assert harvested == {ids.lot_uri(x) for x in [*world.leaves, world.lone]}
    assert not _of(events, world.blend, "shipping")  # the processor's lots are not the coop's
    times = sorted({e["eventTime"] for e in events})
    assert _events(cooperative_document(conn, coop, until=0)) == []
    processor = bytes.fromhex(world.system.processor.address[2:])
    assert _events(_published(cooperative_document(conn, processor))) == []
    assert times  # the range filter itself is exercised in test_epcis_query


def test_an_unknown_lot_is_an_error(conn) -> None:
    with pytest.raises(LotNotIndexedError):
        lot_document(conn, b"\x77" * 32)


def test_a_known_gln_names_the_cooperative(world, conn) -> None:
    coop = bytes.fromhex(world.system.coop.address[2:])
    gln = "6901234000009"  # valid check digit; prefixes 690-699 are GS1 China

    def lookup(address: bytes) -> str | None:
        return gln if address == coop else None

    (event,) = _events(_published(lot_document(conn, world.lone, lookup)))
    assert event["bizLocation"]["id"] == f"https://id.gs1.org/414/{gln}"
    assert ids.parse_location_uri(event["bizLocation"]["id"]).gln == gln


def test_lineage_read_in_chunks_is_the_same(world, conn, monkeypatch) -> None:
    from traceability.epcis import export

    whole = [e["eventID"] for e in _events(lot_document(conn, world.blend))]
    monkeypatch.setattr(export, "CHUNK", 1)
    assert [e["eventID"] for e in _events(lot_document(conn, world.blend))] == whole

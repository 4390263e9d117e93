"""The CBV 2.0 event hash id against GS1's reference vectors, and what it must ignore."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from traceability.epcis.hashid import (
    UnsupportedEventError,
    Vocabulary,
    digital_link,
    event_hash_id,
    hash_bytes,
    prehash,
)

DATA = Path(__file__).parents[1] / "data" / "epcis_hash"
DRAFT = Vocabulary("https://ns.gs1.org/voc/", "Bizstep-")


def _vector(name: str) -> tuple[dict, list[str]]:
    """A vendored document and its published hash ids."""
    document = json.loads((DATA / f"{name}.jsonld").read_text())
    return document, (DATA / f"{name}.hashes").read_text().split()


def test_the_single_event_vector_matches_with_cbv_2_vocabulary() -> None:
    document, hashes = _vector("single_event")
    event = document["epcisBody"]["eventList"][0]
    assert event_hash_id(event, document["@context"]) == hashes[0]


@pytest.mark.parametrize("index", [8, 9])
def test_transaction_events_of_the_various_types_vector_match(index: int) -> None:
    document, hashes = _vector("various_event_types")
    event = document["epcisBody"]["eventList"][index]
    assert event_hash_id(event, document["@context"], DRAFT) == hashes[index]


def test_the_hash_ignores_field_order_time_zone_event_id_and_old_cbv_urns() -> None:
    document, hashes = _vector("single_event")
    event = document["epcisBody"]["eventList"][0]
    other = dict(reversed(list(copy.deepcopy(event).items())))
    other["eventTime"] = "2022-02-17T02:33:31.116Z"  # the same instant in UTC
    other["eventID"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
    other["recordTime"] = "2030-01-01T00:00:00Z"
    other["bizStep"] = "urn:epcglobal:cbv:bizstep:shipping"
    other["epcList"] = list(reversed(other["epcList"]))
    assert event_hash_id(other, document["@context"]) == hashes[0]
    other["eventTime"] = "2022-02-17T02:33:31.117Z"
    assert event_hash_id(other, document["@context"]) != hashes[0]


def test_extension_fields_are_hashed_with_their_namespace_and_sorted() -> None:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-04-02T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "quantityList": [
            {"epcClass": "urn:tealedger:lot:0x" + "ab" * 32, "quantity": 1.50, "uom": "KGM"}
        ],
        "tl:grade": 2,
        "tl:passed": True,
        "ilmd": {"tl:season": "2026-spring", "tl:plot": "urn:tealedger:plot:0x" + "cd" * 32},
    }
    text = prehash(event, {"tl": "https://tealedger.example/epcis/"})
    assert text.endswith(
        "ilmd{https://tealedger.example/epcis/}plot=urn:tealedger:plot:0x"
        + "cd" * 32
        + "{https://tealedger.example/epcis/}season=2026-spring"
        + "{https://tealedger.example/epcis/}grade=2{https://tealedger.example/epcis/}passed=true"
    )
    assert "quantity=1.5uom=KGM" in text and "eventTime=2026-04-02T00:00:00.000Z" in text


def test_digital_link_normalisation_of_gs1_urns() -> None:
    assert digital_link("urn:epc:id:sgtin:0614141.107346.2017") == (
        "https://id.gs1.org/01/10614141073464/21/2017"
    )
    assert digital_link("urn:epc:class:lgtin:4012345.099988.2014-02-10") == (
        "https://id.gs1.org/01/04012345999884/10/2014-02-10"
    )
    assert digital_link("urn:epc:id:sgln:4012345.00001.0") == "https://id.gs1.org/414/4012345000016"
    assert (
        digital_link("urn:epc:id:sscc:4012345.0111111111")
        == "https://id.gs1.org/00/040123451111111110"
    )
    assert digital_link("urn:tealedger:lot:0x01") == "urn:tealedger:lot:0x01"


def test_sensor_data_is_refused_not_hashed_wrongly() -> None:
    with pytest.raises(UnsupportedEventError):
        prehash({"type": "ObjectEvent", "sensorElementList": []}, {})


def test_hash_bytes_reads_only_sha256_hash_ids() -> None:
    hash_id = "ni:///sha-256;" + "0f" * 32 + "?ver=CBV2.0"
    assert hash_bytes(hash_id) == bytes.fromhex("0f" * 32)
    for bad in ("ni:///sha-384;" + "0f" * 32 + "?ver=CBV2.0", hash_id.upper(), "urn:uuid:1"):
        with pytest.raises(ValueError):
            hash_bytes(bad)

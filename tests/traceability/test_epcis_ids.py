"""EPCIS identifiers: minted in one place, parsed back exactly, hostile text refused."""

from __future__ import annotations

import pytest

from traceability.epcis import ids
from traceability.epcis.ids import IdentifierError, IdKind, PartyRef

LOT = bytes(range(32))
ADDRESS = bytes(range(20))
GLN = "4012345000009"  # check digit 9 (GS1 mod 10)


def test_lot_uri_round_trips() -> None:
    uri = ids.lot_uri(LOT)
    assert uri == "urn:tealedger:lot:0x" + LOT.hex()
    assert ids.parse_lot_uri(uri) == LOT


@pytest.mark.parametrize("kind", list(IdKind))
def test_every_32_byte_kind_round_trips(kind: IdKind) -> None:
    uri = {
        IdKind.LOT: ids.lot_uri,
        IdKind.PLOT: ids.plot_uri,
        IdKind.FARMER: ids.farmer_uri,
        IdKind.PROCESS: ids.process_uri,
    }[kind](LOT)
    assert ids.parse_urn32(uri, kind) == LOT


@pytest.mark.parametrize(
    "text",
    [
        "urn:tealedger:plot:0x" + LOT.hex(),  # another kind
        "urn:tealedger:lot:0x" + LOT.hex().upper(),  # one spelling only
        "urn:tealedger:lot:0x" + LOT.hex()[:-2],
        "urn:tealedger:lot:0x" + LOT.hex() + "00",
        "urn:tealedger:lot: 0x" + LOT.hex(),
        "https://example.com/lot",
        "",
    ],
)
def test_malformed_lot_uris_are_refused(text: str) -> None:
    with pytest.raises(IdentifierError):
        ids.parse_lot_uri(text)


def test_parties_are_wallet_urns_without_a_gln() -> None:
    uri = ids.party_uri(ADDRESS)
    assert uri == "urn:tealedger:party:0x" + ADDRESS.hex()
    assert ids.parse_party_uri(uri) == PartyRef(address=ADDRESS)
    location = ids.location_uri(ADDRESS)
    assert ids.parse_location_uri(location) == PartyRef(address=ADDRESS)


def test_a_known_gln_becomes_a_gs1_digital_link() -> None:
    def lookup(address: bytes) -> str | None:
        return GLN if address == ADDRESS else None

    assert ids.party_uri(ADDRESS, lookup) == f"https://id.gs1.org/417/{GLN}"
    assert ids.location_uri(ADDRESS, lookup) == f"https://id.gs1.org/414/{GLN}"
    assert ids.parse_party_uri(f"https://id.gs1.org/417/{GLN}") == PartyRef(gln=GLN)
    assert ids.party_uri(b"\x01" * 20, lookup).startswith("urn:tealedger:party:")


def test_gln_check_digits_match_gs1s_example() -> None:
    # GLNs in the Digital Link URIs of GS1's EPCIS 2.0 examples (gs1/EPCIS)
    assert ids.is_gln("4012345000054") and ids.is_gln("9506000134307")
    assert not ids.is_gln("4012345000055") and not ids.is_gln("401234500005")


def test_a_bad_gln_from_the_lookup_is_refused() -> None:
    with pytest.raises(IdentifierError):
        ids.party_uri(ADDRESS, lambda _: "4012345000008")
    with pytest.raises(IdentifierError):
        ids.parse_party_uri("https://id.gs1.org/417/4012345000008")


def test_event_ids_are_deterministic_uuids() -> None:
    first = ids.event_id(31337, b"\xaa" * 32, 3)
    assert first == ids.event_id(31337, b"\xaa" * 32, 3)
    assert first.startswith("urn:uuid:")
    assert first != ids.event_id(31337, b"\xaa" * 32, 4)
    assert first != ids.event_id(1, b"\xaa" * 32, 3)


def test_biz_steps_parse_from_words_and_uris() -> None:
    assert ids.parse_biz_step("shipping") == "shipping"
    assert ids.parse_biz_step("https://ref.gs1.org/cbv/BizStep-shipping") == "shipping"
    assert ids.parse_biz_step(ids.BIZSTEP_SELLING) == ids.BIZSTEP_SELLING
    with pytest.raises(IdentifierError):
        ids.parse_biz_step("teleporting")

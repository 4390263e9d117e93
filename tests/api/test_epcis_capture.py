"""POST /epcis/capture on a real chain (anvil) and database (SQLite): a cooperative's harvest
captured (202, Location, the job), captured again (nothing new), and every refusal a 4xx
that records nothing: schema, unmappable events, other organisations' events, wrong role,
hostile bodies."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from eth_utils import keccak
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.core.models import Organisation, OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.settings import ApiSettings
from api.main import create_app
from indexer.runner import index_once
from tests.api.conftest import PASSWORD
from tests.traceability._epcis_world import EpcisWorld, build_world
from traceability.contracts import COOPERATIVE_ROLE
from traceability.epcis import ids
from traceability.epcis.capture import plot_master_data
from traceability.epcis.export import cooperative_document, dumps
from traceability.epcis.hashid import event_hash_id
from traceability.epcis.validate import validate_text

PLOT = keccak(text="capture-plot")
FARMER = keccak(text="capture-farmer")


@pytest.fixture(scope="module")
def world(anvil_node, tmp_path_factory) -> EpcisWorld:
    return build_world(anvil_node, tmp_path_factory.mktemp("epcis-capture"))


@pytest.fixture(scope="module")
def app(world, tmp_path_factory):
    settings = ApiSettings(
        environment="test",
        database_url=world.database_url,
        data_dir=tmp_path_factory.mktemp("epcis-capture-app"),
        org_keystore_password=PASSWORD,
        rate_limit_per_minute=10_000,
    )
    return create_app(settings, chain=world.system.client)


@pytest.fixture(scope="module")
def http(app):
    with TestClient(app) as client:
        yield client


def _org(app, role: Role, name: str) -> tuple[str, dict[str, str]]:
    """(chain address, key headers) of a new organisation with its own key."""
    with Session(app.state.engine) as session:
        org, key = create_organisation(
            session,
            OrganisationCreate(name=name, role=role),
            app.state.settings.keystore_dir,
            PASSWORD,
        )
        stored = session.get(Organisation, org.id)
        assert stored is not None
        return stored.chain_address, {"X-API-Key": key.secret}


@pytest.fixture(scope="module")
def coop(app, world) -> tuple[str, dict[str, str]]:
    """A cooperative with TeaTrace's role and gas (granted by the deployment's admin)."""
    address, headers = _org(app, Role.COOPERATIVE, "capturing-coop")
    admin = world.system.admin
    admin.transact(world.system.tt.functions.grantRole(COOPERATIVE_ROLE, address))
    admin.transact({"to": address, "value": 10**18}, gas=21_000)
    return address, headers


def _harvest(
    address: str, grams_kg: str = "12.5", lot: str = "source-lot", **changes: Any
) -> dict[str, Any]:
    """A harvest event of the capturing cooperative on PLOT."""
    me = bytes.fromhex(address[2:].lower())
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-04-02T01:00:00Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "quantityList": [
            {
                "epcClass": ids.lot_uri(keccak(text=lot)),
                "quantity": Decimal(grams_kg),
                "uom": "KGM",
            }
        ],
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": ids.plot_uri(PLOT)},
        "bizLocation": {"id": ids.location_uri(me)},
        "ilmd": {"tl:pickedAt": "2026-04-01T23:00:00Z", "tl:grade": 2},
    }
    return event | changes


def _document(events: list[dict[str, Any]], master: bool = True) -> dict[str, Any]:
    """An EPCISDocument of these events (PLOT as master data)."""
    document: dict[str, Any] = {
        "@context": ids.context(),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-04-02T02:00:00Z",
        "epcisBody": {"eventList": events},
    }
    if master:
        plot = type("P", (), {"plot": PLOT, "farmer": FARMER, "area_centi_mu": 250, "variety": 3,
                              "location_hash": b"\x00" * 32})  # fmt: skip
        document["epcisHeader"] = plot_master_data([plot])
    return document


def _post(
    http, headers, document: dict[str, Any] | bytes, content_type: str = "application/ld+json"
):
    body = document if isinstance(document, bytes) else dumps(document).encode()
    return http.post(
        "/epcis/capture", content=body, headers=headers | {"Content-Type": content_type}
    )


def _block(world) -> int:
    return world.system.client.w3.eth.block_number


def test_a_harvest_is_captured_then_recognised(http, world, coop) -> None:
    address, headers = coop
    event = _harvest(address)
    response = _post(http, headers, _document([event]))
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/epcis/capture/{job['captureID']}"
    assert job["success"] is True and job["recorded"] == 1 and job["running"] is False
    (result,) = job["events"]
    assert result["hash_id"] == event_hash_id(json.loads(dumps(event)), ids.context())
    lot = bytes.fromhex(result["lots"][0][2:])
    holder, grams, state, _kind, recalled = world.system.tt.functions.lot(lot).call()
    assert holder == address and grams == 12_500 and state == 1 and not recalled
    plot = world.system.tt.functions.plot(PLOT).call()
    assert bytes(plot[0]) == FARMER and plot[1] == address and plot[2] == 250
    again = http.get(response.headers["Location"], headers=headers)
    assert again.status_code == 200 and again.json()["events"] == job["events"]

    block = _block(world)
    second = _post(http, headers, _document([event]))
    assert second.status_code == 202
    assert second.json()["alreadyCaptured"] == 1 and second.json()["recorded"] == 0
    assert second.json()["events"][0]["status"] == "already_captured"
    assert _block(world) == block  # nothing sent


def test_another_organisation_cannot_read_the_job(http, app, coop) -> None:
    _, headers = coop
    job = _post(http, headers, _document([_harvest(coop[0], "3", lot="lot-3")])).json()
    _, other = _org(app, Role.INSPECTOR, "other-inspector")
    assert http.get(f"/epcis/capture/{job['captureID']}", headers=other).status_code == 404
    assert http.get("/epcis/capture/not-a-uuid", headers=headers).status_code == 404


def test_a_schema_invalid_document_is_400(http, coop, world) -> None:
    _, headers = coop
    document = _document([_harvest(coop[0])])
    del document["epcisBody"]["eventList"][0]["eventTime"]
    block = _block(world)
    response = _post(http, headers, document)
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationException"
    assert response.json()["args"]["violations"]
    assert _block(world) == block


def test_unmappable_events_refuse_the_whole_document(http, coop, world) -> None:
    address, headers = coop
    good = _harvest(address, "7", lot="good", eventTime="2026-04-02T03:00:00Z")
    pounds = _harvest(address, "7", lot="pounds", eventTime="2026-04-02T04:00:00Z")
    pounds["quantityList"][0]["uom"] = "LBR"
    unknown = {
        "type": "ObjectEvent",
        "eventTime": "2026-04-02T05:00:00Z",
        "eventTimeZoneOffset": "+08:00",
        "eventID": "ni:///sha-256;" + "00" * 32 + "?ver=CBV2.0",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "quantityList": [{"epcClass": ids.lot_uri(b"\x07" * 32)}],
        "sourceList": [
            {"type": "owning_party", "source": ids.party_uri(bytes.fromhex(address[2:]))}
        ],
        "destinationList": [{"type": "owning_party", "destination": ids.party_uri(b"\x01" * 20)}],
    }
    no_quantity = _harvest(address, "1", lot="none", eventTime="2026-04-02T06:00:00Z")
    del no_quantity["quantityList"][0]["quantity"]
    destroying = _harvest(
        address, "1", lot="gone", bizStep="destroying", eventTime="2026-04-02T07:00:00Z"
    )
    block = _block(world)
    response = _post(http, headers, _document([good, pounds, unknown, no_quantity, destroying]))
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [e["loc"] for e in errors] == [
        ["body", "epcisBody", "eventList", i] for i in (1, 2, 3, 4)
    ]
    assert "KGM and GRM" in errors[0]["msg"]
    assert "not this event's" in errors[1]["msg"]  # its eventID is a wrong hash id
    assert errors[1]["input"] == unknown["eventID"]
    assert "without a quantity" in errors[2]["msg"]
    assert "no TeaTrace record" in errors[3]["msg"]
    assert _block(world) == block  # the good harvest was not recorded either


def test_other_organisations_events_are_refused(http, coop, world) -> None:
    """The world's cooperative document, posted by another cooperative: every event is not
    the caller's, and nothing is recorded."""
    _, headers = coop
    me = bytes.fromhex(world.system.coop.address[2:].lower())
    with world.engine.connect() as conn:
        document = cooperative_document(conn, me)
    block = _block(world)
    response = _post(http, headers, document)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert len(errors) == len(document["epcisBody"]["eventList"])
    assert all("not you" in e["msg"] for e in errors)
    assert _block(world) == block


def test_an_unknown_lot_and_a_missing_plot_are_per_event_errors(http, coop) -> None:
    address, headers = coop
    harvest = _harvest(address, readPoint={"id": ids.plot_uri(keccak(text="no-such-plot"))})
    response = _post(http, headers, _document([harvest], master=False))
    assert response.status_code == 422
    assert "not registered here" in response.json()["detail"][0]["msg"]


def test_a_role_that_records_nothing_is_403(http, app, coop) -> None:
    _, lender = _org(app, Role.LENDER, "a-lender")
    assert _post(http, lender, _document([_harvest(coop[0])])).status_code == 403
    assert http.post("/epcis/capture", content=b"{}").status_code == 401


def test_a_cooperative_without_the_chain_role_is_refused_per_event(http, app) -> None:
    address, headers = _org(app, Role.COOPERATIVE, "coop-without-role")
    response = _post(http, headers, _document([_harvest(address)]))
    assert response.status_code == 422
    assert "role" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe not utf-8",
        b"not json",
        b'{"type": "EPCISDocument", "x": NaN}',
        b'{"type": "EPCISDocument", "x": 1' + b"0" * 5000 + b"}",
        b'{"type": "EPCISDocument", "x": 1e999999}',
        b"[" * 5000 + b"]" * 5000,
        b'{"type": "EPCISDocument", "x": "a\x00b"}',
        b'{"type": "EPCISDocument", "x": "\\ud800"}',
        b"[]",
        b"",
    ],
)
def test_hostile_bodies_are_4xx_never_500(http, coop, body: bytes) -> None:
    _, headers = coop
    for content_type in ("application/ld+json", "text/plain"):
        response = _post(http, headers, body, content_type)
        assert 400 <= response.status_code < 500, (body[:40], response.status_code, response.text)


def test_hostile_values_in_a_valid_document_are_4xx(http, coop, world) -> None:
    address, headers = coop
    huge = _harvest(address, "1e30", lot="huge")
    control = _harvest(address, lot="control", readPoint={"id": "urn:tealedger:plot:0x\u0000"})
    tiny = _harvest(address, "0.0001", lot="tiny")
    future = _harvest(
        address, lot="future", ilmd={"tl:pickedAt": "2099-01-01T00:00:00Z", "tl:grade": 2}
    )
    grade = _harvest(
        address, lot="grade", ilmd={"tl:pickedAt": "2026-04-01T23:00:00Z", "tl:grade": 2**300}
    )
    block = _block(world)
    for event in (huge, control, tiny, future, grade):
        response = _post(http, headers, _document([event]))
        assert response.status_code in (400, 422), (event, response.text)
    assert _block(world) == block


def test_the_capture_document_carries_the_plots_as_master_data(http, world, coop) -> None:
    address, headers = coop
    event = _harvest(address, "2", lot="export-lot", eventTime="2026-04-04T01:00:00Z")
    assert _post(http, headers, _document([event])).status_code == 202
    index_once(world.system.client, world.database_url)
    response = http.get("/epcis/cooperative/capture-document", headers=headers)
    assert response.status_code == 200, response.text
    validate_text(response.text)
    document = json.loads(response.text)
    (vocabulary,) = document["epcisHeader"]["epcisMasterData"]["vocabularyList"]
    (plot,) = vocabulary["vocabularyElementList"]
    assert plot["id"] == ids.plot_uri(PLOT)
    assert {
        "id": "https://tealedger.example/epcis/farmer",
        "attribute": ids.farmer_uri(FARMER),
    } in (plot["attributes"])
    assert all(
        e["readPoint"]["id"] == ids.plot_uri(PLOT) for e in document["epcisBody"]["eventList"]
    )
    inspector = _org(http.app, Role.INSPECTOR, "inspector-export")[1]
    assert http.get("/epcis/cooperative/capture-document", headers=inspector).status_code == 403

"""EPCIS over HTTP on a real indexed chain (anvil, SQLite): a lot's document, the event query
with its filters, paging and 400s, and a cooperative's own export."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.core.models import Farmer, Organisation, Plot, Role
from api.core.settings import ApiSettings
from api.main import create_app
from tests.api.conftest import PASSWORD
from tests.traceability._epcis_world import EpcisWorld, build_world
from traceability.epcis import ids
from traceability.epcis.validate import validate_text

UNKNOWN = "0x" + "ab" * 32


@pytest.fixture(scope="module")
def world(anvil_node, tmp_path_factory) -> EpcisWorld:
    return build_world(anvil_node, tmp_path_factory.mktemp("epcis-api"))


@pytest.fixture(scope="module")
def app(world, tmp_path_factory):
    settings = ApiSettings(
        environment="test",
        database_url=world.database_url,  # the indexer writes into the app's database
        data_dir=tmp_path_factory.mktemp("epcis-app"),
        org_keystore_password=PASSWORD,
        rate_limit_per_minute=10_000,
    )
    return create_app(settings, chain=world.system.client)


@pytest.fixture(scope="module")
def http(app):
    with TestClient(app) as client:
        yield client


def _org(app, role: Role, address: str) -> dict[str, str]:
    """An organisation of `role` acting from `address` (the chain account the world used)."""
    return _org_with_id(app, role, address)[1]


def _org_with_id(app, role: Role, address: str) -> tuple[int, dict[str, str]]:
    """(id, key headers) of a new organisation of `role` acting from `address`."""
    from api.core.models import OrganisationCreate
    from api.core.organisations import create_organisation

    with Session(app.state.engine) as session:
        org, key = create_organisation(
            session,
            OrganisationCreate(name=f"{role.value}-{address[-6:]}", role=role),
            app.state.settings.keystore_dir,
            PASSWORD,
        )
        stored = session.get(Organisation, org.id)
        assert stored is not None
        stored.chain_address = address
        session.add(stored)
        session.commit()
        return org.id, {"X-API-Key": key.secret}


def _events(response) -> list[dict]:
    body = json.loads(response.text, parse_float=Decimal)
    if body["type"] == "EPCISQueryDocument":
        return body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return body["epcisBody"]["eventList"]


def test_a_lots_document_is_public_valid_json_ld(world, http) -> None:
    response = http.get(f"/epcis/lots/0x{world.blend.hex()}/document")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    assert response.headers["GS1-EPCIS-Version"] == "2.0.0"
    validate_text(response.text)
    events = _events(response)
    assert any(e["type"] == "TransformationEvent" for e in events)
    for farmer in world.system.farmers:
        assert farmer.hex() not in response.text
    plain = http.get(
        f"/epcis/lots/0x{world.blend.hex()}/document", headers={"Accept": "application/json"}
    )
    assert plain.headers["content-type"].startswith("application/json")


def test_a_lots_document_errors(http) -> None:
    assert http.get(f"/epcis/lots/{UNKNOWN}/document").status_code == 404
    for bad in ("0x12", "zz" * 33, "0x" + "g" * 64, "%00"):
        assert http.get(f"/epcis/lots/{bad}/document").status_code == 422


def test_the_event_query_filters(world, http) -> None:
    response = http.get("/epcis/events", params={"EQ_bizStep": "shipping|receiving"})
    assert response.status_code == 200, response.text
    validate_text(response.text)
    assert {e["bizStep"] for e in _events(response)} == {"shipping", "receiving"}
    uri = ids.lot_uri(world.lone)
    (harvest,) = _events(http.get("/epcis/events", params={"MATCH_epcClass": uri}))
    assert harvest["quantityList"][0]["quantity"] == Decimal("12.345")
    steps = _events(http.get("/epcis/events", params={"eventType": "TransformationEvent"}))
    assert len(steps) == 2


def test_the_event_query_pages_with_a_link_header(http) -> None:
    every = _events(http.get("/epcis/events", params={"perPage": "1000"}))
    seen, url = [], "/epcis/events?perPage=4"
    while url:
        response = http.get(url)
        assert response.status_code == 200, response.text
        seen += _events(response)
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    assert [e["eventID"] for e in seen] == [e["eventID"] for e in every]


@pytest.mark.parametrize(
    "query",
    [
        "eventType=FooEvent",
        "GE_eventTime=yesterday",
        "LT_eventTime=2026-01-01T00:00:00",
        "perPage=0",
        "perPage=abc",
        "nextPageToken=%00%01",
        "EQ_bizStep=a||b",
        "EQ_bizStep=a&EQ_bizStep=b",
        "GE_eventTime=99999-01-01T00:00:00Z",
        "GE_eventTime=2026-13-01T00:00:00Z",
        "LT_eventTime=2026-01-01T00:00:00%2B25:00",
    ],
)
def test_bad_query_parameters_are_400s(http, query) -> None:
    response = http.get(f"/epcis/events?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


def test_an_unknown_query_parameter_is_refused(http) -> None:
    assert http.get("/epcis/events?MATCH_someEPC=x").status_code == 422


def test_a_cooperative_exports_its_own_lots(world, app, http) -> None:
    assert http.get("/epcis/cooperative/document").status_code == 401
    processor = _org(app, Role.PROCESSOR, world.system.processor.address)
    assert http.get("/epcis/cooperative/document", headers=processor).status_code == 403
    coop = _org(app, Role.COOPERATIVE, world.system.coop.address)
    response = http.get("/epcis/cooperative/document", headers=coop)
    assert response.status_code == 200, response.text
    validate_text(response.text)
    events = _events(response)
    harvested = {
        q["epcClass"] for e in events if e.get("action") == "ADD" for q in e["quantityList"]
    }
    assert harvested == {ids.lot_uri(x) for x in [*world.leaves, world.lone]}
    assert ids.lot_uri(world.blend) not in response.text  # the processor's lot, not theirs
    empty = http.get(
        "/epcis/cooperative/document",
        params={"LT_eventTime": "2000-01-01T00:00:00+08:00"},
        headers=coop,
    )
    assert _events(empty) == []
    bad = http.get("/epcis/cooperative/document?GE_eventTime=soon", headers=coop)
    assert bad.status_code == 400


def test_members_personal_data_never_appears(world, app, http) -> None:
    """Names, national ids and plot labels the cooperative keeps are in no EPCIS answer."""
    coop_id, coop = _org_with_id(app, Role.COOPERATIVE, world.system.coop.address)
    personal = []
    with Session(app.state.engine) as session:
        for i, (farmer, plot) in enumerate(
            zip(world.system.farmers, world.system.plots, strict=True)
        ):
            name, national, label = f"王小茶{i}", f"11010119900101{i:03d}X", f"东坡茶园{i}"
            personal += [name, national, label]
            session.add(
                Farmer(farmer_id="0x" + farmer.hex(), cooperative_id=coop_id, name=name,
                       national_id=national)
            )  # fmt: skip
            session.add(
                Plot(plot_id="0x" + plot.hex(), farmer_id="0x" + farmer.hex(),
                     cooperative_id=coop_id, label=label, area_centi_mu=250)
            )  # fmt: skip
        session.commit()
    answers = [
        http.get(f"/epcis/lots/0x{lot.hex()}/document").text
        for lot in (world.blend, world.made[1], world.lone)
    ]
    answers += [
        http.get("/epcis/events", params={"perPage": "1000"}).text,
        http.get("/epcis/cooperative/document", headers=coop).text,
    ]
    for text in answers:
        for value in personal:
            assert value not in text
        for farmer in world.system.farmers:
            assert farmer.hex() not in text


def test_a_range_too_big_for_one_document_is_refused(world, app, http, monkeypatch) -> None:
    from api.epcis import routes

    coop = _org(app, Role.COOPERATIVE, world.system.coop.address)
    monkeypatch.setattr(routes, "MAX_EXPORT_EVENTS", 2)
    response = http.get("/epcis/cooperative/document", headers=coop)
    assert response.status_code == 400 and "shorter range" in response.json()["detail"]
    monkeypatch.setattr(routes, "MAX_EXPORT_EVENTS", 8)  # exactly the coop's events
    assert len(_events(http.get("/epcis/cooperative/document", headers=coop))) == 8


def test_the_largest_page_token_is_an_empty_page(http) -> None:
    from traceability.epcis.query import page_token

    last = page_token((2**63 - 1, 999_999_999))
    response = http.get("/epcis/events", params={"nextPageToken": last})
    assert response.status_code == 200 and _events(response) == []
    assert "Link" not in response.headers
    too_far = page_token((2**63, 0))
    assert http.get("/epcis/events", params={"nextPageToken": too_far}).status_code == 400

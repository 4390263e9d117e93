"""Public trace: JSON, page and QR code for a lot, with no farmer identifiers."""

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.core.models import Organisation, Role
from api.main import create_app
from indexer.seasons import season_of
from tests._fixtures import client_for
from tests.traceability._system import TX_GAS, build_system, harvest_gas
from traceability.ids import lot_id


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """A made-tea lot from two harvests, attested, and a recalled sibling lineage."""
    data_dir = tmp_path_factory.mktemp("public")
    system = build_system(client_for("embedded", data_dir))
    leaves = system.harvest([40_000, 35_000])
    system.move(leaves, system.coop, system.processor)
    made = system.process(leaves, [9_000, 8_000])
    blend = system.process([made[0]], [8_500])[0]
    tt = system.tt
    system.inspector.transact(
        tt.functions.attestQuality((blend, 2, True, b"\x11" * 32)), gas=TX_GAS
    )
    more = system.harvest([20_000])
    system.move(more, system.coop, system.processor)
    other = system.process(more, [4_000])[0]
    system.inspector.transact(tt.functions.recall(other, b"\x22" * 32), gas=TX_GAS)
    return system, blend, other


@pytest.fixture
def http(traced, api_settings):
    system, _, _ = traced
    with TestClient(create_app(api_settings, chain=system.client)) as client:
        yield client


def test_trace_json_summarises_lineage(traced, http):
    system, blend, _ = traced
    body = http.get(f"/public/lots/0x{blend.hex()}/trace").json()
    assert body["kind"] == "made_tea" and body["grams"] == 8_500
    assert body["harvest_count"] == 2 and body["farmer_count"] == 2
    assert body["fresh_leaf_grams"] == 75_000
    assert body["processing_depth"] == 2
    assert body["cooperatives"] == [system.coop.address]
    assert body["attestations"][0]["passed"] is True
    assert body["recalled"] is False
    assert len(body["tree"]["inputs"][0]["inputs"]) == 2


def test_no_farmer_identifiers_are_published(traced, http):
    system, blend, _ = traced
    text = http.get(f"/public/lots/0x{blend.hex()}/trace").text
    page = http.get(f"/trace/0x{blend.hex()}").text
    for farmer in system.farmers + system.plots:
        assert farmer.hex() not in text and farmer.hex() not in page


def test_recall_is_shown(traced, http):
    _, _, recalled = traced
    assert http.get(f"/public/lots/0x{recalled.hex()}/trace").json()["recalled"] is True
    assert 'id="recall"' in http.get(f"/trace/0x{recalled.hex()}").text


def test_page_has_lineage_and_qr(traced, http):
    _, blend, _ = traced
    page = http.get(f"/trace/0x{blend.hex()}")
    assert page.status_code == 200
    assert 'id="lineage"' in page.text and "<svg" in page.text
    assert "茶叶溯源" in page.text and "Tea lot trace" in page.text
    qr = http.get(f"/public/lots/0x{blend.hex()}/qr.svg")
    assert qr.headers["content-type"].startswith("image/svg+xml") and "<svg" in qr.text


def test_the_page_names_cooperatives_and_grades_for_people(traced, api_settings):
    system, blend, _ = traced
    app = create_app(api_settings, chain=system.client)
    with Session(app.state.engine) as session:
        coop = Organisation(name="恩施玉露合作社", role=Role.COOPERATIVE,
                            chain_address=system.coop.address)  # fmt: skip
        session.add(coop)
        session.commit()
    with TestClient(app) as http:
        page = http.get(f"/trace/0x{blend.hex()}").text
    cooperatives = page.split('id="cooperatives"')[1].split("</ul>")[0]
    assert "恩施玉露合作社" in cooperatives and system.coop.address not in cooperatives
    assert "grade</span> 1<" not in page and ("特级 special" in page or "一级 first" in page)


def test_links_follow_the_address_the_service_is_reached_at(traced, api_settings):
    system, blend, _ = traced
    lot = f"0x{blend.hex()}"
    app = create_app(api_settings, chain=system.client)
    with TestClient(app, base_url="http://tea.example:8123") as other_port:
        page = other_port.get(f"/trace/{lot}").text
    assert f"http://tea.example:8123/trace/{lot}" in page and ":8000" not in page
    configured = api_settings.model_copy(update={"public_base_url": "https://trace.example/"})
    with TestClient(create_app(configured, chain=system.client)) as proxied:
        page = proxied.get(f"/trace/{lot}").text
    assert f"https://trace.example/trace/{lot}" in page, "a configured public URL wins"


def test_unknown_and_malformed_lots(http):
    assert http.get(f"/public/lots/0x{'ab' * 32}/trace").status_code == 404
    assert http.get("/public/lots/0x1234/trace").status_code == 422
    assert http.get(f"/public/lots/0x{'zz' * 32}/trace").status_code == 422
    assert http.get(f"/trace/0x{'ab' * 32}").status_code == 404


@pytest.mark.parametrize(
    ("picked_utc", "season"),
    [
        # 04:00 on June 1st in China: summer there, though still May 31st in UTC.
        ("2026-05-31T20:00:00+00:00", "2026-summer"),
        # January belongs to the winter that began the December before.
        ("2026-01-15T12:00:00+00:00", "2025-winter"),
    ],
)
def test_trace_seasons_are_china_time_like_the_profiles(traced, http, picked_utc, season):
    system, _, _ = traced
    picked = int(datetime.fromisoformat(picked_utc).timestamp())
    record = system.harvest_tuple(0, 5_000, picked_at=picked)
    system.coop.transact(system.tt.functions.recordHarvests([record]), gas=harvest_gas(1))
    lot = lot_id(system.coop.address, record[5])
    body = http.get(f"/public/lots/0x{lot.hex()}/trace").json()
    assert body["seasons"] == [season] == [season_of(picked)]

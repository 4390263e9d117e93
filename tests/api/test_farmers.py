"""Farmer routes: own record, consents for lenders signed with the farmer's key and relayed.

Success, 401, 403 (wrong role, another farmer's record), 404 and 422 per route, on a real
SQLite database and the embedded EVM (one world per module, see test_cooperatives).
"""

from __future__ import annotations

import time

import pytest

from api.core.chain import org_account
from api.core.models import Role
from tests.api.test_cooperatives import Org, World, resident_id, world  # noqa: F401
from traceability.service import RecordingService


@pytest.fixture(scope="module")
def coop(world) -> Org:  # noqa: F811
    return world.org(Role.COOPERATIVE, "Enshi Yulu Cooperative")


@pytest.fixture
def farmer(world, coop) -> tuple[Org, dict]:  # noqa: F811
    """A new farmer organisation and the member record whose wallet it is."""
    org = world.org(Role.FARMER, f"farmer {time.time_ns()}")
    record = world.farmer(coop, farmer_org_id=org.id, name="周九")
    return org, record


@pytest.fixture(scope="module")
def lenders(world) -> list[Org]:  # noqa: F811
    return [world.org(Role.LENDER, "Rural Credit Union"), world.org(Role.LENDER, "Postal Bank")]


def _consent_registry(world: World):  # noqa: F811
    return world.chain.contract("ConsentRegistry")


def test_my_record(world, coop, farmer):  # noqa: F811
    org, record = farmer
    me = world.http.get("/farmers/me", headers=org.headers)
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["farmer_id"] == record["farmer_id"] and body["wallet"] == org.address
    assert body["cooperative_id"] == coop.id and body["cooperative_name"] == coop.name
    assert body["name"] == "周九" and body["active"] is True
    assert body["national_id_masked"].count("*") == 10
    stranger = world.org(Role.FARMER, "farmer without a record")
    assert world.http.get("/farmers/me", headers=stranger.headers).status_code == 404
    assert world.http.get("/farmers/me").status_code == 401
    assert world.http.get("/farmers/me", headers=coop.headers).status_code == 403


def test_record_by_id_is_only_ones_own(world, coop, farmer):  # noqa: F811
    org, record = farmer
    mine = world.http.get(f"/farmers/{record['farmer_id']}", headers=org.headers)
    assert mine.status_code == 200 and mine.json()["farmer_id"] == record["farmer_id"]
    someone = world.farmer(coop)["farmer_id"]
    assert world.http.get(f"/farmers/{someone}", headers=org.headers).status_code == 403
    unknown = f"/farmers/0x{'ab' * 32}"
    assert world.http.get(unknown, headers=org.headers).status_code == 404
    assert world.http.get("/farmers/0x12", headers=org.headers).status_code == 422
    assert world.http.get(f"/farmers/{record['farmer_id']}").status_code == 401
    lender = world.org(Role.LENDER, "Rural Credit Union")
    url = f"/farmers/{record['farmer_id']}"
    assert world.http.get(url, headers=lender.headers).status_code == 403


def test_grant_list_and_revoke_consents(world, farmer, lenders):  # noqa: F811
    org, record = farmer
    fid = bytes.fromhex(record["farmer_id"][2:])
    registry = _consent_registry(world)
    first, second = lenders
    granted = world.http.post(
        "/farmers/me/consents",
        json={"lender_org_id": first.id, "days": 90, "farmer_id": "0x" + "00" * 32},
        headers=org.headers,
    )
    assert granted.status_code == 201, granted.text
    body = granted.json()
    assert body["farmer_id"] == record["farmer_id"] and body["lender_address"] == first.address
    assert abs(body["expires_at"] - (time.time() + 90 * 86_400)) < 120
    assert registry.functions.hasConsent(fid, first.address).call()
    # relayed: the farmer organisation has no gas and needs none
    assert world.chain.w3.eth.get_balance(org.address) == 0
    sent = world.chain.w3.eth.get_transaction(body["transaction"])
    assert sent["from"] != org.address
    again = {"lender_org_id": second.id}
    assert (
        world.http.post("/farmers/me/consents", json=again, headers=org.headers).status_code == 201
    )
    listed = world.http.get("/farmers/me/consents", headers=org.headers).json()
    assert listed["total"] == 2
    assert [c["lender_org_id"] for c in listed["items"]] == [first.id, second.id]
    assert listed["items"][0]["lender_name"] == first.name and listed["items"][0]["active"]
    page = world.http.get("/farmers/me/consents?limit=1&offset=1", headers=org.headers).json()
    assert page["total"] == 2 and [c["lender_org_id"] for c in page["items"]] == [second.id]
    revoked = world.http.delete(f"/farmers/me/consents/{first.id}", headers=org.headers)
    assert revoked.status_code == 200 and revoked.json()["expires_at"] == 0
    assert not registry.functions.hasConsent(fid, first.address).call()
    after = world.http.get("/farmers/me/consents", headers=org.headers).json()
    assert [c["lender_org_id"] for c in after["items"]] == [second.id]
    twice = world.http.delete(f"/farmers/me/consents/{first.id}", headers=org.headers)
    assert twice.status_code == 409 and twice.json()["error"] == "ConsentNotGranted"
    assert twice.json()["args"]["lender"] == first.address


def test_consent_routes_refuse_bad_requests(world, coop, farmer, lenders):  # noqa: F811
    org, _ = farmer
    url = "/farmers/me/consents"
    lender = lenders[0]
    assert world.http.post(url, json={"lender_org_id": lender.id}).status_code == 401
    assert world.http.get(url).status_code == 401
    assert world.http.delete(f"{url}/{lender.id}").status_code == 401
    for headers in (coop.headers, lender.headers):
        assert (
            world.http.post(url, json={"lender_org_id": lender.id}, headers=headers).status_code
            == 403
        )
        assert world.http.get(url, headers=headers).status_code == 403
        assert world.http.delete(f"{url}/{lender.id}", headers=headers).status_code == 403
    unknown = {"lender_org_id": 99_999}
    assert world.http.post(url, json=unknown, headers=org.headers).status_code == 404
    assert world.http.delete(f"{url}/99999", headers=org.headers).status_code == 404
    assert world.http.delete(f"{url}/{coop.id}", headers=org.headers).status_code == 404
    bad_bodies = (
        {},
        {"lender_org_id": coop.id},
        {"lender_org_id": lender.id, "days": 0},
        {"lender_org_id": lender.id, "days": 1_000},
        {"lender_org_id": "bank"},
    )
    for bad in bad_bodies:
        assert world.http.post(url, json=bad, headers=org.headers).status_code == 422, bad
    assert world.http.delete(f"{url}/bank", headers=org.headers).status_code == 422
    assert world.http.get(f"{url}?limit=0", headers=org.headers).status_code == 422
    # a farmer organisation that is nobody's wallet has no consents to give
    stranger = world.org(Role.FARMER, "farmer without a record")
    body = {"lender_org_id": lender.id}
    assert world.http.post(url, json=body, headers=stranger.headers).status_code == 404
    assert world.http.get(url, headers=stranger.headers).status_code == 404


def test_consent_needs_the_wallet_on_chain_to_be_the_farmer_organisation(
    world,  # noqa: F811
    coop,
    farmer,
    lenders,
):
    org, record = farmer
    # the cooperative pointed the wallet elsewhere on chain (outside this service)
    with world.session() as session:
        from api.core.models import Organisation

        coop_row = session.get(Organisation, coop.id)
    service = RecordingService(world.chain, org_account(world.settings, coop_row))
    service.set_farmer_wallet(record["farmer_id"], world.chain.accounts[7].address)
    refused = world.http.post(
        "/farmers/me/consents", json={"lender_org_id": lenders[0].id}, headers=org.headers
    )
    assert refused.status_code == 409 and "ask your cooperative" in refused.json()["detail"]


def test_consents_survive_erasure_of_personal_data(world, coop, farmer, lenders):  # noqa: F811
    org, record = farmer
    erased = world.http.delete(
        f"/cooperatives/farmers/{record['farmer_id']}/personal-data", headers=coop.headers
    )
    assert erased.status_code == 200
    me = world.http.get("/farmers/me", headers=org.headers).json()
    assert me["personal_data_erased"] is True and me["name"] is None
    assert me["farmer_id"] == record["farmer_id"]
    granted = world.http.post(
        "/farmers/me/consents", json={"lender_org_id": lenders[1].id}, headers=org.headers
    )
    assert granted.status_code == 201


def test_loan_offer_routes_refuse_bad_requests(world, coop, farmer):  # noqa: F811
    # The whole flow (offer, typed data, signature, loan): tests/api/test_lenders.py.
    org, _ = farmer
    url = "/farmers/me/offers"
    assert world.http.get(url).status_code == 401
    assert world.http.get(url, headers=coop.headers).status_code == 403
    stranger = world.org(Role.FARMER, "farmer without a record")
    assert world.http.get(url, headers=stranger.headers).status_code == 404
    mine = world.http.get(url, headers=org.headers)
    assert mine.status_code == 200 and mine.json() == []
    unknown = f"{url}/{'0' * 32}"
    assert world.http.get(unknown, headers=org.headers).status_code == 404
    assert world.http.get(f"{url}/short", headers=org.headers).status_code == 404
    accept = f"{unknown}/acceptance"
    good = {"nonce": 0, "deadline": 1, "signature": "0x" + "11" * 65}
    assert world.http.post(accept, json=good).status_code == 401
    assert world.http.post(accept, json=good, headers=coop.headers).status_code == 403
    assert world.http.post(accept, json=good, headers=org.headers).status_code == 404
    for bad in (
        {},
        {**good, "signature": "0x12"},
        {**good, "nonce": -1},
        {**good, "deadline": "soon"},
        {**good, "signature": "11" * 65},
    ):
        assert world.http.post(accept, json=bad, headers=org.headers).status_code == 422, bad

"""Admin routes: organisations and keys (success, 401, 403, 404, 422)."""

import json

import pytest

from api.core.models import Role
from chain.accounts import load_keystore
from tests.api.conftest import DATABASES, PASSWORD, both_databases


@pytest.fixture(params=DATABASES)
def api_database_url(request, tmp_path, pg_databases) -> str:
    """Every test of this module on SQLite and on PostgreSQL."""
    return both_databases(request, tmp_path, pg_databases)


def test_create_organisation_returns_key_once(client, admin_headers, api_settings):
    body = {"name": "Enshi Tea Cooperative", "role": "cooperative"}
    response = client.post("/admin/organisations", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    created = response.json()
    org = created["organisation"]
    assert org["role"] == "cooperative" and org["active"] is True
    secret = created["api_key"]["key"]
    assert secret.startswith("tl_")
    # the new key works, and is never shown again
    me = client.get("/admin/organisations", headers={"X-API-Key": secret})
    assert me.status_code == 403
    keys = client.get(f"/admin/organisations/{org['id']}/keys", headers=admin_headers).json()
    assert secret not in json.dumps(keys)
    # the service holds the organisation's chain key, encrypted
    path = api_settings.keystore_dir / f"org-{org['id']}.json"
    assert load_keystore(path, PASSWORD).address == org["chain_address"]


def test_server_sets_id_status_and_address(client, admin_headers):
    body = {
        "name": "Sneaky",
        "role": "lender",
        "id": 999,
        "active": False,
        "chain_address": "0x" + "11" * 20,
    }
    response = client.post("/admin/organisations", json=body, headers=admin_headers)
    org = response.json()["organisation"]
    assert org["id"] != 999 and org["active"] is True
    assert org["chain_address"] != "0x" + "11" * 20


def test_requires_key(client):
    response = client.get("/admin/organisations")
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    bad = client.get("/admin/organisations", headers={"X-API-Key": "tl_nope_nope"})
    assert bad.status_code == 401


def test_wrong_role_is_forbidden(client, make_org):
    _, lender = make_org(Role.LENDER, "bank")
    response = client.post(
        "/admin/organisations", json={"name": "x", "role": "farmer"}, headers=lender
    )
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_unknown_organisation_is_404(client, admin_headers):
    assert client.post("/admin/organisations/4242/keys", headers=admin_headers).status_code == 404
    assert client.delete("/admin/keys/4242", headers=admin_headers).status_code == 404


def test_bad_body_is_422(client, admin_headers):
    for body in ({"name": "", "role": "lender"}, {"name": "x", "role": "pirate"}, {}):
        response = client.post("/admin/organisations", json=body, headers=admin_headers)
        assert response.status_code == 422, body


def test_revoked_key_stops_working_at_once(client, admin_headers, make_org):
    org_id, headers = make_org(Role.ADMIN, "second admin")
    assert client.get("/admin/organisations", headers=headers).status_code == 200
    keys = client.get(f"/admin/organisations/{org_id}/keys", headers=admin_headers).json()
    revoked = client.delete(f"/admin/keys/{keys[0]['id']}", headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get("/admin/organisations", headers=headers).status_code == 401


def test_rotation_adds_a_working_key(client, admin_headers, make_org):
    org_id, _ = make_org(Role.ADMIN, "rotating")
    new = client.post(f"/admin/organisations/{org_id}/keys", headers=admin_headers).json()
    assert client.get("/admin/organisations", headers={"X-API-Key": new["key"]}).status_code == 200


def test_list_is_paginated(client, admin_headers, make_org):
    for i in range(5):
        make_org(Role.FARMER, f"farmer {i}")
    page = client.get("/admin/organisations?limit=2&offset=1", headers=admin_headers).json()
    assert page["total"] == 6 and page["limit"] == 2 and len(page["items"]) == 2
    assert client.get("/admin/organisations?limit=0", headers=admin_headers).status_code == 422
    assert client.get("/admin/organisations?limit=501", headers=admin_headers).status_code == 422


def test_provision_grants_role_and_gas_once(client, app, admin_headers, tmp_path):
    from tests._fixtures import client_for
    from traceability.contracts import COOPERATIVE_ROLE, deploy_traceability

    chain = client_for("embedded", tmp_path / "chain")
    chain.settings.data_dir.mkdir(parents=True)
    deploy_traceability(chain)
    app.state.chain = chain
    body = {"name": "Coop", "role": "cooperative"}
    org = client.post("/admin/organisations", json=body, headers=admin_headers).json()
    url = f"/admin/organisations/{org['organisation']['id']}/provision"
    first = client.post(url, headers=admin_headers).json()
    address = org["organisation"]["chain_address"]
    assert first["role_granted"] == "cooperative" and len(first["transactions"]) == 2
    tea = chain.contract("TeaTrace")
    assert tea.functions.hasRole(COOPERATIVE_ROLE, address).call()
    assert chain.w3.eth.get_balance(address) == first["funded_wei"] > 0
    again = client.post(url, headers=admin_headers).json()
    assert again["transactions"] == [] and again["role_granted"] is None
    assert (
        client.post("/admin/organisations/999/provision", headers=admin_headers).status_code == 404
    )

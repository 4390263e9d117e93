"""Admin routes that act on chain: provisioning an organisation's roles, approving merchants.

Provisioning grants each organisation role's TeaTrace and lending roles once; merchant
approvals are sent by the registrar account (development account 6), never by the admin.
Success, 401, 403, 404, 409 and 422, each on SQLite and PostgreSQL, on one embedded EVM per
module with every contract deployed as `tealedger deploy` does on a development chain.
"""

from __future__ import annotations

import pytest
from eth_utils import keccak

from api.admin.chain_roles import CHAIN_ROLES, registrar_sender
from api.core.models import Role
from chain.client import ChainClient
from lending.loans.contracts import REGISTRAR_ROLE
from tealedger.system import deploy_system
from tests._fixtures import client_for
from tests.api.conftest import DATABASES, both_databases
from traceability import contracts
from traceability.contracts import DEFAULT_ADMIN_ROLE, deploy_traceability


def role(name: str) -> bytes:
    """keccak256 of a name: an OpenZeppelin role id, or a merchant category id."""
    return keccak(text=name)


# A development account that is nobody's organisation (a second admin in one test).
HELPER_ACCOUNT = 7
DAY = 86_400

# TeaTrace role of each organisation role that has one (provisioning granted these alone once).
TEA_TRACE_ROLES = {
    Role.COOPERATIVE: contracts.COOPERATIVE_ROLE,
    Role.PROCESSOR: contracts.PROCESSOR_ROLE,
    Role.DISTRIBUTOR: contracts.DISTRIBUTOR_ROLE,
    Role.INSPECTOR: contracts.INSPECTOR_ROLE,
}
EXPECTED_ROLES = {
    Role.LENDER: ["LoanFactory.LENDER_ROLE"],
    Role.DISTRIBUTOR: ["TeaTrace.DISTRIBUTOR_ROLE", "SaleSettlement.DISTRIBUTOR_ROLE"],
    Role.COOPERATIVE: ["TeaTrace.COOPERATIVE_ROLE", "SaleSettlement.SHARE_COMMITTER_ROLE"],
    Role.PROCESSOR: ["TeaTrace.PROCESSOR_ROLE", "SaleSettlement.SHARE_COMMITTER_ROLE"],
    Role.MERCHANT: [],
}


@pytest.fixture(params=DATABASES)
def api_database_url(request, tmp_path, pg_databases) -> str:
    """Every test of this module on SQLite and on PostgreSQL."""
    return both_databases(request, tmp_path, pg_databases)


@pytest.fixture(scope="module")
def system_chain(tmp_path_factory) -> ChainClient:
    """One embedded EVM per module with every contract and the development roles and
    categories (organisations are new keys in every test, so tests do not collide)."""
    chain = client_for("embedded", tmp_path_factory.mktemp("roles") / "chain")
    chain.settings.data_dir.mkdir(parents=True)
    deploy_system(chain)
    return chain


@pytest.fixture
def chain(app, system_chain) -> ChainClient:
    """The module's chain, as the app's chain."""
    app.state.chain = system_chain
    return system_chain


def _org(client, admin_headers, role_: Role, name: str = "org") -> tuple[int, str, dict]:
    """Create an organisation through the API: (id, chain address, auth headers)."""
    body = {"name": name, "role": role_.value}
    made = client.post("/admin/organisations", json=body, headers=admin_headers)
    assert made.status_code == 201, made.text
    created = made.json()
    org = created["organisation"]
    return org["id"], org["chain_address"], {"X-API-Key": created["api_key"]["key"]}


def _holds(chain: ChainClient, label: str, address: str) -> bool:
    """Whether `address` holds the role named `Contract.ROLE`."""
    contract, name = label.split(".")
    return chain.contract(contract).functions.hasRole(role(name), address).call()


def _registrar_holds(chain: ChainClient, holds: bool) -> None:
    """Make the registrar account (development account 6) hold REGISTRAR_ROLE, or not."""
    registry = chain.contract("MerchantRegistry").functions
    admin, registrar = chain.sender(0), registrar_sender(chain).address
    held = registry.hasRole(REGISTRAR_ROLE, registrar).call()
    if holds and not held:
        admin.transact(registry.grantRole(REGISTRAR_ROLE, registrar))
    elif held and not holds:
        admin.transact(registry.revokeRole(REGISTRAR_ROLE, registrar))


def _now(chain: ChainClient) -> int:
    """The latest block's timestamp."""
    return chain.w3.eth.get_block("latest")["timestamp"]


def _approvals_url(org_id: int) -> str:
    return f"/admin/organisations/{org_id}/merchant-approvals"


# ------------------------------------------------------------------------------ provision


def test_role_map_keeps_the_tea_trace_roles():
    for org_role, role_id in TEA_TRACE_ROLES.items():
        tea = [r for r in CHAIN_ROLES[org_role] if r.contract == "TeaTrace"]
        assert [r.role_id for r in tea] == [role_id], org_role


def test_provision_grants_every_role_once(client, chain, admin_headers):
    for org_role, expected in EXPECTED_ROLES.items():
        org_id, address, _ = _org(client, admin_headers, org_role, org_role.value)
        url = f"/admin/organisations/{org_id}/provision"
        first = client.post(url, headers=admin_headers)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["roles_granted"] == expected and body["roles_not_granted"] == {}, org_role
        tea = org_role.value if org_role in TEA_TRACE_ROLES else None
        assert body["role_granted"] == tea
        assert len(body["transactions"]) == 1 + len(expected)  # gas, then one grant per role
        assert all(_holds(chain, label, address) for label in expected), org_role
        again = client.post(url, headers=admin_headers).json()
        assert again["roles_granted"] == [] and again["transactions"] == [], org_role
        assert again["role_granted"] is None and again["funded_wei"] == 0


def test_provision_skips_a_role_already_held(client, chain, admin_headers):
    org_id, address, _ = _org(client, admin_headers, Role.COOPERATIVE)
    tea = chain.contract("TeaTrace").functions
    chain.sender(0).transact(tea.grantRole(role("COOPERATIVE_ROLE"), address))
    body = client.post(f"/admin/organisations/{org_id}/provision", headers=admin_headers).json()
    assert body["roles_granted"] == ["SaleSettlement.SHARE_COMMITTER_ROLE"]
    assert body["role_granted"] is None  # the TeaTrace role was not granted by this call


def test_provision_refused_when_the_platform_cannot_grant(client, chain, admin_headers):
    org_id, address, _ = _org(client, admin_headers, Role.LENDER)
    factory = chain.contract("LoanFactory").functions
    platform, helper = chain.sender(0), chain.sender(HELPER_ACCOUNT)
    # Hand the factory's admin role to the helper for the length of the test.
    platform.transact(factory.grantRole(DEFAULT_ADMIN_ROLE, helper.address))
    platform.transact(factory.renounceRole(DEFAULT_ADMIN_ROLE, platform.address))
    try:
        refused = client.post(f"/admin/organisations/{org_id}/provision", headers=admin_headers)
    finally:
        helper.transact(factory.grantRole(DEFAULT_ADMIN_ROLE, platform.address))
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "does not hold the admin role of LoanFactory.LENDER_ROLE" in detail
    assert "nothing was sent" in detail
    assert chain.w3.eth.get_balance(address) == 0  # not even the gas
    assert not _holds(chain, "LoanFactory.LENDER_ROLE", address)


def test_provision_names_roles_of_contracts_not_deployed(client, app, admin_headers, tmp_path):
    traceability_only = client_for("embedded", tmp_path / "chain")
    traceability_only.settings.data_dir.mkdir(parents=True)
    deploy_traceability(traceability_only)
    app.state.chain = traceability_only
    lender_id, _, _ = _org(client, admin_headers, Role.LENDER, "bank")
    coop_id, _, _ = _org(client, admin_headers, Role.COOPERATIVE, "coop")
    lender = client.post(f"/admin/organisations/{lender_id}/provision", headers=admin_headers)
    assert lender.status_code == 200, lender.text
    assert lender.json()["roles_granted"] == []
    assert lender.json()["roles_not_granted"] == {
        "LoanFactory.LENDER_ROLE": "LoanFactory is not deployed on this chain"
    }
    coop = client.post(f"/admin/organisations/{coop_id}/provision", headers=admin_headers).json()
    assert coop["roles_granted"] == ["TeaTrace.COOPERATIVE_ROLE"]
    assert list(coop["roles_not_granted"]) == ["SaleSettlement.SHARE_COMMITTER_ROLE"]


# ---------------------------------------------------------------------- merchant approvals


def test_merchant_approval_and_revocation_on_chain(client, chain, admin_headers):
    _registrar_holds(chain, holds=True)
    merchant_id, address, _ = _org(client, admin_headers, Role.MERCHANT, "Green Leaf")
    registry = chain.contract("MerchantRegistry").functions
    until = _now(chain) + 30 * DAY
    body = {"categories": ["fertilizer", "labour service", "fertilizer"], "valid_until": until}
    approved = client.post(_approvals_url(merchant_id), json=body, headers=admin_headers)
    assert approved.status_code == 200, approved.text
    result = approved.json()
    assert result["merchant"] == address and result["valid_until"] == until
    assert [a["category"] for a in result["approvals"]] == ["fertilizer", "labour service"]
    assert len(result["transactions"]) == 2
    for name in ("fertilizer", "labour service"):
        assert registry.isApproved(address, role(name)).call()
        assert registry.approval(address, role(name)).call()[1] == until
    assert not registry.isApproved(address, role("seedlings")).call()
    # Already approved until then: nothing sent; a later expiry renews only what it extends.
    again = client.post(_approvals_url(merchant_id), json=body, headers=admin_headers).json()
    assert again["transactions"] == [] and all(a["transaction"] is None for a in again["approvals"])
    shorter = {"categories": ["fertilizer", "seedlings"], "valid_until": until - DAY}
    mixed = client.post(_approvals_url(merchant_id), json=shorter, headers=admin_headers).json()
    assert [a["expires_at"] for a in mixed["approvals"]] == [until, until - DAY]
    assert [a["transaction"] is None for a in mixed["approvals"]] == [True, False]
    assert registry.approval(address, role("fertilizer")).call()[1] == until  # never shortened

    url = f"{_approvals_url(merchant_id)}/fertilizer"
    revoked = client.delete(url, headers=admin_headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["category_id"] == "0x" + role("fertilizer").hex()
    assert not registry.isApproved(address, role("fertilizer")).call()
    assert registry.isApproved(address, role("labour service")).call()
    twice = client.delete(url, headers=admin_headers)
    assert twice.status_code == 404
    assert "no live approval for 'fertilizer'" in twice.json()["detail"]
    # A revoked approval is approved again by the next request.
    renewed = client.post(_approvals_url(merchant_id), json=body, headers=admin_headers).json()
    assert len(renewed["transactions"]) == 1
    assert registry.isApproved(address, role("fertilizer")).call()


def test_merchant_approval_errors(client, chain, admin_headers):
    _registrar_holds(chain, holds=True)
    merchant_id, address, _ = _org(client, admin_headers, Role.MERCHANT, "Green Leaf")
    lender_id, _, _ = _org(client, admin_headers, Role.LENDER, "bank")
    url = _approvals_url(merchant_id)
    future = _now(chain) + DAY
    body = {"categories": ["fertilizer"], "valid_until": future}

    unknown = client.post(_approvals_url(4242), json=body, headers=admin_headers)
    assert unknown.status_code == 404 and "organisation 4242" in unknown.json()["detail"]
    gone = client.delete(f"{_approvals_url(4242)}/fertilizer", headers=admin_headers)
    assert gone.status_code == 404
    lender = client.post(_approvals_url(lender_id), json=body, headers=admin_headers)
    assert lender.status_code == 409
    assert "is a lender, not a merchant" in lender.json()["detail"]
    lender_delete = client.delete(f"{_approvals_url(lender_id)}/fertilizer", headers=admin_headers)
    assert lender_delete.status_code == 409

    past = client.post(url, json={**body, "valid_until": _now(chain)}, headers=admin_headers)
    assert past.status_code == 422 and "is not in the future" in past.json()["detail"][0]["msg"]
    unregistered = {**body, "categories": ["fertilizer", "tea bushes", "Fertilizer"]}
    refused = client.post(url, json=unregistered, headers=admin_headers)
    assert refused.status_code == 422
    (problem,) = refused.json()["detail"]
    assert problem["msg"] == "not a registered category: 'tea bushes', 'Fertilizer'"
    no_category = client.delete(f"{url}/tea%20bushes", headers=admin_headers)
    assert no_category.status_code == 404 and "not a registered" in no_category.json()["detail"]
    never = client.delete(f"{url}/seedlings", headers=admin_headers)
    assert never.status_code == 404 and "no live approval" in never.json()["detail"]

    for bad in (
        {"categories": [], "valid_until": future},
        {"categories": ["fertilizer"] * 17, "valid_until": future},
        {"categories": [""], "valid_until": future},
        {"categories": ["x" * 101], "valid_until": future},
        {"categories": ["fertilizer"], "valid_until": 0},
        {"categories": ["fertilizer"], "valid_until": 2**64},
        {"categories": ["fertilizer"], "valid_until": "tomorrow"},
        {"categories": ["fertilizer"]},
        {},
    ):
        response = client.post(url, json=bad, headers=admin_headers)
        assert response.status_code == 422, bad
    assert client.delete(f"{url}/{'x' * 101}", headers=admin_headers).status_code == 422
    registry = chain.contract("MerchantRegistry").functions
    assert not registry.isApproved(address, role("fertilizer")).call()  # nothing got through


def test_merchant_approval_needs_the_registrar_role(client, chain, admin_headers):
    merchant_id, address, _ = _org(client, admin_headers, Role.MERCHANT, "Green Leaf")
    body = {"categories": ["fertilizer"], "valid_until": _now(chain) + DAY}
    _registrar_holds(chain, holds=True)
    assert client.post(_approvals_url(merchant_id), json=body, headers=admin_headers).is_success
    _registrar_holds(chain, holds=False)
    registrar = registrar_sender(chain).address
    expected = f"the registrar account {registrar} does not hold REGISTRAR_ROLE on MerchantRegistry"
    longer = {**body, "valid_until": body["valid_until"] + DAY}  # something left to send
    for response in (
        client.post(_approvals_url(merchant_id), json=longer, headers=admin_headers),
        client.delete(f"{_approvals_url(merchant_id)}/fertilizer", headers=admin_headers),
    ):
        assert response.status_code == 409
        assert response.json()["detail"].startswith(expected)
    registry = chain.contract("MerchantRegistry").functions
    assert registry.isApproved(address, role("fertilizer")).call()  # the revocation was refused


def test_chain_role_routes_are_admin_only(client, chain, admin_headers, make_org):
    merchant_id, _, merchant = _org(client, admin_headers, Role.MERCHANT)
    _, lender = make_org(Role.LENDER, "bank")
    body = {"categories": ["fertilizer"], "valid_until": _now(chain) + DAY}
    calls = (
        ("post", f"/admin/organisations/{merchant_id}/provision", None),
        ("post", _approvals_url(merchant_id), body),
        ("delete", f"{_approvals_url(merchant_id)}/fertilizer", None),
    )
    for method, url, json in calls:
        kwargs = {"json": json} if json else {}
        assert getattr(client, method)(url, **kwargs).status_code == 401, url
        for headers in (merchant, lender):
            forbidden = getattr(client, method)(url, headers=headers, **kwargs)
            assert forbidden.status_code == 403, url
            assert "admin" in forbidden.json()["detail"]

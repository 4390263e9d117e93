"""#22 goal 3: a profile read checks consent without a node call, and revocations still bite.

Two service processes on one database are two apps on the same database (each with its own
memory of the chain's answers); the chain and the database (SQLite and PostgreSQL) are real.
A revocation through the service refuses the very next read in both; one made directly on
chain refuses once indexed; an expired consent is refused; every read and refusal is logged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.core.chain import org_account
from api.core.consent_gate import ConsentGate
from api.core.models import Organisation, Role
from api.lenders.service import credit_store
from api.main import create_app
from tests.api.test_cooperatives import Org, World, world  # noqa: F401
from traceability.consent import ConsentService


@pytest.fixture(scope="module")
def coop(world) -> Org:  # noqa: F811
    return world.org(Role.COOPERATIVE, "Gate Cooperative")


@pytest.fixture(scope="module")
def lender(world) -> Org:  # noqa: F811
    return world.org(Role.LENDER, "Gate Rural Bank")


@pytest.fixture
def farmer(world, coop) -> tuple[Org, str]:  # noqa: F811
    """A new farmer organisation, its member record on chain and indexed: (org, farmer id)."""
    org = world.org(Role.FARMER, f"gate farmer {time.time_ns()}")
    record = world.farmer(coop, farmer_org_id=org.id, name="李四")
    world.index()
    return org, record["farmer_id"]


@pytest.fixture(scope="module")
def second(world) -> Iterator[TestClient]:  # noqa: F811
    """A second service process on the same database and chain (its own memory)."""
    app = create_app(world.settings, chain=world.chain)
    with TestClient(app) as http:
        yield http


def _read(http: TestClient, lender: Org, fid: str) -> int:
    return http.get(f"/lenders/farmers/{fid}/profile", headers=lender.headers).status_code


def _outcomes(world: World, fid: str) -> list[str]:  # noqa: F811
    log = credit_store(world.app.state.engine).access_log(fid)  # type: ignore[attr-defined]
    return [e.outcome.value for e in log]


def _on_chain(world: World, org: Org, fid: str, lender: Org, expires_at: int | None) -> None:  # noqa: F811
    """Grant (until `expires_at`) or revoke (None) directly on chain, not through the service:
    signed with the farmer organisation's key, relayed by the platform account."""
    consent = ConsentService(world.chain)
    wallet = _wallet(world, org)
    if expires_at is None:
        deadline, sig = consent.sign_revocation(wallet, fid, lender.address)
        consent.relay_revocation(world.chain.sender(0), fid, lender.address, deadline, sig)
    else:
        deadline, sig = consent.sign_grant(wallet, fid, lender.address, expires_at)
        consent.relay_grant(world.chain.sender(0), fid, lender.address, expires_at, deadline, sig)


def _wallet(world: World, org: Org):  # noqa: F811
    """The farmer organisation's keystore account."""
    with world.session() as session:
        return org_account(world.settings, session.get(Organisation, org.id))


def test_revocation_through_the_service_refuses_the_next_read_everywhere(
    world,  # noqa: F811
    farmer,
    lender,
    second,
):
    org, fid = farmer
    body = {"lender_org_id": lender.id, "days": 30}
    assert (
        world.http.post("/farmers/me/consents", json=body, headers=org.headers).status_code == 201
    )
    world.index()
    assert _read(world.http, lender, fid) == 200
    assert _read(second, lender, fid) == 200
    revoked = world.http.delete(f"/farmers/me/consents/{lender.id}", headers=org.headers)
    assert revoked.status_code == 200, revoked.text
    # not indexed yet: the revocation the service recorded refuses at once, in both processes
    assert _read(world.http, lender, fid) == 403
    assert _read(second, lender, fid) == 403
    world.index()
    assert _read(second, lender, fid) == 403
    # granted again through the service: readable at once, before and after indexing
    assert (
        world.http.post("/farmers/me/consents", json=body, headers=org.headers).status_code == 201
    )
    assert _read(second, lender, fid) == 200
    world.index()
    assert _read(world.http, lender, fid) == 200
    assert _outcomes(world, fid) == ["read", "read", "refused_no_consent", "refused_no_consent",
                                     "refused_no_consent", "read", "read"]  # fmt: skip


def test_revocation_on_chain_refuses_once_indexed(world, farmer, lender, second):  # noqa: F811
    org, fid = farmer
    expires = int(world.chain.w3.eth.get_block("latest")["timestamp"]) + 86_400
    _on_chain(world, org, fid, lender, expires)
    # not indexed: the chain is asked, and its yes remembered
    assert _read(second, lender, fid) == 200
    assert _read(second, lender, fid) == 200
    _on_chain(world, org, fid, lender, None)
    world.index()  # the follower's work: its revocation is newer than the remembered yes
    assert _read(second, lender, fid) == 403
    assert _read(world.http, lender, fid) == 403
    assert _outcomes(world, fid) == ["read", "read", "refused_no_consent", "refused_no_consent"]


def test_indexed_consent_needs_no_node_call(world, farmer, lender):  # noqa: F811
    org, fid = farmer
    body = {"lender_org_id": lender.id, "days": 30}
    assert (
        world.http.post("/farmers/me/consents", json=body, headers=org.headers).status_code == 201
    )
    world.index()

    class NoNode:
        """A chain client that fails if the gate touches it."""

        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the node was asked ({name})")

    gate = ConsentGate(world.app.state.engine, NoNode())  # type: ignore[arg-type, attr-defined]
    assert gate.has_consent(fid, lender.address)


def test_expired_consent_is_refused(world, farmer, lender):  # noqa: F811
    org, fid = farmer
    now = int(world.chain.w3.eth.get_block("latest")["timestamp"])
    # Long enough for the grant, an index and a read on a loaded machine (3 s was not, with
    # two test workers and PostgreSQL); the read after it waits for it to pass.
    expires = max(now, int(time.time())) + 12
    _on_chain(world, org, fid, lender, expires)
    world.index()
    assert _read(world.http, lender, fid) == 200
    time.sleep(max(0.0, expires - time.time()) + 1.5)
    assert _read(world.http, lender, fid) == 403
    world.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[attr-defined]
    world.index()
    assert _read(world.http, lender, fid) == 403
    assert _outcomes(world, fid) == ["read", "refused_no_consent", "refused_no_consent"]


def test_revocation_through_the_farmer_page_refuses_the_next_read(
    world,  # noqa: F811
    farmer,
    lender,
    second,
):
    org, fid = farmer
    body = {"lender_org_id": lender.id, "days": 30}
    assert (
        world.http.post("/farmers/me/consents", json=body, headers=org.headers).status_code == 201
    )
    world.index()
    assert _read(second, lender, fid) == 200
    page = TestClient(world.app)  # type: ignore[arg-type]
    assert page.post("/login", data={"api_key": org.key}, follow_redirects=False).status_code == 303
    confirm = page.get(f"/farmer/consents/{lender.id}/revoke")
    assert confirm.status_code == 200, confirm.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text)
    assert csrf is not None
    url = f"/farmer/consents/{lender.id}/revoke"
    done = page.post(url, data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert _read(second, lender, fid) == 403  # the other process, nothing indexed
    assert _read(world.http, lender, fid) == 403
    assert _outcomes(world, fid) == ["read", "refused_no_consent", "refused_no_consent"]

"""#18: consent deadlines and expiries come from the chain's clock, not the server's.

The demo moves a development chain forward (evm_increaseTime + evm_mine); a revocation signed
with a deadline from the server's clock was then already expired on chain, and the farmer could
not withdraw consent (409 ConsentSignatureExpired). This module's world runs on an anvil of its
own (the module's `anvil_node` overrides the session's), so moving its clock touches no other
test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from api.core.models import Role
from chain.nodes import ProcessNode
from tests._fixtures import start_node
from tests.api.test_cooperatives import World, world  # noqa: F401

DAY = 86_400


@pytest.fixture(scope="module")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNode]:
    """This module's own anvil: the test moves its clock."""
    node = start_node("anvil", tmp_path_factory.mktemp("anvil-clock"))
    yield node
    node.stop()


def _chain_now(world: World) -> int:  # noqa: F811
    return int(world.chain.w3.eth.get_block("latest")["timestamp"])


def _advance(world: World, seconds: int) -> None:  # noqa: F811
    """Move the node's clock forward as the demo does (evm_increaseTime + evm_mine)."""
    w3 = world.chain.w3
    if world.chain.settings.backend == "embedded":
        w3.testing.timeTravel(_chain_now(world) + seconds)
        return
    for method, params in (("evm_increaseTime", [seconds]), ("evm_mine", [])):
        reply = w3.provider.make_request(method, params)
        assert "error" not in reply, reply


def test_a_farmer_withdraws_consent_after_the_chain_moved_ahead(world: World):  # noqa: F811
    coop = world.org(Role.COOPERATIVE, "Enshi Yulu Cooperative")
    lender = world.org(Role.LENDER, "Rural Credit Union")
    org = world.org(Role.FARMER, f"farmer {time.time_ns()}")
    world.farmer(coop, farmer_org_id=org.id, name="周九")
    url = "/farmers/me/consents"
    granted = world.http.post(url, json={"lender_org_id": lender.id}, headers=org.headers)
    assert granted.status_code == 201, granted.text

    _advance(world, 200 * DAY)
    assert _chain_now(world) > time.time() + 199 * DAY

    listed = world.http.get(url, headers=org.headers).json()
    assert [c["active"] for c in listed["items"]] == [True]  # 365 days from the grant
    revoked = world.http.delete(f"{url}/{lender.id}", headers=org.headers)
    assert revoked.status_code == 200, revoked.text  # was 409 ConsentSignatureExpired
    assert world.http.get(url, headers=org.headers).json()["total"] == 0

    again = world.http.post(url, json={"lender_org_id": lender.id, "days": 30}, headers=org.headers)
    assert again.status_code == 201, again.text
    assert abs(again.json()["expires_at"] - (_chain_now(world) + 30 * DAY)) < 120

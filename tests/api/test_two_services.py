"""Two `tealedger serve` processes on one PostgreSQL database (issue #22, goal 5).

Both serve the same data; exactly one follows the chain (the indexer's advisory lock), the
other stands by; a caller's rate limit is one bucket across both (`api_rate_bucket`); and a
SIGKILL of the following one loses nothing: what either acknowledged is still there, and the
other takes over the following within seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.core.models import Role
from chain.nodes import ProcessNode
from tests._fixtures import needs_node, start_node
from tests._fixtures.pg import PgDatabases
from tests.api.served import (
    Service,
    admin_key,
    group_alive,
    kill_service,
    start_service,
    stop_service,
    until,
)
from tests.api.test_cooperatives import resident_id
from tests.api.test_serve import _deployed

pytestmark = [needs_node(), pytest.mark.node]

PER_MINUTE = 60
"""The limit both processes are given (a burst of 60, then one a second): slow enough that the
bucket empties even when a loaded machine answers a request in half a second."""


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNode]:
    """An anvil of this module's own."""
    node = start_node("anvil", tmp_path_factory.mktemp("two-anvil"))
    yield node
    node.stop()


def _state(service: Service) -> str:
    """The follower state /healthz reports."""
    health = until(service.health, "the service to answer")
    assert isinstance(health, dict)
    return str(health["indexer"]["state"])


def _spend(services: list[Service], key: str, requests: int) -> tuple[int, list[int], float]:
    """`requests` GETs with one key, alternating between the services as fast as they
    answer: (allowed, refused by each service, seconds taken)."""
    allowed = 0
    refused = [0] * len(services)
    started = time.monotonic()
    for n in range(requests):
        response = services[n % 2].get("/lenders/farmers", key)
        assert response.status_code in (200, 429), response.text
        allowed += response.status_code == 200
        refused[n % 2] += response.status_code == 429
    return allowed, refused, time.monotonic() - started


def test_two_services_share_one_database(
    anvil: ProcessNode, tmp_path: Path, pg_databases: PgDatabases | None
) -> None:
    if pg_databases is None:
        pytest.skip("no PostgreSQL server answers (set CI=1 to make this a failure)")
    _deployed(anvil, tmp_path)
    url = pg_databases.new()
    admin = admin_key(tmp_path, url)
    limit = {"TEALEDGER_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE)}
    first = start_service(tmp_path, anvil, url, "first", **limit)
    second = start_service(tmp_path, anvil, url, "second", ("standby",), **limit)
    try:
        # exactly one follows: the second stands by while the first holds the lock
        assert (_state(first), _state(second)) == ("following", "standby")

        # the same data through either: organisations made on one, used on the other
        _, coop, _ = second.org(admin, Role.COOPERATIVE, "Enshi Cooperative")
        lender_id, lender, _ = first.org(admin, Role.LENDER, "Rural Credit Union")
        farmer_id, farmer, _ = second.org(admin, Role.FARMER, "Zhou Jiu", provision=False)
        member = {"national_id": resident_id(), "name": "周九", "farmer_org_id": farmer_id}
        registered = second.post("/cooperatives/farmers", coop, member)
        first.post("/farmers/me/consents", farmer, {"lender_org_id": lender_id})
        for service in (first, second):  # indexed by the first, read on both
            listed = until(
                lambda s=service: (b := s.read("/lenders/farmers", lender))["total"] == 1 and b,
                "the consent to be indexed",
            )
            assert isinstance(listed, dict)
            assert listed["items"][0]["farmer_id"] == registered["farmer_id"]

        # one bucket across both: the burst, plus what refilled while spending, and no more
        # (two buckets would allow twice the burst); both refuse once it is empty. Whether the
        # very next request is refused depends on how long the machine takes to answer, so
        # the refill is measured rather than assumed away.
        _, spender, _ = first.org(admin, Role.LENDER, "County Bank")  # a full bucket
        allowed, refused, seconds = _spend([first, second], spender, PER_MINUTE + 100)
        refill = PER_MINUTE / 60 * seconds
        assert PER_MINUTE <= allowed <= PER_MINUTE + refill + 2, (allowed, seconds)
        assert sum(refused) >= 100 - refill - 2, (refused, seconds)
        assert min(refused) > 0, (refused, seconds)

        # a crash of the following one: the other takes over and nothing acknowledged is lost
        kill_service(first)
        assert not group_alive(first.proc.pid)
        until(lambda: _state(second) == "following", "the second to take over", timeout=30)
        names = {o["name"] for o in second.read("/admin/organisations?limit=100", admin)["items"]}
        assert {"Enshi Cooperative", "Rural Credit Union", "Zhou Jiu"} <= names
        late_id, late_key, _ = second.org(admin, Role.FARMER, "Li Shi", provision=False)
        late = {"national_id": resident_id(), "name": "李十", "farmer_org_id": late_id}
        second.post("/cooperatives/farmers", coop, late)
        second.post("/farmers/me/consents", late_key, {"lender_org_id": lender_id})
        listed = until(
            lambda: (b := _read_or_none(second, "/lenders/farmers", lender)) and b["total"] == 2,
            "the second to index the new consent",
        )
        assert listed
    finally:
        if first.proc.poll() is None:
            stop_service(first)
        stop_service(second)


def _read_or_none(service: Service, path: str, key: str) -> dict | None:
    """A successful GET's JSON, or None (refused for now: out of tokens)."""
    try:
        response = service.get(path, key)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None

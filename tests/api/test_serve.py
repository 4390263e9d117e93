"""`tealedger serve` runs the service and the indexer follower together, on a real anvil.

The deployed service as a subprocess (free port, its own data dir): a write through the API
lands on chain, the follower indexes it, the indexed read shows it, /metrics shows the lag;
SIGTERM stops it and leaves no process behind. The follower's other states (waiting for
deployments, standing by while another indexer holds the lock) run in-process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.core.follower import Follower, FollowerState, FollowerStatus
from api.core.models import Role
from api.core.settings import ApiSettings
from api.main import create_app
from chain.nodes import ProcessNode
from indexer.db import make_engine
from indexer.engine import IndexerConfig
from indexer.lock import IndexerLock
from tests._fixtures import client_for, make_settings, needs_node, start_node
from tests.api.conftest import PASSWORD
from tests.api.served import admin_key, children, served, until
from tests.api.test_cooperatives import resident_id
from traceability.contracts import deploy_traceability

pytestmark = needs_node()

FAST = IndexerConfig(poll_interval=0.1)


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNode]:
    """An anvil of this module's own (its tests deploy contracts on it)."""
    node = start_node("anvil", tmp_path_factory.mktemp("serve-anvil"))
    yield node
    node.stop()


def _deployed(node: ProcessNode, data_dir: Path) -> None:
    """TeaTrace and ConsentRegistry, recorded in `data_dir`'s deployment registry."""
    client = client_for(node, data_dir)
    client.settings.data_dir.mkdir(parents=True, exist_ok=True)
    deploy_traceability(client)


# ------------------------------------------------------------------------- the real service


def _metric(text: str, name: str) -> float:
    """A sample's value from the Prometheus exposition."""
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


def test_serve_indexes_what_the_api_writes_and_stops_on_sigterm(anvil, tmp_path):
    _deployed(anvil, tmp_path)
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    admin = admin_key(tmp_path, url)
    # `served` stops it with SIGTERM and checks the shutdown and that no process is left
    with served(tmp_path, anvil, url) as service:
        ready = service.health()
        assert ready is not None and ready["status"] == "ok" and ready["indexer"]["lag"] == 0
        assert children(service.proc.pid) == [], "the follower is a thread, not a child process"

        # A write through the API: a member registered on chain, and their consent relayed.
        coop_id, coop, _ = service.org(admin, Role.COOPERATIVE, "Enshi Cooperative")
        lender_id, lender, _ = service.org(admin, Role.LENDER, "Rural Credit Union")
        farmer_id, farmer, _ = service.org(admin, Role.FARMER, "Zhou Jiu", provision=False)
        member = {"national_id": resident_id(), "name": "周九", "farmer_org_id": farmer_id}
        registered = service.post("/cooperatives/farmers", coop, member)
        assert coop_id and registered["wallet"]
        before = service.get("/lenders/farmers", lender).json()
        service.post("/farmers/me/consents", farmer, {"lender_org_id": lender_id})

        # The indexed read (the lender's list of consenting farmers) catches up by itself.
        listed = until(
            lambda: (b := service.get("/lenders/farmers", lender).json())["total"] == 1 and b,
            "the consent to be indexed",
        )
        assert isinstance(listed, dict) and before["total"] == 0
        assert listed["items"][0]["farmer_id"] == registered["farmer_id"]
        assert listed["block_number"] > before["block_number"]

        metrics = service.get("/metrics").text
        assert _metric(metrics, "tealedger_indexer_lag_blocks") >= 0
        assert _metric(metrics, "tealedger_transactions_sent_total") >= 4  # gas, role, member,
        health = service.health()  # consent
        assert health is not None and health["indexer"]["checkpoint"] >= listed["block_number"]


# --------------------------------------------------------------------------- in process


def _app_with(follower: Follower, data_dir: Path, url: str) -> TestClient:
    settings = ApiSettings(
        environment="test", database_url=url, data_dir=data_dir, org_keystore_password=PASSWORD
    )
    return TestClient(create_app(settings, follower=follower), client=("127.0.0.1", 50000))


def _state(http: TestClient, *states: FollowerState) -> dict:
    return until(  # type: ignore[return-value]
        lambda: (h := http.get("/healthz").json())["indexer"]["state"] in states and h,
        f"the follower to be {'/'.join(states)}",
    )


def test_follower_reports_a_failure_and_recovers(anvil, tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    follower = Follower(url, make_settings(tmp_path, "anvil", anvil.port), FAST, 0.1, 0.2)
    with _app_with(follower, tmp_path, url) as http:
        failed = _state(http, FollowerState.FAILED)
        assert failed["status"] == "degraded"
        assert "no project contract is deployed" in failed["indexer"]["error"]
        assert 'tealedger_errors_total{kind="indexer"}' in http.get("/metrics").text
        _deployed(anvil, tmp_path)  # `tealedger deploy` after the service started
        following = _state(http, FollowerState.FOLLOWING)
        assert following["status"] == "ok" and following["indexer"]["error"] is None
        assert following["indexer"]["checkpoint"] > 0
    assert follower.status().state is FollowerState.STOPPED and not follower.alive


def test_follower_stands_by_while_another_indexer_holds_the_lock(anvil, tmp_path):
    _deployed(anvil, tmp_path)
    url = f"sqlite:///{tmp_path / 'f.db'}"
    other = IndexerLock(make_engine(url)).acquire()  # e.g. a `tealedger index --follow`
    follower = Follower(url, make_settings(tmp_path, "anvil", anvil.port), FAST, 0.1)
    try:
        with _app_with(follower, tmp_path, url) as http:
            standby = _state(http, FollowerState.STANDBY)
            assert standby["status"] == "ok"
            assert "another indexer" in standby["indexer"]["error"]
            other.release()
            _state(http, FollowerState.FOLLOWING)  # it takes over once the lock is free
    finally:
        other.release()
    assert not follower.alive


def test_follower_refuses_the_embedded_evm(tmp_path):
    follower = Follower(f"sqlite:///{tmp_path / 'f.db'}", make_settings(tmp_path), FAST, 0.1)
    follower.start()
    try:
        status = until(
            lambda: (s := follower.status()).state is FollowerState.FAILED and s, "a failure"
        )
        assert isinstance(status, FollowerStatus) and "embedded EVM" in str(status.error)
        # It holds no lock: whoever can index this database (`tealedger demo`) still may.
        engine = make_engine(f"sqlite:///{tmp_path / 'f.db'}", writer=True)
        IndexerLock(engine).acquire().release()
        engine.dispose()
    finally:
        assert follower.stop(timeout=10)

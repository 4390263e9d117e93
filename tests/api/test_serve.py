"""`tealedger serve` runs the service and the indexer follower together, on a real anvil.

The deployed service as a subprocess (free port, its own data dir): a write through the API
lands on chain, the follower indexes it, the indexed read shows it, /metrics shows the lag;
SIGTERM stops it and leaves no process behind. The follower's other states (waiting for
deployments, standing by while another indexer holds the lock) run in-process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.core.db import open_database
from api.core.follower import Follower, FollowerState, FollowerStatus
from api.core.models import OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.settings import ApiSettings
from api.main import create_app
from chain.nodes import ProcessNode, free_port
from indexer.db import make_engine
from indexer.engine import IndexerConfig
from indexer.lock import IndexerLock
from tests._fixtures import client_for, make_settings, needs_node, start_node
from tests.api.conftest import PASSWORD
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


def _until(check: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ------------------------------------------------------------------------- the real service


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _group_alive(pgid: int) -> bool:
    """True while any process of the group exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _admin_key(data_dir: Path, url: str) -> str:
    """The platform admin, created as `tealedger admin create-org` does."""
    settings = ApiSettings(
        environment="test", database_url=url, data_dir=data_dir, org_keystore_password=PASSWORD
    )
    with Session(open_database(url)) as session:
        _, key = create_organisation(
            session, OrganisationCreate(name="platform", role=Role.ADMIN),
            settings.keystore_dir, PASSWORD,
        )  # fmt: skip
    return key.secret


def _metric(text: str, name: str) -> float:
    """A sample's value from the Prometheus exposition."""
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


class Service:
    """A running `tealedger serve` and an HTTP client on it."""

    def __init__(self, base: str, proc: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.proc = proc

    def post(self, path: str, key: str, body: dict | None = None) -> dict:
        response = httpx.post(f"{self.base}{path}", json=body, headers={"X-API-Key": key})
        assert response.status_code in (200, 201), response.text
        return response.json()

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers={"X-API-Key": key} if key else {})

    def org(self, admin: str, role: Role, name: str, provision: bool = True) -> tuple[int, str]:
        made = self.post("/admin/organisations", admin, {"name": name, "role": role.value})
        org_id = made["organisation"]["id"]
        if provision:
            self.post(f"/admin/organisations/{org_id}/provision", admin)
        return org_id, made["api_key"]["key"]

    def health(self) -> dict | None:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).json()
        except httpx.TransportError:
            return None


def test_serve_indexes_what_the_api_writes_and_stops_on_sigterm(anvil, tmp_path):
    _deployed(anvil, tmp_path)
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    admin = _admin_key(tmp_path, url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEALEDGER_")}
    env.update(
        TEALEDGER_DATA_DIR=str(tmp_path),
        DATABASE_URL=url,
        TEALEDGER_ORG_KEYSTORE_PASSWORD=PASSWORD,
        TEALEDGER_BACKEND="anvil",
        TEALEDGER_PORT=str(anvil.port),
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    cmd = [sys.executable, "-m", "tealedger.cli", "serve", "--port", str(port), "--poll", "0.1"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    service = Service(f"http://127.0.0.1:{port}", proc)
    try:
        ready = _until(
            lambda: (h := service.health()) and h["indexer"]["state"] == "following" and h,
            "the follower to reach the head",
        )
        assert ready["status"] == "ok" and ready["indexer"]["lag"] == 0
        assert _children(proc.pid) == [], "the follower is a thread, not a child process"

        # A write through the API: a member registered on chain, and their consent relayed.
        coop_id, coop = service.org(admin, Role.COOPERATIVE, "Enshi Cooperative")
        lender_id, lender = service.org(admin, Role.LENDER, "Rural Credit Union")
        farmer_id, farmer = service.org(admin, Role.FARMER, "Zhou Jiu", provision=False)
        member = {"national_id": resident_id(), "name": "周九", "farmer_org_id": farmer_id}
        registered = service.post("/cooperatives/farmers", coop, member)
        assert coop_id and registered["wallet"]
        before = service.get("/lenders/farmers", lender).json()
        service.post("/farmers/me/consents", farmer, {"lender_org_id": lender_id})

        # The indexed read (the lender's list of consenting farmers) catches up by itself.
        listed = _until(
            lambda: (b := service.get("/lenders/farmers", lender).json())["total"] == 1 and b,
            "the consent to be indexed",
        )
        assert before["total"] == 0
        assert listed["items"][0]["farmer_id"] == registered["farmer_id"]
        assert listed["block_number"] > before["block_number"]

        metrics = service.get("/metrics").text
        assert _metric(metrics, "tealedger_indexer_lag_blocks") >= 0
        assert _metric(metrics, "tealedger_transactions_sent_total") >= 4  # gas, role, member,
        health = service.health()  # consent
        assert health is not None and health["indexer"]["checkpoint"] >= listed["block_number"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM)
    assert code in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "indexer follower stopped" in output
    assert not _group_alive(proc.pid), "SIGTERM left a process of the service behind"


# --------------------------------------------------------------------------- in process


def _app_with(follower: Follower, data_dir: Path, url: str) -> TestClient:
    settings = ApiSettings(
        environment="test", database_url=url, data_dir=data_dir, org_keystore_password=PASSWORD
    )
    return TestClient(create_app(settings, follower=follower), client=("127.0.0.1", 50000))


def _state(http: TestClient, *states: FollowerState) -> dict:
    return _until(  # type: ignore[return-value]
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
        status = _until(
            lambda: (s := follower.status()).state is FollowerState.FAILED and s, "a failure"
        )
        assert isinstance(status, FollowerStatus) and "embedded EVM" in str(status.error)
    finally:
        assert follower.stop(timeout=10)

"""`tealedger serve` as a subprocess on a real node, and an HTTP client on it (for tests).

Shared by test_serve (a write indexed, then SIGTERM) and test_e2e_http (a whole loan): the
service gets a fresh data dir and SQLite database through its environment, is ready once
/healthz says its follower is following, and must stop on SIGTERM leaving no process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
from sqlmodel import Session

from api.core.db import open_database
from api.core.models import OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.settings import ApiSettings
from chain.nodes import ProcessNode, free_port
from tests.api.conftest import PASSWORD


def until(check: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def children(pid: int) -> list[int]:
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


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def admin_key(data_dir: Path, url: str) -> str:
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


def cli_env(data_dir: Path, node: ProcessNode, **extra: str) -> dict[str, str]:
    """An operator's environment for `tealedger` on `node`: no TEALEDGER_* of the caller's but
    the suite's LPR table (tests/conftest.py: the fixings assumed unchanged, so pricing today's
    date is not refused as stale)."""
    keep = {"TEALEDGER_LPR_TABLE"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEALEDGER_") or k in keep}
    env.update(
        TEALEDGER_DATA_DIR=str(data_dir),
        TEALEDGER_BACKEND=node.backend,
        TEALEDGER_PORT=str(node.port),
        **extra,
    )
    return env


class Made(NamedTuple):
    """An organisation made through the admin API."""

    id: int
    key: str
    address: str


class Service:
    """A running `tealedger serve` and an HTTP client on it."""

    def __init__(self, base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.base = base
        self.proc = proc
        self.log = log
        self.http = httpx.Client(base_url=base, timeout=60)

    def post(self, path: str, key: str, body: dict | list | None = None) -> dict:
        """POST that must succeed (200 or 201); the JSON answer."""
        response = self.http.post(path, json=body, headers={"X-API-Key": key})
        assert response.status_code in (200, 201), f"POST {path}: {response.text}"
        return response.json()

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        """GET with the key if given."""
        return self.http.get(path, headers={"X-API-Key": key} if key else {})

    def read(self, path: str, key: str) -> dict:
        """GET that must succeed; the JSON answer."""
        response = self.get(path, key)
        assert response.status_code == 200, f"GET {path}: {response.text}"
        return response.json()

    def org(self, admin: str, role: Role, name: str, provision: bool = True) -> Made:
        """A new organisation (provisioned on chain unless told not to): id, key, address."""
        made = self.post("/admin/organisations", admin, {"name": name, "role": role.value})
        org = made["organisation"]
        if provision:
            self.post(f"/admin/organisations/{org['id']}/provision", admin)
        return Made(org["id"], made["api_key"]["key"], org["chain_address"])

    def health(self) -> dict | None:
        """/healthz, or None while nothing answers (or it is refused: out of tokens)."""
        try:
            response = self.http.get("/healthz", timeout=2)
        except httpx.TransportError:
            return None
        return response.json() if response.status_code == 200 else None

    def indexed(self, block: int) -> dict:
        """Wait until the follower has indexed `block`; the health report then."""
        return until(  # type: ignore[return-value]
            lambda: (h := self.health()) and h["indexer"]["checkpoint"] >= block and h,
            f"the follower to index block {block}",
        )


@contextmanager
def served(data_dir: Path, node: ProcessNode, database_url: str) -> Iterator[Service]:
    """`tealedger serve` on a free loopback port, following `node`; ready once its follower is
    following. On exit: SIGTERM, and the checks that it shut down cleanly and left nothing."""
    service = start_service(data_dir, node, database_url)
    try:
        yield service
    finally:
        stop_service(service)


def start_service(
    data_dir: Path, node: ProcessNode, database_url: str, name: str = "serve",
    ready: tuple[str, ...] = ("following",), **env: str,
) -> Service:  # fmt: skip
    """Start `tealedger serve` (log `<data_dir>/<name>.log`, `env` added to the operator's
    environment) and wait until /healthz shows its follower in one of the `ready` states."""
    env = cli_env(data_dir, node, TEALEDGER_ORG_KEYSTORE_PASSWORD=PASSWORD,
                  DATABASE_URL=database_url, **env)  # fmt: skip
    port = free_port()
    cmd = [sys.executable, "-m", "tealedger.cli", "serve", "--port", str(port), "--poll", "0.1"]
    with (data_dir / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    service = Service(f"http://127.0.0.1:{port}", proc, data_dir / f"{name}.log")
    try:
        up = until(
            lambda: (h := service.health()) and h["indexer"]["state"] in ready and h,
            f"the follower to be {'/'.join(ready)}",
        )
        assert isinstance(up, dict) and up["status"] == "ok", up
    except BaseException:
        kill_service(service)
        raise
    return service


def stop_service(service: Service) -> None:
    """SIGTERM, then the checks that it shut down cleanly and left no process behind."""
    service.http.close()
    proc = service.proc
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own process group only
        proc.wait(timeout=30)
        raise
    output = service.log.read_text()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM)
    assert code in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output, output
    assert "indexer follower stopped" in output, output
    assert not group_alive(proc.pid), "SIGTERM left a process of the service behind"


def kill_service(service: Service) -> None:
    """SIGKILL to the service's process group (a crash: nothing runs its shutdown)."""
    service.http.close()
    if group_alive(service.proc.pid):
        os.killpg(service.proc.pid, signal.SIGKILL)  # our own process group only
    service.proc.wait(timeout=30)

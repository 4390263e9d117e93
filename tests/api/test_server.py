"""The service as deployed: `tealedger admin create-org` then `tealedger serve`, over real HTTP."""

import os
import subprocess
import sys
import time

import httpx

from chain.nodes import free_port


def run_cli(*args, env):
    """Run the tealedger CLI."""
    cmd = [sys.executable, "-m", "tealedger.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def test_bootstrap_admin_and_serve(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEALEDGER_")}
    env.update(
        TEALEDGER_DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'svc.db'}",
        TEALEDGER_ORG_KEYSTORE_PASSWORD="pw-for-test",
    )
    created = run_cli("admin", "create-org", "--name", "Platform", "--role", "admin", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.split("API key (shown once): ")[1].split()[0]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tealedger.cli", "serve", "--port", str(port), "--no-indexer"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        listed = httpx.get(f"{base}/admin/organisations", headers={"X-API-Key": key})
        assert listed.status_code == 200
        assert listed.json()["items"][0]["name"] == "Platform"
        assert httpx.get(f"{base}/admin/organisations").status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=10)

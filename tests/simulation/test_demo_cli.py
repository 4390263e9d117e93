"""`tealedger demo` as a person runs it: the service answers first and shows the progress,
the season fills in behind it, and a second run sends nothing."""

import json
import os
import re
import subprocess
import sys

import httpx
import pytest

from chain.nodes import free_port
from tests._fixtures import needs_node
from tests.api.served import until


def _demo(data_dir, node_port: int, serve_port: int, farmers: int = 6) -> subprocess.Popen[bytes]:
    """`tealedger demo` on anvil with a small region, in its own data dir."""
    env = os.environ | {"TEALEDGER_DATA_DIR": str(data_dir), "TEALEDGER_ENVIRONMENT": "test"}
    cmd = [sys.executable, "-m", "tealedger.cli", "demo", "--backend", "anvil",
           "--farmers", str(farmers), "--port", str(node_port),
           "--serve-port", str(serve_port)]  # fmt: skip
    log = (data_dir / "demo.log").open("wb")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(data_dir) -> str:
    """`tealedger stop` as the demo's last line says it: the service and the node it left
    running, whichever backend (the configured default is ganache); returns what it said."""
    env = os.environ | {"TEALEDGER_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "tealedger.cli", "stop"]
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    return done.stdout.decode()


def _home(url: str) -> str:
    """The home page's text, or '' while the service does not answer."""
    try:
        return httpx.get(url, timeout=5).text
    except httpx.TransportError:
        return ""


@needs_node()
@pytest.mark.node
@pytest.mark.slow
def test_the_service_answers_first_and_the_season_fills_in_behind_it(tmp_path):
    node_port, serve_port = free_port(), free_port()
    url = f"http://127.0.0.1:{serve_port}/"
    demo = _demo(tmp_path, node_port, serve_port)
    try:
        running = until(lambda: "进行中" in (page := _home(url)) and page, "the progress page")
        assert demo.poll() is None, "the page answered only after the demo ended"
        assert 'id="demo-steps"' in running and "demo-progress" in running
        assert demo.wait(timeout=600) == 0, (tmp_path / "demo.log").read_text()[-3000:]
        done = _home(url)
        assert "已完成" in done and "refresh" not in done
        assert "贷款发放" in done and "loans issued" in done
        status = json.loads((tmp_path / "demo-status.json").read_text())
        assert status["state"] == "done"
        assert all(step["done"] == step["total"] for step in status["steps"])
        log = (tmp_path / "demo.log").read_text()
        assert log.index("its home page shows the demo's progress") < log.index("harvest records")

        again = _demo(tmp_path, node_port, serve_port)  # the same region on the same chain
        assert again.wait(timeout=600) == 0, (tmp_path / "demo.log").read_text()[-3000:]
        rerun = (tmp_path / "demo.log").read_text()
        assert re.search(r"new transactions\s+│\s+0 │", rerun), rerun[-3000:]
        said = _stop(tmp_path)
        assert "service stopped" in said and "anvil node stopped" in said, said
        assert not (tmp_path / "nodes" / "anvil" / "node.json").exists()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        _stop(tmp_path)


@needs_node()
@pytest.mark.node
def test_a_demo_stopped_with_sigterm_says_so(tmp_path):
    node_port, serve_port = free_port(), free_port()
    # a region whose season takes minutes: six farmers' can end before the signal arrives
    demo = _demo(tmp_path, node_port, serve_port, farmers=1000)
    try:
        until(lambda: "进行中" in _home(f"http://127.0.0.1:{serve_port}/"), "the progress page")
        demo.terminate()
        assert demo.wait(timeout=60) != 0
        status = json.loads((tmp_path / "demo-status.json").read_text())
        assert status["state"] == "failed" and "SystemExit" in status["message"]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        _stop(tmp_path)


def test_the_embedded_evm_is_refused_with_a_reason(tmp_path):
    env = os.environ | {"TEALEDGER_DATA_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "tealedger.cli", "demo", "--backend", "embedded"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "use --backend ganache" in done.stderr + done.stdout
    assert not (tmp_path / "demo-status.json").exists()  # refused before anything started


@needs_node()
@pytest.mark.node
def test_a_port_taken_by_something_else_fails_the_run_with_the_reason(tmp_path):
    import socket

    node_port = free_port()
    with socket.socket() as squatter:  # listens, but is not tealedger's service
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        demo = _demo(tmp_path, node_port, squatter.getsockname()[1])
        try:
            assert demo.wait(timeout=300) != 0
        finally:
            _stop(tmp_path)
    status = json.loads((tmp_path / "demo-status.json").read_text())
    assert status["state"] == "failed" and "is in use" in status["message"]

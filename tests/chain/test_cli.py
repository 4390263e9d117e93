"""The `tealedger` command as a user runs it: a real process against real nodes."""

import os
import subprocess
import sys

import pytest

from chain.nodes import free_port
from tests._fixtures import needs_node


def tealedger(*args, env=None, timeout=120):
    """Run the console script in a subprocess; returns the completed process."""
    cmd = [sys.executable, "-m", "tealedger.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def isolated_env(tmp_path, **extra):
    """Environment pointing the CLI at a private data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEALEDGER_")}
    env.update({"TEALEDGER_DATA_DIR": str(tmp_path), **extra})
    return env


def test_version():
    result = tealedger("version")
    assert result.returncode == 0 and "tealedger 0.1.0" in result.stdout


@needs_node()
@pytest.mark.node
def test_node_start_deploy_status_stop(tmp_path):
    env = isolated_env(tmp_path, TEALEDGER_BACKEND="anvil", TEALEDGER_PORT=str(free_port()))
    try:
        started = tealedger("node", "start", env=env)
        assert started.returncode == 0, started.stderr
        assert "anvil node running" in started.stdout
        first = tealedger("deploy", env=env)
        assert first.returncode == 0, first.stderr
        assert "PaymentToken" in first.stdout and "deployed" in first.stdout
        second = tealedger("deploy", env=env)
        assert "unchanged" in second.stdout
        status = tealedger("node", "status", env=env)
        assert status.returncode == 0 and "chain id 31337" in status.stdout
    finally:
        stopped = tealedger("node", "stop", env=env)
    assert stopped.returncode == 0
    assert tealedger("node", "status", env=env).returncode == 1


def test_deploy_without_node_says_what_to_do(tmp_path):
    env = isolated_env(tmp_path, TEALEDGER_BACKEND="anvil", TEALEDGER_PORT=str(free_port()))
    result = tealedger("deploy", env=env)
    assert result.returncode == 1
    assert "tealedger node start" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_rpc_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = tealedger("deploy", "--backend", "rpc", "--rpc-url", url, env=isolated_env(tmp_path))
    assert result.returncode == 1
    assert f"no Ethereum JSON-RPC node answers at {url}" in result.stderr.replace("\n", " ")


def test_bad_setting_is_a_clear_error(tmp_path):
    result = tealedger("deploy", env=isolated_env(tmp_path, TEALEDGER_BACKEND="nonsense"))
    assert result.returncode == 2
    assert "invalid settings" in result.stderr and "Traceback" not in result.stderr


def test_rpc_without_url(tmp_path):
    result = tealedger("deploy", "--backend", "rpc", env=isolated_env(tmp_path))
    assert result.returncode == 1 and "TEALEDGER_RPC_URL" in result.stderr


@needs_node()
def test_port_in_use_message(tmp_path, anvil_node):
    env = isolated_env(tmp_path, TEALEDGER_BACKEND="ganache", TEALEDGER_PORT=str(anvil_node.port))
    result = tealedger("node", "start", env=env)
    assert result.returncode == 1
    assert f"port {anvil_node.port}" in result.stderr and "already in use" in result.stderr


def test_wrong_keystore_password(tmp_path):
    from chain.accounts import create_keystore

    create_keystore(tmp_path / "k.json", "right")
    env = isolated_env(
        tmp_path,
        TEALEDGER_BACKEND="embedded",
        TEALEDGER_KEYSTORE=str(tmp_path / "k.json"),
        TEALEDGER_KEYSTORE_PASSWORD="wrong",
    )
    result = tealedger("deploy", env=env)
    assert result.returncode == 1 and "wrong password" in result.stderr

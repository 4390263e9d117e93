"""Nodes: the same deploy-and-call on every backend; restarts keep state; clear failures."""

import socket

import pytest

from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, PROJECT_ROOT
from chain.errors import (
    NodeNotRunningError,
    NodeStartError,
    NodeToolMissingError,
    PortInUseError,
    RpcUnreachableError,
)
from chain.nodes import AnvilNode, GanacheNode, RpcNode, free_port
from tests._fixtures import client_for, needs_node, start_node


def deploy_token(client: ChainClient):
    """Deploy the payment token from account 0 and return the contract."""
    admin = client.accounts[0].address
    client.deploy("PaymentToken", ("Digital Yuan (test)", "eCNY", admin))
    return client.contract("PaymentToken")


def test_deploy_and_call_on_every_backend(any_chain):
    token = deploy_token(any_chain)
    farmer = any_chain.accounts[3].address
    receipt = any_chain.sender(0).transact(token.functions.mint(farmer, 250_00))
    assert receipt["status"] == 1
    assert token.functions.balanceOf(farmer).call() == 250_00
    assert token.functions.decimals().call() == 2


@needs_node()
@pytest.mark.node
@pytest.mark.parametrize("backend", ["ganache", "anvil"])
def test_restart_keeps_state(backend, tmp_path):
    node = start_node(backend, tmp_path)
    try:
        client = client_for(node, tmp_path)
        token = deploy_token(client)
        client.sender(0).transact(token.functions.mint(client.accounts[4].address, 777))
        head = client.w3.eth.block_number
        node.stop()
        assert not node.status().running
        node.start()
        again = client_for(node, tmp_path)
        _, created = again.deploy(
            "PaymentToken", ("Digital Yuan (test)", "eCNY", again.accounts[0].address)
        )
        assert not created, "registry must see the contract survive the restart"
        token = again.contract("PaymentToken")
        assert token.functions.balanceOf(again.accounts[4].address).call() == 777
        assert again.w3.eth.block_number >= head
    finally:
        node.stop()


@needs_node()
def test_nodes_bind_loopback_only(ganache_node, anvil_node):
    for node in (ganache_node, anvil_node):
        args = node.arguments()
        assert "127.0.0.1" in args
        assert "0.0.0.0" not in args


@needs_node()
def test_port_in_use_is_refused(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        node = AnvilNode(tmp_path, PROJECT_ROOT, port, DEV_MNEMONIC)
        with pytest.raises(PortInUseError, match=f"port {port}"):
            node.start()


def test_missing_node_package_says_run_make_install(tmp_path):
    node = GanacheNode(tmp_path, tmp_path, free_port(), DEV_MNEMONIC)
    with pytest.raises(NodeToolMissingError, match="make install"):
        node.start()


def test_missing_nodejs_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    node = AnvilNode(tmp_path, PROJECT_ROOT, free_port(), DEV_MNEMONIC)
    with pytest.raises(NodeToolMissingError, match=r"Node\.js"):
        node.start()


class BrokenAnvil(AnvilNode):
    """anvil given a flag it does not know: it exits at once."""

    def arguments(self):
        return [*super().arguments(), "--no-such-flag"]


@needs_node()
def test_node_that_cannot_start_shows_its_log(tmp_path):
    node = BrokenAnvil(tmp_path, PROJECT_ROOT, free_port(), DEV_MNEMONIC, start_timeout=30)
    with pytest.raises(NodeStartError) as exc:
        node.start()
    assert "no-such-flag" in str(exc.value)
    assert not node.pidfile.exists()


def test_wrong_rpc_url_is_clear():
    node = RpcNode(f"http://127.0.0.1:{free_port()}")
    assert not node.status().running
    with pytest.raises(RpcUnreachableError, match="no Ethereum JSON-RPC node answers"):
        node.web3()


def test_stopped_local_node_says_how_to_start(tmp_path):
    node = AnvilNode(tmp_path, PROJECT_ROOT, free_port(), DEV_MNEMONIC)
    with pytest.raises(NodeNotRunningError, match="tealedger node start --backend anvil"):
        node.web3()


@needs_node()
def test_rpc_backend_talks_to_any_endpoint(anvil_node, tmp_path):
    node = RpcNode(anvil_node.url)
    status = node.status()
    assert status.running and status.chain_id == 31337
    assert node.web3().eth.chain_id == 31337


def test_the_http_provider_reads_proxy_settings_once_and_honours_no_proxy(
    monkeypatch: pytest.MonkeyPatch,
):
    """requests would read the environment on every call; the node reads it once, and what it
    read still routes a remote node through the proxy and keeps a local one direct."""
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    remote = RpcNode("http://node.example:8545")._request_kwargs()
    local = RpcNode("http://127.0.0.1:8545")._request_kwargs()
    assert remote["proxies"].get("http") == "http://proxy.example:3128"
    assert not local["proxies"].get("http")
    assert remote["timeout"] > 0

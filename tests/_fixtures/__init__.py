"""Fixtures shared by every test package of the application suite."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from chain.client import ChainClient
from chain.config import BLOCK_GAS_LIMIT, DEV_MNEMONIC, PROJECT_ROOT, ChainSettings
from chain.nodes import AnvilNode, GanacheNode, ProcessNode, free_port
from tests._fixtures.pg import PG_DSN, PgDatabases, pg_admin

CACHE_DIR = PROJECT_ROOT / ".tealedger" / "cache"
NODE_BACKENDS = ("ganache", "anvil")


def needs_node() -> pytest.MarkDecorator:
    """Skip locally when Node.js is absent; CI (CI=true) must have it, so there it fails."""
    missing = shutil.which("npx") is None
    return pytest.mark.skipif(missing and not os.environ.get("CI"), reason="Node.js not installed")


def make_settings(data_dir: Path, backend: str = "embedded", port: int = 8545) -> ChainSettings:
    """Settings for a throwaway chain under `data_dir`."""
    return ChainSettings(
        backend=backend, data_dir=data_dir, port=port, mnemonic=DEV_MNEMONIC, accounts=10
    )


def client_for(node_or_backend: ProcessNode | str, data_dir: Path) -> ChainClient:
    """A ChainClient on an embedded EVM or on a running process node."""
    if isinstance(node_or_backend, str):
        return ChainClient(make_settings(data_dir, node_or_backend))
    node = node_or_backend
    settings = make_settings(data_dir, node.backend, node.port)
    return ChainClient(settings, node)


def demo_wallet(client: ChainClient, farmer_id: bytes) -> LocalAccount:
    """A demo farmer's own wallet (tealedger.demo.season.farmer_wallet), with gas from dev
    account 0 so it can send its own transactions (consents, repayments)."""
    from tealedger.demo.season import farmer_wallet

    wallet = farmer_wallet(farmer_id)
    if client.w3.eth.get_balance(wallet.address) < 10**16:
        client.sender(0).transact({"to": wallet.address, "value": 10**17}, gas=21_000)
    return wallet


def start_node(backend: str, data_dir: Path) -> ProcessNode:
    """Start ganache or anvil on a free loopback port with state under `data_dir`, with blocks
    of a real network's gas limit (anvil's own default is bigger): packing pipelines at the
    gas target and fee quotes over full blocks are tested where real networks would meet them."""
    cls = GanacheNode if backend == "ganache" else AnvilNode
    node = cls(
        data_dir, PROJECT_ROOT, free_port(), DEV_MNEMONIC, 10, block_gas_limit=BLOCK_GAS_LIMIT
    )
    node.start()
    return node


@pytest.fixture(scope="session")
def ganache_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNode]:
    """One ganache for the session (tests deploy their own contracts on it)."""
    node = start_node("ganache", tmp_path_factory.mktemp("ganache"))
    yield node
    node.stop()


@pytest.fixture(scope="session")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNode]:
    """One anvil for the session."""
    node = start_node("anvil", tmp_path_factory.mktemp("anvil"))
    yield node
    node.stop()


@pytest.fixture
def embedded(tmp_path: Path) -> ChainClient:
    """A fresh in-process EVM per test, with the dev accounts funded."""
    client = client_for("embedded", tmp_path)
    client.settings.data_dir.mkdir(parents=True, exist_ok=True)
    return client


@pytest.fixture(params=["embedded", *NODE_BACKENDS])
def any_chain(request: pytest.FixtureRequest, tmp_path: Path) -> ChainClient:
    """The same test on every backend: embedded, ganache, anvil (session nodes)."""
    if request.param == "embedded":
        return client_for("embedded", tmp_path)
    if shutil.which("npx") is None and not os.environ.get("CI"):
        pytest.skip("Node.js not installed")
    node = request.getfixturevalue(f"{request.param}_node")
    return client_for(node, tmp_path)


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases | None]:
    """PostgreSQL for the session (None locally when no server answers; CI must have one)."""
    admin = pg_admin()
    if admin is None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but none answers at {PG_DSN!r}")
        yield None
        return
    dbs = PgDatabases(admin)
    yield dbs
    dbs.drop_all()

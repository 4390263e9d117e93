"""Chain backends behind one interface: embedded py-evm, ganache and anvil via npx, any RPC."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.types import RPCEndpoint

from chain.config import ANVIL_BLOCK_GAS_LIMIT, BLOCK_GAS_LIMIT, ChainSettings
from chain.errors import (
    NodeError,
    NodeNotRunningError,
    NodeStartError,
    NodeToolMissingError,
    PortInUseError,
    RpcUnreachableError,
)

# Enough ether for years of development traffic on every dev account.
DEV_BALANCE_ETH = 1_000_000


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
    """One raw JSON-RPC call; raises RpcUnreachableError when nothing answers."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = json.loads(resp.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError, ValueError) as exc:
        raise RpcUnreachableError(f"no Ethereum JSON-RPC node answers at {url}: {exc}") from None
    if "error" in reply:
        raise NodeError(f"{method} at {url} failed: {reply['error']}")
    return reply["result"]


def _session() -> requests.Session:
    """A requests session that does not read the environment on every call (the settings it
    would read are passed with each request instead: RpcNode._request_kwargs)."""
    session = requests.Session()
    session.trust_env = False
    return session


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS just reported free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class NodeStatus:
    """What a health check found."""

    backend: str
    url: str
    running: bool
    chain_id: int | None = None
    block: int | None = None
    pid: int | None = None


class Node(ABC):
    """A chain backend: something that can be started, checked, stopped and talked to."""

    backend: str = ""

    @property
    @abstractmethod
    def url(self) -> str:
        """Where it answers (a URL, or `embedded://` for the in-process EVM)."""

    @abstractmethod
    def start(self) -> None:
        """Start it and return once it answers (no-op if it already runs)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop it (no-op if it is not running)."""

    @abstractmethod
    def status(self) -> NodeStatus:
        """Health check."""

    @abstractmethod
    def web3(self) -> Web3:
        """A Web3 connected to it."""


class EmbeddedNode(Node):
    """In-process EVM (eth-tester + py-evm): instant, needs no Node.js, keeps nothing."""

    backend = "embedded"

    def __init__(self, mnemonic: str, accounts: int = 10) -> None:
        self._mnemonic = mnemonic
        self._accounts = accounts
        self._w3: Web3 | None = None

    @property
    def url(self) -> str:
        """Embedded nodes have no network address."""
        return "embedded://py-evm"

    def start(self) -> None:
        """Create the EVM with the dev accounts funded."""
        if self._w3 is not None:
            return
        from eth_tester import EthereumTester, PyEVMBackend

        backend = PyEVMBackend.from_mnemonic(
            self._mnemonic,
            num_accounts=self._accounts,
            hd_path="m/44'/60'/0'/0",  # ganache's and anvil's path
            genesis_state_overrides={"balance": DEV_BALANCE_ETH * 10**18},
        )
        self._w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))

    def stop(self) -> None:
        """Drop the EVM (its state goes with it)."""
        self._w3 = None

    def status(self) -> NodeStatus:
        """Running while the in-process EVM exists."""
        if self._w3 is None:
            return NodeStatus(self.backend, self.url, running=False)
        w3 = self._w3
        return NodeStatus(self.backend, self.url, True, w3.eth.chain_id, w3.eth.block_number)

    def web3(self) -> Web3:
        """The in-process Web3 (started on first use)."""
        self.start()
        assert self._w3 is not None
        return self._w3


class RpcNode(Node):
    """Any JSON-RPC endpoint managed elsewhere (e.g. a permissioned Besu/Geth network)."""

    backend = "rpc"

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self._url = url
        self._timeout = timeout

    @property
    def url(self) -> str:
        """The configured endpoint."""
        return self._url

    def start(self) -> None:
        """Nothing to start: only check that the endpoint answers."""
        rpc_call(self._url, "eth_chainId")

    def stop(self) -> None:
        """Remote nodes are not ours to stop."""

    def status(self) -> NodeStatus:
        """Ask the endpoint for chain id and head."""
        try:
            chain_id = int(rpc_call(self._url, "eth_chainId"), 16)
            block = int(rpc_call(self._url, "eth_blockNumber"), 16)
        except RpcUnreachableError:
            return NodeStatus(self.backend, self._url, running=False)
        return NodeStatus(self.backend, self._url, True, chain_id, block)

    def web3(self) -> Web3:
        """Web3 over HTTP; fails clearly if nothing answers."""
        rpc_call(self._url, "eth_chainId")
        # web3's validation asks the node for its chain id before every eth_call and
        # transaction: a third of the demo's calls to the node were that (docs/demo.md). A
        # node's chain id does not change while it runs; the Sender reads it once as well.
        return Web3(HTTPProvider(self._url, request_kwargs=self._request_kwargs(),
                                 session=_session(), cache_allowed_requests=True,
                                 cacheable_requests={RPCEndpoint("eth_chainId")}))  # fmt: skip

    def _request_kwargs(self) -> dict[str, Any]:
        """The timeout, and the proxy and CA settings of the environment, read once: requests
        reads them again on every call otherwise (`trust_env`), which was 7% of a demo run's
        time (62,667 calls took 13.6 s in urllib's proxy lookup)."""
        found = requests.Session().merge_environment_settings(self._url, {}, None, None, None)
        return {"timeout": self._timeout, "proxies": found["proxies"], "verify": found["verify"]}


class ProcessNode(RpcNode):
    """A local node process run through npx, bound to 127.0.0.1, with persistent state."""

    tool = ""
    default_block_gas_limit = BLOCK_GAS_LIMIT

    def __init__(
        self,
        data_dir: Path,
        project_root: Path,
        port: int,
        mnemonic: str,
        accounts: int = 10,
        start_timeout: float = 60.0,
        block_gas_limit: int | None = None,
    ) -> None:
        super().__init__(f"http://127.0.0.1:{port}")
        self.block_gas_limit = block_gas_limit or self.default_block_gas_limit
        self.port = port
        self.home = data_dir / "nodes" / self.backend
        self._project_root = project_root
        self._mnemonic = mnemonic
        self._accounts = accounts
        self._start_timeout = start_timeout

    @property
    def pidfile(self) -> Path:
        """Where the running process is recorded."""
        return self.home / "node.json"

    @property
    def logfile(self) -> Path:
        """The node's own output."""
        return self.home / "node.log"

    @abstractmethod
    def arguments(self) -> list[str]:
        """Command-line flags of the tool."""

    def command(self) -> list[str]:
        """npx runs the project's pinned copy and never downloads (`--no`)."""
        npx = shutil.which("npx")
        if npx is None or shutil.which("node") is None:
            raise NodeToolMissingError(
                "Node.js and npm are not installed: install Node.js 20+ (apt-get install nodejs "
                "npm), then run `make install`"
            )
        if not (self._project_root / "node_modules" / ".bin" / self.tool).exists():
            raise NodeToolMissingError(
                f"{self.tool} is not installed in {self._project_root / 'node_modules'}: "
                "run `make install` (npm ci)"
            )
        return [npx, "--no", "--", self.tool, *self.arguments()]

    def _recorded(self) -> dict[str, Any] | None:
        """The pidfile's record if its process is still alive."""
        try:
            record = json.loads(self.pidfile.read_text())
            os.kill(int(record["pid"]), 0)
        except (FileNotFoundError, json.JSONDecodeError, KeyError, ProcessLookupError):
            return None
        except PermissionError:
            pass
        return record

    def start(self) -> None:
        """Spawn the node in its own session, then wait until it answers."""
        if self._recorded() is not None:
            super().start()
            return
        cmd = self.command()
        if not port_is_free("127.0.0.1", self.port):
            raise PortInUseError(
                f"port {self.port} on 127.0.0.1 is already in use: stop what listens there or "
                "choose another with --port / TEALEDGER_PORT"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=self._project_root,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        record = {"pid": proc.pid, "port": self.port, "url": self.url, "backend": self.backend}
        self.pidfile.write_text(json.dumps(record))
        self._wait_ready(proc)

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        """Poll eth_chainId until it answers; fail with the log tail if the process dies."""
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pidfile.unlink(missing_ok=True)
                raise NodeStartError(
                    f"{self.tool} exited with code {proc.returncode} while starting. "
                    f"Log tail ({self.logfile}):\n{self.log_tail()}"
                )
            try:
                rpc_call(self.url, "eth_chainId", timeout=1.0)
                return
            except (RpcUnreachableError, NodeError):
                time.sleep(0.1)
        self._terminate(proc.pid)
        raise NodeStartError(
            f"{self.tool} did not answer on {self.url} within {self._start_timeout:.0f}s. "
            f"Log tail ({self.logfile}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """Last lines of the node's log."""
        try:
            text = self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the node's process group (so it saves state), SIGKILL if it lingers."""
        record = self._recorded()
        if record is not None:
            self._terminate(int(record["pid"]))
        self.pidfile.unlink(missing_ok=True)

    def _terminate(self, pid: int, grace: float = 15.0) -> None:
        """Stop a process group politely, then firmly."""
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)
        with _suppress_lookup():
            os.killpg(pid, signal.SIGKILL)

    def status(self) -> NodeStatus:
        """Answering node plus the recorded pid."""
        record = self._recorded()
        found = super().status()
        pid = int(record["pid"]) if record else None
        return NodeStatus(self.backend, self.url, found.running, found.chain_id, found.block, pid)

    def web3(self) -> Web3:
        """Web3 over HTTP; says how to start the node if it is down."""
        try:
            return super().web3()
        except RpcUnreachableError:
            raise NodeNotRunningError(
                f"no {self.backend} node answers at {self.url}: start it with "
                f"`tealedger node start --backend {self.backend}`"
            ) from None


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie we can reap."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class _suppress_lookup:
    """Context manager ignoring ProcessLookupError (process already gone)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return kind is ProcessLookupError


class GanacheNode(ProcessNode):
    """ganache 7 (shanghai), persistent database under the data dir."""

    backend = "ganache"
    tool = "ganache"
    chain_id = 1337

    def arguments(self) -> list[str]:
        """ganache flags: loopback only, deterministic accounts, on-disk database."""
        return [
            "--server.host", "127.0.0.1",
            "--server.port", str(self.port),
            "--chain.chainId", str(self.chain_id),
            "--chain.hardfork", "shanghai",
            "--wallet.mnemonic", self._mnemonic,
            "--wallet.totalAccounts", str(self._accounts),
            "--wallet.defaultBalance", str(DEV_BALANCE_ETH),
            "--miner.blockGasLimit", str(self.block_gas_limit),
            "--database.dbPath", str(self.home / "db"),
            "--logging.quiet",
        ]  # fmt: skip


PRUNED_STATES = 32
"""Block states anvil keeps in memory. Each is a whole copy of the chain's storage, and they
are most of anvil's memory: on the saved chain of a 3,000-farmer demo, 160 more blocks took
anvil from 1.0 to 2.54 GiB keeping 128 states, 1.10 keeping 8; on a 12,000-farmer one each
state is about 47 MB (scripts/anvil_memory.py). Nothing here reads an older state: eth_call at
an older block fails, and the one such read (revert replay, at the block before a failed
transaction's) comes as the pipeline that mined it settles; the indexer's reorg window compares
block hashes, which anvil keeps for every block. Rolling back needs the states: the tests'
anvils that roll back keep more (tests/_fixtures/workload.py)."""


class AnvilNode(ProcessNode):
    """anvil (foundry), state saved to a file on exit and every few seconds."""

    backend = "anvil"
    tool = "anvil"
    chain_id = 31337
    default_block_gas_limit = ANVIL_BLOCK_GAS_LIMIT
    kept_states = PRUNED_STATES
    history_blocks: int | None = None  # blocks of transactions kept (None: all)

    def arguments(self) -> list[str]:
        """anvil flags: loopback only, deterministic accounts, state file."""
        history = (
            ["--transaction-block-keeper", str(self.history_blocks)] if self.history_blocks else []
        )
        return [
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--hardfork", "shanghai",
            "--mnemonic", self._mnemonic,
            "--accounts", str(self._accounts),
            "--balance", str(DEV_BALANCE_ETH),
            "--gas-limit", str(self.block_gas_limit),
            "--state", str(self.home / "state.json"),
            "--state-interval", "5",
            # Keep a few block states in memory and none on disk: by default anvil spills old
            # states to ~/.foundry/anvil/tmp and leaves them there when it is killed (a long
            # benchmark's chain once filled 77 GB); nothing here reads state blocks back.
            "--prune-history", str(self.kept_states),
            *history,
            "--silent",
        ]  # fmt: skip


def make_node(settings: ChainSettings) -> Node:
    """The node the settings describe."""
    mnemonic = settings.mnemonic.get_secret_value()
    if settings.backend == "embedded":
        return EmbeddedNode(mnemonic, settings.accounts)
    if settings.backend == "rpc":
        return RpcNode(settings.node_url)
    cls = GanacheNode if settings.backend == "ganache" else AnvilNode
    node = cls(
        settings.data_dir,
        settings.project_root,
        settings.port,
        mnemonic,
        settings.accounts,
        settings.node_start_timeout,
        settings.block_gas_limit,
    )
    if isinstance(node, AnvilNode):
        node.history_blocks = settings.history_blocks
        node.kept_states = settings.node_states or node.kept_states
    return node

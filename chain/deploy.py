"""Deployment registry: one JSON per chain id; deploying unchanged bytecode again is a no-op."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak
from web3 import Web3

from chain.compiler import Artifact
from chain.errors import DeploymentError
from chain.sender import Sender


@dataclass(frozen=True)
class Deployment:
    """Where a contract lives and which exact creation code put it there."""

    name: str
    contract: str
    address: str
    tx_hash: str
    block_number: int
    init_code_hash: str
    runtime_code_hash: str
    deployed_at: int


class DeploymentRegistry:
    """`<data_dir>/deployments/<chain_id>.json`, pinned to the chain's genesis block."""

    def __init__(self, data_dir: Path, w3: Web3) -> None:
        self._w3 = w3
        self.chain_id = w3.eth.chain_id
        self.path = data_dir / "deployments" / f"{self.chain_id}.json"
        self._genesis = w3.eth.get_block(0)["hash"].to_0x_hex()
        self._entries = self._load()

    def _load(self) -> dict[str, Deployment]:
        """Read entries; a registry written for another chain (new genesis) counts as empty."""
        if not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text())
        except json.JSONDecodeError as exc:
            raise DeploymentError(f"deployment registry {self.path} is corrupt: {exc}") from None
        if doc.get("genesis") != self._genesis:
            return {}
        return {k: Deployment(**v) for k, v in doc.get("contracts", {}).items()}

    def _save(self) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a registry."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "chain_id": self.chain_id,
            "genesis": self._genesis,
            "contracts": {k: asdict(v) for k, v in sorted(self._entries.items())},
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(self.path)

    def recorded(self, name: str) -> Deployment | None:
        """The recorded deployment, without asking the chain whether its code is still there."""
        return self._entries.get(name)

    def get(self, name: str) -> Deployment | None:
        """The recorded deployment if its code is still at its address."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        code = self._w3.eth.get_code(Web3.to_checksum_address(entry.address))
        return entry if "0x" + keccak(code).hex() == entry.runtime_code_hash else None

    def address(self, name: str) -> str:
        """Address of a deployed contract, or a clear error saying to deploy first."""
        entry = self.get(name)
        if entry is None:
            raise DeploymentError(
                f"{name} is not deployed on chain {self.chain_id}: run `tealedger deploy`"
            )
        return entry.address

    def all(self) -> dict[str, Deployment]:
        """Every live recorded deployment."""
        return {k: v for k in self._entries if (v := self.get(k)) is not None}

    def record(self, entry: Deployment) -> None:
        """Store a new deployment."""
        self._entries[entry.name] = entry
        self._save()


def deploy(
    sender: Sender,
    registry: DeploymentRegistry,
    artifact: Artifact,
    args: tuple[Any, ...] = (),
    name: str | None = None,
) -> tuple[Deployment, bool]:
    """Deploy unless the same init code is already live; returns (deployment, created)."""
    name = name or artifact.name
    factory = sender.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    constructor = factory.constructor(*args)
    init_hash = "0x" + keccak(bytes.fromhex(constructor.data_in_transaction[2:])).hex()
    existing = registry.get(name)
    if existing is not None and existing.init_code_hash == init_hash:
        return existing, False
    receipt = sender.transact(constructor)
    address = receipt["contractAddress"]
    if address is None:
        raise DeploymentError(f"deploying {name} produced no contract address")
    code = sender.w3.eth.get_code(address)
    entry = Deployment(
        name=name,
        contract=artifact.name,
        address=address,
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        block_number=receipt["blockNumber"],
        init_code_hash=init_hash,
        runtime_code_hash="0x" + keccak(code).hex(),
        deployed_at=int(time.time()),
    )
    registry.record(entry)
    return entry, True

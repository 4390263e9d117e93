"""One handle on a chain: node, Web3, compiled artifacts, signers, registry, contracts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from chain.accounts import dev_accounts, load_keystore
from chain.compiler import Artifacts, compile_contracts
from chain.config import ChainSettings
from chain.deploy import Deployment, DeploymentRegistry, deploy
from chain.errors import ContractRevertError, KeystoreError
from chain.events import EventReader, LogArchive
from chain.nodes import Node, make_node
from chain.revert import RevertDecoder, revert_data
from chain.sender import Sender
from chain.views import call_data, refusals, rpc_of

BOUND_CONTRACTS = 4_096
"""Address-bound contract objects a client keeps (the least recently used go first)."""


class ChainClient:
    """Everything a service needs to talk to the configured chain."""

    def __init__(self, settings: ChainSettings | None = None, node: Node | None = None) -> None:
        self.settings = settings or ChainSettings()
        self.node = node or make_node(self.settings)
        self._senders: dict[str, Sender] = {}
        self.transactions_sent = 0  # accepted by the node from this client's senders
        self._sent_lock = threading.Lock()
        self._sent_hooks: list[Callable[[], None]] = [self._count_sent]
        # Checking a registry entry reads the contract's code from the node; a long-running
        # service would pay that on every request, so verified contract objects are kept.
        self._contracts: dict[str, Contract] = {}
        self._by_address: dict[tuple[str, str], Contract] = {}
        self._classes: dict[str, type[Contract]] = {}
        self._lock = threading.Lock()
        self._archive: LogArchive | None = None

    @cached_property
    def w3(self) -> Web3:
        """Web3 on the node (fails clearly if it is not running)."""
        return self.node.web3()

    @cached_property
    def artifacts(self) -> Artifacts:
        """Compiled project contracts (cached on disk by source hash)."""
        return compile_contracts(self.settings.project_root, self.settings.cache_dir)

    @cached_property
    def decoder(self) -> RevertDecoder:
        """Knows every custom error of every compiled contract."""
        return RevertDecoder(a.abi for a in self.artifacts.all())

    @cached_property
    def registry(self) -> DeploymentRegistry:
        """Deployment registry of the connected chain."""
        return DeploymentRegistry(self.settings.data_dir, self.w3)

    @cached_property
    def accounts(self) -> list[LocalAccount]:
        """Signing accounts: the keystore if configured, else the development mnemonic."""
        if self.settings.keystore is not None:
            password = self.settings.keystore_password
            return [load_keystore(self.settings.keystore, password and password.get_secret_value())]
        if self.settings.backend == "rpc":
            raise KeystoreError(
                "the rpc backend signs only with a keystore: set TEALEDGER_KEYSTORE and "
                "TEALEDGER_KEYSTORE_PASSWORD"
            )
        return dev_accounts(self.settings.mnemonic.get_secret_value(), self.settings.accounts)

    def sender(self, index: int = 0) -> Sender:
        """The (shared, nonce-tracking) sender of account `index`."""
        account = self.accounts[index]
        if account.address not in self._senders:
            self._senders[account.address] = self._new_sender(account)
        return self._senders[account.address]

    def _new_sender(self, account: LocalAccount) -> Sender:
        """A sender of `account` that reports each accepted transaction to the hooks."""
        return Sender(self.w3, account, self.decoder, sent_hooks=self._sent_hooks)

    def _count_sent(self) -> None:
        """One more transaction accepted (senders call it from several threads)."""
        with self._sent_lock:
            self.transactions_sent += 1

    def on_sent(self, hook: Callable[[], None]) -> None:
        """Call `hook` once for every transaction the node accepts from this client's senders
        (the service's metrics); a hook given twice is called once."""
        if hook not in self._sent_hooks:
            self._sent_hooks.append(hook)

    def use_archive(self, archive: LogArchive | None) -> None:
        """Read old events from `archive` (the service's and the demo's index) from now on."""
        self._archive = archive

    def event_reader(
        self, address: str | Sequence[str], abi: Iterable[dict[str, Any]], from_block: int = 0
    ) -> EventReader:
        """An EventReader on this client's node, and on its archive where one is in use."""
        return EventReader(self.w3, address, abi, from_block, self._archive)

    def sender_for(self, account: LocalAccount) -> Sender:
        """A shared sender for any local account."""
        if account.address not in self._senders:
            self._senders[account.address] = self._new_sender(account)
        return self._senders[account.address]

    def deploy(
        self, contract: str, args: tuple[Any, ...] = (), name: str | None = None, index: int = 0
    ) -> tuple[Deployment, bool]:
        """Deploy a project contract unless identical code is already live."""
        self._contracts.clear()
        return deploy(self.sender(index), self.registry, self.artifacts[contract], args, name)

    def contract(self, name: str, address: str | None = None) -> Contract:
        """A Web3 contract object, by registry name (cached) unless an address is given."""
        if address is not None:
            return self._bound(name, address)
        if name not in self._contracts:
            entry = self.registry.get(name)
            where = entry.address if entry else self.registry.address(name)
            self._contracts[name] = self._at(entry.contract if entry else name, where)
        return self._contracts[name]

    def _bound(self, name: str, address: str) -> Contract:
        """`name` at `address`, from a bounded cache: building a contract object costs ms (7 s
        of a default demo's lending built 1,296 of them), and a service meets many escrows."""
        key = (name, address.lower())
        with self._lock:  # the service's request threads share the client
            found = self._by_address.pop(key, None)
        if found is None:
            found = self._at(name, address)
        with self._lock:
            while len(self._by_address) >= BOUND_CONTRACTS:
                self._by_address.pop(next(iter(self._by_address)))  # the least recently used
            self._by_address[key] = found
        return found

    def _at(self, contract: str, address: str) -> Contract:
        """The compiled contract's ABI bound to an address: an instance of the contract's class,
        made once (web3 builds a new class on every `eth.contract(address, abi)`: 3.2 ms against
        1.1 for an instance, and a batch of orders meets a thousand escrows)."""
        with self._lock:
            cls = self._classes.get(contract)
            if cls is None:
                cls = self._classes[contract] = self.w3.eth.contract(
                    abi=self.artifacts[contract].abi
                )
        return cls(address=Web3.to_checksum_address(address))

    def check_call(self, fn: ContractFunction, sender: str) -> Any:
        """eth_call `fn` from `sender`: what it would return, or the contract's decoded error
        (ContractRevertError) if the chain would refuse it, before anything is sent."""
        try:
            return fn.call({"from": Web3.to_checksum_address(sender)})
        except Exception as exc:  # each backend raises its own type; the data names the error
            data = revert_data(exc)
            if data is None:
                raise
            raise self.decoder.decode(data) from exc

    def check_calls(
        self, fns: Sequence[ContractFunction], sender: str | Sequence[str]
    ) -> list[ContractRevertError | None]:
        """check_call of many calls at once, from one sender or each from its own: None where
        the chain would take a call, the contract's decoded error where it would refuse it.
        Over HTTP in JSON-RPC batches (web3's call path cost milliseconds of Python each),
        elsewhere one by one."""
        senders = [sender] * len(fns) if isinstance(sender, str) else list(sender)
        if len(senders) != len(fns):
            raise ValueError(f"{len(fns)} calls but {len(senders)} senders")
        rpc = rpc_of(self.w3)
        if rpc is None:
            return [self.refusal(fn, by) for fn, by in zip(fns, senders, strict=True)]
        payloads = [[{"from": Web3.to_checksum_address(by), "to": fn.address,
                      "data": call_data(fn)}, "latest"]
                    for fn, by in zip(fns, senders, strict=True)]  # fmt: skip
        return [None if d is None else self.decoder.decode(d) for d in refusals(rpc, payloads)]

    def refusal(self, fn: ContractFunction, sender: str) -> ContractRevertError | None:
        """check_call of one call as a value: its decoded error, or None if the chain would
        take it (what check_calls gives each call, one web3 call at a time)."""
        try:
            self.check_call(fn, sender)
        except ContractRevertError as exc:
            return exc
        return None

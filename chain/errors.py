"""Exceptions of the chain layer; every one says what went wrong and what to do."""

from __future__ import annotations

from typing import Any, ClassVar


class ChainError(Exception):
    """Root of every error raised by the chain layer."""


class ConfigError(ChainError):
    """Settings are missing or contradict each other."""


class NotTextError(ChainError):
    """A file meant to be text is binary or in an encoding not accepted (chain.text)."""


class CompileError(ChainError):
    """Solidity sources did not compile; the message carries solc's file:line diagnostics."""


class NodeError(ChainError):
    """A local node could not be started, stopped or reached."""


class NodeToolMissingError(NodeError):
    """Node.js, npm or the node package (ganache/anvil) is not installed."""


class PortInUseError(NodeError):
    """The port a node should listen on is already taken."""


class NodeStartError(NodeError):
    """A node process exited or never answered; the message carries its log tail."""


class NodeNotRunningError(NodeError):
    """An operation needs a running node and none answers."""


class RpcUnreachableError(NodeError):
    """No Ethereum JSON-RPC endpoint answers at the configured URL."""


class KeystoreError(ChainError):
    """A keystore is missing, unreadable, or its password is wrong."""


class DeploymentError(ChainError):
    """A contract could not be deployed or the deployment registry is inconsistent."""


class TransactionError(ChainError):
    """A transaction could not be sent or mined."""


class TransactionTimeoutError(TransactionError):
    """A sent transaction was not mined in time."""


class TransactionOutcomeUnknownError(TransactionError):
    """Sent, then the node stopped answering before the receipt: it may or may not be mined.

    `hashes` are the transactions in doubt. Saying "nothing was written" would be false: a
    caller checks them (or resends an idempotent request) once the node answers again.
    """

    def __init__(self, message: str, hashes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.hashes = hashes


class ContractRevertError(TransactionError):
    """A contract call reverted; `name` and `args` hold the decoded custom error.

    Subclasses named after each custom error are made on demand by `revert_class`, so callers
    can write `except revert_class("ERC20InsufficientBalance")`.
    """

    error_name: ClassVar[str] = ""

    def __init__(
        self, name: str, args: dict[str, Any], data: bytes = b"", detail: str = ""
    ) -> None:
        self.name = name
        self.args_by_name = args
        self.data = data
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in args.items())
        super().__init__(f"reverted with {name}({rendered}){detail}")


def _render(value: Any) -> str:
    """Render a decoded ABI value compactly (bytes as 0x-hex)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and not value.startswith("0x"):
        return repr(value)
    return str(value)


_REVERT_CLASSES: dict[str, type[ContractRevertError]] = {}


def revert_class(name: str) -> type[ContractRevertError]:
    """Return the exception class for the contract custom error `name` (one class per name)."""
    cls = _REVERT_CLASSES.get(name)
    if cls is None:
        cls = type(name, (ContractRevertError,), {"error_name": name, "__module__": __name__})
        _REVERT_CLASSES[name] = cls
    return cls

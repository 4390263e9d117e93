"""EIP-1559 transactions signed directly: RLP, keccak and libsecp256k1, nothing else.

eth_account's `sign_transaction` validates and normalises every field through its typed
transaction classes before the same three steps: about a millisecond of Python a transaction,
a sixth of the lending's time where orders and issues go by the thousand (docs/demo.md). The
Sender signs the transactions it builds itself (type 2, no access list) here, and anything
else through eth_account; tests/chain/test_signing.py compares both byte for byte.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import rlp
from coincurve import PrivateKey
from eth_utils import keccak

TYPE_1559 = b"\x02"
_FIELDS = (
    "chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to", "value", "data"
)  # fmt: skip


class Signed(NamedTuple):
    """A signed transaction: what eth_sendRawTransaction takes, and its hash."""

    raw_transaction: bytes
    hash: bytes


def signs_directly(tx: dict[str, Any]) -> bool:
    """Whether `tx` is a plain type-2 transaction this module signs (else use eth_account)."""
    return (
        "maxFeePerGas" in tx
        and "gasPrice" not in tx
        and not tx.get("accessList")
        and tx.get("type", 2) in (2, "0x2")
        and set(tx) <= {*_FIELDS, "from", "type", "accessList"}
    )


def _bytes(value: Any) -> bytes:
    """An address or data field as bytes (hex text with or without 0x, or bytes)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def _uint(tx: dict[str, Any], name: str) -> int:
    """A non-negative integer field (refused otherwise: RLP would encode nonsense)."""
    value = tx.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"transaction field {name} must be a non-negative int, not {value!r}")
    return value


def _payload(tx: dict[str, Any]) -> list[Any]:
    """The eight leading fields and the empty access list, as RLP takes them."""
    to = _bytes(tx["to"]) if tx.get("to") else b""
    if len(to) not in (0, 20):
        raise ValueError(f"transaction field to is not an address: {tx['to']!r}")
    return [
        _uint(tx, "chainId"),
        _uint(tx, "nonce"),
        _uint(tx, "maxPriorityFeePerGas"),
        _uint(tx, "maxFeePerGas"),
        _uint(tx, "gas"),
        to,
        _uint(tx, "value"),
        _bytes(tx.get("data") or b""),
        [],
    ]


def sign_1559(key: PrivateKey, tx: dict[str, Any]) -> Signed:
    """Sign a type-2 transaction (`signs_directly`) with `key`."""
    fields = _payload(tx)
    digest = keccak(TYPE_1559 + rlp.encode(fields))
    signature = key.sign_recoverable(digest, hasher=None)  # r, s (low), recovery id
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    raw = TYPE_1559 + rlp.encode([*fields, signature[64], r, s])
    return Signed(raw, keccak(raw))

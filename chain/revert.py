"""Decode revert data (custom errors, Error(string), Panic(uint256)) into named exceptions."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from chain.errors import ContractRevertError, revert_class

_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")
PANIC_REASONS = {
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to uninitialized function",
}


def _abi_type(param: dict[str, Any]) -> str:
    """Canonical ABI type of a parameter, expanding tuples."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _checksummed(abi_type: str, value: Any) -> Any:
    """Addresses come back lower-case from eth-abi; show them checksummed."""
    return to_checksum_address(value) if abi_type == "address" else value


class RevertDecoder:
    """Maps 4-byte selectors of known custom errors to their names and argument types."""

    def __init__(self, abis: Iterable[list[dict[str, Any]]] = ()) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for abi in abis:
            self.add_abi(abi)

    def add_abi(self, abi: list[dict[str, Any]]) -> None:
        """Learn the custom errors declared in `abi`."""
        for entry in abi:
            if entry.get("type") != "error":
                continue
            types = [_abi_type(p) for p in entry["inputs"]]
            names = [p.get("name") or f"arg{i}" for i, p in enumerate(entry["inputs"])]
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            self._errors[selector] = (entry["name"], types, names)

    def decode(self, data: bytes) -> ContractRevertError:
        """Turn raw revert data into a ContractRevertError subclass named after the error."""
        selector, body = data[:4], data[4:]
        if not data:
            return revert_class("Reverted")("Reverted", {}, data, " (no reason given)")
        if selector == _ERROR_STRING:
            (reason,) = decode(["string"], body)
            return revert_class("Error")("Error", {"reason": reason}, data)
        if selector == _PANIC:
            (code,) = decode(["uint256"], body)
            detail = f" ({PANIC_REASONS.get(code, 'unknown panic')})"
            return revert_class("Panic")("Panic", {"code": code}, data, detail)
        known = self._errors.get(selector)
        if known is None:
            return revert_class("UnknownError")(
                "UnknownError", {"selector": selector, "data": body}, data
            )
        name, types, names = known
        values = [_checksummed(t, v) for t, v in zip(types, decode(types, body), strict=True)]
        return revert_class(name)(name, dict(zip(names, values, strict=True)), data)


def revert_data(exc: BaseException) -> bytes | None:
    """Pull raw revert data out of a web3/provider exception chain, or None if there is none."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _own_revert_data(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _eth_tester_output(arg: object) -> bytes | None:
    """eth-tester's TransactionFailed carries the raw output as bytes or as their repr."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        # The repr starts at the first b' or b" (a later one may sit inside the bytes).
        starts = [i for i in (arg.find("b'"), arg.find('b"')) if i >= 0]
        if starts:
            start = min(starts)
            try:
                value = ast.literal_eval(arg[start:])
            except (ValueError, SyntaxError):
                return None
            return value if isinstance(value, bytes) else None
    return None


def _own_revert_data(exc: BaseException) -> bytes | None:
    """Revert data on one exception: web3's `.data`, or eth-tester's raw bytes argument."""
    data = getattr(exc, "data", None)
    if data is None and exc.args:
        data = _eth_tester_output(exc.args[0])
    return _data_bytes(data)


def _data_bytes(data: object) -> bytes | None:
    """Revert bytes from an error's `data` (bytes, 0x-hex, or ganache's object), else None."""
    if isinstance(data, dict):
        data = data.get("data") or data.get("result")  # ganache puts it under "result"
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def reply_revert_data(error: dict[str, Any]) -> bytes | None:
    """Revert data of a JSON-RPC error reply to an eth_call; b"" for a revert that gave no
    reason, None for an error that is not a revert (the node's own failure: ganache reports
    running out of gas with empty data too, and only its message tells them apart)."""
    found = _data_bytes(error.get("data"))
    if found:
        return found
    return b"" if "revert" in str(error.get("message", "")).lower() else None

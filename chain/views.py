"""View calls read many at a time: JSON-RPC batches instead of a web3 request each.

web3's contract-function machinery costs milliseconds of Python per call before anything is
sent (finding the ABI entry, binding and checking the arguments: 2.4 ms an encoding in the
demo's profile), and each call is an HTTP request of its own; reading the default demo's 842
loan states one by one took 29 s of its 188. A View is built once from the ABI (selector and
types); its calls go out in JSON-RPC batches of READ_BATCH and come back decoded by eth_abi,
addresses checksummed as web3 returns them. On a provider without an HTTP endpoint (the
in-process EVM of the tests) the same calls go one by one through web3's raw eth_call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import eth_abi
from eth_abi.exceptions import DecodingError, EncodingError
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from eth_utils.abi import get_abi_input_types, get_abi_output_types
from web3 import HTTPProvider, Web3
from web3.contract.contract import ContractFunction

from chain.errors import ChainError
from chain.revert import reply_revert_data
from chain.rpc import JsonRpc, LogQueryError

READ_BATCH = 500
"""eth_calls one JSON-RPC request carries."""


class ViewReadError(ChainError):
    """A batched view call failed (reverted, or no contract answered at the address)."""


@dataclass(frozen=True)
class View:
    """One view function of an ABI, ready to encode calls and decode their results."""

    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def data(self, *args: Any) -> str:
        """The call data of this function with `args`, 0x-hex."""
        return "0x" + (self.selector + eth_abi.encode(self.inputs, args)).hex()

    def decode(self, raw: bytes) -> tuple[Any, ...]:
        """The outputs of one call, addresses checksummed."""
        if not self.outputs:
            return ()
        if not raw:
            raise ViewReadError(f"{self.name}: no contract answered (empty result)")
        try:
            values = eth_abi.decode(self.outputs, raw)
        except DecodingError as exc:
            raise ViewReadError(f"{self.name}: the result does not fit the ABI ({exc})") from exc
        return tuple(_checksummed(t, v) for t, v in zip(self.outputs, values, strict=True))


MAX_ABIS = 256  # ABI lists remembered by identity (a handful of artifacts in practice)
_BY_ABI: dict[int, tuple[Sequence[dict[str, Any]], dict[str, View]]] = {}


def view(abi: Sequence[dict[str, Any]], name: str) -> View:
    """The View of function `name` in `abi` (its first overload). Remembered per ABI list: the
    artifacts' lists live as long as the process, and reading every entry's types on each call
    cost more than the call's encoding."""
    known = _BY_ABI.get(id(abi))
    if known is None or known[0] is not abi:  # the list is kept, so its id is never reused
        if len(_BY_ABI) >= MAX_ABIS:
            _BY_ABI.clear()
        known = _BY_ABI[id(abi)] = (abi, {})
    found = known[1].get(name)
    if found is None:
        functions = tuple(_key(e) for e in abi if e.get("type") == "function")
        found = known[1][name] = _view(functions, name)
    return found


def _key(entry: dict[str, Any]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """A hashable form of one function entry: name, input and output types."""
    return entry["name"], tuple(get_abi_input_types(entry)), tuple(get_abi_output_types(entry))


@cache
def _view(functions: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...], name: str) -> View:
    """The View of `name` among the functions (cached: an ABI is read once)."""
    for fn_name, inputs, outputs in functions:
        if fn_name == name:
            selector = function_signature_to_4byte_selector(f"{name}({','.join(inputs)})")
            return View(name, selector, inputs, outputs)
    raise KeyError(f"no function {name} in the ABI")


def _checksummed(abi_type: str, value: Any) -> Any:
    """`value` with its addresses checksummed, through tuples and arrays."""
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        return tuple(_checksummed(inner, v) for v in value)
    if abi_type.startswith("("):
        return tuple(_checksummed(t, v) for t, v in zip(_split_tuple(abi_type), value, strict=True))
    return value


def _split_tuple(abi_type: str) -> list[str]:
    """The component types of a tuple type such as `(uint256,(address,bool)[],bytes32)`."""
    parts, depth, start = [], 0, 1
    for i, ch in enumerate(abi_type[1:-1], start=1):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(abi_type[start:i])
            start = i + 1
    parts.append(abi_type[start:-1])
    return [p for p in parts if p]


def read_many(
    w3: Web3, calls: Sequence[tuple[str, View, tuple[Any, ...]]], block: str = "latest"
) -> list[tuple[Any, ...]]:
    """The decoded outputs of each (address, view, args) call at `block`, in order."""
    payloads = [[{"to": address, "data": v.data(*args)}, block] for address, v, args in calls]
    raw = _eth_calls(w3, payloads, tolerant=False)
    return [v.decode(r) for (_, v, _), r in zip(calls, raw, strict=True)]  # type: ignore[arg-type]


def read_one(w3: Web3, address: str, abi: Sequence[dict[str, Any]], name: str, *args: Any) -> Any:
    """The one output of view `name` of the contract at `address` (read_many of one call):
    web3's call path cost milliseconds of Python a call."""
    return read_many(w3, [(address, view(abi, name), args)])[0][0]


def try_many(
    w3: Web3, sender: str, calls: Sequence[tuple[str, View, tuple[Any, ...]]]
) -> list[tuple[Any, ...] | None]:
    """Each (address, view, args) call made as `sender` at the latest block: its decoded
    outputs, or None where the contract would refuse it (what a state-changing call would do
    if sent now, without sending it)."""
    payloads = [
        [{"from": sender, "to": address, "data": v.data(*args)}, "latest"]
        for address, v, args in calls
    ]
    raw = _eth_calls(w3, payloads, tolerant=True)
    return [None if r is None else v.decode(r) for (_, v, _), r in zip(calls, raw, strict=True)]


def _eth_calls(w3: Web3, payloads: list[list[Any]], *, tolerant: bool) -> list[bytes | None]:
    """Raw results of eth_calls: JSON-RPC batches over HTTP, else one by one through web3.
    `tolerant`: a call that fails gives None; otherwise it raises."""
    rpc = rpc_of(w3)
    if rpc is None:
        return [_one_call(w3, p, tolerant) for p in payloads]
    out: list[bytes | None] = []
    for reply in _replies(rpc, payloads, "view call"):
        if "error" in reply and not tolerant:
            raise ViewReadError(f"a batched view call failed: {reply['error']}")
        out.append(None if "error" in reply else bytes.fromhex(reply["result"][2:]))
    return out


def _replies(rpc: JsonRpc, payloads: Sequence[list[Any]], what: str) -> Iterator[dict[str, Any]]:
    """Each eth_call's reply object, the calls sent in JSON-RPC batches of READ_BATCH; a batch
    the node does not answer raises ViewReadError naming `what` it was."""
    for start in range(0, len(payloads), READ_BATCH):
        try:
            yield from rpc.batch_replies("eth_call", payloads[start : start + READ_BATCH])
        except LogQueryError as exc:
            raise ViewReadError(f"a batched {what} failed: {exc}") from exc


def call_data(fn: ContractFunction) -> str:
    """The 0x call data of a bound contract call: its selector and the ABI codec's encoding of
    its arguments. web3's own path first maps every argument through its normalizers (ENS
    names, hex strings for bytes), which this project's calls never need: a fifth of a batch of
    settlements went there. The arguments were checked against the ABI when the call was
    bound; where the codec refuses them as given, web3's own encoding decides."""
    try:
        encoded = fn.w3.codec.encode(_input_types(fn.signature, fn.abi), fn.arguments)
    except (EncodingError, TypeError, ValueError):
        return str(fn._encode_transaction_data())
    return fn.selector + encoded.hex()


_INPUT_TYPES: dict[str, tuple[str, ...]] = {}


def _input_types(signature: str, entry: dict[str, Any]) -> tuple[str, ...]:
    """The ABI input types of a function entry, by its signature (read once)."""
    found = _INPUT_TYPES.get(signature)
    if found is None:
        found = _INPUT_TYPES[signature] = tuple(get_abi_input_types(entry))  # type: ignore[arg-type]
    return found


def refusals(rpc: JsonRpc, payloads: Sequence[list[Any]]) -> list[bytes | None]:
    """Each eth_call's revert data where the contract would refuse it, None where it would
    not: JSON-RPC batches of READ_BATCH. An error that is not a revert raises ViewReadError."""
    out: list[bytes | None] = []
    for reply in _replies(rpc, payloads, "check"):
        error = reply.get("error")
        data = None if error is None else reply_revert_data(error)
        if error is not None and data is None:
            raise ViewReadError(f"a batched check failed: {error.get('message', error)}")
        out.append(data)
    return out


def _one_call(w3: Web3, payload: list[Any], tolerant: bool) -> bytes | None:
    """One eth_call through web3 (providers without an HTTP endpoint)."""
    try:
        return bytes(w3.eth.call(payload[0], payload[1]))
    except Exception:  # each backend raises its own type for a revert
        if tolerant:
            return None
        raise


@cache
def _rpc_for(url: str) -> JsonRpc:
    """One keep-alive JSON-RPC client per endpoint."""
    return JsonRpc(url)


def rpc_of(w3: Web3) -> JsonRpc | None:
    """The raw JSON-RPC client of an HTTP provider, else None."""
    provider = w3.provider
    if isinstance(provider, HTTPProvider) and provider.endpoint_uri:
        return _rpc_for(str(provider.endpoint_uri))
    return None

"""Read and decode TeaTrace events: raw eth_getLogs with topic filters, decoded by eth-abi.

Over HTTP the raw JSON-RPC call is used (several times faster than web3's get_logs +
process_log); the in-process EVM only speaks through web3, so there get_logs is used.
Topic OR-lists are sent in chunks, so a query over thousands of lots stays a few requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.providers import HTTPProvider

from traceability.errors import TraceabilityError

TOPIC_CHUNK = 200


@dataclass(frozen=True)
class Event:
    """One decoded log."""

    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class _EventSpec:
    """How to decode one event type."""

    name: str
    topic: bytes
    indexed: list[tuple[str, str]]
    data: list[tuple[str, str]]


def _abi_type(param: dict[str, Any]) -> str:
    """Canonical ABI type of a parameter, expanding tuples."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _hexbytes(value: Any) -> bytes:
    """Bytes from a 0x-hex string or bytes-like."""
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


def _int(value: Any) -> int:
    """Int from a 0x-hex quantity or int."""
    return int(value, 16) if isinstance(value, str) else int(value)


class EventCodec:
    """Topics and decoders for every event of one contract ABI."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self._by_name: dict[str, _EventSpec] = {}
        self._by_topic: dict[bytes, _EventSpec] = {}
        for entry in abi:
            if entry.get("type") != "event" or entry.get("anonymous"):
                continue
            params = [(p["name"], _abi_type(p)) for p in entry["inputs"]]
            flags = [p["indexed"] for p in entry["inputs"]]
            spec = _EventSpec(
                name=entry["name"],
                topic=event_abi_to_log_topic(entry),  # type: ignore[arg-type]
                indexed=[p for p, f in zip(params, flags, strict=True) if f],
                data=[p for p, f in zip(params, flags, strict=True) if not f],
            )
            self._by_name[spec.name] = spec
            self._by_topic[spec.topic] = spec

    def topic(self, name: str) -> bytes:
        """topic0 of event `name`."""
        return self._by_name[name].topic

    def decode(self, log: dict[str, Any]) -> Event | None:
        """Decode a raw or web3 log; None for events of other contracts."""
        topics = [_hexbytes(t) for t in log["topics"]]
        spec = self._by_topic.get(topics[0]) if topics else None
        if spec is None:
            return None
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(spec.indexed, topics[1:], strict=True):
            args[name] = _decode_one(kind, topic)
        values = decode([k for _, k in spec.data], _hexbytes(log["data"]))
        for (name, kind), value in zip(spec.data, values, strict=True):
            args[name] = to_checksum_address(value) if kind == "address" else value
        return Event(
            spec.name,
            args,
            _int(log["blockNumber"]),
            _hexbytes(log["transactionHash"]),
            _int(log["logIndex"]),
        )


def _decode_one(kind: str, topic: bytes) -> Any:
    """Decode an indexed (static) value from its topic."""
    if kind == "bytes32":
        return topic
    (value,) = decode([kind], topic)
    return to_checksum_address(value) if kind == "address" else value


def _chunks(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    """Consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LogReader:
    """Fetch decoded events of one contract, filtered by event name and indexed values."""

    def __init__(self, w3: Web3, address: str, codec: EventCodec, from_block: int = 0) -> None:
        self._w3 = w3
        self._address = to_checksum_address(address)
        self._codec = codec
        self._from_block = from_block
        self._raw = isinstance(w3.provider, HTTPProvider)

    def events(
        self, name: str, position: int | None = None, values: Iterable[bytes] = ()
    ) -> list[Event]:
        """Events `name` whose indexed argument at topic `position` (1-3) is one of `values`.

        Without `position`, every event of that name.
        """
        topic0 = "0x" + self._codec.topic(name).hex()
        if position is None:
            return self._query([topic0])
        wanted = sorted(set(values))
        found: list[Event] = []
        for chunk in _chunks(wanted, TOPIC_CHUNK):
            topics: list[Any] = [topic0] + [None] * (position - 1)
            topics.append(["0x" + v.hex() for v in chunk])
            found.extend(self._query(topics))
        found.sort(key=lambda e: (e.block_number, e.log_index))
        return found

    def _query(self, topics: list[Any]) -> list[Event]:
        """One eth_getLogs over the whole history since `from_block`."""
        params = {
            "address": self._address,
            "fromBlock": hex(self._from_block),
            "toBlock": "latest",
            "topics": topics,
        }
        if self._raw:
            reply = self._w3.provider.make_request("eth_getLogs", [params])  # type: ignore[arg-type]
            if "error" in reply:
                raise TraceabilityError(f"eth_getLogs on {self._address} failed: {reply['error']}")
            logs: Iterable[dict[str, Any]] = reply["result"]
        else:
            params["fromBlock"] = self._from_block  # type: ignore[assignment]
            logs = self._w3.eth.get_logs(params)  # type: ignore[arg-type]
        return [e for e in (self._codec.decode(dict(log)) for log in logs) if e is not None]

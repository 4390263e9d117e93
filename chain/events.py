"""Decoded events of one contract ABI: topic-filtered queries and a receipt's logs.

For application code (traceability, lending, the API): `EventReader.events(name, arg, values)`
asks `eth_getLogs` for one event, optionally only where an indexed argument is one of
`values`, at one or more contract addresses, from a start block to the head. Over an HTTP
provider the raw JSON-RPC call is used (faster than web3's `get_logs` + `process_log`,
which build several AttributeDicts per log); the in-process EVM only speaks through web3, so
there `get_logs` is used.
Topic OR-lists and address lists are sent in chunks, so a query over thousands of lots or
escrows stays a few requests. `EventDecoder` decodes single logs and receipts.

With a `LogArchive` (the index's copy of every followed contract's logs, `indexer.archive`),
a reader asks the archive for the blocks it holds and the node only for the blocks after
them: a node need not keep its whole history in memory, and a query over a long history is an
index look-up instead of the node's scan of every log (docs/architecture.md, "Reading old
events from the index").

Decoding is chain/abi.py's (the indexer's decoder). Argument types follow web3's event args:
addresses are checksum strings, bytesN are bytes, integers int, bool bool, arrays and
tuples are tuples; an indexed dynamic value (string, bytes, array) is its 32-byte topic hash.
chain/abi.py keeps addresses as 20 raw bytes (the indexer stores bytes), so they are
converted here, in `EventDecoder.decode_raw`, and only here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eth_abi import encode
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import BlockNotFound
from web3.providers import HTTPProvider

from chain.abi import EventSpec, LogDecoder, word_decoder
from chain.logs import RawLog, parse_log
from chain.rpc import RpcError

TOPIC_CHUNK = 200  # values per topic OR-list in one eth_getLogs
ADDRESS_CHUNK = 200  # contract addresses per eth_getLogs filter


@dataclass(frozen=True)
class Event:
    """One decoded log: event name, arguments by name, where it was emitted."""

    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: bytes
    log_index: int
    address: str  # the emitting contract (checksum)


def _bytes(value: Any) -> bytes:
    """Bytes from a 0x-hex string or bytes-like (web3's HexBytes)."""
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


def web3_log(log: Mapping[str, Any]) -> RawLog:
    """A log as web3 formats it (ints, HexBytes, checksum address) as a RawLog."""
    return RawLog(
        int(log["blockNumber"]),
        _bytes(log["blockHash"]),
        int(log["logIndex"]),
        int(log["transactionIndex"]),
        _bytes(log["transactionHash"]),
        _bytes(log["address"]),
        tuple(_bytes(t) for t in log["topics"]),
        _bytes(log["data"]),
        None,
    )


def topic_value(kind: str, value: Any) -> bytes:
    """The 32-byte topic an indexed argument of ABI type `kind` has for `value`.

    32 bytes pass as they are (a bytes32 value, or the hash of a dynamic value); addresses may
    be strings or 20 bytes, integers ints.
    """
    if isinstance(value, bytes | bytearray) and len(value) == 32:
        return bytes(value)
    if word_decoder(kind) is None:
        raise ValueError(f"an indexed {kind} is matched by its 32-byte topic hash, not {value!r}")
    return encode([kind], [value])


class EventDecoder:
    """Decodes logs of the events of one contract ABI, whatever contract emitted them."""

    def __init__(self, abi: Iterable[dict[str, Any]]) -> None:
        entries = list(abi)
        self._decoder = LogDecoder()
        self._decoder.add(None, entries)
        specs = LogDecoder.events(entries)
        self._by_name = {spec.name: spec for spec in specs.values()}
        self._addresses = {
            topic: tuple(name for name, kind in (*spec.indexed, *spec.data) if kind == "address")
            for topic, spec in specs.items()
        }

    def spec(self, name: str) -> EventSpec:
        """The event called `name` (KeyError if the ABI has none)."""
        return self._by_name[name]

    def topic(self, name: str) -> bytes:
        """topic0 of event `name`."""
        return self._by_name[name].topic0

    def indexed(self, name: str, arg: str | int) -> tuple[int, str]:
        """(topic position 1-3, ABI type) of an indexed argument, by name or by position."""
        indexed = self._by_name[name].indexed
        for position, (arg_name, kind) in enumerate(indexed, start=1):
            if arg in (arg_name, position):
                return position, kind
        raise ValueError(f"{name} has no indexed argument {arg!r}")

    def decode_raw(self, log: RawLog) -> Event | None:
        """Decode one log; None for events not in the ABI or whose data does not decode."""
        decoded = self._decoder.decode(log)
        if decoded.name is None:
            return None
        args = decoded.args
        for name in self._addresses[log.topics[0]]:
            args[name] = to_checksum_address(args[name])
        return Event(
            decoded.name,
            args,
            log.block_number,
            log.tx_hash,
            log.log_index,
            to_checksum_address(log.address),
        )

    def decode(self, log: Mapping[str, Any]) -> Event | None:
        """Decode a log as JSON-RPC (hex strings) or web3 (ints, HexBytes) gives it."""
        raw = parse_log(dict(log)) if isinstance(log["blockNumber"], str) else web3_log(log)
        return self.decode_raw(raw)

    def decode_receipt(self, receipt: Mapping[str, Any]) -> list[Event]:
        """The decoded events of a transaction receipt, in log order (unknown logs left out)."""
        events = (self.decode(log) for log in receipt["logs"])
        return [e for e in events if e is not None]


MAX_DECODERS = 64  # distinct ABIs kept (a handful of contracts; more means a caller's bug)
_DECODERS: dict[str, EventDecoder] = {}


def event_decoder(abi: Iterable[dict[str, Any]]) -> EventDecoder:
    """The EventDecoder of an ABI's events, built once per process and shared (it is never
    changed after it is built): building TeaTrace's takes about 5 ms, which every request that
    made a RecordingService or an EventReader paid."""
    events = [entry for entry in abi if entry.get("type") == "event"]
    key = json.dumps(events, sort_keys=True)
    found = _DECODERS.get(key)
    if found is None:
        if len(_DECODERS) >= MAX_DECODERS:
            _DECODERS.clear()
        found = _DECODERS[key] = EventDecoder(events)
    return found


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


Topics = list[Any]
"""An eth_getLogs topic filter: per position None (any), a 0x-hex topic, or a list of them."""


@dataclass(frozen=True)
class Archived:
    """An archive's answer: the matching logs of every block up to `head`, whose hash it has."""

    logs: list[RawLog]
    head: int
    head_hash: bytes


class LogArchive(Protocol):
    """Logs kept outside the node, complete for every block up to a head."""

    def read(self, addresses: Sequence[str], topics: Topics, from_block: int) -> Archived | None:
        """The matching logs of blocks `from_block`..head, or None where the archive cannot
        answer for all of them (no blocks yet, an address it does not follow)."""
        ...


class EventReader:
    """Fetches decoded events of one ABI at one or more contract addresses."""

    def __init__(
        self,
        w3: Web3,
        address: str | Sequence[str],
        abi: Iterable[dict[str, Any]],
        from_block: int = 0,
        archive: LogArchive | None = None,
    ) -> None:
        """`archive`: where to read old blocks from (ChainClient.event_reader passes the
        client's own)."""
        addresses = [address] if isinstance(address, str) else list(address)
        self._w3 = w3
        self._addresses = [to_checksum_address(a) for a in addresses]
        self.decoder = event_decoder(abi)
        self._from_block = from_block
        self._raw = isinstance(w3.provider, HTTPProvider)
        self._archive = archive

    def events(
        self, name: str, arg: str | int | None = None, values: Iterable[Any] = ()
    ) -> list[Event]:
        """Events `name` in chain order; with `arg` (an indexed argument's name, or its topic
        position 1-3), only those whose value there is one of `values` (none: no events)."""
        topic0 = "0x" + self.decoder.topic(name).hex()
        if arg is None:
            filters: list[list[Any]] = [[topic0]]
        else:
            position, kind = self.decoder.indexed(name, arg)
            wanted = sorted({topic_value(kind, v) for v in values})
            filters = [
                [topic0, *[None] * (position - 1), ["0x" + v.hex() for v in chunk]]
                for chunk in _chunks(wanted, TOPIC_CHUNK)
            ]
        found: list[Event] = []
        for addresses in _chunks(self._addresses, ADDRESS_CHUNK):
            for topics in filters:
                found.extend(self._query(addresses, topics))
        found.sort(key=lambda e: (e.block_number, e.log_index))
        return found

    def _query(self, addresses: Sequence[str], topics: Topics) -> list[Event]:
        """The events since `from_block`: the archive's blocks from it, the rest from the node."""
        raws: list[RawLog] = []
        start = self._from_block
        held = None if self._archive is None else self._archive.read(addresses, topics, start)
        if held is not None and self._on_chain(held.head, held.head_hash):
            raws, start = held.logs, held.head + 1
            if start > self._head():  # the node refuses a range that starts past its head
                return self._decode(raws)
        return self._decode(raws + self._node_logs(addresses, topics, start))

    def _on_chain(self, number: int, block_hash: bytes) -> bool:
        """Whether the node's block `number` has this hash: then the archive's blocks are
        this chain's (each hash commits to its parent's), not another chain's or a fork's."""
        if self._raw:
            block = self._call("eth_getBlockByNumber", [hex(number), False])
            return bool(block) and _bytes(block["hash"]) == block_hash
        try:
            return _bytes(self._w3.eth.get_block(number)["hash"]) == block_hash
        except BlockNotFound:  # the in-process EVM's answer for a block it does not have
            return False

    def _head(self) -> int:
        """The node's latest block number."""
        if self._raw:
            return int(self._call("eth_blockNumber", []), 16)
        return int(self._w3.eth.block_number)

    def _call(self, method: str, params: list[Any]) -> Any:
        """One raw JSON-RPC call through the provider: its result, or RpcError."""
        reply = self._w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in reply:
            err = reply["error"]
            if not isinstance(err, dict):
                err = {"message": err}
            raise RpcError(method, err.get("code"), str(err.get("message", err)))
        return reply["result"]

    def _decode(self, raws: list[RawLog]) -> list[Event]:
        """The logs decoded with this reader's ABI (logs of other events left out)."""
        events = (self.decoder.decode_raw(raw) for raw in raws)
        return [e for e in events if e is not None]

    def _node_logs(self, addresses: Sequence[str], topics: Topics, start: int) -> list[RawLog]:
        """One eth_getLogs over blocks `start`..latest."""
        params: dict[str, Any] = {
            "address": addresses[0] if len(addresses) == 1 else list(addresses),
            "fromBlock": hex(start),
            "toBlock": "latest",
            "topics": topics,
        }
        if self._raw:
            return [parse_log(item) for item in self._call("eth_getLogs", [params])]
        params["fromBlock"] = start
        return [web3_log(log) for log in self._w3.eth.get_logs(params)]  # type: ignore[arg-type]

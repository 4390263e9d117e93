"""Decode event logs: strict word decoders, generated straight-line decoders, eth-abi.

Addresses come back as their 20 raw bytes (the indexer stores and compares bytes), bytesN as
bytes, integers as int; indexed dynamic values stay as their 32-byte topic hash. It knows
nothing about what the events mean. chain/events.py gives application callers web3's
convention (checksum address strings) on top of this decoder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from eth_abi.abi import default_codec
from eth_utils import keccak

from chain.logs import RawLog


def _canonical(param: dict[str, Any]) -> str:
    """ABI type string of a parameter, expanding tuples."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param.get("components", []))
        return f"({inner}){kind[5:]}"
    return kind


_UINT = re.compile(r"^uint(\d*)$")
_INT = re.compile(r"^int(\d*)$")
_BYTES_N = re.compile(r"^bytes([1-9]|[12]\d|3[0-2])$")


class AbiDecodeError(ValueError):
    """A 32-byte word is not a canonical encoding of its ABI type."""


def word_decoder(type_str: str) -> Callable[[bytes], Any] | None:
    """Decoder of one head word of a static elementary type; None for any other type.

    Follows eth-abi's strict rules (range and zero padding checked) but returns addresses as
    their 20 raw bytes; tests check it against eth-abi on random values.
    """
    if type_str == "address":
        return _address_word
    if type_str == "bool":
        return _bool_word
    if found := _UINT.match(type_str):
        return _uint_word(1 << int(found.group(1) or 256))
    if found := _INT.match(type_str):
        return _int_word(int(found.group(1) or 256))
    if found := _BYTES_N.match(type_str):
        return _bytes_word(int(found.group(1)))
    return None


def _address_word(word: bytes) -> bytes:
    """An address: 12 zero bytes, then 20."""
    if len(word) != 32 or any(word[:12]):
        raise AbiDecodeError(f"not an address word: 0x{word.hex()}")
    return word[12:]


def _bool_word(word: bytes) -> bool:
    """A bool: 0 or 1."""
    value = int.from_bytes(word, "big")
    if len(word) != 32 or value > 1:
        raise AbiDecodeError(f"not a bool word: 0x{word.hex()}")
    return value == 1


def _uint_word(limit: int) -> Callable[[bytes], int]:
    """An unsigned integer below `limit`."""

    def decode(word: bytes) -> int:
        value = int.from_bytes(word, "big")
        if value >= limit or len(word) != 32:
            raise AbiDecodeError(f"uint out of range: 0x{word.hex()}")
        return value

    return decode


def _int_word(bits: int) -> Callable[[bytes], int]:
    """A two's-complement signed integer of `bits` bits, sign-extended to 256."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def decode(word: bytes) -> int:
        value = int.from_bytes(word, "big", signed=True)
        if not low <= value <= high or len(word) != 32:
            raise AbiDecodeError(f"int{bits} out of range: 0x{word.hex()}")
        return value

    return decode


def _bytes_word(size: int) -> Callable[[bytes], bytes]:
    """bytesN: N bytes, right-padded with zeros."""

    def decode(word: bytes) -> bytes:
        if len(word) != 32 or any(word[size:]):
            raise AbiDecodeError(f"bytes{size} with non-zero padding: 0x{word.hex()}")
        return word[:size]

    return decode


def _to_bytes_address(type_str: str, value: Any) -> Any:
    """eth-abi returns checksummed strings for addresses; this module uses raw bytes."""
    if type_str == "address":
        return bytes.fromhex(value[2:])
    return value


_ZEROS = tuple(bytes(n) for n in range(33))
_BOOLS = {bytes(32): False, bytes(31) + b"\x01": True}


def _bad_word(kind: str, word: bytes) -> None:
    """Raise for a word that is not a canonical encoding of `kind`."""
    raise AbiDecodeError(f"not a canonical {kind} word: 0x{word.hex()}")


def _word_lines(kind: str, src: str, out: str) -> list[str] | None:
    """Source lines decoding the 32-byte word `src` into `out` by eth-abi's strict rules (the
    same as word_decoder); None for types that are not static elementary words."""
    bad = f"_bad({kind!r}, {src})"
    if kind == "address":
        return [f"if {src}[:12] != _ZEROS[12]: {bad}", f"{out} = {src}[12:]"]
    if kind == "bool":
        return [f"{out} = _BOOLS.get({src})", f"if {out} is None: {bad}"]
    if found := _UINT.match(kind):
        bits = int(found.group(1) or 256)
        check = [f"if {out} >> {bits}: {bad}"] if bits < 256 else []
        return [f"{out} = _int({src}, 'big')", *check]
    if found := _INT.match(kind):
        bits = int(found.group(1) or 256)
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        check = [f"if not {low} <= {out} <= {high}: {bad}"] if bits < 256 else []
        return [f"{out} = _int({src}, 'big', signed=True)", *check]
    if found := _BYTES_N.match(kind):
        size = int(found.group(1))
        if size == 32:
            return [f"{out} = {src}"]
        return [f"if {src}[{size}:] != _ZEROS[{32 - size}]: {bad}", f"{out} = {src}[:{size}]"]
    return None


def compile_static_decoder(
    indexed: Sequence[tuple[str, str]], data: Sequence[tuple[str, str]], first_topic: int = 1
) -> Callable[[Sequence[bytes], bytes], dict[str, Any] | None] | None:
    """A function decoding an event whose data is only static elementary words, or None.

    The function is generated source (as `collections.namedtuple` does): straight-line slicing
    and `int.from_bytes` with the range and padding checks of word_decoder, building the
    argument dict in one literal: far faster than a loop over per-word decoders on the hot
    event (figures: docs/indexer.md). It returns None when the data is not exactly one word
    per argument (the caller then asks eth-abi); tests hold it equal to eth-abi on random
    events and words.
    """
    lines = [
        "def decode(topics, data):",
        f"    if len(data) != {32 * len(data)}:",
        "        return None",
    ]
    values = []
    for i, (_, kind) in enumerate(indexed):
        src, out = f"t{i}", f"v{len(values)}"
        lines.append(f"    {src} = topics[{first_topic + i}]")
        word = _word_lines(kind, src, out)
        if word is None:  # dynamic or composite: the topic is its hash
            lines.append(f"    {out} = {src}")
        else:
            lines.append(f"    if len({src}) != 32: _bad({kind!r}, {src})")
            lines += [f"    {line}" for line in word]
        values.append(out)
    for i, (_, kind) in enumerate(data):
        src, out = f"w{i}", f"v{len(values)}"
        word = _word_lines(kind, src, out)
        if word is None:
            return None
        lines.append(f"    {src} = data[{32 * i}:{32 * i + 32}]")
        lines += [f"    {line}" for line in word]
        values.append(out)
    names = [name for name, _ in (*indexed, *data)]
    pairs = ", ".join(f"{name!r}: {v}" for name, v in zip(names, values, strict=True))
    lines.append(f"    return {{{pairs}}}")
    namespace = {"_int": int.from_bytes, "_bad": _bad_word, "_ZEROS": _ZEROS, "_BOOLS": _BOOLS}
    exec("\n".join(lines), namespace)  # source built above from type names and literals only
    return namespace["decode"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class EventSpec:
    """How to decode one event: names and types of topics and data, with cached decoders.

    Events whose data is only static elementary words (the common case: ids, amounts,
    addresses) get a generated straight-line decoder; anything else (strings, arrays, tuples)
    goes through eth-abi's cached tuple decoder. Indexed dynamic values stay as their 32-byte
    topic hash.
    """

    name: str
    signature: str
    topic0: bytes
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    anonymous: bool = False
    _topic_decoders: tuple[Callable[[bytes], Any], ...] = field(
        repr=False, compare=False, default=()
    )
    _static: Callable[[Sequence[bytes], bytes], dict[str, Any] | None] | None = field(
        repr=False, compare=False, default=None
    )

    @classmethod
    def from_abi(cls, entry: dict[str, Any]) -> EventSpec:
        """Build from an ABI `event` entry."""
        inputs = entry.get("inputs", [])
        types = [_canonical(p) for p in inputs]
        signature = f"{entry['name']}({','.join(types)})"
        indexed = tuple((p["name"], t) for p, t in zip(inputs, types, strict=True) if p["indexed"])
        data = tuple((p["name"], t) for p, t in zip(inputs, types, strict=True) if not p["indexed"])
        anonymous = bool(entry.get("anonymous"))
        return cls(
            entry["name"],
            signature,
            keccak(text=signature),
            indexed,
            data,
            anonymous,
            tuple(word_decoder(t) or bytes for _, t in indexed),
            compile_static_decoder(indexed, data, 0 if anonymous else 1),
        )

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        """Arguments by name."""
        if self._static is not None:
            values = self._static(topics, data)
            if values is not None:
                return values
        first = 0 if self.anonymous else 1
        values = {}
        for i, (name, _) in enumerate(self.indexed):
            values[name] = self._topic_decoders[i](topics[first + i])
        if not self.data:
            return values
        decoded = default_codec.decode([t for _, t in self.data], data)
        for (name, kind), value in zip(self.data, decoded, strict=True):
            values[name] = _to_bytes_address(kind, value)
        return values


class DecodedLog(NamedTuple):
    """A raw log with its event name and decoded arguments (name None if unknown)."""

    log: RawLog
    name: str | None
    args: dict[str, Any]


class LogDecoder:
    """Decodes logs of known contracts by (address, topic0), falling back to topic0 alone."""

    def __init__(self) -> None:
        self._by_address: dict[bytes, dict[bytes, EventSpec]] = {}
        self._by_topic: dict[bytes, EventSpec] = {}

    @staticmethod
    def events(abi: Iterable[dict[str, Any]]) -> dict[bytes, EventSpec]:
        """topic0 -> spec for every non-anonymous event of an ABI."""
        specs = (EventSpec.from_abi(e) for e in abi if e.get("type") == "event")
        return {s.topic0: s for s in specs if not s.anonymous}

    def add(self, address: bytes | None, abi: Iterable[dict[str, Any]]) -> None:
        """Know the events of the contract at `address` (None: by topic0 alone, any emitter)."""
        specs = self.events(abi)
        if address is not None:
            self._by_address[address] = specs
        for topic, spec in specs.items():
            self._by_topic.setdefault(topic, spec)

    def topics_named(self, name: str) -> set[bytes]:
        """topic0 of every known event called `name`."""
        return {t for t, spec in self._by_topic.items() if spec.name == name}

    def topic0s(self) -> list[bytes]:
        """Every known event topic."""
        return sorted(self._by_topic)

    def spec(self, address: bytes, topic0: bytes) -> EventSpec | None:
        """The event spec for a log, or None."""
        specs = self._by_address.get(address)
        found = specs.get(topic0) if specs else None
        return found or self._by_topic.get(topic0)

    def decode(self, log: RawLog) -> DecodedLog:
        """Decode one log; unknown or undecodable logs get name None and no args."""
        if not log.topics:
            return DecodedLog(log, None, {})
        spec = self.spec(log.address, log.topics[0])
        if spec is None or len(log.topics) != len(spec.indexed) + 1:
            return DecodedLog(log, None, {})
        try:
            return DecodedLog(log, spec.name, spec.decode(log.topics, log.data))
        except Exception:  # malformed data from a contract that shares a signature
            return DecodedLog(log, None, {})

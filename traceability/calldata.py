"""TeaTrace harvest calldata encoded and decoded directly (no web3 argument formatting).

A HarvestRecord tuple is six static words, so `recordHarvests` and `checkHarvests` calldata is
a selector, a few head words and 192 bytes per record. web3's generic path (argument
validation, `map_abi_data`, eth-abi) spent about 0.7 ms per record, more than the node took to
execute it (docs/benchmarks.md, "where the time goes"); the tests compare both encodings.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils import keccak

HARVEST_TUPLE = "(bytes32,bytes32,uint64,uint8,uint64,bytes32)"
RECORD_HARVESTS = f"recordHarvests({HARVEST_TUPLE}[])"
RECORD_DELIVERIES = f"recordDeliveries({HARVEST_TUPLE}[],address)"
CHECK_HARVESTS = f"checkHarvests(address,uint256,{HARVEST_TUPLE}[])"
RECORD_SELECTOR = keccak(text=RECORD_HARVESTS)[:4]
DELIVER_SELECTOR = keccak(text=RECORD_DELIVERIES)[:4]
CHECK_SELECTOR = keccak(text=CHECK_HARVESTS)[:4]
_WORD = 32
_UINT64_MAX = 2**64 - 1

HarvestTuple = tuple[bytes, bytes, int, int, int, bytes]


def _word(value: int) -> bytes:
    """A uint as one big-endian 32-byte word."""
    return value.to_bytes(_WORD, "big")


def _bytes32(value: bytes) -> bytes:
    """A bytes32 value as it is (refused unless exactly 32 bytes)."""
    if len(value) != _WORD:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
    return bytes(value)


def _uint(value: int, limit: int) -> bytes:
    """A uint of at most `limit`, as a word (refused if negative or too large)."""
    if not 0 <= value <= limit:
        raise ValueError(f"{value} is outside 0..{limit}")
    return _word(value)


def _records(records: Sequence[HarvestTuple]) -> bytes:
    """Length word, then each record's six words (every field is static: no offsets)."""
    parts = [_word(len(records))]
    for farmer, plot, grams, grade, picked_at, data_hash in records:
        parts += (
            _bytes32(farmer),
            _bytes32(plot),
            _uint(grams, _UINT64_MAX),
            _uint(grade, 255),
            _uint(picked_at, _UINT64_MAX),
            _bytes32(data_hash),
        )
    return b"".join(parts)


def record_harvests_data(records: Sequence[HarvestTuple]) -> bytes:
    """Calldata of `recordHarvests(records)`."""
    return RECORD_SELECTOR + _word(_WORD) + _records(records)


def record_deliveries_data(records: Sequence[HarvestTuple], consignee: str) -> bytes:
    """Calldata of `recordDeliveries(records, consignee)`."""
    return DELIVER_SELECTOR + _word(2 * _WORD) + _address(consignee) + _records(records)


def _address(value: str) -> bytes:
    """A hex address as one word (refused unless 20 bytes)."""
    address = bytes.fromhex(value.removeprefix("0x"))
    if len(address) != 20:
        raise ValueError(f"not an address: {value!r}")
    return address.rjust(_WORD, b"\0")


def check_harvests_data(cooperative: str, as_of: int, records: Sequence[HarvestTuple]) -> bytes:
    """Calldata of `checkHarvests(cooperative, asOf, records)`."""
    head = _address(cooperative) + _uint(as_of, 2**256 - 1) + _word(3 * _WORD)
    return CHECK_SELECTOR + head + _records(records)


def decode_checks(returned: bytes, expected: int) -> list[int]:
    """The HarvestCheck values of `checkHarvests`' return data (a uint8[])."""
    if len(returned) < 2 * _WORD:
        raise ValueError(f"checkHarvests returned {len(returned)} bytes")
    offset = int.from_bytes(returned[:_WORD], "big")
    count = int.from_bytes(returned[offset : offset + _WORD], "big")
    start = offset + _WORD
    if count != expected or len(returned) < start + count * _WORD:
        raise ValueError(f"checkHarvests returned {count} verdicts for {expected} records")
    words = (returned[start + i * _WORD : start + (i + 1) * _WORD] for i in range(count))
    return [int.from_bytes(w, "big") for w in words]

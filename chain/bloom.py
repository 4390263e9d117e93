"""Logs bloom checks: does a block's 2048-bit bloom possibly mention an address or topic?"""

from __future__ import annotations

from eth_utils import keccak


def bloom_bits(item: bytes) -> tuple[tuple[int, int], ...]:
    """The three (byte index, bit mask) pairs `item` sets in a 2048-bit logs bloom."""
    digest = keccak(item)
    pairs = []
    for i in (0, 2, 4):
        bit = ((digest[i] << 8) | digest[i + 1]) & 2047
        pairs.append((255 - bit // 8, 1 << (bit % 8)))
    return tuple(pairs)


def bloom_may_contain(bloom: bytes, bits: tuple[tuple[int, int], ...]) -> bool:
    """True if every bit of the item is set (the block may hold a log mentioning it)."""
    return all(bloom[index] & mask for index, mask in bits)

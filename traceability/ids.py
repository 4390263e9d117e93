"""Identifiers: pseudonymous farmer and plot ids, record data hashes and lot ids.

No personal data ever goes on chain: a farmer is known there only by an HMAC-SHA256 of the
national id keyed with the cooperative's secret salt, which cannot be reversed or recomputed by
anyone who lacks the salt.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Sequence

from eth_abi import encode
from eth_utils import keccak, to_canonical_address

HARVEST_HASH_DOMAIN = "tealedger.harvest.v1"
OUTPUT_HASH_DOMAIN = "tealedger.output.v1"
MIN_SALT_BYTES = 16


# ISO 7064 MOD 11-2 weights and check characters of the PRC resident identity number.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def resident_id_check(first17: str) -> str:
    """The check character (ISO 7064 MOD 11-2) of a resident id's first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def _normalize(text: str) -> str:
    """NFKC, trimmed, upper-case: `110101199001011234` and ` 110101199001011234 ` match."""
    return unicodedata.normalize("NFKC", text).strip().upper()


def _keyed(salt: bytes, label: str, reference: str) -> bytes:
    """HMAC-SHA256 of `label:reference` under `salt`."""
    if len(salt) < MIN_SALT_BYTES:
        raise ValueError(f"the cooperative salt must have at least {MIN_SALT_BYTES} random bytes")
    if not reference.strip():
        raise ValueError(f"the {label} reference is empty")
    message = f"{label}:{_normalize(reference)}".encode()
    return hmac.new(salt, message, hashlib.sha256).digest()


def farmer_id(cooperative_salt: bytes, national_id: str) -> bytes:
    """Pseudonymous 32-byte farmer id: HMAC-SHA256(salt, "farmer:" + normalized national id)."""
    return _keyed(cooperative_salt, "farmer", national_id)


def plot_id(cooperative_salt: bytes, land_reference: str) -> bytes:
    """Pseudonymous 32-byte plot id from e.g. the land-contract number."""
    return _keyed(cooperative_salt, "plot", land_reference)


def location_hash(cooperative_salt: bytes, location: str) -> bytes:
    """Keyed hash of a plot's location description (GPS stays off chain)."""
    return _keyed(cooperative_salt, "location", location)


def harvest_data_hash(
    farmer: bytes,
    plot: bytes,
    grams: int,
    grade: int,
    picked_at: int,
    record_ref: str = "",
) -> bytes:
    """Hash of a harvest record; it is also the record's idempotency key.

    `record_ref` is the cooperative's own receipt or row number: two genuinely separate pickings
    with identical fields stay distinct when their references differ.
    """
    plain = (
        isinstance(farmer, bytes)
        and isinstance(plot, bytes)
        and len(farmer) == len(plot) == 32
        and all(type(v) is int for v in (grams, grade, picked_at))  # bools take eth-abi's path
        and 0 <= grams < 2**64
        and 0 <= grade < 2**8
        and 0 <= picked_at < 2**64
        and isinstance(record_ref, str)
    )
    if plain:  # the common case, encoded directly: eth-abi took ~0.1 ms a record
        return keccak(
            _HARVEST_HEAD + farmer + plot + _harvest_tail(grams, grade, picked_at, record_ref)
        )
    types = ["string", "bytes32", "bytes32", "uint64", "uint8", "uint64", "string"]
    values = [HARVEST_HASH_DOMAIN, farmer, plot, grams, grade, picked_at, record_ref]
    return keccak(encode(types, values))


def _padded(data: bytes) -> bytes:
    """ABI `bytes`/`string` tail: length word, then the data zero-padded to whole words."""
    return len(data).to_bytes(32, "big") + data + b"\0" * (-len(data) % 32)


_HARVEST_DOMAIN_TAIL = _padded(HARVEST_HASH_DOMAIN.encode())
_HARVEST_HEAD = (7 * 32).to_bytes(32, "big")  # offset of the domain string, after 7 head words


def _harvest_tail(grams: int, grade: int, picked_at: int, record_ref: str) -> bytes:
    """The words after farmer and plot in harvest_data_hash's ABI encoding."""
    ref_offset = 7 * 32 + len(_HARVEST_DOMAIN_TAIL)
    words = (grams, grade, picked_at, ref_offset)
    return (
        b"".join(w.to_bytes(32, "big") for w in words)
        + _HARVEST_DOMAIN_TAIL
        + _padded(record_ref.encode())
    )


def output_data_hash(process_ref: str, index: int, grams: int) -> bytes:
    """Hash of a processing output, from the processor's batch reference and output index."""
    return keccak(
        encode(
            ["string", "string", "uint256", "uint64"],
            [OUTPUT_HASH_DOMAIN, process_ref, index, grams],
        )
    )


def lot_id(creator: str, data_hash: bytes) -> bytes:
    """The lot id TeaTrace assigns: keccak256(abi.encode(creator, dataHash))."""
    return keccak(b"\x00" * 12 + to_canonical_address(creator) + data_hash)


def lot_ids(creator: str, data_hashes: Sequence[bytes]) -> list[bytes]:
    """lot_id of each data hash of one creator (its address decoded once, not per record)."""
    prefix = b"\x00" * 12 + to_canonical_address(creator)
    return [keccak(prefix + h) for h in data_hashes]


def process_id(inputs: list[bytes]) -> bytes:
    """The processing step id TeaTrace assigns: keccak256(abi.encodePacked(inputs))."""
    return keccak(b"".join(inputs))


def text_hash(text: str) -> bytes:
    """keccak256 of UTF-8 text (e.g. a recall notice or certificate reference)."""
    return keccak(text.encode())

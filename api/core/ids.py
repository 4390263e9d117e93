"""Ids and addresses as the API writes them: 0x-hex, parsed with a 422 for anything else."""

from __future__ import annotations

from api.core.errors import Invalid

ZERO_ADDRESS = "0x" + "00" * 20


def hex32(value: bytes) -> str:
    """0x-hex of a 32-byte id."""
    return "0x" + bytes(value).hex()


def tx_hex(receipt: object) -> str:
    """The transaction hash of a receipt, 0x-hex."""
    return "0x" + bytes(receipt["transactionHash"]).hex()  # type: ignore[index]


def parse_id(value: str, what: str) -> bytes:
    """A 0x + 64 hex digit id from a path or query, else 422."""
    text = value.strip()
    message = f"a {what} id is 0x followed by 64 hex digits"
    if not text.startswith("0x") or len(text) != 66:
        raise Invalid(message)
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise Invalid(message) from None


def same_address(a: str | None, b: str | None) -> bool:
    """Addresses equal regardless of checksum case."""
    return (a or ZERO_ADDRESS).lower() == (b or ZERO_ADDRESS).lower()

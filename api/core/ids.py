"""Ids and addresses as the API writes them: 0x-hex, parsed with a 422 for anything else."""

from __future__ import annotations

from collections.abc import Sequence

from api.core.errors import Invalid
from traceability.models import parse_hex32

ZERO_ADDRESS = "0x" + "00" * 20


def hex32(value: bytes) -> str:
    """0x-hex of a 32-byte id."""
    return "0x" + bytes(value).hex()


def tx_hex(receipt: object) -> str:
    """The transaction hash of a receipt, 0x-hex."""
    return "0x" + bytes(receipt["transactionHash"]).hex()  # type: ignore[index]


def parse_id(value: str, what: str, loc: Sequence[str | int] = ("path",)) -> bytes:
    """A 0x + 64 hex digit id from a path or query, else 422 (the one parser every route
    taking a farmer, plot or lot id uses)."""
    try:
        return parse_hex32(value)
    except ValueError:
        message = f"a {what} id is 0x followed by 64 hex digits, without spaces"
        raise Invalid(message, loc=(*loc, what)) from None


def same_address(a: str | None, b: str | None) -> bool:
    """Addresses equal regardless of checksum case."""
    return (a or ZERO_ADDRESS).lower() == (b or ZERO_ADDRESS).lower()

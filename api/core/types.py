"""Field types shared by the request bodies of every audience (ids, text, national ids)."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, BeforeValidator, Strict, WithJsonSchema
from pydantic import Field as PydField
from web3 import Web3

from traceability.ids import resident_id_check
from traceability.models import Bytes32

# The largest key SQLite (and PostgreSQL's bigint) can store: a bigger id is a 422, never an
# overflow inside the database driver.
MAX_ROW_ID = 2**63 - 1
# An amount of money in a request, in fen: 10 billion yuan, far above any loan or sale here and
# far below what the database and the contracts hold.
MAX_FEN = 10**15
Int = Annotated[int, Strict()]
"""An integer in a request body: a JSON number without a fraction; `true`, `1.0` and `"1"` are
not integers (lax parsing once recorded `"grams": true` as a 1 g lot)."""
RowId = Annotated[Int, PydField(ge=1, le=MAX_ROW_ID, description="a row id (1 or more)")]
"""A row id in a request body (an organisation, a key)."""
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a row id (1 or more)")]
"""A row id in a path."""

Id32 = Annotated[
    Bytes32,
    WithJsonSchema(
        {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$", "example": "0x" + "ab" * 32}
    ),
]
"""A 32-byte id (farmer, plot, lot) as 0x + 64 hex digits in JSON."""
Id32Path = Annotated[
    str,
    Path(
        description="0x followed by 64 hex digits",
        json_schema_extra={"pattern": "^0x[0-9a-fA-F]{64}$", "example": "0x" + "ab" * 32},
    ),
]
"""A 32-byte id in a path: documented with its pattern, parsed by api.core.ids.parse_id (so the
422 says what an id looks like)."""
AddressPath = Annotated[
    str,
    Path(
        description="0x followed by 40 hex digits",
        pattern=r"^0x[0-9a-fA-F]{40}$",
        json_schema_extra={"example": "0x" + "ab" * 20},
    ),
]
"""A wallet address in a path (any case; the zero address is the mint's)."""


def normalize_national_id(value: str) -> str:
    """NFKC, no spaces, upper case (the form the pseudonym is computed from)."""
    return unicodedata.normalize("NFKC", value).replace(" ", "").strip().upper()


def _national_id(value: object) -> str:
    """An 18-character PRC resident id with a valid check character.

    The pseudonym is derived from this number: a typo would silently create a second farmer,
    so the check character is verified.
    """
    if not isinstance(value, str):
        raise ValueError("the national id is a string of 18 characters")
    text = normalize_national_id(value)
    if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        raise ValueError("a resident id has 17 digits and a check digit or X (18 characters)")
    if resident_id_check(text[:17]) != text[17]:
        raise ValueError("the resident id's check character is wrong: check for a typo")
    return text


def mask_national_id(value: str | None) -> str | None:
    """`4228**********001X`: enough to tell members apart, not enough to misuse."""
    if not value:
        return None
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


NationalId = Annotated[str, BeforeValidator(_national_id)]


# Control characters (NUL, escapes) and format characters (the right-to-left override U+202E,
# zero-width joiners, BOMs) are invisible or reorder what a reader sees: names never need them.
_HIDDEN = frozenset({"Cc", "Cf"})


def _text(value: str) -> str:
    """Trimmed, not blank, and free of control and invisible formatting characters."""
    text = value.strip()
    if not text:
        raise ValueError("must not be blank")
    for char in text:
        if unicodedata.category(char) in _HIDDEN:
            raise ValueError(
                f"must not contain control or invisible formatting characters (U+{ord(char):04X})"
            )
    return text


# The same rule for the schema (ASCII and the common format characters; the validator checks
# every Cc and Cf character).
_HIDDEN_CLASS = r"\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
TEXT_PATTERN = rf"^[^{_HIDDEN_CLASS}]*[^\s{_HIDDEN_CLASS}][^{_HIDDEN_CLASS}]*$"
Text = Annotated[str, AfterValidator(_text), PydField(json_schema_extra={"pattern": TEXT_PATTERN})]
"""Human-entered text (names, labels, references): trimmed, non-empty, no control (Cc) or
format (Cf) characters."""


def _address(value: object) -> str:
    """A 0x account address in checksum form (any case accepted; the zero address is not)."""
    if not isinstance(value, str) or not Web3.is_address(value):
        raise ValueError(
            "must be a 0x address of 40 hex digits (with a valid checksum if mixed-case)"
        )
    if int(value, 16) == 0:
        raise ValueError("the zero address is nobody's wallet")
    return Web3.to_checksum_address(value)


Address = Annotated[
    str,
    BeforeValidator(_address),
    WithJsonSchema(
        {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$", "example": "0x" + "ab" * 20}
    ),
]
"""An account address in a request body (returned in checksum form)."""

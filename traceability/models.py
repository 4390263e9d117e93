"""Validated records sent to TeaTrace, and the typed views read back from it."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from enum import IntEnum
from functools import cached_property
from typing import Annotated, Any

from eth_utils import is_address, to_checksum_address
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from traceability.ids import harvest_data_hash

UINT16_MAX = 2**16 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
EARLIEST_HARVEST = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
ZERO32 = b"\x00" * 32


HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
HEX32_MESSAGE = "expected 0x followed by 64 hex digits (no spaces)"


def parse_hex32(text: str) -> bytes:
    """The one parser of 32-byte ids written as text: exactly 0x + 64 hex digits, else
    ValueError (bytes.fromhex alone skips spaces and would make a shorter id)."""
    if not isinstance(text, str) or HEX32.fullmatch(text) is None:
        raise ValueError(HEX32_MESSAGE)
    return bytes.fromhex(text[2:])


def _bytes32(value: Any) -> bytes:
    """Accept 32 raw bytes or a 0x-prefixed 64-digit hex string."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        raw = parse_hex32(value)
    else:
        raise ValueError("expected 32 bytes or a 0x-prefixed hex string")
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def _address(value: Any) -> str:
    """Accept any 20-byte address spelling; return it checksummed."""
    if not isinstance(value, str) or not is_address(value):
        raise ValueError("expected a 0x-prefixed 20-byte address")
    return to_checksum_address(value)


def _count(value: Any) -> Any:
    """Refuse booleans where a number is expected (`true` is not 1 gram)."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true or false")
    if isinstance(value, str) and len(value.strip()) > 30:
        raise ValueError("expected a whole number of at most 30 digits")
    return value


Bytes32 = Annotated[bytes, BeforeValidator(_bytes32)]
Count = Annotated[int, BeforeValidator(_count)]
"""An integer from a file or a request: digits or a number, never a boolean."""
Address = Annotated[str, BeforeValidator(_address)]


class Grade(IntEnum):
    """Grade codes of fresh leaf and made tea (GB/T-style 特级 to 四级)."""

    SPECIAL = 1
    FIRST = 2
    SECOND = 3
    THIRD = 4
    FOURTH = 5

    @property
    def label(self) -> str:
        """The Chinese grade name."""
        return _GRADE_LABELS[self]

    @classmethod
    def parse(cls, value: Any) -> Grade:
        """From a code (1-5), an English name (`first`) or a Chinese label (`一级`)."""
        if isinstance(value, Grade):
            return value
        if isinstance(value, bool):
            raise ValueError("a grade is a code 1-5 or a grade name")
        text = str(value).strip()
        if isinstance(value, int) or (text.isascii() and text.isdigit() and len(text) <= 3):
            code = int(text)
            if code in cls._value2member_map_:
                return cls(code)
        for grade, label in _GRADE_LABELS.items():
            if text.upper() == grade.name or text == label:
                return grade
        names = ", ".join(g.name.lower() for g in cls)
        raise ValueError(f"unknown grade {value!r}: use a code 1-5, a name ({names}) or 特级-四级")


_GRADE_LABELS = {
    Grade.SPECIAL: "特级",
    Grade.FIRST: "一级",
    Grade.SECOND: "二级",
    Grade.THIRD: "三级",
    Grade.FOURTH: "四级",
}


def _grade(value: Any) -> Grade:
    """Pydantic hook for Grade.parse with a clean error message."""
    try:
        return Grade.parse(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


GradeField = Annotated[Grade, BeforeValidator(_grade)]


class LotState(IntEnum):
    """Mirror of ITeaTrace.LotState."""

    NONE = 0
    HELD = 1
    IN_TRANSIT = 2
    CONSUMED = 3


class LotKind(IntEnum):
    """Mirror of ITeaTrace.LotKind."""

    NONE = 0
    FRESH_LEAF = 1
    MADE_TEA = 2


class HarvestCheck(IntEnum):
    """Mirror of ITeaTrace.HarvestCheck (the outcome of validating one record on chain)."""

    OK = 0
    DUPLICATE = 1
    UNKNOWN_PLOT = 2
    NOT_FARMER_COOPERATIVE = 3
    FARMER_INACTIVE = 4
    ZERO_MASS = 5
    UNKNOWN_GRADE = 6
    PICKED_IN_FUTURE = 7

    @property
    def reason(self) -> str:
        """Why a record with this status is not recorded."""
        return _CHECK_REASONS[self]


_CHECK_REASONS = {
    HarvestCheck.OK: "valid",
    HarvestCheck.DUPLICATE: "already recorded on chain",
    HarvestCheck.UNKNOWN_PLOT: "the plot is not registered to this farmer",
    HarvestCheck.NOT_FARMER_COOPERATIVE: "the farmer is a member of another cooperative",
    HarvestCheck.FARMER_INACTIVE: "the farmer is deactivated",
    HarvestCheck.ZERO_MASS: "zero grams",
    HarvestCheck.UNKNOWN_GRADE: "unknown grade",
    HarvestCheck.PICKED_IN_FUTURE: "picked in the future (by the chain's clock)",
}


class _Record(BaseModel):
    """Immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class FarmerRegistration(_Record):
    """A farmer joining the cooperative, by pseudonym (see ids.farmer_id)."""

    farmer: Bytes32
    wallet: Address | None = None

    def as_tuple(self) -> tuple[bytes, str]:
        """ABI tuple of ITeaTrace.FarmerRegistration."""
        return (self.farmer, self.wallet or "0x" + "00" * 20)


class PlotRegistration(_Record):
    """A plot of one of the cooperative's farmers."""

    plot: Bytes32
    farmer: Bytes32
    area_centi_mu: int = Field(gt=0, le=UINT32_MAX, description="area in 0.01 mu")
    variety: int = Field(default=0, ge=0, le=UINT16_MAX, description="tea variety code")
    location_hash: Bytes32 = ZERO32

    def as_tuple(self) -> tuple[bytes, bytes, int, int, bytes]:
        """ABI tuple of ITeaTrace.PlotRegistration."""
        return (self.plot, self.farmer, self.area_centi_mu, self.variety, self.location_hash)


def _unix_seconds(value: Any) -> int:
    """Accept unix seconds, a datetime or an ISO 8601 string (naive means UTC)."""
    if isinstance(value, bool):
        raise ValueError("expected a time")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        if len(value.strip()) > 12:  # past the year 33000: refused before int() parses it
            raise ValueError("expected unix seconds or an ISO 8601 time")
        return int(value.strip())
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("expected unix seconds or an ISO 8601 time") from None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp())
    raise ValueError("expected unix seconds or an ISO 8601 time")


class HarvestRecord(_Record):
    """One picking of fresh leaf from a farmer's plot.

    `data_hash` is the record's idempotency key: given, or derived from the fields and the
    cooperative's own `record_ref`, so the same row submitted twice maps to the same lot.
    """

    farmer: Bytes32
    plot: Bytes32
    grams: Count = Field(gt=0, le=UINT64_MAX)
    grade: GradeField
    picked_at: Annotated[int, BeforeValidator(_unix_seconds)]
    record_ref: str = Field(default="", max_length=128)
    data_hash: Bytes32 | None = None

    @field_validator("picked_at")
    @classmethod
    def _not_in_future(cls, value: int) -> int:
        """Harvests happened: not before 2000, not after now."""
        if value < EARLIEST_HARVEST:
            raise ValueError("picked_at is before the year 2000")
        now = int(time.time())
        if value > now:
            raise ValueError(f"picked_at {value} is in the future (now {now})")
        return value

    @cached_property
    def key(self) -> bytes:
        """The data hash sent on chain (and idempotency key); kept, as a submission reads it
        several times (repeats, pre-check, lot ids, calldata) and hashing costs ~0.2 ms."""
        if self.data_hash is not None:
            return self.data_hash
        return harvest_data_hash(
            self.farmer, self.plot, self.grams, int(self.grade), self.picked_at, self.record_ref
        )

    def as_tuple(self) -> tuple[bytes, bytes, int, int, int, bytes]:
        """ABI tuple of ITeaTrace.HarvestRecord."""
        return (self.farmer, self.plot, self.grams, int(self.grade), self.picked_at, self.key)


class ProcessOutput(_Record):
    """One output lot of a processing step (see ids.output_data_hash)."""

    grams: int = Field(gt=0, le=UINT64_MAX)
    data_hash: Bytes32

    def as_tuple(self) -> tuple[int, bytes]:
        """ABI tuple of ITeaTrace.ProcessOutput."""
        return (self.grams, self.data_hash)


class QualityAttestation(_Record):
    """An inspector's verdict on a lot."""

    lot: Bytes32
    grade: GradeField
    passed: bool
    certificate_hash: Bytes32 = ZERO32

    def as_tuple(self) -> tuple[bytes, int, bool, bytes]:
        """ABI tuple of ITeaTrace.QualityAttestation."""
        return (self.lot, int(self.grade), self.passed, self.certificate_hash)


class LotView(_Record):
    """A lot's storage slot as read from chain."""

    lot: Bytes32
    holder: Address
    grams: int
    state: LotState
    kind: LotKind
    recalled: bool

    @classmethod
    def from_chain(cls, lot: bytes, raw: tuple[Any, ...] | list[Any]) -> LotView:
        """From the (holder, grams, state, kind, recalled) tuple web3 returns."""
        holder, grams, state, kind, recalled = raw
        return cls(lot=lot, holder=holder, grams=grams, state=state, kind=kind, recalled=recalled)

    @property
    def exists(self) -> bool:
        """False for an id never created."""
        return self.state != LotState.NONE

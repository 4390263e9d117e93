"""The dated, versioned one-year LPR table and the rate in force on a contract date."""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from lending.errors import LprDateOutOfRangeError, LprTableError

DEFAULT_TABLE = "lpr_1y.json"


@dataclass(frozen=True, order=True)
class LprFixing:
    """One published fixing: the 1-year LPR in basis points from `date` on."""

    date: date
    rate_bps: int

    @property
    def rate_pct(self) -> Decimal:
        """The rate in percent (310 bps -> 3.10)."""
        return Decimal(self.rate_bps).scaleb(-2)


@dataclass(frozen=True)
class LprQuote:
    """The fixing in force on a date, with the table it came from."""

    fixing: LprFixing
    on: date
    table_version: str
    stale: bool
    """True when `on` is after the table's `covers_through`: a newer fixing may exist."""


@dataclass(frozen=True)
class LprTable:
    """Monthly 1-year LPR fixings, strictly increasing by date, with a version and source note."""

    version: str
    source: str
    covers_through: date
    fixings: tuple[LprFixing, ...]

    def __post_init__(self) -> None:
        """Refuse empty, unordered or non-positive tables."""
        if not self.fixings:
            raise LprTableError("LPR table has no fixings; add at least one {date, rate_bps} row")
        for prev, cur in itertools.pairwise(self.fixings):
            if cur.date <= prev.date:
                raise LprTableError(
                    f"LPR fixings out of order at {cur.date.isoformat()}; sort rows by date "
                    "and remove duplicates"
                )
        for fx in self.fixings:
            if (
                isinstance(fx.rate_bps, bool)
                or not isinstance(fx.rate_bps, int)
                or fx.rate_bps <= 0
            ):
                raise LprTableError(
                    f"LPR fixing {fx.date.isoformat()} has rate_bps={fx.rate_bps!r}; "
                    "it must be a positive int of basis points"
                )
        if self.covers_through < self.fixings[-1].date:
            raise LprTableError("covers_through is earlier than the last fixing; fix the table")

    @property
    def first_date(self) -> date:
        """Date of the first fixing; earlier contract dates are refused."""
        return self.fixings[0].date

    def quote(self, on: date) -> LprQuote:
        """The last fixing published on or before `on`."""
        if on < self.first_date:
            raise LprDateOutOfRangeError(
                f"contract date {on.isoformat()} is before the first LPR fixing in table "
                f"{self.version} ({self.first_date.isoformat()}); the 4x LPR cap is defined "
                "from the 2019 LPR reform on: use a later date or a table that covers it"
            )
        k = bisect.bisect_right([fx.date for fx in self.fixings], on) - 1
        return LprQuote(self.fixings[k], on, self.version, on > self.covers_through)


def parse_lpr_table(data: Mapping[str, object]) -> LprTable:
    """Build a table from its JSON object form."""
    try:
        rows = data["fixings"]
        if not isinstance(rows, list):
            raise TypeError("fixings must be a list")
        return LprTable(
            version=str(data["version"]),
            source=str(data["source"]),
            covers_through=date.fromisoformat(str(data["covers_through"])),
            fixings=tuple(_fixing(row) for row in rows),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LprTableError(
            f"malformed LPR table ({exc}); expected keys version, source, covers_through and "
            "fixings: [{date: YYYY-MM-DD, rate_bps: int}, ...]"
        ) from None


def _fixing(row: object) -> LprFixing:
    """One {date, rate_bps} row."""
    if not isinstance(row, dict):
        raise TypeError(f"fixing {row!r} must be an object")
    return LprFixing(date.fromisoformat(str(row["date"])), row["rate_bps"])


def load_lpr_table(path: Path | str | None = None) -> LprTable:
    """Load a table from `path`, or the one shipped in lending/data (cached)."""
    if path is None:
        return _shipped_table()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LprTableError(f"cannot read LPR table {path}: {exc.strerror}") from None
    return _parse_text(text, str(path))


def lpr_on(on: date, table: LprTable | None = None) -> LprQuote:
    """The 1-year LPR in force on `on` (last fixing on or before it)."""
    return (table or _shipped_table()).quote(on)


@lru_cache(maxsize=1)
def _shipped_table() -> LprTable:
    """The table shipped with the package."""
    # A plain path next to this module: works for wheels and editable installs alike (the
    # editable finder can present the package as a namespace that importlib.resources rejects).
    path = Path(__file__).with_name("data") / DEFAULT_TABLE
    return _parse_text(path.read_text(encoding="utf-8"), str(path))


def _parse_text(text: str, where: str) -> LprTable:
    """Parse JSON text into a table, naming the file on failure."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LprTableError(f"LPR table {where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LprTableError(f"LPR table {where} must be a JSON object")
    return parse_lpr_table(data)

"""The dated, versioned LPR table and the rate in force on a contract date.

Which table: `$TEALEDGER_LPR_TABLE` if set, else the user's table `lpr_1y.json` in the data
dir (`$TEALEDGER_DATA_DIR`, default `.tealedger` in the project root, the node's data dir) if
`tealedger lpr update` has written one, else the table shipped in `data/` (read-only: updates
never write it). A table is valid through its `covers_through` date: pricing a later contract
date is refused (StaleLprTableError, lending.pricing.caps), since a newer fixing may be in force.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from lending.errors import LPR_UPDATE_COMMAND, LprDateOutOfRangeError, LprTableError

DEFAULT_TABLE = "lpr_1y.json"
TABLE_ENV = "TEALEDGER_LPR_TABLE"
DATA_DIR_ENV = "TEALEDGER_DATA_DIR"
SHIPPED_TABLE = Path(__file__).with_name("data") / DEFAULT_TABLE
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
FIXING_DAY = 20
"""Fixings are published on the 20th of each month (the next business day after a holiday)."""
HOLIDAY_SHIFT_DAYS = 10
"""A fixing later than this after its regular day means one in between was not recorded."""
ASSUMPTION_TAG = "+assumed-unchanged-through-"


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
    """The table is valid through this date: no other fixing was published up to it."""
    fixings: tuple[LprFixing, ...]
    five_year_bps: tuple[tuple[date, int], ...] = ()
    """(fixing date, 5-year LPR in bps) where recorded (`tealedger lpr update`); caps use the
    1-year rate only. Kept apart from LprFixing, whose shape stored disclosures carry."""
    origin: str = field(default="the shipped table", compare=False)
    """Where the table was read from, for messages."""

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
        rates = [(fx.date, "rate_bps", fx.rate_bps) for fx in self.fixings]
        rates += [(day, "five_year_bps", bps) for day, bps in self.five_year_bps]
        for day, name, value in rates:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise LprTableError(
                    f"LPR fixing {day.isoformat()} has {name}={value!r}; "
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

    @property
    def assumed(self) -> bool:
        """True for a table extended by assuming_unchanged_through (a simulation assumption)."""
        return ASSUMPTION_TAG in self.version

    def assuming_unchanged_through(self, through: date) -> LprTable:
        """This table, assumed valid through `through` with no fixing after its last one.

        For simulations and demos only: the version and source say so, and every disclosure
        priced with it names that version. Real pricing needs the fixings actually published.
        """
        if through <= self.covers_through:
            return self
        last = self.fixings[-1]
        return replace(
            self,
            version=f"{self.version}{ASSUMPTION_TAG}{through.isoformat()}",
            source=(
                f"ASSUMPTION, not published data: the 1-year LPR is assumed unchanged at "
                f"{last.rate_pct}% (fixing of {last.date.isoformat()}) from "
                f"{self.covers_through.isoformat()} through {through.isoformat()}. "
                f"Base table: {self.source}"
            ),
            covers_through=through,
            origin=f"{self.origin}, assumed unchanged through {through.isoformat()}",
        )

    def with_fixing(
        self,
        on: date,
        one_year_bps: int,
        five_year_bps: int,
        valid_through: date | None = None,
    ) -> LprTable:
        """The table with a newly published fixing, valid until the next regular fixing."""
        last = self.fixings[-1]
        if on < last.date:
            raise LprTableError(
                f"fixing date {on.isoformat()} is before the table's last fixing "
                f"{last.date.isoformat()}; record fixings in date order"
            )
        due = next_fixing_date(self.covers_through)
        if on > due + timedelta(days=HOLIDAY_SHIFT_DAYS):
            raise LprTableError(
                f"the table is valid through {self.covers_through.isoformat()} and the next "
                f"fixing was due on {due.isoformat()}: record the fixings published between "
                f"then and {on.isoformat()} first, oldest first"
            )
        kept = self.fixings[:-1] if on == last.date else self.fixings
        five = tuple((day, bps) for day, bps in self.five_year_bps if day != on)
        through = valid_through or next_fixing_date(on) - timedelta(days=1)
        if through < on:
            raise LprTableError(
                f"valid-through {through.isoformat()} is before the fixing date {on.isoformat()}"
            )
        return replace(
            self,
            version=_next_version(self.version, on),
            covers_through=through,
            fixings=(*kept, LprFixing(on, one_year_bps)),
            five_year_bps=(*five, (on, five_year_bps)),
        )

    def to_json(self) -> str:
        """The table in its JSON file form."""
        five = dict(self.five_year_bps)
        rows = []
        for fx in self.fixings:
            row: dict[str, object] = {"date": fx.date.isoformat(), "rate_bps": fx.rate_bps}
            if fx.date in five:
                row["five_year_bps"] = five[fx.date]
            rows.append(row)
        data = {
            "table": "china-1y-lpr",
            "version": self.version,
            "source": self.source,
            "covers_through": self.covers_through.isoformat(),
            "fixings": rows,
        }
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def next_fixing_date(after: date) -> date:
    """The next regular fixing day (the 20th) after `after`; a holiday only moves it later."""
    year, month = (after.year, after.month) if after.day < FIXING_DAY else _next_month(after)
    return date(year, month, min(FIXING_DAY, calendar.monthrange(year, month)[1]))


def _next_month(day: date) -> tuple[int, int]:
    """(year, month) of the month after `day`'s."""
    return (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)


def _next_version(version: str, on: date) -> str:
    """A user-updated table's version: the fixing date and a local revision number."""
    prefix = f"{on.isoformat()}.local"
    if version.startswith(prefix) and version[len(prefix) :].isdigit():
        return f"{prefix}{int(version[len(prefix) :]) + 1}"
    return f"{prefix}1"


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
            five_year_bps=tuple(
                (date.fromisoformat(str(row["date"])), row["five_year_bps"])
                for row in rows
                if isinstance(row, dict) and row.get("five_year_bps") is not None
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LprTableError(
            f"malformed LPR table ({exc}); expected keys version, source, covers_through and "
            "fixings: [{date: YYYY-MM-DD, rate_bps: int}, ...]"
        ) from None


def _fixing(row: object) -> LprFixing:
    """One {date, rate_bps[, five_year_bps]} row (the 5-year rate is read by parse_lpr_table)."""
    if not isinstance(row, dict):
        raise TypeError(f"fixing {row!r} must be an object")
    return LprFixing(date.fromisoformat(str(row["date"])), row["rate_bps"])


def user_table_path() -> Path:
    """Where the user's table is read and `tealedger lpr update` writes it."""
    explicit = os.environ.get(TABLE_ENV)
    if explicit:
        return Path(explicit)
    data_dir = os.environ.get(DATA_DIR_ENV)
    return (Path(data_dir) if data_dir else _PROJECT_ROOT / ".tealedger") / DEFAULT_TABLE


def load_lpr_table(path: Path | str | None = None) -> LprTable:
    """Load a table from `path`, or the user's table if there is one, else the shipped one."""
    if path is None:
        user = user_table_path()
        if not user.exists():
            if os.environ.get(TABLE_ENV):
                raise LprTableError(
                    f"${TABLE_ENV} names {user}, which does not exist: create it with "
                    f"`{LPR_UPDATE_COMMAND}` or unset ${TABLE_ENV}"
                )
            return shipped_lpr_table()
        path = user
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise LprTableError(f"cannot read LPR table {path}: {exc.strerror}") from None
    return _cached_file(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def save_lpr_table(table: LprTable, path: Path | None = None) -> Path:
    """Write `table` to `path` (default: the user's table), never over the shipped table."""
    target = Path(path) if path is not None else user_table_path()
    if target.resolve() == SHIPPED_TABLE.resolve():
        raise LprTableError(
            f"{target} is the table shipped with the package; write the user's table instead "
            f"(${TABLE_ENV} or lpr_1y.json in the data dir)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".tmp")
    partial.write_text(table.to_json(), encoding="utf-8")
    partial.replace(target)  # atomic: a reader sees the old table or the new one
    return target


def lpr_on(on: date, table: LprTable | None = None) -> LprQuote:
    """The 1-year LPR in force on `on` (last fixing on or before it), flagged if stale."""
    return (table or load_lpr_table()).quote(on)


def shipped_lpr_table() -> LprTable:
    """The table shipped with the package."""
    # A plain path next to this module: works for wheels and editable installs alike (the
    # editable finder can present the package as a namespace that importlib.resources rejects).
    return _cached_file(str(SHIPPED_TABLE), 0, 0)


@lru_cache(maxsize=8)
def _cached_file(path: str, _mtime_ns: int, _size: int) -> LprTable:
    """A table file, parsed once per (path, modification time, size)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LprTableError(f"cannot read LPR table {path}: {exc.strerror}") from None
    origin = "the shipped table" if path == str(SHIPPED_TABLE) else path
    return replace(_parse_text(text, path), origin=origin)


def _parse_text(text: str, where: str) -> LprTable:
    """Parse JSON text into a table, naming the file on failure."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LprTableError(f"LPR table {where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LprTableError(f"LPR table {where} must be a JSON object")
    return parse_lpr_table(data)

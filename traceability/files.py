"""Read harvest files (CSV or JSON) into validated records plus a per-row error list.

Columns / keys: farmer, plot, grams, grade, picked_at, and optionally record_ref (the
cooperative's own receipt number) and data_hash. Farmer and plot are the pseudonymous 0x ids;
names, phone numbers or national ids must never appear in these files, so unknown columns are
refused rather than ignored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from traceability.errors import InvalidRecordError
from traceability.models import HarvestRecord

REQUIRED = ("farmer", "plot", "grams", "grade", "picked_at")
OPTIONAL = ("record_ref", "data_hash")


@dataclass(frozen=True)
class RowError:
    """Why one row of a file was not accepted."""

    where: str  # "line 7" for CSV, "record 3" for JSON
    field: str
    message: str


@dataclass(frozen=True)
class HarvestRow:
    """A valid record and where it came from."""

    where: str
    record: HarvestRecord


def _check_columns(columns: list[str], path: Path) -> None:
    """Refuse files without the required columns or with unknown ones."""
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
    problems = []
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        problems.append(
            f"unknown columns: {', '.join(unknown)} (personal data never goes in harvest files)"
        )
    if problems:
        allowed = ", ".join(REQUIRED + OPTIONAL)
        raise InvalidRecordError(f"{path}: {'; '.join(problems)}. Allowed: {allowed}", problems)


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, row) pairs of a CSV file with a header line."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        _check_columns([c.strip() for c in reader.fieldnames or []], path)
        for row in reader:
            cleaned = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if any(cleaned.values()):
                yield f"line {reader.line_num}", {k: v for k, v in cleaned.items() if v != ""}


def _json_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(location, row) pairs of a JSON list (or {"harvests": [...]})."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidRecordError(f"{path} is not valid JSON: {exc}") from None
    items = doc.get("harvests") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise InvalidRecordError(
            f'{path}: expected a JSON list of records or {{"harvests": [...]}}'
        )
    columns = sorted({k for item in items if isinstance(item, dict) for k in item})
    _check_columns(columns or list(REQUIRED), path)
    for n, item in enumerate(items, start=1):
        yield f"record {n}", item


def read_harvest_file(path: Path) -> tuple[list[HarvestRow], list[RowError]]:
    """Valid rows and per-row errors of a .csv or .json harvest file."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise InvalidRecordError(f"{path}: harvest files are .csv or .json, not {suffix or '?'}")
    rows = _csv_rows(path) if suffix == ".csv" else _json_rows(path)
    valid: list[HarvestRow] = []
    errors: list[RowError] = []
    for where, raw in rows:
        if not isinstance(raw, dict):
            errors.append(RowError(where, "-", "expected an object with the record's fields"))
            continue
        try:
            valid.append(HarvestRow(where, HarvestRecord.model_validate(raw)))
        except ValidationError as exc:
            for problem in exc.errors():
                field = ".".join(str(p) for p in problem["loc"]) or "-"
                errors.append(RowError(where, field, problem["msg"].removeprefix("Value error, ")))
    return valid, errors

"""Read harvest files (CSV or JSON) into validated records plus a per-row error list.

Columns / keys: farmer, plot, grams, grade, picked_at, and optionally record_ref (the
cooperative's own receipt number) and data_hash. Farmer and plot are the pseudonymous 0x ids;
names, phone numbers or national ids must never appear in these files, so unknown columns are
refused rather than ignored.

Files are decoded in one place (`decode_text`, which is chain.text's, shared with every file
read above the chain): UTF-8 with or without BOM, UTF-16 by its BOM, else GB18030 (a superset
of GBK, what Chinese spreadsheet software saves by default); binary files are refused with the
encodings accepted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chain.errors import NotTextError
from chain.text import decode_text as chain_decode_text
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


def decode_text(content: bytes, name: str) -> str:
    """The text of a harvest file (chain.text.decode_text); binary is InvalidRecordError."""
    try:
        return chain_decode_text(content, name, "CSV or JSON")
    except NotTextError as exc:
        raise InvalidRecordError(str(exc)) from None


def _check_columns(columns: list[str], name: str) -> None:
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
        raise InvalidRecordError(f"{name}: {'; '.join(problems)}. Allowed: {allowed}", problems)


def _csv_rows(text: str, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, row) pairs of a CSV file with a header line."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        _check_columns([c.strip() for c in reader.fieldnames or []], name)
        for row in reader:
            cleaned = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if any(cleaned.values()):
                yield f"line {reader.line_num}", {k: v for k, v in cleaned.items() if v != ""}
    except csv.Error as exc:
        raise InvalidRecordError(f"{name} is not a readable CSV file: {exc}") from None


def _json_rows(text: str, name: str) -> Iterator[tuple[str, Any]]:
    """(location, row) pairs of a JSON list (or {"harvests": [...]})."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidRecordError(f"{name} is not valid JSON: {exc}") from None
    items = doc.get("harvests") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise InvalidRecordError(
            f'{name}: expected a JSON list of records or {{"harvests": [...]}}'
        )
    columns = sorted({k for item in items if isinstance(item, dict) for k in item})
    _check_columns(columns or list(REQUIRED), name)
    for n, item in enumerate(items, start=1):
        yield f"record {n}", item


def read_harvest_file(path: Path) -> tuple[list[HarvestRow], list[RowError]]:
    """Valid rows and per-row errors of a .csv or .json harvest file."""
    return read_harvest_bytes(path.read_bytes(), path.suffix, str(path))


def read_harvest_bytes(
    content: bytes, suffix: str, name: str
) -> tuple[list[HarvestRow], list[RowError]]:
    """Valid rows and per-row errors of a harvest file's bytes; `name` is what messages call
    the file (the user's file name, never a temporary path)."""
    suffix = suffix.lower()
    if suffix not in (".csv", ".json"):
        raise InvalidRecordError(f"{name}: harvest files are .csv or .json, not {suffix or '?'}")
    text = decode_text(content, name)
    rows = _csv_rows(text, name) if suffix == ".csv" else _json_rows(text, name)
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

"""Harvest files: CSV and JSON, with per-row errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traceability.errors import InvalidRecordError
from traceability.files import read_harvest_file

F = "0x" + "11" * 32
P = "0x" + "22" * 32


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_rows_and_errors_with_line_numbers(tmp_path: Path):
    path = write_csv(
        tmp_path / "h.csv",
        [
            "farmer,plot,grams,grade,picked_at,record_ref",
            f"{F},{P},5000,2,2026-04-02T07:30:00,R-1",
            f"{F},{P},0,2,2026-04-02T07:30:00,R-2",
            "",
            f"{F},{P},4000,9,2026-04-02T07:30:00,R-3",
            f"{F},{P},4000,special,1700000000,",
        ],
    )
    rows, errors = read_harvest_file(path)
    assert [r.where for r in rows] == ["line 2", "line 6"]
    assert rows[0].record.record_ref == "R-1"
    assert [(e.where, e.field) for e in errors] == [("line 3", "grams"), ("line 5", "grade")]


def test_json_list_or_object(tmp_path: Path):
    good = {"farmer": F, "plot": P, "grams": 100, "grade": 1, "picked_at": 1_700_000_000}
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"harvests": [good, {**good, "grams": -1}, "junk"]}))
    rows, errors = read_harvest_file(path)
    assert [r.where for r in rows] == ["record 1"]
    assert [(e.where, e.field) for e in errors] == [("record 2", "grams"), ("record 3", "-")]


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("farmer,plot,grams,grade,picked_at,name", "unknown columns: name"),
        ("farmer,plot,grams,grade", "missing columns: picked_at"),
    ],
)
def test_unknown_or_missing_columns_refuse_the_file(tmp_path: Path, header, problem):
    path = write_csv(tmp_path / "h.csv", [header])
    with pytest.raises(InvalidRecordError, match=problem):
        read_harvest_file(path)


def test_other_formats_and_bad_json(tmp_path: Path):
    with pytest.raises(InvalidRecordError, match=r"csv or \.json"):
        read_harvest_file(write_csv(tmp_path / "h.txt", ["x"]))
    bad = tmp_path / "h.json"
    bad.write_text("{")
    with pytest.raises(InvalidRecordError, match="not valid JSON"):
        read_harvest_file(bad)

"""The benchmark table: one markdown format for `make bench` and single modules."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def _fmt(value: object) -> str:
    """Numbers with thousands separators, the rest as given."""
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def table(rows: list[dict[str, object]]) -> str:
    """The results as a markdown table."""
    lines = [
        f"Machine: {os.cpu_count()} cores, run {datetime.now(UTC):%Y-%m-%d}. "
        "Command: `make bench` (or `python -m bench NAME...`).",
        "",
        "| benchmark | value | unit | baseline | ratio |",
        "|---|---:|---|---:|---:|",
    ]
    for row in rows:
        cells = [row.get(k) for k in ("benchmark", "value", "unit", "baseline", "ratio")]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"

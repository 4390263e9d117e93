"""`python -m bench`: run every bench/bench_*.py module's `run()` and print one table."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bench.report import table


def _modules(selected: list[str]) -> list[str]:
    """Benchmark module names, all or those named on the command line."""
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    return [n for n in names if not selected or n in selected or n[6:] in selected]


def _preamble(target: Path) -> str:
    """The prose of docs/benchmarks.md above its generated table (kept when it is rewritten)."""
    text = target.read_text() if target.exists() else ""
    head, found, _ = text.partition("\nMachine: ")
    return head + "\n" if found else "# Benchmarks\n\n"


def main(argv: list[str]) -> int:
    """Run the benchmarks, print one table; a full run rewrites docs/benchmarks.md's table."""
    rows: list[dict[str, object]] = []
    for name in _modules(argv):
        module = importlib.import_module(f"bench.{name}")
        rows.extend(module.run())
    text = table(rows)
    print(text)
    if not argv:
        target = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
        target.write_text(_preamble(target) + text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Shared fixtures: real EVMs (in-process py-evm, ganache and anvil via npx) on free ports.

brownie's own environment (see Makefile) collects tests/brownie with this file on the path but
without the application installed; there the import below fails and only brownie's fixtures
are used.
"""

from __future__ import annotations

import os
from pathlib import Path

LPR_TEST_TABLE = Path(__file__).parent / "_fixtures" / "lpr_1y_assumed_unchanged.json"
"""The shipped LPR fixings ASSUMED UNCHANGED through 2035-12-31 (a test fixture, not data).

Pricing refuses a contract date after its table's validity (StaleLprTableError), and tests
price on today's date and on chain clocks moved forward. Set here, before anything loads a
table, so no test reads the user's table in the data dir; subprocesses inherit it. Tests of
the stale refusal pass their own tables.
"""
os.environ["TEALEDGER_LPR_TABLE"] = str(LPR_TEST_TABLE)

try:
    from tests._fixtures import *  # noqa: F403
except ModuleNotFoundError as exc:  # pragma: no cover - brownie's environment
    if exc.name in {"tests", "tests._fixtures"}:
        raise

"""Shared fixtures: real EVMs (in-process py-evm, ganache and anvil via npx) on free ports.

brownie's own environment (see Makefile) collects tests/brownie with this file on the path but
without the application installed; there the import below fails and only brownie's fixtures
are used.
"""

from __future__ import annotations

try:
    from tests._fixtures import *  # noqa: F403
except ModuleNotFoundError as exc:  # pragma: no cover - brownie's environment
    if exc.name in {"tests", "tests._fixtures"}:
        raise

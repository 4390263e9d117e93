"""Contract tests share one deployment per module; each test runs in an EVM snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._fixtures import client_for
from tests.traceability._system import System, build_system, isolated


@pytest.fixture(scope="module")
def module_system(tmp_path_factory: pytest.TempPathFactory) -> System:
    """TeaTrace deployed once per test module on an in-process EVM."""
    data_dir: Path = tmp_path_factory.mktemp("tea-trace")
    client = client_for("embedded", data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    return build_system(client)


@pytest.fixture
def system(module_system: System) -> Iterator[System]:
    """The module's system, rolled back after the test."""
    yield from isolated(module_system)

"""Helpers of the indexer tests: databases, chains with the standard scenario, table dumps."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from chain.client import ChainClient
from indexer.db import make_engine
from tests._fixtures import client_for, workload
from tests._fixtures.workload import EphemeralAnvil, Region


def needs_node() -> None:
    """Skip locally without Node.js; CI must have it."""
    if shutil.which("npx") is None and not os.environ.get("CI"):
        pytest.skip("Node.js not installed")


@dataclass
class IndexedChain:
    """A running anvil with the standard scenario, its client and what the scenario made."""

    node: EphemeralAnvil
    client: ChainClient
    region: Region
    data_dir: Path


def start_chain(data_dir: Path, farmers: int = 12, per_farmer: int = 4) -> IndexedChain:
    """Start an ephemeral anvil and play the standard scenario on it."""
    needs_node()
    node = workload.start_anvil(data_dir)
    client = client_for(node, data_dir)
    client.settings.data_dir.mkdir(parents=True, exist_ok=True)
    region = workload.scenario(client, farmers, per_farmer)
    return IndexedChain(node, client, region, data_dir)


INDEXES = "(indexes)"  # the dump's entry listing (table, index name) pairs


def _plain(value: Any) -> Any:
    """Comparable cell values (memoryview/bytes alike)."""
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def dump(engine: Engine | str, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every indexer table's rows, sorted, and the indexes (under "(indexes)"): equal dumps mean
    equal databases."""
    engine = make_engine(engine) if isinstance(engine, str) else engine
    ignored = {"indexer_alembic_version", *skip}
    inspector = inspect(engine)
    tables = sorted(t for t in inspector.get_table_names() if t not in ignored)
    # Only the models' named indexes: PostgreSQL also lists unique constraints, SQLite not.
    named = ((t, str(i["name"])) for t in tables for i in inspector.get_indexes(t))
    out: dict[str, list[tuple[Any, ...]]] = {
        INDEXES: sorted(pair for pair in named if pair[1].startswith("ix_"))
    }
    with engine.connect() as conn:
        for table in tables:
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            out[table] = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
    return out


def counts(engine: Engine | str) -> dict[str, int]:
    """Rows per table."""
    return {t: len(rows) for t, rows in dump(engine).items() if t != INDEXES}

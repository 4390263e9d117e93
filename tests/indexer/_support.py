"""Helpers of the indexer tests: databases, chains with the standard scenario, table dumps."""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, inspect, text

from chain.client import ChainClient
from indexer import workload
from indexer.db import make_engine
from indexer.workload import EphemeralAnvil, Region
from tests._fixtures import client_for

PG_DSN = os.environ.get(
    "TEALEDGER_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
PG_URL = "postgresql+psycopg://{user}@{host}:{port}/{db}"


def pg_admin() -> psycopg.Connection[Any] | None:
    """An autocommit connection to the PostgreSQL server, or None if none answers."""
    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        return None


class PgDatabases:
    """Creates throwaway databases on the local server and drops them at the end."""

    def __init__(self, admin: psycopg.Connection[Any]) -> None:
        self.admin = admin
        self.prefix = f"tealedger_test_{secrets.token_hex(4)}"
        self.created: list[str] = []
        info = admin.info
        self._parts = {"user": info.user, "host": info.host, "port": info.port}

    def new(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        name = f"{self.prefix}_{len(self.created)}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return PG_URL.format(db=name, **self._parts)

    def drop_all(self) -> None:
        """Drop every database this session made."""
        for name in self.created:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.close()


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


def _plain(value: Any) -> Any:
    """Comparable cell values (memoryview/bytes alike)."""
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def dump(engine: Engine | str, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every indexer table's rows, sorted: equal dumps mean equal databases."""
    engine = make_engine(engine) if isinstance(engine, str) else engine
    ignored = {"indexer_alembic_version", *skip}
    tables = sorted(t for t in inspect(engine).get_table_names() if t not in ignored)
    out = {}
    with engine.connect() as conn:
        for table in tables:
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            out[table] = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
    return out


def counts(engine: Engine | str) -> dict[str, int]:
    """Rows per table."""
    return {t: len(rows) for t, rows in dump(engine).items()}
